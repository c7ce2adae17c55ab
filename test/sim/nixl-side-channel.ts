// Simulated NIXL: the prefiller holds KV "blocks" under a lease; the decoder pulls them over a side channel
// (JSON lines over TCP: a handshake naming the engine id, then a read by request id + block ids).
import net from 'node:net';
import { randomUUID } from 'node:crypto';
import { serveJsonLines, type Msg } from './json-lines.js';

export interface Lease {
  requestId: string;
  blockIds: number[];
  numTokens: number;
  promptHash: number;
  expiresAt: number;
}

/** The prefiller's held blocks: freed when pulled, or when the lease runs out (counted). */
export class LeaseStore {
  private readonly leases = new Map<string, { lease: Lease; timer: NodeJS.Timeout }>();
  private nextBlock = 1;
  private held = 0;

  constructor(
    private readonly leaseMs: number,
    private readonly blockSize: number,
    private readonly onExpired: (lease: Lease) => void,
  ) {}

  get heldBlocks(): number {
    return this.held;
  }

  create(numTokens: number, promptHash: number, requestIdHint: string): Lease {
    const nBlocks = Math.max(1, Math.ceil(numTokens / this.blockSize));
    const blockIds = Array.from({ length: nBlocks }, () => this.nextBlock++);
    const lease: Lease = {
      // vLLM's internal ids look like cmpl-<X-Request-Id>-<n>; unique per engine even if the header repeats.
      requestId: `cmpl-${requestIdHint}-${randomUUID().slice(0, 8)}`,
      blockIds,
      numTokens,
      promptHash,
      expiresAt: Date.now() + this.leaseMs,
    };
    const timer = setTimeout(() => {
      if (this.release(lease.requestId)) this.onExpired(lease);
    }, this.leaseMs);
    timer.unref();
    this.leases.set(lease.requestId, { lease, timer });
    this.held += nBlocks;
    return lease;
  }

  get(requestId: string): Lease | undefined {
    return this.leases.get(requestId)?.lease;
  }

  release(requestId: string): boolean {
    const entry = this.leases.get(requestId);
    if (!entry) return false;
    clearTimeout(entry.timer);
    this.leases.delete(requestId);
    this.held -= entry.lease.blockIds.length;
    return true;
  }

  clear(): void {
    for (const id of [...this.leases.keys()]) this.release(id);
  }
}

export interface ReadRequest {
  op: 'read';
  requestId: string;
  blockIds: number[];
  numTokens: number;
  promptHash: number;
}

type SideChannelMessage = { op: 'handshake' } | ReadRequest;

/** Checks a read against the held lease; returns the failure reason or null. Pure. */
export function checkRead(lease: Lease | undefined, req: ReadRequest): string | null {
  if (!lease) return `unknown or expired remote_request_id ${req.requestId}`;
  const same =
    lease.blockIds.length === req.blockIds.length && lease.blockIds.every((b, i) => b === req.blockIds[i]);
  if (!same) return `remote_block_ids ${JSON.stringify(req.blockIds)} do not match the held blocks`;
  if (lease.numTokens !== req.numTokens) {
    return `prompt has ${req.numTokens} tokens but the prefilled KV covers ${lease.numTokens}`;
  }
  if (lease.promptHash !== req.promptHash) return 'prompt tokens differ from the prefilled prompt';
  return null;
}

export interface SideChannelServer {
  port: number;
  close(): Promise<void>;
}

export function startSideChannel(opts: {
  host: string;
  port: number;
  engineId: string;
  tpSize: number;
  blockSize: number;
  leases: LeaseStore;
  onRead: (ok: boolean, reason: string | null) => void;
}): Promise<SideChannelServer> {
  const handle = (raw: Msg): Msg => {
    const msg = raw as unknown as SideChannelMessage;
    if (msg.op === 'handshake') {
      return { ok: true, engineId: opts.engineId, tpSize: opts.tpSize, blockSize: opts.blockSize };
    }
    if (msg.op === 'read') {
      const reason = checkRead(opts.leases.get(msg.requestId), msg);
      // Only a matching read frees the blocks; a bad one leaves them for the right decoder or the lease.
      if (!reason) opts.leases.release(msg.requestId);
      opts.onRead(reason === null, reason);
      return reason ? { ok: false, error: reason } : { ok: true, numTokens: msg.numTokens };
    }
    return { ok: false, error: 'unknown op' };
  };
  return serveJsonLines(opts.host, opts.port, handle);
}

export interface PullTarget {
  host: string;
  port: number;
  engineId: string;
  requestId: string;
  blockIds: number[];
  numTokens: number;
  promptHash: number;
}

/** Decoder side: handshake with the remote engine, then read the blocks. Throws with the reason on failure. */
export function pullBlocks(t: PullTarget, timeoutMs = 5000): Promise<void> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: t.host, port: t.port });
    let buf = '';
    let stage: 'handshake' | 'read' = 'handshake';
    const fail = (msg: string): void => {
      sock.destroy();
      reject(new Error(msg));
    };
    sock.setTimeout(timeoutMs, () => fail(`NIXL side channel ${t.host}:${t.port} timed out`));
    sock.on('error', (e) => fail(`NIXL side channel ${t.host}:${t.port} unreachable: ${e.message}`));
    sock.on('connect', () => sock.write(JSON.stringify({ op: 'handshake' }) + '\n'));
    sock.on('data', (chunk) => {
      buf += chunk.toString('utf8');
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      let reply: { ok: boolean; error?: string; engineId?: string };
      try {
        reply = JSON.parse(buf.slice(0, nl)) as typeof reply;
      } catch {
        return fail(`${t.host}:${t.port} is not a NIXL side channel`);
      }
      buf = buf.slice(nl + 1);
      if (!reply.ok) return fail(`NIXL read failed: ${reply.error ?? 'unknown error'}`);
      if (stage === 'handshake') {
        if (reply.engineId !== t.engineId) {
          return fail(
            `remote engine id mismatch: expected ${t.engineId}, side channel has ${reply.engineId}`,
          );
        }
        stage = 'read';
        const read: ReadRequest = {
          op: 'read',
          requestId: t.requestId,
          blockIds: t.blockIds,
          numTokens: t.numTokens,
          promptHash: t.promptHash,
        };
        sock.write(JSON.stringify(read) + '\n');
      } else {
        sock.end();
        resolve();
      }
    });
    sock.on('close', () => reject(new Error('NIXL side channel closed early')));
  });
}
