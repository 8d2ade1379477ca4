import { Command, CommanderError, Option } from 'commander';
import type { CliContext } from './cliContext.js';
import { addAdminCommands } from './commands/adminCommands.js';
import { addBenchCommand } from './commands/benchCommand.js';
import { addClusterCommands } from './commands/clusterCommands.js';
import { addKvCommands } from './commands/kvCommands.js';
import { EXIT, EXIT_CODE_HELP, errorLine, exitCodeFor } from './exitCodes.js';
import { parsePositiveDuration } from './parsers.js';

export const DEFAULT_ROUTER = '127.0.0.1:7000';
export const DEFAULT_PD = '127.0.0.1:7100';

const EXAMPLES = `
Examples:
  omnictl put greeting hello --ttl 10m
  omnictl get greeting
  omnictl --json scan --pattern "user:*" --limit 20
  omnictl cas lock:a me --expect-absent --ttl 10s
  omnictl --pd 127.0.0.1:7100,127.0.0.1:7101 shard list
  omnictl shard move 3 --from 1 --to 4
  omnictl cluster up --dir ./.omnidict --detach
  omnictl bench --workload mixed --read-ratio 0.9 --concurrency 32 --duration 10s

Environment:
  OMNIDICT_ROUTER  router address(es) for KV commands (--router)
  OMNIDICT_PD      placement driver addresses, comma-separated (--pd)

${EXIT_CODE_HELP}
`;

/**
 * buildProgram returns the omnictl command tree bound to `ctx`. Commander never exits the process
 * (`exitOverride`) and never prints errors itself; `runCli` turns every failure into one line and
 * an exit code.
 */
export function buildProgram(ctx: CliContext): Command {
  const program = new Command('omnictl');
  program
    .description(
      'OmniDict command line: key-value operations, cluster admin, a local cluster launcher and a benchmark.',
    )
    .version('0.1.0', '-V, --version')
    .exitOverride()
    .configureOutput({
      writeOut: (s) => ctx.stdout(s),
      writeErr: (s) => ctx.stderr(s),
      outputError: () => {
        // runCli prints the one error line
      },
    })
    .addOption(
      new Option('--router <addresses>', 'router address(es), comma-separated')
        .env('OMNIDICT_ROUTER')
        .default(DEFAULT_ROUTER),
    )
    .addOption(
      new Option('--pd <addresses>', 'placement driver addresses, comma-separated')
        .env('OMNIDICT_PD')
        .default(DEFAULT_PD),
    )
    .addOption(
      new Option('--timeout <duration>', 'deadline of each call (500, 250ms, 10s)')
        .argParser(parsePositiveDuration)
        .default(5000, '5s'),
    )
    .option('--json', 'machine-readable JSON output', false)
    .addOption(
      new Option(
        '--embedded',
        'route KV requests inside omnictl from the --pd shard map, straight to the storage nodes (no router process)',
      )
        .env('OMNIDICT_EMBEDDED')
        .default(false),
    )
    .showSuggestionAfterError(true)
    .addHelpText('after', EXAMPLES);

  addKvCommands(program, ctx);
  addAdminCommands(program, ctx);
  addClusterCommands(program, ctx);
  addBenchCommand(program, ctx);
  return program;
}

/**
 * runCli runs omnictl with `args` (without node and script) and returns the exit code. Every error
 * becomes ONE line `omnictl: error: ...` on stderr with the documented exit code.
 */
export async function runCli(args: string[], ctx: CliContext): Promise<number> {
  const program = buildProgram(ctx);
  try {
    await program.parseAsync(args, { from: 'user' });
    return EXIT.ok;
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version') return EXIT.ok;
      // A bare command group (`omnictl`, `omnictl shard`) prints its help on stderr: a usage error.
      if (err.code === 'commander.help') return EXIT.usage;
    }
    ctx.stderr(errorLine(err));
    return exitCodeFor(err);
  }
}
