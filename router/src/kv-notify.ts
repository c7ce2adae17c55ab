// LMCache KV-ready notifications. A prefiller's LMCache PD backend pushes, per TP rank, a msgpack
// `ProxyNotif` (msgspec tagged struct -> map {"type":"ProxyNotif","req_id":"..."}) over ZeroMQ
// PUSH to the proxy's PULL socket (LMCache lmcache/v1/storage_backend/pd_backend.py). req_ids
// are `<replicaId>_<uuid>`, so a notification that lands on the wrong router replica is
// forwarded to the replica that owns it.
import { decode, encode } from '@msgpack/msgpack';
import * as zmq from 'zeromq';
import type { RouterPeer } from './config/index.js';
import { RouterError } from './errors.js';
import type { Logger } from './logger.js';
import type { RouterMetrics } from './metrics.js';
import { isJsonObject } from './protocol/json.js';

/** Replica ids may not contain `_`: the first `_` of a req_id ends the owner. */
export function sanitizeReplicaId(raw: string): string {
  const id = raw.replace(/[^a-zA-Z0-9-]/g, '-').replace(/^-+|-+$/g, '');
  return id.length > 0 ? id.slice(0, 63) : 'router';
}

export function makeReqId(replicaId: string, uuid: string): string {
  return `${replicaId}_${uuid}`;
}

export function ownerOf(reqId: string): string | undefined {
  const i = reqId.indexOf('_');
  return i > 0 ? reqId.slice(0, i) : undefined;
}

/** The wire form LMCache sends (used by tests and the simulator's counterpart). */
export function encodeProxyNotif(reqId: string): Uint8Array {
  return encode({ type: 'ProxyNotif', req_id: reqId });
}

/** req_id of a ProxyNotif message, or undefined for anything else. */
export function parseProxyNotif(frame: Uint8Array): string | undefined {
  let msg: unknown;
  try {
    msg = decode(frame);
  } catch {
    return undefined;
  }
  if (!isJsonObject(msg) || msg['type'] !== 'ProxyNotif' || typeof msg['req_id'] !== 'string')
    return undefined;
  return msg['req_id'];
}

export interface KvWaiter {
  /** Resolves when all expected notifications arrived; rejects with KV_READY_TIMEOUT or on abort. */
  wait(timeoutMs: number, signal: AbortSignal): Promise<void>;
  cancel(): void;
}

interface Pending {
  expected: number;
  received: number;
  done: () => void;
}

interface Peer {
  address: string;
  socket: zmq.Push;
  queue: Promise<void>;
}

export interface KvNotifyOptions {
  replicaId: string;
  host: string;
  /** 0 picks a free port. */
  port: number;
  logger: Logger;
  metrics: RouterMetrics;
}

export class KvNotifyHub {
  private readonly pull = new zmq.Pull({ linger: 0 });
  private readonly pending = new Map<string, Pending>();
  private readonly peers = new Map<string, Peer>();
  private loop: Promise<void> | undefined;
  private closed = false;
  port = 0;

  constructor(private readonly opts: KvNotifyOptions) {}

  async start(): Promise<number> {
    const host = this.opts.host === '0.0.0.0' ? '*' : this.opts.host;
    await this.pull.bind(`tcp://${host}:${this.opts.port === 0 ? '*' : this.opts.port}`);
    const last = this.pull.lastEndpoint ?? '';
    this.port = Number(last.slice(last.lastIndexOf(':') + 1));
    this.loop = this.receive();
    return this.port;
  }

  /** Registers interest in `count` notifications for reqId; call before sending the prefill. */
  expect(reqId: string, count: number): KvWaiter {
    let resolveDone!: () => void;
    const arrived = new Promise<void>((r) => (resolveDone = r));
    const entry: Pending = { expected: count, received: 0, done: resolveDone };
    this.pending.set(reqId, entry);
    const cancel = (): void => {
      if (this.pending.get(reqId) === entry) this.pending.delete(reqId);
    };
    return {
      cancel,
      wait: (timeoutMs, signal) => {
        if (entry.received >= entry.expected) {
          cancel();
          return Promise.resolve();
        }
        return new Promise<void>((resolve, reject) => {
          const cleanup = (): void => {
            clearTimeout(timer);
            signal.removeEventListener('abort', onAbort);
            cancel();
          };
          const timer = setTimeout(() => {
            cleanup();
            reject(
              new RouterError(
                'KV_READY_TIMEOUT',
                `LMCache KV-ready notification for ${reqId}: got ${entry.received} of ${entry.expected} within ${timeoutMs} ms`,
              ),
            );
          }, timeoutMs);
          const onAbort = (): void => {
            cleanup();
            reject(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
          };
          if (signal.aborted) return onAbort();
          signal.addEventListener('abort', onAbort, { once: true });
          void arrived.then(() => {
            cleanup();
            resolve();
          });
        });
      },
    };
  }

  /** Replaces the peer set; sockets to removed peers close. */
  setPeers(peers: readonly RouterPeer[]): void {
    const wanted = new Map(
      peers.filter((p) => p.id !== this.opts.replicaId).map((p) => [p.id, p.notifyAddress]),
    );
    for (const [id, peer] of this.peers) {
      if (wanted.get(id) !== peer.address) {
        peer.socket.close();
        this.peers.delete(id);
      }
    }
    for (const [id, address] of wanted) {
      if (this.peers.has(id)) continue;
      // A peer that is down must not block the receive loop: sends give up after a while.
      const socket = new zmq.Push({ linger: 0, sendTimeout: 2_000, sendHighWaterMark: 10_000 });
      socket.connect(address);
      this.peers.set(id, { address, socket, queue: Promise.resolve() });
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    this.pull.close();
    for (const p of this.peers.values()) p.socket.close();
    this.peers.clear();
    await this.loop?.catch(() => undefined);
  }

  private async receive(): Promise<void> {
    try {
      for await (const [frame] of this.pull) {
        if (frame) this.handle(frame);
      }
    } catch (err) {
      if (!this.closed)
        this.opts.logger.error('kv notification socket failed', { error: (err as Error).message });
    }
  }

  private handle(frame: Buffer): void {
    const count = (outcome: string): void => this.opts.metrics.kvNotifications.inc({ outcome });
    const reqId = parseProxyNotif(frame);
    if (reqId === undefined) {
      count('malformed');
      this.opts.logger.warn('kv notification is not a msgpack ProxyNotif; dropped', { bytes: frame.length });
      return;
    }
    const owner = ownerOf(reqId);
    if (owner === this.opts.replicaId) {
      const p = this.pending.get(reqId);
      if (!p) {
        count('unmatched');
        this.opts.logger.debug('kv notification for no waiting request (late or cancelled)', { reqId });
        return;
      }
      count('delivered');
      p.received++;
      if (p.received >= p.expected) p.done();
      return;
    }
    const peer = owner === undefined ? undefined : this.peers.get(owner);
    if (!peer) {
      count('unknown_owner');
      this.opts.logger.warn('kv notification for an unknown router replica; dropped', { reqId, owner });
      return;
    }
    peer.queue = peer.queue
      .then(() => peer.socket.send(frame))
      .then(
        () => count('forwarded'),
        (err: Error) => {
          count('forward_failed');
          this.opts.logger.warn('kv notification forward failed', { reqId, peer: owner, error: err.message });
        },
      );
  }
}
