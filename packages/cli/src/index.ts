/** @omnidict/cli: the omnictl command tree, for embedding and in-process tests. */
export { type CliContext, processContext } from './cliContext.js';
export { EXIT, EXIT_CODE_HELP, errorLine, exitCodeFor } from './exitCodes.js';
export { buildProgram, DEFAULT_PD, DEFAULT_ROUTER, runCli } from './program.js';
