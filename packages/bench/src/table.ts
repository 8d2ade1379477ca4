import type { BenchResult, LeaderPlacement, Workload } from '@omnidict/cli';

/** One measured cell of the comparison: a system under one workload at one concurrency. */
export interface Cell {
  system: string;
  workload: Workload;
  concurrency: number;
  /** Null when the cell could not be run; `error` then says why. */
  result: BenchResult | null;
  error?: string;
}

/**
 * ratio is `a / b`, or null when either side is missing or `b` is zero (a ratio against nothing is
 * not a figure).
 */
export function ratio(a: number | null | undefined, b: number | null | undefined): number | null {
  if (a === null || a === undefined || b === null || b === undefined || !Number.isFinite(a) || !Number.isFinite(b)) {
    return null;
  }
  if (b === 0) return null;
  return a / b;
}

/** `2.31×`, or `–` for a missing ratio. */
export function formatRatio(r: number | null): string {
  return r === null ? '–' : `${r.toFixed(2)}×`;
}

/** Ops/s with thousands grouping and no decimals, or `–`. */
export function formatOps(n: number | null | undefined): string {
  if (n === null || n === undefined) return '–';
  return Math.round(n).toLocaleString('en-US');
}

/** Milliseconds with three significant digits (0.412, 4.12, 41.2, 412), or `–`. */
export function formatMs(n: number | null | undefined): string {
  if (n === null || n === undefined) return '–';
  if (n >= 100) return n.toFixed(0);
  if (n >= 10) return n.toFixed(1);
  if (n >= 1) return n.toFixed(2);
  return n.toFixed(3);
}

/**
 * formatTable renders a Markdown table with padded columns, so the same text reads well in a
 * terminal and pastes into docs/benchmarks.md. Columns whose `numeric` flag is set are right-aligned.
 * Pipes inside cells are escaped.
 */
export function formatTable(
  headers: readonly string[],
  rows: readonly (readonly string[])[],
  numeric?: readonly boolean[],
): string {
  const esc = (s: string) => s.replaceAll('|', '\\|');
  const cells = [headers.map(esc), ...rows.map((r) => headers.map((_, i) => esc(r[i] ?? '')))];
  const widths = headers.map((_, i) => Math.max(3, ...cells.map((r) => width(r[i] ?? ''))));
  const right = (i: number) => numeric?.[i] === true;
  const pad = (s: string, i: number) => {
    const fill = ' '.repeat(widths[i]! - width(s));
    return right(i) ? fill + s : s + fill;
  };
  const line = (r: readonly string[]) => `| ${r.map((s, i) => pad(s, i)).join(' | ')} |`;
  const rule = `| ${widths.map((w, i) => (right(i) ? `${'-'.repeat(w - 1)}:` : '-'.repeat(w))).join(' | ')} |`;
  const [head, ...body] = cells;
  return [line(head!), rule, ...body.map(line)].join('\n');
}

/** Display width: code points, so `×` and `–` count as one column. */
function width(s: string): number {
  return [...s].length;
}

/** Labels of the workloads in the tables. */
export const WORKLOAD_LABEL: Record<Workload, string> = {
  put: 'put',
  get: 'get (linearizable)',
  mixed: 'mixed',
  cas: 'cas',
};

/**
 * comparisonTable is the one table of `bench:compare`: for each workload and concurrency, both
 * systems' ops/s, p50 and p99 (ms), and OmniDict's ops/s and p50 as a multiple of the baseline's.
 * Cells that failed show `–` and are listed under the table with their error.
 */
export function comparisonTable(cells: readonly Cell[], subject: string, baseline: string): string {
  const keyOf = (c: Pick<Cell, 'workload' | 'concurrency'>) => `${c.workload}/${c.concurrency}`;
  const rowsSeen: Pick<Cell, 'workload' | 'concurrency'>[] = [];
  const bySystem = new Map<string, Map<string, Cell>>();
  for (const c of cells) {
    if (!rowsSeen.some((r) => keyOf(r) === keyOf(c)))
      rowsSeen.push({ workload: c.workload, concurrency: c.concurrency });
    const m = bySystem.get(c.system) ?? new Map<string, Cell>();
    bySystem.set(c.system, m);
    m.set(keyOf(c), c);
  }
  const headers = [
    'workload',
    'clients',
    `${baseline} ops/s`,
    `${baseline} p50 ms`,
    `${baseline} p99 ms`,
    `${subject} ops/s`,
    `${subject} p50 ms`,
    `${subject} p99 ms`,
    'ops/s ratio',
    'p50 ratio',
  ];
  const rows = rowsSeen.map((r) => {
    const b = bySystem.get(baseline)?.get(keyOf(r))?.result ?? null;
    const s = bySystem.get(subject)?.get(keyOf(r))?.result ?? null;
    return [
      WORKLOAD_LABEL[r.workload],
      String(r.concurrency),
      formatOps(b?.opsPerSec),
      formatMs(b?.latencyMs.p50),
      formatMs(b?.latencyMs.p99),
      formatOps(s?.opsPerSec),
      formatMs(s?.latencyMs.p50),
      formatMs(s?.latencyMs.p99),
      formatRatio(ratio(s?.opsPerSec, b?.opsPerSec)),
      formatRatio(ratio(s?.latencyMs.p50, b?.latencyMs.p50)),
    ];
  });
  return (
    formatTable(headers, rows, [false, true, true, true, true, true, true, true, true, true]) + failureNotes(cells)
  );
}

/** One row of the shard-scaling table. */
export interface ShardCell {
  shards: number;
  /** PD's leader placement in that cluster (`omnictl cluster up --leader-placement`). */
  leaders: LeaderPlacement;
  concurrency: number;
  result: BenchResult | null;
  error?: string;
}

/** The second table: OmniDict write throughput by shard count and leader placement, relative to the first row. */
export function shardTable(cells: readonly ShardCell[]): string {
  const base = cells.find((c) => c.result)?.result ?? null;
  const rows = cells.map((c) => [
    String(c.shards),
    c.leaders === 'gather' ? 'on one node' : 'balanced',
    String(c.concurrency),
    formatOps(c.result?.opsPerSec),
    formatMs(c.result?.latencyMs.p50),
    formatMs(c.result?.latencyMs.p99),
    formatRatio(ratio(c.result?.opsPerSec, base?.opsPerSec)),
  ]);
  const table = formatTable(['shards', 'leaders', 'clients', 'put ops/s', 'p50 ms', 'p99 ms', 'vs first row'], rows, [
    true,
    false,
    true,
    true,
    true,
    true,
    true,
  ]);
  return table + failureNotes(cells.map((c) => ({ ...c, system: `${c.shards} shards (${c.leaders})` })));
}

/** Lines under a table for cells that failed or saw errors, so a `–` is never unexplained. */
function failureNotes(
  cells: readonly {
    system: string;
    concurrency: number;
    result: BenchResult | null;
    error?: string;
    workload?: Workload;
  }[],
): string {
  const notes: string[] = [];
  for (const c of cells) {
    const what = `${c.system}${c.workload ? ` ${c.workload}` : ''} at ${c.concurrency} clients`;
    if (!c.result) notes.push(`- ${what}: not measured (${c.error ?? 'unknown error'})`);
    else if (c.result.errors > 0) {
      const codes = Object.entries(c.result.errorsByCode)
        .map(([code, n]) => `${code} ${n}`)
        .join(', ');
      notes.push(`- ${what}: ${c.result.errors} failed operations (${codes}), excluded from the figures`);
    }
  }
  return notes.length === 0 ? '' : `\n\n${notes.join('\n')}`;
}
