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
