import * as grpc from '@grpc/grpc-js';
import type { PdClient } from '@omnidict/client';
import { nodepb } from '@omnidict/proto';
import type { Rng } from '../rng.js';
import type { ClusterProcess, LocalCluster } from './localCluster.js';
import { sleep } from './localCluster.js';

// The nemesis: a seeded schedule of faults, one at a time, each healed before the next begins.
//
//   kill      kill -9 a storage node or PD replica (a quarter of the time the PD leader, then half
//             the time the leader node of a random shard; else uniform over all nodes and PD
//             replicas), wait, restart it with the same command line
//   pause     SIGSTOP a storage node or PD replica, wait, SIGCONT
//   partition NodeAdmin.SetFaults on one storage node: drop Raft traffic to and from every other
//             node (both directions, so one call isolates it), wait, clear
//   split     PD SplitShard on a random shard
//   transfer  PD TransferLeader of a random shard to a random replica
//   move      PD MoveReplica of a random shard from one of its nodes to a node without a replica
//
// Admin operations that PD rejects (an operator already running, no such shard) count as attempted
// faults and are logged; they are part of the weather, not errors of the run.

export type FaultKind = 'kill' | 'pause' | 'partition' | 'split' | 'transfer' | 'move';

export interface FaultRecord {
  kind: FaultKind;
  target: string;
  startMs: number;
  endMs?: number;
  note?: string;
}

export interface NemesisOptions {
  /** Quiet time between faults, ms. */
  intervalMs: [number, number];
  /** How long a kill / pause / partition lasts, ms. */
  faultMs: [number, number];
  kinds: FaultKind[];
}

export class Nemesis {
  private stopped = false;
  readonly faults: FaultRecord[] = [];
  private readonly nodeAdmins = new Map<string, nodepb.NodeAdminClient>();

  constructor(
    private readonly cluster: LocalCluster,
    private readonly pd: PdClient,
    private readonly rng: Rng,
    private readonly options: NemesisOptions,
    private readonly log: (line: string) => void,
  ) {}

  async run(): Promise<void> {
    while (!this.stopped) {
      await this.sleepUnlessStopped(this.rng.between(this.options.intervalMs[0], this.options.intervalMs[1]));
      if (this.stopped) break;
      const kind = this.rng.pick(this.options.kinds);
      const record: FaultRecord = { kind, target: '', startMs: Date.now() };
      this.faults.push(record);
      try {
        await this.inject(record);
      } catch (err) {
        record.note = `failed: ${(err as Error).message}`;
      }
      record.endMs = Date.now();
      this.log(`nemesis: ${record.kind} ${record.target}${record.note === undefined ? '' : ` (${record.note})`}`);
    }
  }

  /** Stops after the current fault is healed (run() then resolves). */
  stop(): void {
    this.stopped = true;
  }

  close(): void {
    for (const client of this.nodeAdmins.values()) client.close();
  }

  private async inject(record: FaultRecord): Promise<void> {
    const duration = this.rng.between(this.options.faultMs[0], this.options.faultMs[1]);
    switch (record.kind) {
      case 'kill': {
        const p = await this.pickKillTarget();
        record.target = label(p);
        await this.cluster.kill9(p);
        await sleep(duration);
        this.cluster.restart(p);
        return;
      }
      case 'pause': {
        const p = this.pickProcess();
        record.target = label(p);
        this.cluster.signal(p, 'SIGSTOP');
        try {
          await sleep(duration);
        } finally {
          this.cluster.signal(p, 'SIGCONT');
        }
        return;
      }
      case 'partition': {
        const nodes = this.cluster.processes('node');
        const p = this.rng.pick(nodes);
        record.target = label(p);
        const others = nodes.filter((n) => n !== p).map((n) => n.id);
        await this.setFaults(p, others);
        try {
          await sleep(duration);
        } finally {
          await this.setFaults(p, []);
        }
        return;
      }
      case 'split': {
        const route = this.rng.pick(await this.pd.listShards({ timeoutMs: 3000 }));
        record.target = `shard ${route.shard?.id}`;
        await this.pd.splitShard(route.shard?.id ?? 0, 0, { timeoutMs: 3000 });
        return;
      }
      case 'transfer': {
        const route = this.rng.pick(await this.pd.listShards({ timeoutMs: 3000 }));
        const replicas = route.shard?.replicas ?? [];
        const to = this.rng.pick(
          replicas
            .map((r) => ({ nodeId: r.nodeId }))
            .concat(replicas.length > 0 ? [] : [{ nodeId: route.leaderNodeId }]),
        );
        record.target = `shard ${route.shard?.id} → node ${to.nodeId}`;
        await this.pd.transferLeader(route.shard?.id ?? 0, to.nodeId, { timeoutMs: 3000 });
        return;
      }
      case 'move': {
        const route = this.rng.pick(await this.pd.listShards({ timeoutMs: 3000 }));
        const hosting = new Set((route.shard?.replicas ?? []).map((r) => r.nodeId));
        const targets = this.cluster.processes('node').filter((n) => !hosting.has(n.id));
        if (targets.length === 0 || hosting.size === 0) {
          record.target = `shard ${route.shard?.id}`;
          record.note = 'skipped: no node without a replica';
          return;
        }
        const from = this.rng.pick([...hosting]);
        const to = this.rng.pick(targets).id;
        record.target = `shard ${route.shard?.id} node ${from} → ${to}`;
        await this.pd.moveReplica(route.shard?.id ?? 0, from, to, { timeoutMs: 3000 });
        return;
      }
    }
  }

  /**
   * A quarter of the time the PD leader, half the time the leader node of a random shard, else any
   * node or PD replica.
   */
  private async pickKillTarget(): Promise<ClusterProcess> {
    if (this.rng.chance(0.25)) {
      const status = await this.pd.clusterStatus({ timeoutMs: 3000 }).catch(() => undefined);
      const pdLeader = this.cluster.processes('pd').find((p) => p.id === status?.pdLeaderId);
      if (pdLeader !== undefined) return pdLeader;
    }
    if (this.rng.chance(0.5)) {
      const routes = await this.pd.listShards({ timeoutMs: 3000 }).catch(() => []);
      const leaderId = routes.length > 0 ? this.rng.pick(routes).leaderNodeId : undefined;
      const leader = this.cluster.processes('node').find((n) => n.id === leaderId);
      if (leader !== undefined) return leader;
    }
    return this.pickProcess();
  }

  private pickProcess(): ClusterProcess {
    return this.rng.pick([...this.cluster.processes('node'), ...this.cluster.processes('pd')]);
  }

  private setFaults(p: ClusterProcess, partitionedNodes: number[]): Promise<void> {
    let client = this.nodeAdmins.get(p.address);
    if (client === undefined) {
      client = new nodepb.NodeAdminClient(p.address, grpc.credentials.createInsecure());
      this.nodeAdmins.set(p.address, client);
    }
    const admin = client;
    return new Promise((resolve, reject) => {
      admin.setFaults({ partitionedNodes }, new grpc.Metadata(), { deadline: Date.now() + 3000 }, (err) =>
        err ? reject(err) : resolve(),
      );
    });
  }

  private async sleepUnlessStopped(ms: number): Promise<void> {
    const until = Date.now() + ms;
    while (!this.stopped && Date.now() < until) await sleep(Math.min(100, until - Date.now()));
  }
}

function label(p: ClusterProcess): string {
  return `${p.role}-${p.id} (pid ${p.pid})`;
}
