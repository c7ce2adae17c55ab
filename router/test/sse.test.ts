import { describe, expect, it } from '@jest/globals';
import { SseEventSplitter, endOfLastEvent, eventPayloads } from '../src/protocol/sse.js';

describe('SSE event splitting', () => {
  it('forwards whole events only and keeps a partial one back', () => {
    const s = new SseEventSplitter();
    expect(s.push(Buffer.from('data: {"a":1}\n\ndata: {"b"')).toString()).toBe('data: {"a":1}\n\n');
    expect(s.hasPartial).toBe(true);
    expect(s.push(Buffer.from(':2}\n\n')).toString()).toBe('data: {"b":2}\n\n');
    expect(s.hasPartial).toBe(false);
    expect(s.push(Buffer.from('data: [DONE]\n\n')).toString()).toBe('data: [DONE]\n\n');
  });

  it('finds CRLF terminators and extracts payloads', () => {
    expect(endOfLastEvent(Buffer.from('data: x\r\n\r\nda'))).toBe(11);
    expect(endOfLastEvent(Buffer.from('data: x'))).toBe(0);
    expect(eventPayloads(Buffer.from('data: {"a":1}\n\n: comment\n\ndata:[DONE]\n\n'))).toEqual([
      '{"a":1}',
      '[DONE]',
    ]);
  });
});
