// Scrapes each engine's Prometheus /metrics for its queue (running + waiting), the slow half of
// least_loaded. Only endpoints of least_loaded clusters are scraped.
import { request } from 'undici';
import type { Logger } from '../logger.js';

const RUNNING = 'vllm:num_requests_running';
const WAITING = 'vllm:num_requests_waiting';

/** running + waiting summed over all label sets; undefined when the text has neither metric. */
export function parseEngineLoad(promText: string): number | undefined {
  let seen = false;
  let total = 0;
  for (const line of promText.split('\n')) {
    if (!line.startsWith(RUNNING) && !line.startsWith(WAITING)) continue;
    const name = line.startsWith(RUNNING) ? RUNNING : WAITING;
    const next = line.charAt(name.length);
    if (next !== '{' && next !== ' ') continue; // e.g. vllm:num_requests_running_total is another metric
    const value = Number(line.slice(line.lastIndexOf(' ') + 1));
    if (Number.isFinite(value)) {
      total += value;
      seen = true;
    }
  }
  return seen ? total : undefined;
}

export interface EngineStatsOptions {
  intervalMs: number;
  logger: Logger;
  onScrapeError?: (url: string) => void;
  onScrape?: (url: string, load: number) => void;
}

export class EngineStatsScraper {
  private readonly stats = new Map<string, { load: number; at: number }>();
  private targets: string[] = [];
  private timer: NodeJS.Timeout | undefined;
  private running = false;

  constructor(private readonly opts: EngineStatsOptions) {}

  /** Replaces the scrape targets (engine base URLs); stats of dropped targets are forgotten. */
  setTargets(urls: readonly string[]): void {
    this.targets = [...new Set(urls)];
    for (const url of this.stats.keys()) if (!this.targets.includes(url)) this.stats.delete(url);
    if (this.timer && this.targets.length > 0) void this.scrapeAll();
  }

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.scrapeAll(), this.opts.intervalMs);
    this.timer.unref();
    void this.scrapeAll();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Last scraped load, or undefined when never scraped or older than three intervals. */
  get(url: string): number | undefined {
    const s = this.stats.get(url);
    if (!s || Date.now() - s.at > 3 * this.opts.intervalMs) return undefined;
    return s.load;
  }

  /** Test and benchmark hook: sets a load as if it had just been scraped. */
  set(url: string, load: number): void {
    this.stats.set(url, { load, at: Date.now() });
  }

  async scrapeAll(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      await Promise.all(this.targets.map((url) => this.scrapeOne(url)));
    } finally {
      this.running = false;
    }
  }

  private async scrapeOne(url: string): Promise<void> {
    const timeout = Math.min(this.opts.intervalMs, 5_000);
    try {
      const res = await request(new URL('metrics', withSlash(url)), {
        headersTimeout: timeout,
        bodyTimeout: timeout,
      });
      const text = await res.body.text();
      if (res.statusCode !== 200) throw new Error(`status ${res.statusCode}`);
      const load = parseEngineLoad(text);
      if (load === undefined) throw new Error('no vllm:num_requests_running/waiting in /metrics');
      if (this.targets.includes(url)) {
        this.stats.set(url, { load, at: Date.now() });
        this.opts.onScrape?.(url, load);
      }
    } catch (err) {
      this.opts.onScrapeError?.(url);
      this.opts.logger.debug('engine stats scrape failed', { url, error: (err as Error).message });
    }
  }
}

function withSlash(url: string): string {
  return url.endsWith('/') ? url : `${url}/`;
}
