// Machine-wide claims on second octets of 127.0.0.0/8: every loopback node takes one (its pod CIDR
// is 127.N.0.0/16), so clusters running at the same time (parallel jest workers, a cluster kept up
// with the CLI) never hand out the same pod IP. A claim is a file holding the owner's pid; claims
// of dead owners are taken over.
import {
  mkdirSync,
  readdirSync,
  readFileSync,
  rmdirSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isAlive } from './processes.js';

export const DEFAULT_CLAIMS_DIR = join(tmpdir(), 'disagg-loopback-octets');
const FIRST = 1;
const LAST = 254;
const STALE_LOCK_MS = 10_000;

function withLock<T>(dir: string, fn: () => T): T {
  const lock = join(dir, '.lock');
  const deadline = Date.now() + 15_000;
  for (;;) {
    try {
      mkdirSync(lock); // atomic: one holder at a time
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      try {
        // a holder that died mid-claim leaves the lock behind; the critical section takes ms
        if (Date.now() - statSync(lock).mtimeMs > STALE_LOCK_MS) rmdirSync(lock);
      } catch {
        // removed meanwhile
      }
      if (Date.now() > deadline) throw new Error(`could not lock ${lock}`);
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20); // sync sleep 20 ms
    }
  }
  try {
    return fn();
  } finally {
    rmdirSync(lock);
  }
}

function ownerOf(file: string): number {
  try {
    return Number(readFileSync(file, 'utf8').trim());
  } catch {
    return 0;
  }
}

/** Claims `count` free second octets for process `owner`. */
export function claimOctets(count: number, owner = process.pid, dir = DEFAULT_CLAIMS_DIR): number[] {
  mkdirSync(dir, { recursive: true });
  return withLock(dir, () => {
    const got: number[] = [];
    for (let octet = FIRST; octet <= LAST && got.length < count; octet++) {
      const file = join(dir, String(octet));
      const holder = ownerOf(file);
      if (holder > 0 && isAlive(holder)) continue;
      writeFileSync(file, String(owner));
      got.push(octet);
    }
    if (got.length < count) {
      got.forEach((o) => unlinkSync(join(dir, String(o))));
      throw new Error(`only ${got.length} of ${count} loopback /16s free (claims in ${dir})`);
    }
    return got;
  });
}

/** Gives back the claims `owner` holds on these octets. */
export function releaseOctets(octets: number[], owner = process.pid, dir = DEFAULT_CLAIMS_DIR): void {
  withLock(dir, () => {
    for (const o of octets) {
      const file = join(dir, String(o));
      if (ownerOf(file) === owner) unlinkSync(file);
    }
  });
}

/** Octets currently claimed by live owners (for status output and tests). */
export function claimedOctets(dir = DEFAULT_CLAIMS_DIR): Map<number, number> {
  const out = new Map<number, number>();
  let names: string[] = [];
  try {
    names = readdirSync(dir);
  } catch {
    return out;
  }
  for (const n of names) {
    const pid = ownerOf(join(dir, n));
    if (/^\d+$/.test(n) && pid > 0 && isAlive(pid)) out.set(Number(n), pid);
  }
  return out;
}
