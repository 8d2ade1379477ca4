/** @omnidict/cli: the omnictl command tree, for embedding and in-process tests. */

export {
  type BenchHooks,
  type BenchOptions,
  type BenchProgress,
  type BenchResult,
  type BenchTarget,
  benchKey,
  type Distribution,
  runBench,
  type Workload,
} from './bench/runBench.js';
export { type CliContext, processContext } from './cliContext.js';
export { EXIT, EXIT_CODE_HELP, errorLine, exitCodeFor } from './exitCodes.js';
export { buildBinaries, findCliMain } from './findCliMain.js';
export { freePort, LEADER_PLACEMENTS, type LeaderPlacement } from './launcher/localCluster.js';
export {
  parseDuration,
  parsePositiveDuration,
  parsePositiveInt,
  parseRatio,
  parseRunDuration,
  parseUint,
} from './parsers.js';
export { buildProgram, DEFAULT_PD, DEFAULT_ROUTER, runCli } from './program.js';
