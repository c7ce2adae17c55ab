// Turns the router benchmark's measurements into the printed tables and the target verdicts.
import { byArea, routerInclusive } from './router-profile.js';
import {
  TARGETS,
  TARGET_LABEL,
  errorCount,
  ms,
  type MemoryResult,
  type Phase,
  type ProfileResult,
  type TargetName,
  type ThroughputRow,
} from './router-measure.js';

export interface BenchResults {
  latency?: Record<string, Record<TargetName, Phase>>;
  ttft?: Record<TargetName, Phase>;
  streamRate: number;
  streamTokens: number;
  throughput?: Record<TargetName, ThroughputRow>;
  concurrency: number;
  memory?: MemoryResult;
  profile?: ProfileResult[];
}

export interface TargetVerdict {
  name: string;
  limit: string;
  value: number;
  unit: string;
  met: boolean;
  /** How the value was obtained. */
  basis: string;
}

export function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows
    .map((r, ri) =>
      r
        .map((c, i) => (i <= 1 || ri === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!)))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/** Against zero-latency engines a median above this means requests are queueing: past capacity. */
const SATURATED_P50_MS = 20;

const plus = (n: number | undefined): string => (n === undefined ? '' : `${n >= 0 ? '+' : ''}${ms(n)}`);

/** The brief's four targets, judged on this run's numbers. */
export function verdicts(r: BenchResults): TargetVerdict[] {
  const out: TargetVerdict[] = [];
  const l1000 = r.latency?.['1000'];
  if (l1000) {
    const v = l1000['router-direct'].addedP99Median ?? Number.NaN;
    out.push({
      name: 'added p99 latency, direct path, 1000 req/s',
      limit: '<= 3 ms',
      value: v,
      unit: 'ms',
      met: v <= 3,
      basis: `median over ${l1000.engine.rounds.length} interleaved rounds of (router p99 - engine p99); pooled: ${plus(l1000['router-direct'].latency.p99 - l1000.engine.latency.p99)} ms`,
    });
  }
  if (r.throughput) {
    const t = r.throughput['router-direct'];
    const v = t.reqPerSPerRouterCore ?? Number.NaN;
    out.push({
      name: 'throughput per router core, direct path',
      limit: '>= 2000 req/s',
      value: v,
      unit: 'req/s',
      met: v >= 2000,
      basis: `${t.reqPerS.toFixed(0)} req/s with the router using ${t.routerCores?.toFixed(2)} cores (closed loop x${r.concurrency})`,
    });
  }
  if (r.ttft) {
    const d = r.ttft['router-direct'];
    const v = d.addedP99Median ?? Number.NaN;
    out.push({
      name: `TTFT overhead p99, direct path, streams at ${r.streamRate} req/s`,
      limit: '<= 2 ms',
      value: v,
      unit: 'ms',
      met: v <= 2,
      basis: `median over ${d.rounds.length} interleaved rounds of (router TTFT p99 - engine TTFT p99); pooled: ${plus((d.ttft?.p99 ?? NaN) - (r.ttft.engine.ttft?.p99 ?? NaN))} ms`,
    });
  }
  if (r.memory) {
    const m = r.memory;
    out.push({
      name: `router RSS growth per stalled stream (${m.streams} streams)`,
      limit: '< 1024 KB',
      value: m.perStreamKB,
      unit: 'KB',
      met: m.perStreamKB < 1024 && m.started === m.streams,
      basis: `${m.baselineRssMB.toFixed(1)} MB -> ${m.peakRssMB.toFixed(1)} MB with ${m.started} of ${m.streams} streams open`,
    });
  }
  return out;
}

export function renderReport(r: BenchResults): string {
  const lines: string[] = [];
  if (r.latency && Object.keys(r.latency).length) {
    lines.push(
      '',
      'Latency at fixed rates (open loop, non-streaming, ms from the scheduled send to the last byte)',
      table([
        [
          'rate',
          'target',
          'ok',
          'failed',
          'p50',
          'p90',
          'p99',
          'added p50',
          'added p99',
          'router CPU/req',
          'gen lag p99',
          'other cores',
          'note',
        ],
        ...Object.entries(r.latency).flatMap(([rate, phases]) =>
          TARGETS.map((t) => {
            const p = phases[t];
            return [
              `${rate}/s`,
              TARGET_LABEL[t],
              String(p.completed),
              String(errorCount(p)),
              ms(p.latency.p50),
              ms(p.latency.p90),
              ms(p.latency.p99),
              plus(p.addedP50Median),
              plus(p.addedP99Median),
              p.routerCpuMsPerRequest !== undefined ? `${ms(p.routerCpuMsPerRequest, 3)} ms` : '',
              ms(p.scheduleLagP99),
              ms(p.backgroundCores),
              p.latency.p50 > SATURATED_P50_MS ? 'saturated' : '',
            ];
          }),
        ),
      ]),
      '  p50/p90/p99 pool all rounds; "added" is the median over rounds of (router - engine) in the same round.',
      `  Rounds repeated because other processes were busy: ${Object.values(r.latency)
        .map((p) => p.engine.repeatedRounds ?? 0)
        .reduce((a, b) => a + b, 0)}; kept although busy: ${Object.values(r.latency)
        .map((p) => p.engine.noisyRounds ?? 0)
        .reduce((a, b) => a + b, 0)}.`,
      '  "gen lag": how late the load generator sent (its own health); "other cores": CPU used meanwhile by processes',
      `  outside the benchmark (noise); "saturated": p50 above ${SATURATED_P50_MS} ms against`,
      '  zero-latency engines, i.e. the machine (router + engines + generator on the same cores) is past capacity.',
    );
  }
  const insideRows = [
    ...Object.entries(r.latency ?? {}).map(([rate, phases]) => [`${rate}/s`, phases] as const),
    ...(r.ttft ? [[`stream ${r.streamRate}/s`, r.ttft] as const] : []),
  ].flatMap(([label, phases]) =>
    (['router-direct', 'router-dpd'] as const)
      .filter((t) => phases[t].inside)
      .map((t) => {
        const i = phases[t].inside!;
        return [
          label,
          TARGET_LABEL[t],
          ms(i.runQueueWaitMsPerRequest, 3),
          i.involuntarySwitchesPerRequest.toFixed(2),
          String(i.gcCount),
          ms(i.gcTotalMs, 1),
          ms(i.gcMaxMs),
          ms(i.loopDelayP99Ms),
          ms(i.loopDelayMaxMs),
        ];
      }),
  );
  if (insideRows.length) {
    lines.push(
      '',
      'Inside the router during those phases (where its added time went)',
      table([
        [
          'phase',
          'target',
          'CPU wait/req ms',
          'preempted/req',
          'GCs',
          'GC total ms',
          'GC max ms',
          'loop delay p99',
          'loop delay max',
        ],
        ...insideRows,
      ]),
      '  "CPU wait": time the router was runnable but had no CPU (/proc/PID/schedstat); "preempted": involuntary',
      '  context switches; GC pauses and event-loop delay (how late a 10 ms timer fired) are read through the inspector.',
    );
  }
  if (r.ttft) {
    const ttft = r.ttft;
    lines.push(
      '',
      `Time to first token (streams of ${r.streamTokens} tokens at ${r.streamRate} req/s, ms from the scheduled send to the first body byte)`,
      table([
        [
          'target',
          '',
          'ok',
          'failed',
          'TTFT p50',
          'TTFT p90',
          'TTFT p99',
          'added p50',
          'added p99',
          'other cores',
        ],
        ...TARGETS.map((t) => {
          const p = ttft[t];
          return [
            TARGET_LABEL[t],
            '',
            String(p.completed),
            String(errorCount(p)),
            ms(p.ttft?.p50),
            ms(p.ttft?.p90),
            ms(p.ttft?.p99),
            plus(p.addedP50Median),
            plus(p.addedP99Median),
            ms(p.backgroundCores),
          ];
        }),
      ]),
    );
  }
  if (r.throughput) {
    const tp = r.throughput;
    lines.push(
      '',
      `Maximum throughput (closed loop, ${r.concurrency} concurrent requests)`,
      table([
        [
          'target',
          '',
          'req/s',
          'p50 ms',
          'p99 ms',
          'failed',
          'router cores',
          'req/s per router core',
          'engine cores',
          'load gen cores',
          'other cores',
        ],
        ...TARGETS.map((t) => {
          const p = tp[t];
          return [
            TARGET_LABEL[t],
            '',
            p.reqPerS.toFixed(0),
            ms(p.latency.p50),
            ms(p.latency.p99),
            String(errorCount(p)),
            p.routerCores !== undefined ? p.routerCores.toFixed(2) : '',
            p.reqPerSPerRouterCore !== undefined ? p.reqPerSPerRouterCore.toFixed(0) : '',
            p.engineCores.toFixed(2),
            p.loadgenCores.toFixed(2),
            ms(p.backgroundCores),
          ];
        }),
      ]),
    );
  }
  if (r.memory) {
    const m = r.memory;
    lines.push(
      '',
      'Router memory with stalled streams (each client reads the first bytes, then stops reading)',
      table([
        [
          'streams',
          'started',
          'RSS before MB',
          'RSS during MB',
          'RSS growth/stream KB',
          'live growth/stream KB',
          'RSS after release MB',
        ],
        [
          String(m.streams),
          String(m.started),
          m.baselineRssMB.toFixed(1),
          m.peakRssMB.toFixed(1),
          m.perStreamKB.toFixed(1),
          m.livePerStreamKB.toFixed(1),
          m.afterReleaseRssMB.toFixed(1),
        ],
      ]),
      '  "live": JS heap + Buffers after a forced full GC (through the inspector), i.e. without garbage.',
    );
    if (m.deep) {
      lines.push(
        `  deep stall: ${m.deep.started} zero-latency streams; the engines generated ${m.deep.generatedPerStreamMB.toFixed(1)} MB ` +
          `per stream before backpressure stopped them; the router held ${m.deep.livePerStreamKB.toFixed(0)} KB live per stream ` +
          `(RSS +${m.deep.rssPerStreamKB.toFixed(0)} KB per stream).`,
      );
    }
  }
  const v = verdicts(r);
  if (v.length) {
    lines.push('', 'Targets (judged on this run)');
    for (const t of v) {
      lines.push(
        `  [${t.met ? 'met ' : 'MISS'}] ${t.name}: ${t.value.toFixed(t.unit === 'ms' ? 2 : 0)} ${t.unit} (target ${t.limit})`,
      );
      lines.push(`         ${t.basis}`);
    }
  }
  for (const p of r.profile ?? []) {
    lines.push(
      '',
      `Router CPU profile, ${TARGET_LABEL[p.path]}, ${p.reqPerS.toFixed(0)} req/s closed loop (${p.file})`,
      `  self time by area: ${byArea(p.hotSpots)
        .slice(0, 8)
        .map((a) => `${a.area} ${a.selfPct.toFixed(1)}%`)
        .join(', ')}`,
      table([
        ['self %', 'function', 'where'],
        ...p.hotSpots.slice(0, 15).map((h) => [h.selfPct.toFixed(1), h.functionName, h.where]),
      ]),
      table([
        ['incl %', 'router function', 'where'],
        ...routerInclusive(p.hotSpots)
          .slice(0, 10)
          .map((h) => [(h.inclusivePct ?? 0).toFixed(1), h.functionName, h.where]),
      ]),
    );
    if (p.allocation) {
      lines.push(
        `  heap allocated per request at 1000 req/s (sampled, garbage included): ${(p.allocation.bytesPerRequest / 1024).toFixed(1)} KB`,
        table([
          ['KB/req', 'allocated in', 'where'],
          ...p.allocation.sites
            .slice(0, 10)
            .map((a) => [(a.bytesPerRequest / 1024).toFixed(2), a.functionName, a.where]),
        ]),
      );
    }
  }
  return lines.join('\n');
}
