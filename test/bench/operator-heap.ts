// What fills the operator's heap: a V8 heap snapshot (node --heapsnapshot-signal) summed by object
// type and constructor (self sizes; retained sizes would need the dominator tree).
import { readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';

interface HeapSnapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]] } };
  nodes: number[];
  strings: string[];
}

export interface HeapGroup {
  what: string;
  count: number;
  selfMB: number;
}

export interface HeapSummary {
  file: string;
  totalMB: number;
  groups: HeapGroup[];
}

/** Types whose name is the value itself (a string's text, code's function): grouped by type only. */
const BY_TYPE = new Set([
  'string',
  'concatenated string',
  'sliced string',
  'number',
  'code',
  'hidden',
  'array',
  'bigint',
]);

export function summarizeHeapSnapshot(file: string, top = 25): HeapSummary {
  const snap = JSON.parse(readFileSync(file, 'utf8')) as HeapSnapshot;
  const fields = snap.snapshot.meta.node_fields;
  const types = snap.snapshot.meta.node_types[0];
  const width = fields.length;
  const [iType, iName, iSize] = ['type', 'name', 'self_size'].map((f) => fields.indexOf(f)) as [
    number,
    number,
    number,
  ];
  const groups = new Map<string, { count: number; bytes: number }>();
  let total = 0;
  for (let i = 0; i < snap.nodes.length; i += width) {
    const type = types[snap.nodes[i + iType]!] ?? '?';
    const size = snap.nodes[i + iSize]!;
    total += size;
    const what = BY_TYPE.has(type) ? `(${type})` : `${snap.strings[snap.nodes[i + iName]!]} [${type}]`;
    const g = groups.get(what) ?? { count: 0, bytes: 0 };
    g.count++;
    g.bytes += size;
    groups.set(what, g);
  }
  return {
    file,
    totalMB: total / 1024 ** 2,
    groups: [...groups.entries()]
      .sort((a, b) => b[1].bytes - a[1].bytes)
      .slice(0, top)
      .map(([what, g]) => ({ what: what.slice(0, 100), count: g.count, selfMB: g.bytes / 1024 ** 2 })),
  };
}

/** The newest .heapsnapshot file in dir written after `after` (ms). */
export function newestSnapshot(dir: string, after: number): string | undefined {
  try {
    return readdirSync(dir)
      .filter((f) => f.endsWith('.heapsnapshot'))
      .map((f) => path.join(dir, f))
      .filter((f) => statSync(f).mtimeMs >= after)
      .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs)[0];
  } catch {
    return undefined;
  }
}

export function renderHeap(h: HeapSummary): string {
  return [
    `heap snapshot ${h.file}: ${h.totalMB.toFixed(1)} MB of objects, by type/constructor (self size):`,
    ...h.groups.map(
      (g) => `  ${g.selfMB.toFixed(1).padStart(7)} MB  ${String(g.count).padStart(8)}  ${g.what}`,
    ),
  ].join('\n');
}
