// Input-size estimate used to decide between direct and disaggregated serving. A heuristic by
// design (chars/4, like the seed and llm-d's decider): it only has to rank prompts, not count them.

/** Characters per token for English-like text. */
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

function textTokens(text: string): number {
  return Math.floor(text.length / CHARS_PER_TOKEN);
}
