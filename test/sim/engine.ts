// The simulated engine: decides the leg of a request, moves KV the way the connector would (NIXL pull,
// LMCache push/lookup), schedules it through the latency model and generates its tokens.
import { randomUUID } from 'node:crypto';
import winston from 'winston';
import type { SimConfig } from './config.js';
import { FaultInjector } from './faults.js';
import { classifyLeg, type DisaggSpec, type Leg } from './kv-params.js';
import { kvTransferMs, Scheduler, sleep } from './latency-model.js';
import { KvBuffer, ProxyNotifier, pushKv, startReceiver, type Receiver } from './lmcache-pd.js';
import { createMetrics, type SimMetrics } from './metrics.js';
import { LeaseStore, pullBlocks, startSideChannel, type SideChannelServer } from './nixl-side-channel.js';
import type { ParsedRequest } from './openai-request.js';
import { RequestError } from './openai-request.js';
import type { Finish } from './openai-format.js';
import { RequestLog, type SimRequest } from './requests-log.js';
import { contextHash, OutputGenerator } from './tokenizer.js';

export interface TokenSink {
  /**
   * Called for each generated token, in order, with `finish` on the last one; resolves when the
   * consumer can take more.
   */
  token(text: string, index: number, finish: Finish | null): Promise<void>;
}

export interface RunResult {
  text: string;
  outputTokens: number;
  finish: Finish;
  kvTransferParams: Record<string, unknown> | null;
}

export interface RunContext {
  requestId: string;
  signal: AbortSignal;
  entry: SimRequest;
}

export class SimEngine {
  readonly engineId = randomUUID();
  readonly scheduler: Scheduler;
  readonly metrics: SimMetrics;
  readonly log = new RequestLog();
  readonly faults: FaultInjector;
  readonly logger: winston.Logger;
  private readonly leases: LeaseStore;
  private readonly kvBuffer: KvBuffer;
  private readonly notifier = new ProxyNotifier();
  private sideChannel: SideChannelServer | null = null;
  private receiver: Receiver | null = null;
  private readonly startedAt = Date.now();

  constructor(readonly cfg: SimConfig) {
    this.logger = winston.createLogger({
      level: cfg.logLevel,
      format: winston.format.json(),
      defaultMeta: { component: 'engine-sim', port: cfg.port },
      transports: [new winston.transports.Console({ stderrLevels: Object.keys(winston.config.npm.levels) })],
    });
    this.scheduler = new Scheduler(() => cfg.latency);
    this.faults = new FaultInjector(cfg.faults);
    this.metrics = createMetrics(cfg.model, {
      running: () => this.scheduler.numRunning,
      waiting: () => this.scheduler.numWaiting,
      kvCacheUsage: () =>
        Math.min(1, (this.scheduler.blocksInUse + this.leases.heldBlocks) / this.cfg.numGpuBlocks),
    });
    this.leases = new LeaseStore(cfg.nixl.kvLeaseMs, cfg.blockSize, (lease) => {
      this.metrics.nixlLeasesExpired.inc();
      this.logger.info('nixl lease expired', { remoteRequestId: lease.requestId });
    });
    this.kvBuffer = new KvBuffer(cfg.tpSize, cfg.nixl.kvLeaseMs);
  }

  get ready(): boolean {
    return Date.now() - this.startedAt >= this.cfg.startupMs;
  }

  get nixlSideChannelPort(): number | null {
    return this.sideChannel?.port ?? null;
  }

  get lmcachePorts(): { init: number[]; alloc: number[] } {
    return { init: this.receiver?.initPorts ?? [], alloc: this.receiver?.allocPorts ?? [] };
  }

  /** Opens the connector listeners: the NIXL side channel, or the LMCache receiver ports. */
  async start(): Promise<void> {
    const c = this.cfg;
    if (c.connector === 'nixl') {
      // The listener binds the engine's own address; what it advertises (remote_host) is the side-channel host.
      this.sideChannel = await startSideChannel({
        host: c.host,
        port: c.nixl.sideChannelPort,
        engineId: this.engineId,
        tpSize: c.tpSize,
        blockSize: c.blockSize,
        leases: this.leases,
        onRead: (ok) => this.metrics.nixlServed.inc({ result: ok ? 'ok' : 'rejected' }),
      });
    }
    if (c.connector === 'lmcache' && c.role !== 'prefill' && c.lmcache.initPorts.length > 0) {
      this.receiver = await startReceiver({
        host: c.lmcache.peerHost,
        initPorts: c.lmcache.initPorts,
        allocPorts: c.lmcache.allocPorts,
        buffer: this.kvBuffer,
        onReceived: () => this.metrics.lmcacheReceived.inc(),
      });
    }
  }

  async close(): Promise<void> {
    this.leases.clear();
    this.kvBuffer.clear();
    this.notifier.close();
    await this.sideChannel?.close();
    await this.receiver?.close();
  }

  reset(): void {
    this.log.clear();
    this.faults.reset();
    this.leases.clear();
    this.kvBuffer.clear();
    this.metrics.registry.resetMetrics();
  }

  /** Decides the leg and rejects what vLLM (or this engine's role) would reject, before any work. */
  classify(req: ParsedRequest): Leg {
    const leg = classifyLeg(this.cfg.connector, req.kvTransferParams);
    const role = this.cfg.role;
    if (leg.kind === 'invalid') throw new RequestError(400, leg.reason);
    if ((leg.kind === 'nixl-prefill' || leg.kind === 'lmcache-prefill') && role === 'decode') {
      throw new RequestError(400, 'this engine runs with --role decode and serves no prefill legs');
    }
    if (leg.kind === 'nixl-decode' && role === 'prefill') {
      throw new RequestError(400, 'this engine runs with --role prefill and serves no decode legs');
    }
    if (leg.kind === 'nixl-prefill' && req.stream) {
      throw new RequestError(400, 'Prefill does not support streaming (kv_transfer_params.do_remote_decode)');
    }
    return leg;
  }

  async run(req: ParsedRequest, leg: Leg, ctx: RunContext, sink: TokenSink): Promise<RunResult> {
    const { entry, signal } = ctx;
    const prompt = req.promptTokens;
    let localPrefillTokens = prompt.length;
    entry.leg = 'direct';
    entry.kvSource = 'local';

    if (leg.kind === 'nixl-decode') {
      entry.leg = 'decode';
      const r = leg.remote;
      try {
        await this.scheduler.whileWaiting(async () => {
          await pullBlocks({
            host: r.host,
            port: r.port,
            engineId: r.engineId,
            requestId: r.requestId,
            blockIds: r.blockIds,
            numTokens: prompt.length,
            promptHash: contextHash(prompt),
          });
          await sleep(kvTransferMs(this.cfg.latency, prompt.length), signal);
        });
      } catch (e) {
        if ((e as Error).name === 'AbortError') throw e;
        this.metrics.nixlPulls.inc({ result: 'failed' });
        // kv_load_failure_policy=fail: the request errors instead of recomputing.
        throw new RequestError(
          500,
          `KV transfer failed (kv_load_failure_policy=fail): ${(e as Error).message}`,
        );
      }
      this.metrics.nixlPulls.inc({ result: 'ok' });
      entry.kvSource = 'nixl';
      localPrefillTokens = 1;
    } else if (leg.kind === 'nixl-decode-local') {
      entry.leg = 'decode';
      this.metrics.nixlInvalidParams.inc();
      this.logger.warn('Got invalid KVTransferParams; prefilling locally', { reason: leg.reason });
    } else if (leg.kind === 'nixl-prefill' || leg.kind === 'lmcache-prefill') {
      entry.leg = 'prefill';
      if (leg.kind === 'lmcache-prefill') entry.lmcacheReqId = leg.spec.req_id;
    } else if (this.cfg.connector === 'lmcache' && this.cfg.role !== 'prefill' && req.kind === 'completion') {
      // LMCache decoders look up the prompt minus its last token (the prefiller's first token).
      if (prompt.length > 1 && this.kvBuffer.take(prompt.slice(0, -1))) {
        this.metrics.lmcacheHits.inc();
        entry.leg = 'decode';
        entry.kvSource = 'lmcache';
        localPrefillTokens = 1;
      } else if (req.promptIsTokenIds) {
        this.metrics.lmcacheRecomputes.inc();
        entry.leg = 'decode';
        this.logger.info('lmcache KV absent; recomputing locally', { requestId: ctx.requestId });
      }
    }

    const blocks = Math.ceil((prompt.length + req.maxTokens) / this.cfg.blockSize);
    const slot = await this.scheduler.acquire(blocks, signal);
    let text = '';
    const generated: number[] = [];
    let finish: Finish = { reason: 'length', stopReason: null };
    try {
      await this.scheduler.prefill(localPrefillTokens, signal);
      this.metrics.addPromptTokens(
        prompt.length,
        entry.kvSource === 'local' ? 'local_compute' : 'external_kv_transfer',
      );
      const gen = new OutputGenerator(prompt);
      for (let i = 0; i < req.maxTokens; i++) {
        if (i > 0) await this.scheduler.decodeStep(signal);
        if (signal.aborted) throw Object.assign(new Error('aborted'), { name: 'AbortError' });
        const tok = gen.next();
        generated.push(tok.id);
        this.metrics.addGenerationTokens(1);
        const stopped = findStop(text, tok.text, req.stop);
        if (stopped) {
          // vLLM: the output ends before the stop string, which is reported as stop_reason
          finish = { reason: 'stop', stopReason: stopped.stop };
          text += stopped.kept;
          await sink.token(stopped.kept, i, finish);
          break;
        }
        text += tok.text;
        await sink.token(tok.text, i, i === req.maxTokens - 1 ? finish : null);
      }
    } finally {
      slot.release();
    }

    let kvTransferParams: Record<string, unknown> | null = null;
    if (leg.kind === 'nixl-prefill') {
      const lease = this.leases.create(prompt.length, contextHash(prompt), ctx.requestId);
      this.metrics.nixlLeasesCreated.inc();
      // vLLM 0.32's answer, key for key; returned even when the one token was a stop
      kvTransferParams = {
        do_remote_prefill: true,
        do_remote_decode: false,
        remote_block_ids: [lease.blockIds], // one list per KV-cache group
        remote_engine_id: this.engineId,
        remote_request_id: lease.requestId,
        remote_host: this.cfg.nixl.sideChannelHost,
        remote_port: this.sideChannel!.port,
        tp_size: this.cfg.tpSize,
        dcp_size: 1,
        pp_size: 1,
        remote_num_tokens: prompt.length,
        remote_blocks_expiry_time: null,
        transfer_mode: 'pull',
        remote_prefill_cached_tokens: 0,
      };
    } else if (leg.kind === 'lmcache-prefill') {
      const transfer = (): Promise<void> => this.pushAndNotify(leg.spec, prompt);
      if (this.cfg.lmcache.notifyDelayMs > 0) {
        setTimeout(() => {
          transfer().catch((e: Error) =>
            this.logger.warn('delayed lmcache push failed', { error: e.message }),
          );
        }, this.cfg.lmcache.notifyDelayMs).unref();
      } else {
        await transfer();
      }
      if (leg.retFirstTok) kvTransferParams = { first_tok: generated[0] };
    }
    this.metrics.requestFinished(finish.reason);
    return { text, outputTokens: generated.length, finish, kvTransferParams };
  }

  /** LMCache sender: KV into every receiver rank, then one ProxyNotif per rank to the proxy. */
  private async pushAndNotify(spec: DisaggSpec, prompt: number[]): Promise<void> {
    const { proxyHost, proxyPort } = this.cfg.lmcache;
    if (!proxyHost || !proxyPort) {
      throw new RequestError(
        500,
        'LMCache sender has no pd_proxy_host/pd_proxy_port (--lmcache-proxy-host/-port)',
      );
    }
    try {
      await sleep(kvTransferMs(this.cfg.latency, prompt.length));
      await pushKv(spec.receiver_host, spec.receiver_init_port, spec.receiver_alloc_port, prompt);
      this.metrics.lmcachePushes.inc({ result: 'ok' });
    } catch (e) {
      this.metrics.lmcachePushes.inc({ result: 'failed' });
      throw new RequestError(500, `LMCache KV push failed: ${(e as Error).message}`);
    }
    const ranks = spec.receiver_init_port.length;
    try {
      await this.notifier.notify(proxyHost, proxyPort, spec.req_id, ranks);
      this.metrics.lmcacheNotifications.inc(ranks);
    } catch (e) {
      throw new RequestError(500, `LMCache notification failed: ${(e as Error).message}`);
    }
  }
}

/** Where the first stop string shows up once `next` is appended: the part of `next` kept before it. */
export function findStop(
  before: string,
  next: string,
  stops: readonly string[],
): { kept: string; stop: string } | null {
  if (stops.length === 0) return null;
  const all = before + next;
  let best: { at: number; stop: string } | null = null;
  for (const stop of stops) {
    const at = all.indexOf(stop, Math.max(0, before.length - stop.length + 1));
    if (at >= 0 && (best === null || at < best.at)) best = { at, stop };
  }
  if (best === null) return null;
  return { kept: all.slice(before.length, Math.max(before.length, best.at)), stop: best.stop };
}
