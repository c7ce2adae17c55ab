// Tables and target verdicts of the operator benchmark (pure: results in, text out).
import type { Summary } from './stats.js';
import type { CpuPhase, PhaseUsage } from './operator-usage.js';

export const TARGETS = { readyToRoutedP99Ms: 1000, rssAt50ClustersMB: 150 } as const;

export interface LatencyRow {
  scenario: string;
  metric: string;
  summary: Summary;
  /** Target on p99 (ms), when this row has one. */
  targetMs?: number;
}

export interface Verdict {
  target: string;
  measured: string;
  pass: boolean;
}

const ms = (v: number): string =>
  !Number.isFinite(v) ? '-' : v >= 10_000 ? `${(v / 1000).toFixed(1)} s` : `${Math.round(v)} ms`;

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string =>
    cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

export function latencyTable(rows: LatencyRow[]): string {
  return table(
    ['scenario', 'measure', 'n', 'p50', 'p90', 'p99', 'max', 'target'],
    rows.map((r) => [
      r.scenario,
      r.metric,
      String(r.summary.count),
      ms(r.summary.p50),
      ms(r.summary.p90),
      ms(r.summary.p99),
      ms(r.summary.max),
      r.targetMs === undefined
        ? ''
        : r.summary.count === 0
          ? 'no data'
          : `p99 < ${ms(r.targetMs)}: ${r.summary.p99 < r.targetMs ? 'PASS' : 'MISS'}`,
    ]),
  );
}

export function usageTable(phases: PhaseUsage[]): string {
  return table(
    ['operator phase', '', 'seconds', 'CPU % (1 core)', 'RSS start', 'RSS end', 'RSS max'],
    phases.map((p) => [
      p.phase,
      '',
      p.seconds.toFixed(0),
      p.cpuPercent.toFixed(1),
      `${p.rssStartMB.toFixed(0)} MB`,
      `${p.rssEndMB.toFixed(0)} MB`,
      `${p.rssMaxMB.toFixed(0)} MB`,
    ]),
  );
}

export function verdictLines(verdicts: Verdict[]): string {
  return verdicts.map((v) => `${v.pass ? 'PASS' : 'MISS'}  ${v.target}: ${v.measured}`).join('\n');
}

export function readyVerdicts(rows: LatencyRow[]): Verdict[] {
  return rows
    .filter((r) => r.targetMs !== undefined && r.summary.count > 0)
    .map((r) => ({
      target: `pod Ready -> routable p99 < ${ms(r.targetMs!)} (${r.scenario}, ${r.metric.trim()})`,
      measured: `p99 ${ms(r.summary.p99)} over ${r.summary.count} pods`,
      pass: r.summary.p99 < r.targetMs!,
    }));
}

export function rssVerdict(label: string, maxMB: number): Verdict {
  return {
    target: `operator RSS < ${TARGETS.rssAt50ClustersMB} MB at ${label}`,
    measured: `largest sample ${maxMB.toFixed(0)} MB`,
    pass: maxMB < TARGETS.rssAt50ClustersMB,
  };
}

export function cpuTable(phases: CpuPhase[], groups: string[]): string {
  return table(
    ['phase', '', ...groups, 'load (1 min)'],
    phases.map((p) => [
      p.phase,
      '',
      ...groups.map((g) => (p.cpuPercent[g] ?? 0).toFixed(0)),
      p.loadAvg.toFixed(1),
    ]),
  );
}
