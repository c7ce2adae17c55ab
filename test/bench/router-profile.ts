// Reads a V8 .cpuprofile (node --cpu-prof) and lists where the CPU went: self time per function
// and per package. `node --import tsx test/bench/router-profile.ts FILE` prints both.
import { readdir, stat } from 'node:fs/promises';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  hitCount?: number;
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  samples?: number[];
  timeDeltas?: number[];
}

export interface HotSpot {
  functionName: string;
  /** repo-relative file:line (for TypeScript sources, the line of the declaration when it can be found). */
  where: string;
  /** Package or area: `router/src`, `express`, `undici`, `(garbage collector)`, `node:internal`, ... */
  area: string;
  selfPct: number;
  samples: number;
  /** Time with this function anywhere on the stack (router/src functions only). */
  inclusivePct?: number;
}

const IGNORED = new Set(['(idle)', '(root)']);

export async function newestProfile(dir: string): Promise<string> {
  const files = (await readdir(dir)).filter((f) => f.endsWith('.cpuprofile'));
  if (files.length === 0) throw new Error(`no .cpuprofile in ${dir}`);
  const withTimes = await Promise.all(
    files.map(async (f) => ({ f, t: (await stat(path.join(dir, f))).mtimeMs })),
  );
  withTimes.sort((a, b) => b.t - a.t);
  return path.join(dir, withTimes[0]!.f);
}

function areaOf(url: string, fn: string): string {
  if (!url) return fn.startsWith('(') ? fn : '(native)';
  if (url.startsWith('node:')) return 'node:internal';
  const nm = url.lastIndexOf('/node_modules/');
  if (nm >= 0) {
    const rest = url.slice(nm + '/node_modules/'.length).split('/');
    return rest[0]!.startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]!;
  }
  const m = /\/(router\/src|test\/[^/]+)\//.exec(url);
  return m ? m[1]! : url;
}

const sourceCache = new Map<string, string[] | undefined>();

/** file:line of a function, preferring its declaration in the TypeScript source (tsx shifts lines). */
function locate(url: string, fn: string, generatedLine: number, repoRoot: string): string {
  if (!url) return '';
  const file = url.startsWith('file://') ? fileURLToPath(url) : url;
  const rel = file.startsWith(repoRoot) ? path.relative(repoRoot, file) : file;
  if (file.endsWith('.ts') && fn && !fn.startsWith('(')) {
    if (!sourceCache.has(file)) {
      sourceCache.set(file, existsSync(file) ? readFileSync(file, 'utf8').split('\n') : undefined);
    }
    const lines = sourceCache.get(file);
    const name = fn
      .replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
      .split('.')
      .at(-1)!;
    const decl = new RegExp(
      `(function\\*?\\s+${name}\\b|\\b${name}\\s*(<[^>]*>)?\\(|\\b${name}\\s*=|\\b${name}\\s*:\\s*(async\\s*)?\\()`,
    );
    const idx = lines?.findIndex((l) => decl.test(l) && !/^\s*(\/\/|\*)/.test(l)) ?? -1;
    if (idx >= 0) return `${rel}:${idx + 1}`;
    return `${rel}:~${generatedLine + 1}`;
  }
  return `${rel}:${generatedLine + 1}`;
}

/**
 * Self time per function. `fromUs` (a CLOCK_MONOTONIC time in microseconds, as
 * process.hrtime.bigint() / 1000n gives) drops the samples taken before it, e.g. start-up; `toUs`
 * the ones after it.
 */
export function hotSpots(
  file: string,
  repoRoot: string,
  opts: { fromUs?: number; toUs?: number } = {},
): HotSpot[] {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const counts = new Map<number, number>();
  if (profile.samples?.length && profile.timeDeltas?.length) {
    let t = profile.startTime;
    const kept = profile.samples.filter((_, i) => {
      t += profile.timeDeltas![i]!;
      return t >= (opts.fromUs ?? 0) && t <= (opts.toUs ?? Infinity);
    });
    // A clock mismatch must not silently empty the profile.
    for (const id of kept.length > 0 ? kept : profile.samples) counts.set(id, (counts.get(id) ?? 0) + 1);
  } else {
    for (const n of profile.nodes) counts.set(n.id, n.hitCount ?? 0);
  }
  const byKey = new Map<string, HotSpot>();
  const keyOf = new Map<number, string>();
  const spotOf = (n: ProfileNode): HotSpot => {
    let key = keyOf.get(n.id);
    if (key === undefined) {
      const fn = n.callFrame.functionName || '(anonymous)';
      const where = locate(n.callFrame.url, fn, n.callFrame.lineNumber, repoRoot);
      key = `${fn}|${where}`;
      keyOf.set(n.id, key);
      if (!byKey.has(key)) {
        byKey.set(key, {
          functionName: fn,
          where,
          area: areaOf(n.callFrame.url, fn),
          selfPct: 0,
          samples: 0,
        });
      }
    }
    return byKey.get(key)!;
  };
  const inclusive = new Map<string, number>();
  let total = 0;
  for (const [id, c] of counts) {
    const n = nodes.get(id)!;
    const fn = n.callFrame.functionName || '(anonymous)';
    if (c === 0 || IGNORED.has(fn)) continue;
    total += c;
    spotOf(n).samples += c;
    // Inclusive time of the router's own functions: count each once per stack.
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const frame = nodes.get(cur)!;
      if (!frame.callFrame.url.includes('/router/src/')) continue;
      const s = spotOf(frame);
      const k = `${s.functionName}|${s.where}`;
      if (seen.has(k)) continue;
      seen.add(k);
      inclusive.set(k, (inclusive.get(k) ?? 0) + c);
    }
  }
  const spots = [...byKey.values()];
  for (const s of spots) {
    s.selfPct = (100 * s.samples) / Math.max(1, total);
    const inc = inclusive.get(`${s.functionName}|${s.where}`);
    if (inc !== undefined) s.inclusivePct = (100 * inc) / Math.max(1, total);
  }
  return spots.sort((a, b) => b.samples - a.samples);
}

/** The router's own functions by inclusive time. */
export function routerInclusive(spots: HotSpot[]): HotSpot[] {
  return spots
    .filter((s) => s.inclusivePct !== undefined)
    .sort((a, b) => (b.inclusivePct ?? 0) - (a.inclusivePct ?? 0));
}

interface SamplingNode {
  callFrame: CallFrame;
  selfSize: number;
  children: SamplingNode[];
}

export interface AllocationSite {
  functionName: string;
  where: string;
  area: string;
  /** Bytes allocated here per request (sampled; garbage included). */
  bytesPerRequest: number;
}

/** Allocation sites of a V8 sampling heap profile (HeapProfiler.stopSampling), per request. */
export function allocationSites(
  head: SamplingNode,
  requests: number,
  repoRoot: string,
): { bytesPerRequest: number; sites: AllocationSite[] } {
  const sites = new Map<string, AllocationSite>();
  let total = 0;
  const walk = (n: SamplingNode): void => {
    if (n.selfSize > 0) {
      const fn = n.callFrame.functionName || '(anonymous)';
      const where = locate(n.callFrame.url, fn, n.callFrame.lineNumber, repoRoot);
      const key = `${fn}|${where}`;
      const site = sites.get(key) ?? {
        functionName: fn,
        where,
        area: areaOf(n.callFrame.url, fn),
        bytesPerRequest: 0,
      };
      site.bytesPerRequest += n.selfSize / Math.max(1, requests);
      sites.set(key, site);
      total += n.selfSize;
    }
    for (const c of n.children) walk(c);
  };
  walk(head);
  return {
    bytesPerRequest: total / Math.max(1, requests),
    sites: [...sites.values()].sort((a, b) => b.bytesPerRequest - a.bytesPerRequest),
  };
}

/** Self time per area, largest first. */
export function byArea(spots: HotSpot[]): Array<{ area: string; selfPct: number }> {
  const m = new Map<string, number>();
  for (const s of spots) m.set(s.area, (m.get(s.area) ?? 0) + s.selfPct);
  return [...m.entries()].map(([area, selfPct]) => ({ area, selfPct })).sort((a, b) => b.selfPct - a.selfPct);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const file = process.argv[2];
  if (!file) {
    process.stderr.write(
      'usage: node --import tsx test/bench/router-profile.ts FILE.cpuprofile [N] [FROM_US]\n',
    );
    process.exit(2);
  }
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
  const spots = hotSpots(file, root, process.argv[4] ? { fromUs: Number(process.argv[4]) } : {});
  const n = Number(process.argv[3] ?? 40);
  process.stdout.write('self %  area                    function @ where\n');
  for (const s of spots.slice(0, n)) {
    process.stdout.write(
      `${s.selfPct.toFixed(1).padStart(6)}  ${s.area.padEnd(22)}  ${s.functionName} @ ${s.where}\n`,
    );
  }
  process.stdout.write('\nrouter/src functions by inclusive time:\n');
  for (const s of routerInclusive(spots).slice(0, n)) {
    process.stdout.write(`${(s.inclusivePct ?? 0).toFixed(1).padStart(6)}  ${s.functionName} @ ${s.where}\n`);
  }
  process.stdout.write('\nby area:\n');
  for (const a of byArea(spots)) process.stdout.write(`${a.selfPct.toFixed(1).padStart(6)}  ${a.area}\n`);
}
