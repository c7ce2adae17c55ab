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

interface Sample {
  latencyMs: number;
  serviceMs: number;
  ttftMs: number | undefined;
}

/** Sends one request and resolves with its timings, or with an error kind. */
async function oneRequest(
  pool: Pool,
  path: string,
  body: string,
  scheduledAt: number,
  stream: boolean,
): Promise<Sample | { error: string }> {
  const sentAt = performance.now();
  try {
    const res = await pool.request({
      method: 'POST',
      path,
      headers: { 'content-type': 'application/json' },
      body,
    });
    let firstAt: number | undefined;
    for await (const chunk of res.body) {
      // The first body chunk of a stream is the role chunk or the first token (both mean "started").
      if (firstAt === undefined && (chunk as Buffer).length > 0) firstAt = performance.now();
    }
    const end = performance.now();
    if (res.statusCode !== 200) return { error: `http_${res.statusCode}` };
    return {
      latencyMs: end - scheduledAt,
      serviceMs: end - sentAt,
      ttftMs: stream && firstAt !== undefined ? firstAt - scheduledAt : undefined,
    };
  } catch (err) {
    return { error: (err as { code?: string }).code ?? (err as Error).name };
  }
}

function collect(results: Array<Sample | { error: string }>, windowMs: number, lagMs: number[]): LoadResult {
  const latencies: number[] = [];
  const service: number[] = [];
  const ttft: number[] = [];
  const errors: Record<string, number> = {};
  for (const r of results) {
    if ('error' in r) {
      errors[r.error] = (errors[r.error] ?? 0) + 1;
      continue;
    }
    latencies.push(r.latencyMs);
    service.push(r.serviceMs);
    if (r.ttftMs !== undefined) ttft.push(r.ttftMs);
  }
  return {
    completed: latencies.length,
    errors,
    windowMs,
    latenciesMs: latencies,
    serviceMs: service,
    ttftMs: ttft,
    scheduleLagMs: lagMs,
    cpuSeconds: 0,
  };
}

async function runRate(job: Extract<LoadJob, { kind: 'rate' }>): Promise<LoadResult> {
  const pools = job.targets.map((t) => poolFor(new URL(t).origin, job.connections));
  const interval = 1000 / job.rate;
  const total = Math.round(((job.warmupMs + job.durationMs) * job.rate) / 1000);
  const warmupCount = Math.round((job.warmupMs * job.rate) / 1000);
  const measured: Array<Promise<Sample | { error: string }>> = [];
  const lag: number[] = [];
  const warm: Array<Promise<unknown>> = [];
  const start = performance.now() + 5;
  let sent = 0;
  await new Promise<void>((resolve) => {
    const tick = (): void => {
      const now = performance.now();
      while (sent < total && start + sent * interval <= now) {
        const scheduledAt = start + sent * interval;
        const p = oneRequest(pools[sent % pools.length]!, job.path, job.body, scheduledAt, job.stream);
        if (sent >= warmupCount) {
          measured.push(p);
          lag.push(now - scheduledAt);
        } else warm.push(p);
        sent++;
      }
      if (sent >= total) resolve();
      else setTimeout(tick, Math.max(0, Math.min(1, start + sent * interval - performance.now())));
    };
    tick();
  });
  await Promise.all(warm);
  const results = await Promise.all(measured);
  return collect(results, job.durationMs, lag);
}

async function runClosed(job: Extract<LoadJob, { kind: 'closed' }>): Promise<LoadResult> {
  const pools = job.targets.map((t) => poolFor(new URL(t).origin, job.concurrency));
  const begin = performance.now();
  const measureFrom = begin + job.warmupMs;
  const end = measureFrom + job.durationMs;
  const results: Array<Sample | { error: string }> = [];
  let n = 0;
  const worker = async (): Promise<void> => {
    for (;;) {
      const at = performance.now();
      if (at >= end) return;
      const r = await oneRequest(pools[n++ % pools.length]!, job.path, job.body, at, false);
      // Count only requests that both started and finished inside the measured window.
      if (at >= measureFrom && performance.now() <= end) results.push(r);
    }
  };
  await Promise.all(Array.from({ length: job.concurrency }, worker));
  return collect(results, job.durationMs, []);
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
