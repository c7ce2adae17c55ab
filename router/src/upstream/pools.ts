// One pooled keep-alive undici Pool per engine origin (and connect timeout). A pool that leaves
// the config is closed only once no leg holds it, so requests started on the old config finish.
import { Pool } from 'undici';

/** Idle keep-alive sockets are kept this long; engines (uvicorn) close idle ones after ~5 s. */
const KEEP_ALIVE_MS = 4_000;

interface Entry {
  pool: Pool;
  origin: string;
  leases: number;
  retired: boolean;
}

export interface PoolLease {
  pool: Pool;
  release(): void;
}

export class UpstreamPools {
  private readonly entries = new Map<string, Entry>();

  lease(origin: string, connectMs: number): PoolLease {
    const key = `${origin}|${connectMs}`;
    let entry = this.entries.get(key);
    if (!entry) {
      entry = {
        pool: new Pool(origin, {
          connect: { timeout: connectMs },
          keepAliveTimeout: KEEP_ALIVE_MS,
          keepAliveMaxTimeout: KEEP_ALIVE_MS,
          pipelining: 1,
        }),
        origin,
        leases: 0,
        retired: false,
      };
      this.entries.set(key, entry);
    }
    entry.retired = false;
    entry.leases++;
    const e = entry;
    let released = false;
    return {
      pool: e.pool,
      release: () => {
        if (released) return;
        released = true;
        e.leases--;
        if (e.retired && e.leases === 0) this.drop(key, e);
      },
    };
  }

  /** Retires pools whose origin is not in `origins`; each closes once its last lease is released. */
  retainOnly(origins: ReadonlySet<string>): void {
    for (const [key, e] of this.entries) {
      if (origins.has(e.origin)) continue;
      e.retired = true;
      if (e.leases === 0) this.drop(key, e);
    }
  }

  async close(): Promise<void> {
    const pools = [...this.entries.values()].map((e) => e.pool);
    this.entries.clear();
    await Promise.all(pools.map((p) => p.destroy().catch(() => undefined)));
  }

  private drop(key: string, e: Entry): void {
    if (this.entries.get(key) === e) this.entries.delete(key);
    void e.pool.close().catch(() => undefined);
  }
}
