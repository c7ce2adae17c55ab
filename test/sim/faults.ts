// Failure injection: error rate (spread deterministically, so tests need no luck), hang, drop/stall mid-stream.
import type { FaultSettings } from './config.js';

export type FaultDecision = { kind: 'none' } | { kind: 'fail'; status: number } | { kind: 'hang' };

/** Decides the fault for the n-th request (0-based): exactly floor(n * rate) of the first n fail. */
export function decideFault(f: FaultSettings, n: number): FaultDecision {
  if (f.hang) return { kind: 'hang' };
  const rate = Math.min(1, Math.max(0, f.failRate));
  if (rate > 0 && Math.floor((n + 1) * rate) > Math.floor(n * rate))
    return { kind: 'fail', status: f.failStatus };
  return { kind: 'none' };
}

export class FaultInjector {
  private settings: FaultSettings;
  private count = 0;

  constructor(private readonly defaults: FaultSettings) {
    this.settings = { ...defaults };
  }

  get current(): FaultSettings {
    return this.settings;
  }

  /** Merges a partial update (from POST /sim/faults); returns an error message for bad input. */
  update(patch: Record<string, unknown>): string | null {
    const next = { ...this.settings };
    for (const [k, v] of Object.entries(patch)) {
      switch (k) {
        case 'failRate':
          if (typeof v !== 'number' || v < 0 || v > 1) return 'failRate must be a number in [0,1]';
          next.failRate = v;
          break;
        case 'failStatus':
          if (!Number.isInteger(v) || (v as number) < 100 || (v as number) > 599)
            return 'failStatus must be 100..599';
          next.failStatus = v as number;
          break;
        case 'hang':
          if (typeof v !== 'boolean') return 'hang must be a boolean';
          next.hang = v;
          break;
        case 'dropAfterChunks':
        case 'stallAfterChunks':
          if (v !== null && (!Number.isInteger(v) || (v as number) < 0))
            return `${k} must be null or an integer >= 0`;
          next[k] = v as number | null;
          break;
        default:
          return `unknown fault knob ${k}`;
      }
    }
    this.settings = next;
    this.count = 0;
    return null;
  }

  reset(): void {
    this.settings = { ...this.defaults };
    this.count = 0;
  }

  next(): FaultDecision {
    return decideFault(this.settings, this.count++);
  }
}
