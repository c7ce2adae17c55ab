// Simulated LMCache PD: the sender pushes "KV" (keyed by the prompt's token ids) into the receiver's buffer
// (AllocRequest on the alloc port, data on the init port, one pair per TP rank), then sends one msgpack
// ProxyNotif per rank over ZeroMQ PUSH to the proxy, as LMCache's pd_backend does.
import net from 'node:net';
import { randomUUID } from 'node:crypto';
import * as zmq from 'zeromq';
import { encode } from '@msgpack/msgpack';
import { contextHash } from './tokenizer.js';
import { serveJsonLines, type Listener, type Msg } from './json-lines.js';

export function kvKey(tokens: readonly number[]): string {
  return `${tokens.length}:${contextHash(tokens).toString(16)}`;
}

/** The receiver's PD buffer: which TP ranks have received the KV of a token prefix. */
export class KvBuffer {
  private readonly entries = new Map<string, { ranks: Set<number>; timer: NodeJS.Timeout }>();

  constructor(
    private readonly tpSize: number,
    private readonly ttlMs: number,
  ) {}

  get size(): number {
    return this.entries.size;
  }

  receive(key: string, rank: number): void {
    let e = this.entries.get(key);
    if (!e) {
      const timer = setTimeout(() => this.entries.delete(key), this.ttlMs);
      timer.unref();
      e = { ranks: new Set(), timer };
      this.entries.set(key, e);
    }
    e.ranks.add(rank);
  }

  /** True (and frees the entry) when every TP rank of this engine has the KV for `tokens`. */
  take(tokens: readonly number[]): boolean {
    const key = kvKey(tokens);
    const e = this.entries.get(key);
    if (!e || e.ranks.size < this.tpSize) return false;
    clearTimeout(e.timer);
    this.entries.delete(key);
    return true;
  }

  clear(): void {
    for (const e of this.entries.values()) clearTimeout(e.timer);
    this.entries.clear();
  }
}

export interface Receiver {
  initPorts: number[];
  allocPorts: number[];
  close(): Promise<void>;
}

/** Listens on one init and one alloc port per TP rank. */
export async function startReceiver(opts: {
  host: string;
  initPorts: number[];
  allocPorts: number[];
  buffer: KvBuffer;
  onReceived: () => void;
}): Promise<Receiver> {
  const allocations = new Map<string, { key: string; rank: number }>();
  const servers: Listener[] = [];
  const initPorts: number[] = [];
  const allocPorts: number[] = [];
  for (let rank = 0; rank < opts.initPorts.length; rank++) {
    const alloc = await serveJsonLines(opts.host, opts.allocPorts[rank]!, (m) => {
      if (m.type !== 'AllocRequest')
        return { ok: false, error: `alloc port of rank ${rank} got ${String(m.type)}` };
      if (m.rank !== rank)
        return { ok: false, error: `alloc port of rank ${rank} got rank ${String(m.rank)}` };
      const allocId = randomUUID();
      allocations.set(allocId, { key: String(m.key), rank });
      return { ok: true, type: 'AllocResponse', allocId };
    });
    const init = await serveJsonLines(opts.host, opts.initPorts[rank]!, (m) => {
      if (m.type !== 'KVData') return { ok: false, error: `init port of rank ${rank} got ${String(m.type)}` };
      const a = allocations.get(String(m.allocId));
      if (!a || a.rank !== rank) return { ok: false, error: 'KV data without a matching allocation' };
      allocations.delete(String(m.allocId));
      opts.buffer.receive(a.key, rank);
      opts.onReceived();
      return { ok: true };
    });
    servers.push(alloc, init);
    allocPorts.push(alloc.port);
    initPorts.push(init.port);
  }
  return {
    initPorts,
    allocPorts,
    close: async () => {
      await Promise.all(servers.map((s) => s.close()));
    },
  };
}

function requestReply(host: string, port: number, msg: Msg, timeoutMs: number): Promise<Msg> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host, port });
    let buf = '';
    const fail = (why: string): void => {
      sock.destroy();
      reject(new Error(why));
    };
    sock.setTimeout(timeoutMs, () => fail(`LMCache receiver ${host}:${port} timed out`));
    sock.on('error', (e) => fail(`LMCache receiver ${host}:${port} unreachable: ${e.message}`));
    sock.on('connect', () => sock.write(JSON.stringify(msg) + '\n'));
    sock.on('data', (chunk) => {
      buf += chunk.toString('utf8');
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      sock.end();
      try {
        resolve(JSON.parse(buf.slice(0, nl)) as Msg);
      } catch {
        fail(`${host}:${port} is not an LMCache receiver port`);
      }
    });
    sock.on('close', () => reject(new Error(`LMCache receiver ${host}:${port} closed early`)));
  });
}

/** Sender side: allocate on the alloc port, then write the KV on the init port, for every receiver rank. */
export async function pushKv(
  host: string,
  initPorts: number[],
  allocPorts: number[],
  tokens: readonly number[],
  timeoutMs = 5000,
): Promise<void> {
  const key = kvKey(tokens);
  await Promise.all(
    initPorts.map(async (initPort, rank) => {
      const alloc = await requestReply(
        host,
        allocPorts[rank]!,
        { type: 'AllocRequest', key, rank, numTokens: tokens.length },
        timeoutMs,
      );
      if (!alloc.ok) throw new Error(`LMCache alloc failed: ${String(alloc.error)}`);
      const data = await requestReply(
        host,
        initPort,
        { type: 'KVData', allocId: alloc.allocId, rank },
        timeoutMs,
      );
      if (!data.ok) throw new Error(`LMCache KV write failed: ${String(data.error)}`);
    }),
  );
}

/** One PUSH socket per TP rank towards the proxy's PULL endpoint, like each LMCache worker has. */
export class ProxyNotifier {
  private readonly sockets = new Map<string, zmq.Push[]>();

  private socketsFor(address: string, ranks: number): zmq.Push[] {
    let list = this.sockets.get(address);
    if (!list) {
      list = [];
      this.sockets.set(address, list);
    }
    while (list.length < ranks) {
      const s = new zmq.Push({ sendTimeout: 5000, linger: 0 });
      s.connect(address);
      list.push(s);
    }
    return list;
  }

  /** Sends msgpack {"type":"ProxyNotif","req_id":...} (msgspec's tagged-struct encoding) once per rank. */
  async notify(host: string, port: number, reqId: string, ranks: number): Promise<void> {
    const sockets = this.socketsFor(`tcp://${host}:${port}`, ranks);
    const payload = encode({ type: 'ProxyNotif', req_id: reqId });
    await Promise.all(sockets.slice(0, ranks).map((s) => s.send(payload)));
  }

  close(): void {
    for (const list of this.sockets.values()) for (const s of list) s.close();
    this.sockets.clear();
  }
}
