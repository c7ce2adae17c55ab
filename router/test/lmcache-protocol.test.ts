import { describe, expect, it } from '@jest/globals';
import {
  clientUsage,
  completionBase,
  disaggSpec,
  finishedAtPrefill,
  firstTokenOf,
  lmcacheDecodeBody,
  lmcachePrefillBody,
  lmcacheUnsupportedReason,
  promptTokenIds,
  requestedMaxTokens,
  tokenizeBody,
} from '../src/protocol/lmcache.js';

const registry = { receiverHost: '10.0.0.5', initPorts: [7300, 7301], allocPorts: [7400, 7401] };

describe('LMCache prefill body', () => {
  it('carries the token prompt, one unstreamed token and the disagg_spec of the chosen decoder', () => {
    const base = completionBase(
      {
        model: 'm',
        prompt: 'hi',
        max_tokens: 20,
        stream: true,
        stream_options: { include_usage: true },
        min_tokens: 3,
        temperature: 0,
      },
      'completions',
    );
    const body = lmcachePrefillBody(base, [1, 2, 3], disaggSpec('r1_abc', registry));
    expect(body).toEqual({
      model: 'm',
      temperature: 0,
      prompt: [1, 2, 3],
      max_tokens: 1,
      stream: false,
      kv_transfer_params: {
        ret_first_tok: true,
        disagg_spec: {
          req_id: 'r1_abc',
          receiver_host: '10.0.0.5',
          receiver_init_port: [7300, 7301],
          receiver_alloc_port: [7400, 7401],
        },
      },
    });
  });

  it('turns a chat request into a completions request (chat-only fields dropped, sampling kept)', () => {
    const chat = {
      model: 'm',
      messages: [{ role: 'user', content: 'hi' }],
      max_completion_tokens: 8,
      temperature: 0.5,
      stop: ['\n'],
      chat_template_kwargs: { enable_thinking: false },
      stream: true,
    };
    const base = completionBase(chat, 'chat');
    expect(base).toEqual({ model: 'm', temperature: 0.5, stop: ['\n'] });
    expect(requestedMaxTokens(chat, 'chat')).toBe(8);
    expect(requestedMaxTokens({ max_tokens: 4 }, 'chat')).toBe(4);
    expect(requestedMaxTokens({}, 'completions')).toBeUndefined();
  });
});

describe('LMCache tokenize body', () => {
  it('sends prompt for completions and messages with the generation prompt for chat', () => {
    expect(tokenizeBody({ model: 'm', prompt: 'hello' }, 'completions')).toEqual({
      model: 'm',
      prompt: 'hello',
    });
    expect(tokenizeBody({ model: 'm', prompt: ['only one'] }, 'completions')).toEqual({
      model: 'm',
      prompt: 'only one',
    });
    expect(
      tokenizeBody(
        { model: 'm', messages: [{ role: 'user', content: 'x' }], chat_template_kwargs: { a: 1 } },
        'chat',
      ),
    ).toEqual({
      model: 'm',
      messages: [{ role: 'user', content: 'x' }],
      add_generation_prompt: true,
      chat_template_kwargs: { a: 1 },
    });
  });

  it('skips tokenization for token-id prompts', () => {
    expect(promptTokenIds({ prompt: [5, 6, 7] }, 'completions')).toEqual([5, 6, 7]);
    expect(promptTokenIds({ prompt: 'text' }, 'completions')).toBeUndefined();
    expect(promptTokenIds({ messages: [] }, 'chat')).toBeUndefined();
  });
});

describe('LMCache decode body', () => {
  const base = { model: 'm', temperature: 0 };

  it('appends the first token and asks for one token less', () => {
    const body = lmcacheDecodeBody(base, [1, 2, 3], 42, {
      maxTokens: 10,
      minTokens: 4,
      stream: true,
      streamOptions: { include_usage: true },
    });
    expect(body).toEqual({
      model: 'm',
      temperature: 0,
      prompt: [1, 2, 3, 42],
      max_tokens: 9,
      min_tokens: 3,
      stream: true,
      stream_options: { include_usage: true },
    });
  });

  it('leaves max_tokens out when the client gave none (never 0 or -1)', () => {
    const body = lmcacheDecodeBody(base, [1], 2, {
      maxTokens: undefined,
      minTokens: undefined,
      stream: false,
      streamOptions: undefined,
    });
    expect('max_tokens' in body).toBe(false);
    expect('min_tokens' in body).toBe(false);
    expect('stream_options' in body).toBe(false);
    expect(body['prompt']).toEqual([1, 2]);
  });

  it('drops min_tokens of 1 (the first token already satisfied it)', () => {
    const body = lmcacheDecodeBody(base, [1], 2, {
      maxTokens: 5,
      minTokens: 1,
      stream: false,
      streamOptions: undefined,
    });
    expect('min_tokens' in body).toBe(false);
  });
});

describe('LMCache prefill reply', () => {
  it('yields first_tok, its text and finish reason', () => {
    const reply = {
      id: 'cmpl-7',
      created: 100,
      model: 'm',
      choices: [{ index: 0, text: ' The', finish_reason: 'length' }],
      kv_transfer_params: { first_tok: 791 },
    };
    const first = firstTokenOf(reply)!;
    expect(first).toMatchObject({
      id: 791,
      text: ' The',
      finishReason: 'length',
      responseId: 'cmpl-7',
      created: 100,
    });
    expect(finishedAtPrefill(first, 10)).toBe(false);
    expect(finishedAtPrefill(first, undefined)).toBe(false);
    expect(finishedAtPrefill(first, 1)).toBe(true);
    expect(finishedAtPrefill({ ...first, finishReason: 'stop' }, 10)).toBe(true);
    expect(firstTokenOf({ choices: [] })).toBeUndefined();
    expect(firstTokenOf({ kv_transfer_params: { first_tok: 'x' } })).toBeUndefined();
  });

  it('reports usage from the client view: its prompt, the prefill token counted as output', () => {
    expect(clientUsage({ prompt_tokens: 4, completion_tokens: 9, total_tokens: 13 }, 3)).toEqual({
      prompt_tokens: 3,
      completion_tokens: 10,
      total_tokens: 13,
    });
    expect(clientUsage(null, 3)).toBeNull();
  });

  it('names requests the protocol cannot carry (served direct instead)', () => {
    expect(lmcacheUnsupportedReason({ prompt: 'x', n: 2 }, 'completions')).toBe('n > 1');
    expect(lmcacheUnsupportedReason({ prompt: ['a', 'b'] }, 'completions')).toBe('batched prompts');
    expect(lmcacheUnsupportedReason({ prompt: 'x', echo: true }, 'completions')).toBe('echo');
    expect(
      lmcacheUnsupportedReason({ messages: [{ role: 'user', content: 'x' }], tools: [{}] }, 'chat'),
    ).toBe('tools');
    expect(lmcacheUnsupportedReason({ prompt: 'x' }, 'completions')).toBeUndefined();
    expect(lmcacheUnsupportedReason({ prompt: [1, 2] }, 'completions')).toBeUndefined();
    expect(lmcacheUnsupportedReason({ prompt: ['one'] }, 'completions')).toBeUndefined();
    expect(lmcacheUnsupportedReason({ messages: [{ role: 'user', content: 'x' }] }, 'chat')).toBeUndefined();
  });
});
