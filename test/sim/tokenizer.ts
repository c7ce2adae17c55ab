// Deterministic toy tokenizer + chat template + output generator: same text -> same ids on every engine,
// and the output continues the context autoregressively, so direct and disaggregated paths print the same text.

/** Special tokens of the chat template (ids below every other range). */
export const SPECIAL = { imStart: 1, imEnd: 2, image: 3 } as const;

// Output vocabulary: each entry is one token; ids OUTPUT_BASE + index.
const OUTPUT_WORDS = [
  ' the',
  ' cat',
  ' sat',
  ' on',
  ' a',
  ' red',
  ' mat',
  ' and',
  ' dog',
  ' ran',
  ' to',
  ' big',
  ' sun',
  ' in',
  ' sky',
  ' we',
  ' saw',
  ' it',
  ' fly',
  ' by',
  ' old',
  ' oak',
  ' new',
  ' day',
];
const OUTPUT_BASE = 100;
const HASHED_BASE = 1000;
const HASHED_RANGE = 49000;
export const VOCAB_SIZE = HASHED_BASE + HASHED_RANGE;

const WORD_ID = new Map(OUTPUT_WORDS.map((w, i) => [w, OUTPUT_BASE + i]));

function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

// Words (with their leading space), digits and single punctuation marks; long pieces split into 4-char
// tokens so the count stays near the chars/4 rule of thumb real BPE tokenizers follow.
const PIECE_RE = /\s*[A-Za-z]+|\s*\d|\s*[^\sA-Za-z\d]|\s+$/g;

export function tokenizeText(text: string): number[] {
  const ids: number[] = [];
  for (const match of text.matchAll(PIECE_RE)) {
    const piece = match[0];
    for (let i = 0; i < piece.length; i += 4) {
      const part = piece.slice(i, i + 4);
      ids.push(WORD_ID.get(part) ?? HASHED_BASE + (fnv1a(part) % HASHED_RANGE));
    }
  }
  return ids;
}

export function detokenize(ids: readonly number[]): string {
  return ids
    .map((id) => {
      if (id >= OUTPUT_BASE && id < OUTPUT_BASE + OUTPUT_WORDS.length) return OUTPUT_WORDS[id - OUTPUT_BASE];
      if (id === SPECIAL.imStart) return '<|im_start|>';
      if (id === SPECIAL.imEnd) return '<|im_end|>';
      return `<t${id}>`;
    })
    .join('');
}

export interface ChatMessage {
  role: string;
  content?: unknown;
}

// Text of string content and of `type: text` parts; images become one placeholder token.
function contentTokens(content: unknown): number[] {
  if (typeof content === 'string') return tokenizeText(content);
  if (!Array.isArray(content)) return [];
  const ids: number[] = [];
  for (const part of content) {
    if (part && typeof part === 'object') {
      const p = part as { type?: unknown; text?: unknown };
      if (p.type === 'text' && typeof p.text === 'string') ids.push(...tokenizeText(p.text));
      else ids.push(SPECIAL.image);
    }
  }
  return ids;
}

/** ChatML-like template: <|im_start|>role\ncontent<|im_end|>\n ... then the assistant header. */
export function applyChatTemplate(messages: readonly ChatMessage[], addGenerationPrompt = true): number[] {
  const ids: number[] = [];
  for (const m of messages) {
    ids.push(SPECIAL.imStart, ...tokenizeText(`${m.role}\n`), ...contentTokens(m.content), SPECIAL.imEnd);
    ids.push(...tokenizeText('\n'));
  }
  if (addGenerationPrompt) ids.push(SPECIAL.imStart, ...tokenizeText('assistant\n'));
  return ids;
}

export function isTokenIdList(v: unknown): v is number[] {
  return Array.isArray(v) && v.length > 0 && v.every((x) => Number.isInteger(x) && x >= 0);
}

/** Rolling hash of a context; the next output token is a pure function of it. */
export function contextHash(ids: readonly number[], seed = 0x9e3779b9): number {
  let h = seed >>> 0;
  for (const id of ids) h = extendHash(h, id);
  return h;
}

function extendHash(h: number, id: number): number {
  return (Math.imul(h ^ id, 0x01000193) + 0x7f4a7c15) >>> 0;
}

/** Generates output tokens one at a time; continuing [prompt + t1] yields what [prompt] yields after t1. */
export class OutputGenerator {
  private h: number;
  constructor(context: readonly number[]) {
    this.h = contextHash(context);
  }
  next(): { id: number; text: string } {
    const index = (this.h >>> 7) % OUTPUT_WORDS.length;
    const id = OUTPUT_BASE + index;
    this.h = extendHash(this.h, id);
    return { id, text: OUTPUT_WORDS[index]! };
  }
}
