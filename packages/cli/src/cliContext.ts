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
   * Calls `handler` on Ctrl-C / SIGTERM / SIGHUP (the terminal closed) until the returned function
   * unsubscribes; foreground commands (cluster up, bench) stop cleanly on it.
   */
  onSignal?(handler: (sig: NodeJS.Signals) => void): () => void;
}

const STOP_SIGNALS: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

/** The reader of our output went away: a closed pipe, or a terminal that was closed (EIO). */
function readerGone(err: NodeJS.ErrnoException): boolean {
  return err.code === 'EPIPE' || err.code === 'EIO';
}

export function processContext(cliDir: string): CliContext {
  // A foreground command (cluster up, bench) handles its own stop and must not leave children
  // behind: once one has subscribed to signals, a vanished reader never ends the process.
  let foreground = false;
  // `omnictl keys | head`: the reader went away. Stop quietly, as Unix tools do — unless a
  // foreground command runs (say its terminal closed: it is stopping on SIGHUP; output is lost).
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (!readerGone(err)) throw err;
    if (!foreground) process.exit(0);
  });
  process.stderr.on('error', (err: NodeJS.ErrnoException) => {
    if (!readerGone(err)) throw err;
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
      foreground = true;
      for (const sig of STOP_SIGNALS) process.on(sig, handler);
      return () => {
        for (const sig of STOP_SIGNALS) process.off(sig, handler);
      };
    },
  };
  if (process.stderr.isTTY) ctx.progressStream = process.stderr;
  return ctx;
}
