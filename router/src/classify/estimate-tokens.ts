// Input-size estimate used to decide between direct and disaggregated serving. A heuristic by
// design (like the seed's and llm-d's chars/4): it only has to rank prompts, not count them. Per
// script: alphabetic text ~4 characters per token; CJK ideographs, kana and Hangul ~1 token per
// character; characters beyond the BMP (emoji, rare ideographs) 1 per code point. The error band
// against real tokenizers is measured by `npm run bench:estimate` (docs/router.md).

/** Characters per token for alphabetic (Latin, Cyrillic, ...) text. */
export const CHARS_PER_TOKEN = 4;
/** Role markers and template tokens a chat template adds per message. */
export const CHAT_MESSAGE_OVERHEAD_TOKENS = 4;

export type GenerationKind = 'completions' | 'chat';

export function estimatePromptTokens(body: Record<string, unknown>, kind: GenerationKind): number {
  if (kind === 'chat') return estimateChatTokens(body['messages']);
  return estimateCompletionPromptTokens(body['prompt']);
}

/** string -> chars/4; token ids -> their count; list of strings -> sum of chars/4; batches of token lists -> total ids. */
export function estimateCompletionPromptTokens(prompt: unknown): number {
  if (typeof prompt === 'string') return textTokens(prompt);
  if (!Array.isArray(prompt) || prompt.length === 0) return 0;
  let total = 0;
  for (const item of prompt) {
    if (typeof item === 'number') total += 1;
    else if (typeof item === 'string') total += textTokens(item);
    else if (Array.isArray(item)) total += item.filter((t) => typeof t === 'number').length;
  }
  return total;
}

/** Text of string contents and of `type: text` parts, plus a per-message overhead; images do not count. */
export function estimateChatTokens(messages: unknown): number {
  if (!Array.isArray(messages) || messages.length === 0) return 0;
  let total = 0;
  for (const message of messages) {
    if (!message || typeof message !== 'object') continue;
    total += CHAT_MESSAGE_OVERHEAD_TOKENS;
    const content = (message as Record<string, unknown>)['content'];
    if (typeof content === 'string') {
      total += textTokens(content);
    } else if (Array.isArray(content)) {
      for (const part of content) {
        if (part && typeof part === 'object' && (part as Record<string, unknown>)['type'] === 'text') {
          const text = (part as Record<string, unknown>)['text'];
          if (typeof text === 'string') total += textTokens(text);
        }
      }
    }
  }
  return total;
}

// Anything outside ASCII: the only case that walks the string.
const NON_ASCII = /[\u0080-\uffff]/;

/** One token per character: kana, CJK ideographs and symbols, Hangul, fullwidth forms. */
function isDense(c: number): boolean {
  return (
    (c >= 0x3000 && c <= 0x30ff) || // CJK punctuation, hiragana, katakana
    (c >= 0x3400 && c <= 0x4dbf) || // CJK extension A
    (c >= 0x4e00 && c <= 0x9fff) || // CJK unified ideographs
    (c >= 0xac00 && c <= 0xd7af) || // Hangul syllables
    (c >= 0x1100 && c <= 0x11ff) || // Hangul jamo
    (c >= 0x3130 && c <= 0x318f) || // Hangul compatibility jamo
    (c >= 0xf900 && c <= 0xfaff) || // CJK compatibility ideographs
    (c >= 0xff00 && c <= 0xffef) // halfwidth and fullwidth forms
  );
}

export function textTokens(text: string): number {
  if (!NON_ASCII.test(text)) return Math.floor(text.length / CHARS_PER_TOKEN);
  let sparse = 0;
  let dense = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) {
      dense++; // a code point beyond the BMP: emoji, rare ideographs
      i++;
    } else if (isDense(c)) dense++;
    else sparse++;
  }
  return dense + Math.floor(sparse / CHARS_PER_TOKEN);
}
