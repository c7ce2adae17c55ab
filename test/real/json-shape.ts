// The shape of a JSON value: every path with its type (keys, types, nesting), so two engines'
// answers can be compared field by field while their values (ids, text, timestamps) differ. Pure.

export type Shape = Map<string, string>;

function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  return typeof v;
}

/** `$.choices[].message.content` -> `string`; an array's elements share one `[]` path (types merged). */
export function shapeOf(v: unknown, path = '$', out: Shape = new Map()): Shape {
  const t = typeName(v);
  const seen = out.get(path);
  if (seen === undefined) out.set(path, t);
  else if (!seen.split('|').includes(t)) out.set(path, [...seen.split('|'), t].sort().join('|'));
  if (Array.isArray(v)) for (const el of v) shapeOf(el, `${path}[]`, out);
  else if (t === 'object')
    for (const [k, el] of Object.entries(v as object)) shapeOf(el, `${path}.${k}`, out);
  return out;
}

/** Merged shape of several values (e.g. every chunk of one kind in a stream). */
export function shapeOfAll(values: readonly unknown[]): Shape {
  const out: Shape = new Map();
  for (const v of values) shapeOf(v, '$', out);
  return out;
}

/** Lines `path: expected=<type> actual=<type>` for every path whose type differs or is missing. */
export function shapeDiff(expected: Shape, actual: Shape): string[] {
  const lines: string[] = [];
  for (const path of new Set([...expected.keys(), ...actual.keys()])) {
    const e = expected.get(path) ?? 'missing';
    const a = actual.get(path) ?? 'missing';
    if (e !== a) lines.push(`${path}: expected=${e} actual=${a}`);
  }
  return lines.sort();
}
