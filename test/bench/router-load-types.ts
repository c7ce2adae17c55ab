// Messages between the benchmark and its load-generator process.

export type LoadJob =
  | {
      kind: 'rate';
      /** Base URLs; requests go round-robin over them. */
      targets: string[];
      path: string;
      body: string;
      stream: boolean;
      rate: number;
      warmupMs: number;
      durationMs: number;
      /** Keep-alive connections per target. */
      connections: number;
    }
  | {
      kind: 'closed';
      targets: string[];
      path: string;
      body: string;
      concurrency: number;
      warmupMs: number;
      durationMs: number;
    }
  | { kind: 'stall'; target: string; path: string; body: string; count: number };

export interface LoadResult {
  completed: number;
  /** Failed requests by kind (`http_502`, `ECONNRESET`, ...). */
  errors: Record<string, number>;
  windowMs: number;
  /** From each request's scheduled send time to its last byte. */
  latenciesMs: number[];
  /** From the actual send to the last byte. */
  serviceMs: number[];
  /** Streams: from the scheduled send time to the first body byte. */
  ttftMs: number[];
  /** How late the generator sent each request (its own health). */
  scheduleLagMs: number[];
  /** CPU the generator used for this job. */
  cpuSeconds: number;
}

export interface StallReport {
  started: number;
  failed: number;
  firstStatus: string;
}

export type WorkerMessage = { type: 'job'; job: LoadJob } | { type: 'release' };

export type WorkerReply =
  | { type: 'ready' }
  | { type: 'result'; result: LoadResult }
  | { type: 'stalled'; report: StallReport }
  | { type: 'released'; count: number }
  | { type: 'error'; message: string };
