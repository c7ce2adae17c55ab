// The benchmark's load generator, run as its own process (forked with IPC) so that it never
// shares an event loop with the router or the engines. One job per message, one result back.
//   rate:   open loop at a fixed request rate; latency counts from each request's scheduled send
//           time, so a stalled server cannot hide queueing (no coordinated omission).
//   closed: N workers send back to back for a while (maximum throughput).
//   stall:  opens N streaming requests on raw sockets, reads until the first event, then stops
//           reading until told to release them.
import net from 'node:net';
import { Pool } from 'undici';
import type { LoadJob, LoadResult, StallReport, WorkerMessage } from './router-load-types.js';

const pools = new Map<string, Pool>();
function poolFor(origin: string, connections: number): Pool {
  const key = `${origin}|${connections}`;
  let pool = pools.get(key);
  if (!pool) {
    pool = new Pool(origin, { connections, pipelining: 1, keepAliveTimeout: 30_000 });
    pools.set(key, pool);
  }
  return pool;
}

/** What one request measured; written into typed arrays, so no object per request outlives it. */
type Done = (error: string | undefined, sentAt: number, firstAt: number, endAt: number) => void;

const JSON_HEADERS = { 'content-type': 'application/json' };

/**
 * Sends one request with undici's dispatch API and calls `done` once with its timings. A handler
 * object is the only allocation per request: no Promise, no body stream, no async iterator, since
 * whatever the generator keeps alive across its own scavenges turns into stalls in every phase.
 */
function send(pool: Pool, path: string, body: Buffer, done: Done): void {
  const sentAt = performance.now();
  let status = 0;
  let firstAt = 0;
  let finished = false;
  const finish = (error: string | undefined): void => {
    if (finished) return;
    finished = true;
    done(error, sentAt, firstAt, performance.now());
  };
  pool.dispatch(
    { method: 'POST', path, headers: JSON_HEADERS, body },
    {
      onRequestStart: () => undefined,
      onResponseStart: (_c, statusCode) => {
        status = statusCode;
      },
      onResponseData: (_c, chunk) => {
        // The first body chunk of a stream is the role chunk or the first token (both mean "started").
        if (firstAt === 0 && chunk.length > 0) firstAt = performance.now();
      },
      onResponseEnd: () => finish(status === 200 ? undefined : `http_${status}`),
      onResponseError: (_c, err) => finish((err as { code?: string }).code ?? err.name),
    },
  );
}

/** Per-request timings of one job, by send order. */
class Recorder {
  readonly latency: Float64Array;
  readonly service: Float64Array;
  readonly ttft: Float64Array;
  readonly lag: Float64Array;
  readonly ok: Uint8Array;
  /** Error kind by request index (errors are rare; a warm-up error is not reported). */
  private readonly errorAt = new Map<number, string>();
  private pending = 0;
  private idle: (() => void) | undefined;

  constructor(size: number) {
    this.latency = new Float64Array(size);
    this.service = new Float64Array(size);
    this.ttft = new Float64Array(size).fill(Number.NaN);
    this.lag = new Float64Array(size);
    this.ok = new Uint8Array(size);
  }

  /** Sends request `i` (scheduled at `scheduledAt`) and records it when it ends. */
  send(
    pool: Pool,
    job: { path: string; stream: boolean },
    body: Buffer,
    i: number,
    scheduledAt: number,
  ): void {
    this.pending++;
    send(pool, job.path, body, (error, sentAt, firstAt, endAt) => {
      if (error) this.errorAt.set(i, error);
      else {
        this.ok[i] = 1;
        this.latency[i] = endAt - scheduledAt;
        this.service[i] = endAt - sentAt;
        if (job.stream && firstAt > 0) this.ttft[i] = firstAt - scheduledAt;
      }
      if (--this.pending === 0) this.idle?.();
    });
  }

  /** Resolves when every request sent so far has ended. */
  drained(): Promise<void> {
    if (this.pending === 0) return Promise.resolve();
    return new Promise((resolve) => (this.idle = resolve));
  }

  /** The result of requests `from` (inclusive) to `to` (exclusive). */
  result(from: number, to: number, windowMs: number): LoadResult {
    const latencies: number[] = [];
    const service: number[] = [];
    const ttft: number[] = [];
    const lag: number[] = [];
    const errors: Record<string, number> = {};
    for (const [i, kind] of this.errorAt) if (i >= from && i < to) errors[kind] = (errors[kind] ?? 0) + 1;
    for (let i = from; i < to; i++) {
      lag.push(this.lag[i]!);
      if (!this.ok[i]) continue;
      latencies.push(this.latency[i]!);
      service.push(this.service[i]!);
      if (!Number.isNaN(this.ttft[i]!)) ttft.push(this.ttft[i]!);
    }
    return {
      completed: latencies.length,
      errors,
      windowMs,
      latenciesMs: latencies,
      serviceMs: service,
      ttftMs: ttft,
      scheduleLagMs: lag,
      cpuSeconds: 0,
    };
  }
}

async function runRate(job: Extract<LoadJob, { kind: 'rate' }>): Promise<LoadResult> {
  const pools = job.targets.map((t) => poolFor(new URL(t).origin, job.connections));
  const body = Buffer.from(job.body);
  const interval = 1000 / job.rate;
  const total = Math.round(((job.warmupMs + job.durationMs) * job.rate) / 1000);
  const warmupCount = Math.round((job.warmupMs * job.rate) / 1000);
  const rec = new Recorder(total);
  const start = performance.now() + 5;
  let sent = 0;
  await new Promise<void>((resolve) => {
    const tick = (): void => {
      const now = performance.now();
      while (sent < total && start + sent * interval <= now) {
        const scheduledAt = start + sent * interval;
        rec.lag[sent] = now - scheduledAt;
        rec.send(pools[sent % pools.length]!, job, body, sent, scheduledAt);
        sent++;
      }
      if (sent >= total) resolve();
      else setTimeout(tick, Math.max(0, Math.min(1, start + sent * interval - performance.now())));
    };
    tick();
  });
  await rec.drained();
  // Warm-up requests are sent and awaited, but neither counted nor reported.
  return rec.result(warmupCount, total, job.durationMs);
}

async function runClosed(job: Extract<LoadJob, { kind: 'closed' }>): Promise<LoadResult> {
  const pools = job.targets.map((t) => poolFor(new URL(t).origin, job.concurrency));
  const body = Buffer.from(job.body);
  const begin = performance.now();
  const measureFrom = begin + job.warmupMs;
  const end = measureFrom + job.durationMs;
  const latencies: number[] = [];
  const errors: Record<string, number> = {};
  let n = 0;
  await new Promise<void>((resolve) => {
    let running = job.concurrency;
    const next = (): void => {
      const at = performance.now();
      if (at >= end) {
        if (--running === 0) resolve();
        return;
      }
      send(pools[n++ % pools.length]!, job.path, body, (error, _sentAt, _firstAt, endAt) => {
        // Count only requests that both started and finished inside the measured window.
        if (at >= measureFrom && endAt <= end) {
          if (error) errors[error] = (errors[error] ?? 0) + 1;
          else latencies.push(endAt - at);
        }
        next();
      });
    };
    for (let i = 0; i < job.concurrency; i++) next();
  });
  return {
    completed: latencies.length,
    errors,
    windowMs: job.durationMs,
    latenciesMs: latencies,
    serviceMs: latencies,
    ttftMs: [],
    scheduleLagMs: [],
    cpuSeconds: 0,
  };
}

const stalled: net.Socket[] = [];

async function runStall(job: Extract<LoadJob, { kind: 'stall' }>): Promise<StallReport> {
  const url = new URL(job.target);
  const request =
    `POST ${job.path} HTTP/1.1\r\nhost: ${url.host}\r\ncontent-type: application/json\r\n` +
    `content-length: ${Buffer.byteLength(job.body)}\r\n\r\n${job.body}`;
  let started = 0;
  let failed = 0;
  let firstStatus = '';
  const open = (): Promise<void> =>
    new Promise((resolve) => {
      const socket = net.connect(Number(url.port), url.hostname);
      stalled.push(socket);
      let done = false;
      const finish = (ok: boolean): void => {
        if (done) return;
        done = true;
        if (ok) started++;
        else failed++;
        resolve();
      };
      socket.once('connect', () => socket.write(request));
      socket.once('data', (chunk: Buffer) => {
        firstStatus ||= chunk.toString('latin1').split('\r\n')[0] ?? '';
        // Stop reading: from here on the kernel buffers fill and then the router must hold back.
        socket.pause();
        finish(chunk.toString('latin1').startsWith('HTTP/1.1 200'));
      });
      socket.once('error', () => finish(false));
      socket.once('close', () => finish(false));
    });
  // Open in batches so the listen backlog never overflows.
  for (let i = 0; i < job.count; i += 100) {
    await Promise.all(Array.from({ length: Math.min(100, job.count - i) }, open));
  }
  return { started, failed, firstStatus };
}

function releaseStalled(): number {
  const n = stalled.length;
  for (const s of stalled.splice(0)) s.destroy();
  return n;
}

process.on('message', (msg: WorkerMessage) => {
  void (async () => {
    try {
      if (msg.type === 'release') {
        process.send!({ type: 'released', count: releaseStalled() });
        return;
      }
      const before = process.cpuUsage();
      const job = msg.job;
      if (job.kind === 'stall') {
        process.send!({ type: 'stalled', report: await runStall(job) });
        return;
      }
      const result = job.kind === 'rate' ? await runRate(job) : await runClosed(job);
      const used = process.cpuUsage(before);
      result.cpuSeconds = (used.user + used.system) / 1e6;
      process.send!({ type: 'result', result });
    } catch (err) {
      process.send!({ type: 'error', message: (err as Error).stack ?? String(err) });
    }
  })();
});

process.on('disconnect', () => {
  releaseStalled();
  process.exit(0);
});
process.send!({ type: 'ready' });
