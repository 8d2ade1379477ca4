import { OmniError } from '@omnidict/client';
import { type Command, Option } from 'commander';
import type { CliContext } from '../cliContext.js';
import {
  clusterDown,
  defaultCliDir,
  LEADER_PLACEMENTS,
  type LeaderPlacement,
  LocalCluster,
} from '../launcher/localCluster.js';
import { type GlobalOptions, printJson } from '../output.js';
import { parsePositiveDuration, parsePositiveInt } from '../parsers.js';
import { clusterStatus } from './adminCommands.js';

interface UpFlags {
  dir: string;
  detach?: boolean;
  nodes: number;
  pdCount?: number;
  shards: number;
  replication: number;
  leaderPlacement: LeaderPlacement;
  readyTimeout: number;
  grace: number;
}

export function addClusterCommands(program: Command, ctx: CliContext): void {
  const cluster = program.command('cluster').description('cluster status and the local cluster launcher');
  cluster
    .command('status')
    .description('placement driver view: leader, nodes up, shards healthy, operators')
    .action(async (_opts: object, cmd: Command) => clusterStatus(ctx, cmd));

  cluster
    .command('up')
    .description('start a local cluster (PD replicas, storage nodes, a router) on 127.0.0.1')
    .requiredOption('--dir <dir>', 'directory for data, logs and cluster.json')
    .option('--detach', 'return once healthy and leave the cluster running')
    .option('--nodes <n>', 'storage nodes', parsePositiveInt, 3)
    .option('--pd-count <n>', 'placement driver replicas (also accepted as --pd <n>)', parsePositiveInt)
    .option('--shards <n>', 'initial shard count', parsePositiveInt, 8)
    .option('--replication <n>', 'replicas per shard', parsePositiveInt, 3)
    .addOption(
      new Option('--leader-placement <policy>', 'shard leaders: gather = all on one node, balance = even counts')
        .choices(LEADER_PLACEMENTS)
        .default('gather'),
    )
    .option('--ready-timeout <duration>', 'how long to wait for the router', parsePositiveDuration, 60_000)
    .option('--grace <duration>', 'SIGTERM grace period before SIGKILL on stop', parsePositiveDuration, 10_000)
    .addHelpText(
      'after',
      `
Starting again on the same --dir keeps the data: ids and ports are reused from DIR/cluster.json.
In the foreground, Ctrl-C, SIGTERM or closing the terminal (SIGHUP) stops every process (SIGTERM,
then SIGKILL after --grace). Every process runs on this host and shares its cores, so PD gathers
the shard leaders on one node by default (fewer, larger Raft batches); --leader-placement balance
spreads them as a multi-host cluster does.

Examples:
  omnictl cluster up --dir ./.omnidict
  omnictl cluster up --dir /tmp/od --nodes 5 --shards 16 --detach
  omnictl cluster down --dir /tmp/od`,
    )
    .action(async (flags: UpFlags, cmd: Command) => {
      const g = cmd.optsWithGlobals<GlobalOptions>();
      // `--pd 3` is the global --pd flag; a bare number here can only mean a replica count.
      const pdCount = flags.pdCount ?? (/^\d+$/.test(g.pd) ? Number(g.pd) : 3);
      if (pdCount < 1) throw new OmniError('INVALID_ARGUMENT', '--pd-count must be at least 1');
      if (flags.replication > flags.nodes) {
        throw new OmniError(
          'INVALID_ARGUMENT',
          `--replication ${flags.replication} needs at least as many --nodes (${flags.nodes})`,
        );
      }
      const say = (line: string) => ctx.stderr(`omnictl: ${line}\n`);
      const lc = await LocalCluster.up({
        dir: flags.dir,
        pdCount,
        nodes: flags.nodes,
        shards: flags.shards,
        replication: flags.replication,
        leaderPlacement: flags.leaderPlacement,
        readyTimeoutMs: flags.readyTimeout,
        cliDir: ctx.cliDir ?? defaultCliDir(),
        say,
      });
      if (g.json) printJson(ctx, lc.file);
      else {
        ctx.stdout(
          `cluster is up: router ${lc.routerAddress}, pd ${lc.pdAddresses}\n` +
            `  export OMNIDICT_ROUTER=${lc.routerAddress} OMNIDICT_PD=${lc.pdAddresses}\n` +
            `  omnictl --router ${lc.routerAddress} put hello world\n` +
            `  logs and data: ${lc.file.dir}\n`,
        );
      }
      if (flags.detach) {
        lc.detach();
        if (!g.json) ctx.stdout(`detached; stop it with: omnictl cluster down --dir ${flags.dir}\n`);
        return;
      }
      if (!g.json) ctx.stdout('running in the foreground; Ctrl-C stops it\n');
      await new Promise<void>((resolve) => {
        const unsubscribe = ctx.onSignal?.((sig) => {
          unsubscribe?.();
          say(`${sig}: stopping the cluster`);
          resolve();
        });
        // Without signal handling (embedded use) the cluster runs until every process exits.
        void lc.exited().then(resolve);
      });
      await lc.stop(flags.grace);
      say('cluster stopped');
    });

  cluster
    .command('down')
    .description('stop a local cluster started with cluster up (pids from DIR/cluster.json)')
    .requiredOption('--dir <dir>', 'directory given to cluster up')
    .option('--grace <duration>', 'SIGTERM grace period before SIGKILL', parsePositiveDuration, 10_000)
    .action(async (flags: { dir: string; grace: number }, cmd: Command) => {
      const g = cmd.optsWithGlobals<GlobalOptions>();
      const n = await clusterDown(flags.dir, flags.grace, (line) => ctx.stderr(`omnictl: ${line}\n`));
      if (g.json) printJson(ctx, { stopped: n });
      else ctx.stdout(n === 0 ? 'no process of that cluster was running\n' : `stopped ${n} processes\n`);
    });
}
