import { describe, expect, it } from '@jest/globals';
import {
  CHAT_MESSAGE_OVERHEAD_TOKENS,
  estimateChatTokens,
  estimateCompletionPromptTokens,
  estimatePromptTokens,
} from '../src/classify/estimate-tokens.js';

describe('estimatePromptTokens', () => {
  it('counts a string prompt as chars/4, rounded down', () => {
    expect(estimateCompletionPromptTokens('a'.repeat(400))).toBe(100);
    expect(estimateCompletionPromptTokens('abcdefg')).toBe(1);
  });

  it('counts token ids by their number and strings in a list by chars/4 each', () => {
    expect(estimateCompletionPromptTokens([1, 2, 3, 4, 5])).toBe(5);
    expect(estimateCompletionPromptTokens(['a'.repeat(40), 'b'.repeat(8)])).toBe(12);
    expect(estimateCompletionPromptTokens([[1, 2], [3]])).toBe(3);
  });

  it('is 0 for empty or missing prompts', () => {
    expect(estimatePromptTokens({}, 'completions')).toBe(0);
    expect(estimatePromptTokens({ prompt: '' }, 'completions')).toBe(0);
    expect(estimatePromptTokens({ prompt: [] }, 'completions')).toBe(0);
    expect(estimatePromptTokens({ messages: [] }, 'chat')).toBe(0);
    expect(estimatePromptTokens({}, 'chat')).toBe(0);
  });

  it('counts chat text contents and text parts plus a per-message overhead; images do not count', () => {
    const messages = [
      { role: 'system', content: 'x'.repeat(40) },
      {
        role: 'user',
        content: [
          { type: 'text', text: 'y'.repeat(80) },
          { type: 'image_url', image_url: { url: `data:image/png;base64,${'A'.repeat(10_000)}` } },
        ],
      },
    ];
    expect(estimateChatTokens(messages)).toBe(10 + 20 + 2 * CHAT_MESSAGE_OVERHEAD_TOKENS);
    expect(estimatePromptTokens({ messages }, 'chat')).toBe(10 + 20 + 2 * CHAT_MESSAGE_OVERHEAD_TOKENS);
  });

  it('looks at prompt for completions and messages for chat, not the other', () => {
    const body = { prompt: 'p'.repeat(400), messages: [{ role: 'user', content: 'm'.repeat(40) }] };
    expect(estimatePromptTokens(body, 'completions')).toBe(100);
    expect(estimatePromptTokens(body, 'chat')).toBe(10 + CHAT_MESSAGE_OVERHEAD_TOKENS);
  });
});

describe('per-script estimate (issue 13 #9)', () => {
  it('counts CJK ideographs, kana and Hangul as one token per character, not chars/4', () => {
    expect(estimateCompletionPromptTokens('\u4f60'.repeat(100))).toBe(100); // 你
    expect(estimateCompletionPromptTokens('\u3072\u3089\u304c\u306a'.repeat(25))).toBe(100); // ひらがな
    expect(estimateCompletionPromptTokens('\ud55c\uad6d\uc5b4'.repeat(10))).toBe(30); // 한국어
  });

  it('counts emoji by code point, not by UTF-16 unit', () => {
    expect('\u{1f600}'.repeat(10).length).toBe(20);
    expect(estimateCompletionPromptTokens('\u{1f600}'.repeat(10))).toBe(10);
  });

  it('mixes: alphabetic text (accents included) at chars/4 plus the dense characters', () => {
    expect(estimateCompletionPromptTokens('caf\u00e9 '.repeat(8) + '\u4e2d\u6587'.repeat(5))).toBe(10 + 10);
    expect(estimateChatTokens([{ role: 'user', content: '\u65e5\u672c\u8a9e'.repeat(10) }])).toBe(
      30 + CHAT_MESSAGE_OVERHEAD_TOKENS,
    );
  });

  it('keeps chars/4 for ASCII', () => {
    expect(estimateCompletionPromptTokens('x'.repeat(401))).toBe(100);
  });
});
