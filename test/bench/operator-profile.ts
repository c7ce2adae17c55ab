// Hot spots of a V8 CPU profile (node --cpu-prof) of the operator: self and inclusive time per
// function, positions mapped back to the TypeScript sources through the build's source maps.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { SourceMap } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

export interface HotSpot {
  where: string;
  selfMs: number;
  totalMs: number;
}

export interface ProfileSummary {
  file: string;
  profiledMs: number;
  /** By self time (where the CPU actually is). */
  self: HotSpot[];
  /** By inclusive time, repository code only (which of our functions it is spent under). */
  inclusiveOwn: HotSpot[];
  /** Self time per package or directory. */
  byArea: Array<{ area: string; selfMs: number }>;
}

const maps = new Map<string, SourceMap | undefined>();

function sourceMapFor(file: string): SourceMap | undefined {
  if (!maps.has(file)) {
    const mapFile = `${file}.map`;
    maps.set(
      file,
      existsSync(mapFile) ? new SourceMap(JSON.parse(readFileSync(mapFile, 'utf8'))) : undefined,
    );
  }
  return maps.get(file);
}

function location(frame: ProfileNode['callFrame'], repoRoot: string): string {
  const name = frame.functionName || '(anonymous)';
  if (!frame.url) return name;
  let file = frame.url.startsWith('file://') ? fileURLToPath(frame.url) : frame.url;
  let line = frame.lineNumber + 1;
  const entry = (
    file.endsWith('.js') ? sourceMapFor(file)?.findEntry(frame.lineNumber, frame.columnNumber) : undefined
  ) as { originalSource?: string; originalLine?: number } | undefined;
  if (entry?.originalSource && entry.originalLine !== undefined) {
    const src = entry.originalSource;
    file = src.startsWith('file://') ? fileURLToPath(src) : path.resolve(path.dirname(file), src);
    line = entry.originalLine + 1;
  }
  return `${name} ${path.relative(repoRoot, file)}:${line}`;
}

function area(where: string): string {
  const file = where.split(' ').at(-1) ?? '';
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(file);
  if (pkg) return pkg[1]!;
  if (file.startsWith('node:')) return 'node internals';
  const dir = /^((?:operator|router)\/src\/[^/]+)/.exec(file);
  return dir ? dir[1]! : file.includes(':') ? 'other' : where; // (garbage collector), (program), (idle)
}

export function summarizeProfile(file: string, repoRoot: string, top = 15): ProfileSummary {
  const prof = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<number, number>();
  prof.samples.forEach((id, i) => selfUs.set(id, (selfUs.get(id) ?? 0) + (prof.timeDeltas[i] ?? 0)));
  const where = new Map<number, string>();
  for (const n of prof.nodes) where.set(n.id, location(n.callFrame, repoRoot));

  const self = new Map<string, number>();
  for (const [id, us] of selfUs) self.set(where.get(id)!, (self.get(where.get(id)!) ?? 0) + us);

  // inclusive time per function, counting a function once per stack (recursion is not double-counted)
  const total = new Map<string, number>();
  const inclusive = new Map<number, number>();
  const fill = (id: number): number => {
    const n = byId.get(id)!;
    let us = selfUs.get(id) ?? 0;
    for (const c of n.children ?? []) us += fill(c);
    inclusive.set(id, us);
    return us;
  };
  const root = prof.nodes[0]!;
  fill(root.id);
  const stack: string[] = [];
  const visit = (id: number): void => {
    const w = where.get(id)!;
    const first = !stack.includes(w);
    if (first) total.set(w, (total.get(w) ?? 0) + inclusive.get(id)!);
    stack.push(w);
    for (const c of byId.get(id)!.children ?? []) visit(c);
    stack.pop();
  };
  visit(root.id);

  const spot = (w: string): HotSpot => ({
    where: w,
    selfMs: (self.get(w) ?? 0) / 1000,
    totalMs: (total.get(w) ?? 0) / 1000,
  });
  const areas = new Map<string, number>();
  for (const [w, us] of self) areas.set(area(w), (areas.get(area(w)) ?? 0) + us);
  return {
    file,
    profiledMs: (prof.endTime - prof.startTime) / 1000,
    self: [...self.keys()]
      .sort((a, b) => self.get(b)! - self.get(a)!)
      .slice(0, top)
      .map(spot),
    inclusiveOwn: [...total.keys()]
      .filter((w) => / (operator|router)\/src\//.test(w))
      .sort((a, b) => total.get(b)! - total.get(a)!)
      .slice(0, top)
      .map(spot),
    byArea: [...areas.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([a, us]) => ({ area: a, selfMs: us / 1000 })),
  };
}

export function latestProfile(dir: string): string | undefined {
  if (!existsSync(dir)) return undefined;
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.cpuprofile'))
    .sort();
  return files.length ? path.join(dir, files.at(-1)!) : undefined;
}

export function renderProfile(p: ProfileSummary): string {
  const ms = (v: number): string => `${v.toFixed(0)} ms`.padStart(9);
  return [
    `CPU profile ${p.file} (${(p.profiledMs / 1000).toFixed(0)} s profiled)`,
    'self time by area:',
    ...p.byArea.map((a) => `  ${ms(a.selfMs)}  ${a.area}`),
    'self time by function:',
    ...p.self.map((s) => `  ${ms(s.selfMs)}  ${s.where}`),
    'inclusive time, repository functions:',
    ...p.inclusiveOwn.map((s) => `  ${ms(s.totalMs)}  ${s.where}`),
  ].join('\n');
}
