// Latency model: local prefill cost per token, inter-token latency slowed by concurrent local prefills,
// KV-transfer cost per token, and a max-num-seqs admission limit with a FIFO waiting queue.
import type { LatencySettings } from './config.js';

export function prefillMs(s: LatencySettings, tokens: number): number {
  return s.prefillMsPerToken * tokens;
}

export function kvTransferMs(s: LatencySettings, tokens: number): number {
  return s.kvTransferMsPerToken * tokens;
}

/** Decode step time while `runningPrefills` local prefills share the engine (why DPD helps). */
export function decodeStepMs(s: LatencySettings, runningPrefills: number): number {
  return s.itlMs * (1 + s.interferenceFactor * runningPrefills);
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (ms <= 0) return signal?.aborted ? Promise.reject(abortError()) : Promise.resolve();
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(abortError());
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(t);
      reject(abortError());
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

export function abortError(): Error {
  const e = new Error('aborted');
  e.name = 'AbortError';
  return e;
}

export interface SeqSlot {
  blocks: number;
  release(): void;
}

/** Admission control like vLLM's scheduler at request granularity: running <= maxNumSeqs, rest wait FIFO. */
export class Scheduler {
  private running = 0;
  private prefilling = 0;
  private usedBlocks = 0;
  private readonly waiters: Array<() => void> = [];
  private extraWaiting = 0;

  constructor(private readonly settings: () => LatencySettings) {}

  get numRunning(): number {
    return this.running;
  }
  get numWaiting(): number {
    return this.waiters.length + this.extraWaiting;
  }
  get numPrefilling(): number {
    return this.prefilling;
  }
  get blocksInUse(): number {
    return this.usedBlocks;
  }

  /** Counts a request as waiting while it does something outside a slot (e.g. waits for remote KV). */
  async whileWaiting<T>(fn: () => Promise<T>): Promise<T> {
    this.extraWaiting++;
    try {
      return await fn();
    } finally {
      this.extraWaiting--;
    }
  }

  async acquire(blocks: number, signal?: AbortSignal): Promise<SeqSlot> {
    if (this.running < this.settings().maxNumSeqs && this.waiters.length === 0) {
      this.running++;
    } else {
      // A releasing request hands its slot over directly (running stays counted), keeping FIFO order.
      await new Promise<void>((resolve, reject) => {
        const wake = (): void => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        };
        const onAbort = (): void => {
          const i = this.waiters.indexOf(wake);
          if (i >= 0) this.waiters.splice(i, 1);
          reject(abortError());
        };
        if (signal?.aborted) return reject(abortError());
        signal?.addEventListener('abort', onAbort, { once: true });
        this.waiters.push(wake);
      });
    }
    this.usedBlocks += blocks;
    let released = false;
    return {
      blocks,
      release: () => {
        if (released) return;
        released = true;
        this.usedBlocks -= blocks;
        const next = this.waiters.shift();
        if (next) next();
        else this.running--;
      },
    };
  }

  /** Runs a local prefill of `tokens`; decodes running meanwhile slow down (interference). */
  async prefill(tokens: number, signal?: AbortSignal): Promise<void> {
    const ms = prefillMs(this.settings(), tokens);
    if (ms <= 0) return;
    this.prefilling++;
    try {
      await sleep(ms, signal);
    } finally {
      this.prefilling--;
    }
  }

  async decodeStep(signal?: AbortSignal): Promise<void> {
    const ms = decodeStepMs(this.settings(), this.prefilling);
    if (ms > 0) await sleep(ms, signal);
  }
}
