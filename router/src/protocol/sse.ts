// Server-sent events as engines write them: events separated by a blank line, payload on
// `data:` lines, the stream closed by `data: [DONE]`.

const LF = 0x0a;
const CR = 0x0d;

/**
 * Cuts a byte stream at event boundaries so the router only ever forwards whole events: if the
 * upstream dies mid-event, the client never sees half an event before the error event.
 */
export class SseEventSplitter {
  private pending: Buffer | undefined;

  /** Returns the bytes of all events completed by `chunk` (possibly empty); keeps the rest. */
  push(chunk: Buffer): Buffer {
    const buf = this.pending ? Buffer.concat([this.pending, chunk]) : chunk;
    const end = endOfLastEvent(buf);
    if (end === buf.length) {
      this.pending = undefined;
      return buf;
    }
    this.pending = buf.subarray(end);
    return buf.subarray(0, end);
  }

  /** Bytes of an unfinished event are waiting. */
  get hasPartial(): boolean {
    return this.pending !== undefined && this.pending.length > 0;
  }
}

/** Index just past the last event terminator (LF LF or LF CR LF), or 0 when there is none. */
export function endOfLastEvent(buf: Buffer): number {
  for (let i = buf.length - 1; i > 0; i--) {
    if (buf[i] !== LF) continue;
    if (buf[i - 1] === LF) return i + 1;
    if (buf[i - 1] === CR && i >= 2 && buf[i - 2] === LF) return i + 1;
  }
  return 0;
}

/** Splits complete event bytes into the `data` payload of each event (events without data are skipped). */
export function eventPayloads(events: Buffer): string[] {
  const out: string[] = [];
  for (const block of events.toString('utf8').split(/\r?\n\r?\n/)) {
    const data: string[] = [];
    for (const line of block.split(/\r?\n/)) {
      if (line.startsWith('data:')) data.push(line.slice(line.charAt(5) === ' ' ? 6 : 5));
    }
    if (data.length > 0) out.push(data.join('\n'));
  }
  return out;
}

export function sseEvent(payload: unknown): string {
  return `data: ${typeof payload === 'string' ? payload : JSON.stringify(payload)}\n\n`;
}

export const SSE_DONE = 'data: [DONE]\n\n';
