import { describe, expect, it } from '@jest/globals';
import {
  chatCompletion,
  chatContentChunk,
  chatRoleChunk,
  completionChunkForClient,
  completionChunkToChat,
} from '../src/protocol/chat-chunks.js';

const ident = { id: 'chatcmpl-r1', created: 1700000000, model: 'm' };

describe('completion -> chat chunk conversion', () => {
  it('starts with the assistant role chunk', () => {
    expect(chatRoleChunk(ident)).toEqual({
      id: 'chatcmpl-r1',
      object: 'chat.completion.chunk',
      created: 1700000000,
      model: 'm',
      choices: [{ index: 0, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }],
    });
  });

  it('maps text to delta.content and keeps finish and stop reasons, with the stream id', () => {
    const chunk = {
      id: 'cmpl-decoder-9',
      object: 'text_completion',
      created: 5,
      model: 'm',
      choices: [{ index: 0, text: ' world', logprobs: null, finish_reason: null, stop_reason: null }],
    };
    expect(completionChunkToChat(chunk, ident)).toEqual({
      id: 'chatcmpl-r1',
      object: 'chat.completion.chunk',
      created: 1700000000,
      model: 'm',
      choices: [{ index: 0, delta: { content: ' world' }, logprobs: null, finish_reason: null }],
    });
    const last = { ...chunk, choices: [{ index: 0, text: '', finish_reason: 'stop', stop_reason: 13 }] };
    expect(completionChunkToChat(last, ident).choices).toEqual([
      { index: 0, delta: {}, logprobs: null, finish_reason: 'stop', stop_reason: 13 },
    ]);
  });

  it('carries a usage-only chunk (empty choices) with the client-view usage', () => {
    const usage = { prompt_tokens: 3, completion_tokens: 5, total_tokens: 8 };
    const out = completionChunkToChat({ id: 'x', choices: [], usage: { prompt_tokens: 4 } }, ident, usage);
    expect(out).toEqual({ ...chatRoleChunk(ident), choices: [], usage });
  });

  it('builds the first-token chunk and whole chat completions', () => {
    expect(chatContentChunk(ident, ' Hi', null).choices).toEqual([
      { index: 0, delta: { content: ' Hi' }, logprobs: null, finish_reason: null },
    ]);
    const whole = chatCompletion(ident, 'Hi there', 'length', {
      prompt_tokens: 1,
      completion_tokens: 2,
      total_tokens: 3,
    });
    expect(whole).toMatchObject({
      object: 'chat.completion',
      choices: [{ index: 0, message: { role: 'assistant', content: 'Hi there' }, finish_reason: 'length' }],
      usage: { total_tokens: 3 },
    });
  });

  it('gives completion chunks the stream id and the client-view usage', () => {
    const out = completionChunkForClient(
      { id: 'other', object: 'text_completion', choices: [] },
      { ...ident, id: 'cmpl-1' },
      null,
    );
    expect(out).toEqual({
      id: 'cmpl-1',
      object: 'text_completion',
      created: 1700000000,
      model: 'm',
      choices: [],
      usage: null,
    });
  });
});
