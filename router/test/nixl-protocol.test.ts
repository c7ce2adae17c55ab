import { describe, expect, it } from '@jest/globals';
import { isLoopbackHost, nixlDecodeBody, nixlPrefillBody } from '../src/protocol/nixl.js';

const client = {
  model: 'llama',
  prompt: 'hello world',
  stream: true,
  stream_options: { include_usage: true },
  max_tokens: 50,
  min_tokens: 10,
  min_completion_tokens: 5,
  temperature: 0.2,
  kv_transfer_params: { do_remote_prefill: true, remote_host: 'evil.example', remote_port: 1 },
};

const prefillReply = {
  id: 'cmpl-1',
  choices: [{ index: 0, text: 'x', finish_reason: 'length' }],
  kv_transfer_params: {
    do_remote_prefill: true,
    do_remote_decode: false,
    remote_block_ids: [[1, 2, 3]],
    remote_engine_id: 'engine-abc',
    remote_request_id: 'req-9',
    remote_host: '10.1.2.3',
    remote_port: 5600,
    tp_size: 2,
  },
};

describe('NIXL prefill body', () => {
  it('is the client body computing one unstreamed token with fresh do_remote_decode params', () => {
    const body = nixlPrefillBody(client);
    expect(body).toEqual({
      model: 'llama',
      prompt: 'hello world',
      stream: false,
      max_tokens: 1,
      temperature: 0.2,
      kv_transfer_params: {
        do_remote_decode: true,
        do_remote_prefill: false,
        remote_engine_id: null,
        remote_block_ids: null,
        remote_host: null,
        remote_port: null,
      },
    });
    // The client's own body is not modified.
    expect(client.stream).toBe(true);
  });

  it('sets max_completion_tokens to 1 only when the client sent it, and sets max_tokens even when absent', () => {
    expect(nixlPrefillBody({ messages: [], max_completion_tokens: 99 })).toMatchObject({
      max_tokens: 1,
      max_completion_tokens: 1,
    });
    const b = nixlPrefillBody({ prompt: 'p' });
    expect(b['max_tokens']).toBe(1);
    expect('max_completion_tokens' in b).toBe(false);
  });
});

describe('NIXL decode body', () => {
  it('is the original client body plus the prefiller params verbatim; client params stripped', () => {
    const { body, kvParams, rewroteHost } = nixlDecodeBody(client, prefillReply, 'http://10.1.2.3:8100');
    const { kv_transfer_params: _ignored, ...rest } = client;
    expect(body).toEqual({ ...rest, kv_transfer_params: prefillReply.kv_transfer_params });
    expect(kvParams).toBe('forwarded');
    expect(rewroteHost).toBeUndefined();
  });

  it('keeps an absent max_tokens absent (never 0 or -1)', () => {
    const { body } = nixlDecodeBody({ prompt: 'p', stream: false }, prefillReply, 'http://10.1.2.3:8100');
    expect('max_tokens' in body).toBe(false);
    expect('max_completion_tokens' in body).toBe(false);
  });

  it('replaces a loopback remote_host by the prefill endpoint host', () => {
    for (const loopback of ['localhost', '127.0.0.1', '::1']) {
      const reply = {
        ...prefillReply,
        kv_transfer_params: { ...prefillReply.kv_transfer_params, remote_host: loopback },
      };
      const { body, rewroteHost } = nixlDecodeBody(client, reply, 'http://10.9.8.7:8000');
      expect((body['kv_transfer_params'] as Record<string, unknown>)['remote_host']).toBe('10.9.8.7');
      expect((body['kv_transfer_params'] as Record<string, unknown>)['remote_port']).toBe(5600);
      expect(rewroteHost).toEqual({ from: loopback, to: '10.9.8.7' });
    }
    const v6 = nixlDecodeBody(
      client,
      { kv_transfer_params: { remote_host: 'localhost' } },
      'http://[fd00::5]:8000',
    ).body['kv_transfer_params'] as Record<string, unknown>;
    expect(v6['remote_host']).toBe('fd00::5');
  });

  it('sends the decode without params when the prefiller returned none (local prefill)', () => {
    const { body, kvParams } = nixlDecodeBody(client, { id: 'x', choices: [] }, 'http://10.1.2.3:8100');
    expect(kvParams).toBe('missing');
    expect('kv_transfer_params' in body).toBe(false);
    expect(body['stream']).toBe(true);
  });

  it('recognises loopback hosts', () => {
    expect(isLoopbackHost('localhost')).toBe(true);
    expect(isLoopbackHost('127.0.0.9')).toBe(true);
    expect(isLoopbackHost('[::1]')).toBe(true);
    expect(isLoopbackHost('10.0.0.1')).toBe(false);
    expect(isLoopbackHost('prefill-0.svc')).toBe(false);
  });
});
