import { OmniError, PdClient } from '@omnidict/client';
import { pdpb } from '@omnidict/proto';
import cliProgress from 'cli-progress';
import { type Command, Option } from 'commander';
import type { CliContext } from '../cliContext.js';
import { formatBytes, type GlobalOptions, printFields, printJson, printTable } from '../output.js';
import { parsePositiveDuration, parseUint } from '../parsers.js';

export async function withPd<T>(cmd: Command, fn: (pd: PdClient, g: GlobalOptions) => Promise<T>): Promise<T> {
  const g = cmd.optsWithGlobals<GlobalOptions>();
  const pd = new PdClient({ pd: g.pd, defaultTimeoutMs: g.timeout });
  try {
    return await fn(pd, g);
  } finally {
    pd.close();
  }
}

const NODE_STATE: Record<number, string> = { 0: 'up', 1: 'down', 2: 'removed' };
const OP_STATE: Record<number, string> = { 0: 'pending', 1: 'running', 2: 'done', 3: 'failed' };

function operatorJson(op: pdpb.OperatorInfo) {
  return { ...op, state: OP_STATE[op.state] ?? String(op.state) };
}

function printOperator(ctx: CliContext, g: GlobalOptions, op: pdpb.OperatorInfo): void {
  if (g.json) printJson(ctx, operatorJson(op));
  else {
    ctx.stdout(
      `operator ${op.id}: ${op.kind} shard ${op.shardId} ${OP_STATE[op.state] ?? op.state}${op.step ? ` (${op.step})` : ''}\n`,
    );
  }
}

function isFinished(op: pdpb.OperatorInfo): boolean {
  return op.state === pdpb.OperatorState.OPERATOR_STATE_DONE || op.state === pdpb.OperatorState.OPERATOR_STATE_FAILED;
}

/**
 * waitForOperator polls GetOperator until the operator is done or failed, drawing a live progress
 * bar on a terminal (one line per step change otherwise). A failed operator is an error (exit 1).
 */
async function waitForOperator(
  ctx: CliContext,
  pd: PdClient,
  g: GlobalOptions,
  first: pdpb.OperatorInfo,
  pollMs: number,
): Promise<pdpb.OperatorInfo> {
  const label = `${first.kind} shard ${first.shardId}`;
  const bar = ctx.progressStream
    ? new cliProgress.SingleBar(
        { format: `${label} [{bar}] {percentage}% | {step}`, stream: ctx.progressStream, hideCursor: true },
        cliProgress.Presets.shades_classic,
      )
    : null;
  bar?.start(100, Math.round(first.progress * 100), { step: first.step || 'pending' });
  let op = first;
  let lastStep = '';
  try {
    while (!isFinished(op)) {
      if (!bar && !g.json && op.step !== lastStep) {
        ctx.stderr(`${label}: ${op.step || OP_STATE[op.state]} (${Math.round(op.progress * 100)}%)\n`);
        lastStep = op.step;
      }
      await new Promise((r) => setTimeout(r, pollMs));
      op = await pd.getOperator(op.id);
      bar?.update(Math.round(op.progress * 100), { step: op.step || OP_STATE[op.state] });
    }
  } finally {
    bar?.stop();
  }
  if (op.state === pdpb.OperatorState.OPERATOR_STATE_FAILED) {
    if (g.json) printJson(ctx, operatorJson(op));
    throw new OmniError(
      'INTERNAL',
      `operator ${op.id} (${label}) failed at step "${op.step}": ${op.reason || 'no reason given'}`,
    );
  }
  return op;
}

export function addAdminCommands(program: Command, ctx: CliContext): void {
  const shard = program.command('shard').description('inspect and move shards (placement driver)');
  shard
    .command('list')
    .description('every shard with its range, epoch, replicas and leader')
    .action(async (_opts: object, cmd: Command) => {
      await withPd(cmd, async (pd, g) => {
        const shards = await pd.listShards();
        if (g.json) {
          printJson(
            ctx,
            shards.map((r) => ({ ...r.shard, leaderReplicaId: r.leaderReplicaId, leaderNodeId: r.leaderNodeId })),
          );
          return;
        }
        printTable(
          ctx,
          ['SHARD', 'START', 'END', 'EPOCH', 'REPLICAS (node/replica)', 'LEADER NODE'],
          shards.map((r) => [
            r.shard?.id ?? '?',
            r.shard?.start ?? '',
            r.shard?.end ?? '',
            r.shard?.epoch ? `v${r.shard.epoch.version}/c${r.shard.epoch.confVer}` : '-',
            (r.shard?.replicas ?? [])
              .map((rep) => `${rep.nodeId}/${rep.replicaId}${rep.role === 1 ? ' (learner)' : ''}`)
              .join(', '),
            r.leaderNodeId || '-',
          ]),
        );
      });
    });

  const waitOptions = (c: Command) =>
    c
      .addOption(
        new Option('--poll <duration>', 'how often to poll the operator').argParser(parsePositiveDuration).default(500),
      )
      .option('--no-wait', 'return once the operator is accepted');

  waitOptions(
    shard
      .command('split')
      .description('split a shard in two')
      .argument('<shardId>', 'shard id', parseUint)
      .option('--at <position>', 'ring position to split at (default: the median key)', parseUint),
  ).action(async (shardId: number, opts: { at?: number; wait: boolean; poll: number }, cmd: Command) => {
    await withPd(cmd, async (pd, g) => {
      let op = await pd.splitShard(shardId, opts.at ?? 0);
      if (opts.wait) op = await waitForOperator(ctx, pd, g, op, opts.poll);
      printOperator(ctx, g, op);
    });
  });

  waitOptions(
    shard
      .command('move')
      .description('move a replica of a shard from one node to another, showing progress')
      .argument('<shardId>', 'shard id', parseUint)
      .requiredOption('--from <nodeId>', 'node losing the replica', parseUint)
      .requiredOption('--to <nodeId>', 'node gaining the replica', parseUint)
      .addHelpText('after', '\nExample:\n  omnictl shard move 3 --from 1 --to 4'),
  ).action(async (shardId: number, opts: { from: number; to: number; wait: boolean; poll: number }, cmd: Command) => {
    await withPd(cmd, async (pd, g) => {
      let op = await pd.moveReplica(shardId, opts.from, opts.to);
      if (opts.wait) op = await waitForOperator(ctx, pd, g, op, opts.poll);
      printOperator(ctx, g, op);
    });
  });

  waitOptions(
    shard
      .command('transfer-leader')
      .description("move a shard's leadership to another node")
      .argument('<shardId>', 'shard id', parseUint)
      .requiredOption('--to <nodeId>', 'node to lead the shard', parseUint),
  ).action(async (shardId: number, opts: { to: number; wait: boolean; poll: number }, cmd: Command) => {
    await withPd(cmd, async (pd, g) => {
      let op = await pd.transferLeader(shardId, opts.to);
      if (opts.wait) op = await waitForOperator(ctx, pd, g, op, opts.poll);
      printOperator(ctx, g, op);
    });
  });

  const node = program.command('node').description('inspect and remove storage nodes');
  node
    .command('list')
    .description('every storage node with its state and load')
    .action(async (_opts: object, cmd: Command) => {
      await withPd(cmd, async (pd, g) => {
        const nodes = await pd.listNodes();
        if (g.json) {
          printJson(
            ctx,
            nodes.map((n) => ({ ...n, state: NODE_STATE[n.state] ?? String(n.state) })),
          );
          return;
        }
        printTable(
          ctx,
          ['NODE', 'ADDRESS', 'STATE', 'SHARDS', 'LEADERS', 'USED', 'CAPACITY', 'LAST HEARTBEAT'],
          nodes.map((n) => [
            n.id,
            n.address,
            NODE_STATE[n.state] ?? n.state,
            n.shardCount,
            n.leaderCount,
            formatBytes(n.usedBytes),
            formatBytes(n.capacityBytes),
            n.lastHeartbeatMs ? new Date(n.lastHeartbeatMs).toISOString() : '-',
          ]),
        );
      });
    });
  node
    .command('remove')
    .description('decommission a node: its replicas move elsewhere')
    .argument('<nodeId>', 'node id', parseUint)
    .action(async (nodeId: number, _opts: object, cmd: Command) => {
      await withPd(cmd, async (pd, g) => {
        await pd.removeNode(nodeId);
        if (g.json) printJson(ctx, { ok: true, nodeId });
        else ctx.stdout(`OK (node ${nodeId} is being removed)\n`);
      });
    });

  const operator = program.command('operator').description('scheduler operators (splits, moves, transfers)');
  operator
    .command('list')
    .description('recent and running operators')
    .action(async (_opts: object, cmd: Command) => {
      await withPd(cmd, async (pd, g) => {
        const ops = await pd.listOperators();
        if (g.json) {
          printJson(ctx, ops.map(operatorJson));
          return;
        }
        printTable(
          ctx,
          ['ID', 'KIND', 'SHARD', 'STATE', 'STEP', 'PROGRESS', 'REASON', 'UPDATED'],
          ops.map((o) => [
            o.id,
            o.kind,
            o.shardId,
            OP_STATE[o.state] ?? o.state,
            o.step,
            `${Math.round(o.progress * 100)}%`,
            o.reason,
            o.updatedMs ? new Date(o.updatedMs).toISOString() : '-',
          ]),
        );
      });
    });
  operator
    .command('get')
    .description('one operator')
    .argument('<operatorId>', 'operator id', parseUint)
    .action(async (id: number, _opts: object, cmd: Command) => {
      await withPd(cmd, async (pd, g) => printOperator(ctx, g, await pd.getOperator(id)));
    });
}

/** `cluster status`: added by the cluster command group. */
export async function clusterStatus(ctx: CliContext, cmd: Command): Promise<void> {
  await withPd(cmd, async (pd, g) => {
    const s = await pd.clusterStatus();
    const { header: _header, ...status } = s;
    if (g.json) {
      printJson(ctx, { ...status, pdLeaderAddress: pd.leaderAddress });
      return;
    }
    printFields(ctx, [
      ['cluster id', s.clusterId],
      ['pd leader', `${s.pdLeaderId} (${pd.leaderAddress})`],
      ['pd members', s.pdMembers.map((a) => a || '(address not known yet)').join(', ') || '-'],
      ['nodes up', `${s.nodesUp}/${s.nodeCount}`],
      ['shards healthy', `${s.shardsHealthy}/${s.shardCount}`],
      ['replication', s.replicationFactor],
      ['operators running', s.operatorsRunning],
    ]);
  });
}
