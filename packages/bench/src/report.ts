import type { CompareReport, IdleCpu } from './compareRun.js';
import { comparisonTable, shardTable } from './table.js';

/** One line about the idle-CPU measurement. */
export function idleLine(idle: IdleCpu): string {
  if (idle.error !== undefined) return `idle CPU with ${idle.shards} shards: not measured (${idle.error})`;
  const worst = Math.max(...idle.nodes.map((n) => n.cpuPercent));
  const each = idle.nodes.map((n) => `node-${n.id} ${n.cpuPercent.toFixed(1)}%`).join(', ');
  return `idle CPU with ${idle.shards} shards (${idle.nodes.length} nodes, each hosting a replica of every shard), sampled over ${(idle.sampleMs / 1000).toFixed(1)} s: ${each} of one core (worst ${worst.toFixed(1)}%)`;
}

/** The whole printed result: a header naming machine and settings, then the tables. */
export function renderReport(r: CompareReport): string {
  const o = r.options;
  const parts = [
    `# OmniDict vs etcd — ${r.startedAt.slice(0, 10)}`,
    '',
    `machine: ${r.machine.cpus} × ${r.machine.cpuModel}, ${r.machine.memGiB} GiB, ${r.machine.platform}, Node ${r.machine.node}`,
    [
      r.etcdVersion === null ? null : `etcd ${r.etcdVersion} (3 members, etcd3 client)`,
      o.systems.includes('omnidict')
        ? `OmniDict 3 PD + 3 nodes + 1 router, ${o.omniShards} shards, leaders as \`omnictl cluster up\` places them (on one node), ${
            o.omniClient === 'embedded' ? 'router embedded in the client (embedRouter)' : `${o.omniClient} SDK client`
          }`
        : null,
    ]
      .filter((s) => s !== null)
      .join('; '),
    `${(o.durationMs / 1000).toFixed(1)} s per cell, ${o.valueSizeBytes}-byte values, ${o.keys} keys uniform, mixed = ${Math.round(o.readRatio * 100)}% linearizable gets, seed ${o.seed}`,
    '',
  ];
  if (r.cells.length > 0) {
    parts.push(comparisonTable(r.cells, 'OmniDict', 'etcd'), '', 'ratios are OmniDict / etcd', '');
  }
  if (r.shardCells.length > 0) {
    parts.push(
      `OmniDict put throughput by shard count and leader placement (same 3 nodes):`,
      '',
      shardTable(r.shardCells),
      '',
    );
  }
  if (r.idle) parts.push(idleLine(r.idle), '');
  return parts.join('\n').trimEnd();
}
