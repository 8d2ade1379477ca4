/**
 * CliContext is everything a command touches outside its arguments, so tests drive the whole
 * command tree in-process with captured output.
 */
export interface CliContext {
  /** Command output (values, tables, JSON). */
  stdout(chunk: string | Uint8Array): void;
  /** Errors, progress lines and hints. */
  stderr(chunk: string): void;
  readStdin(): Promise<Buffer>;
  /** True when stderr is a terminal: live progress lines are shown only then. */
  stderrIsTTY: boolean;
  /** The stream live progress bars draw on (process.stderr when it is a TTY). */
  progressStream?: NodeJS.WriteStream;
  /** Directory of the compiled cli (packages/cli/dist), where launcher binaries are looked up from. */
  cliDir?: string;
  /**
   * Calls `handler` on Ctrl-C / SIGTERM until the returned function unsubscribes; foreground
   * commands (cluster up, bench) stop cleanly on it.
   */
  onSignal?(handler: (sig: NodeJS.Signals) => void): () => void;
}

export function processContext(cliDir: string): CliContext {
  // `omnictl keys | head`: the reader went away. Stop quietly, as Unix tools do.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(0);
    throw err;
  });
  const ctx: CliContext = {
    stdout: (chunk) => process.stdout.write(chunk),
    stderr: (chunk) => process.stderr.write(chunk),
    readStdin: async () => {
      const chunks: Buffer[] = [];
      for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
      return Buffer.concat(chunks);
    },
    stderrIsTTY: process.stderr.isTTY === true,
    cliDir,
    onSignal: (handler) => {
      process.on('SIGINT', handler);
      process.on('SIGTERM', handler);
      return () => {
        process.off('SIGINT', handler);
        process.off('SIGTERM', handler);
      };
    },
  };
  if (process.stderr.isTTY) ctx.progressStream = process.stderr;
  return ctx;
}
