/** One thing to undo at the end of a run: a cluster to stop, a directory to remove. */
export interface CleanupTask {
  name: string;
  /** Orderly stop (SIGTERM, wait, SIGKILL). */
  stop(): Promise<void>;
  /** Last resort from a `process.on('exit')` handler: synchronous, best effort (SIGKILL). */
  kill(): void;
}

/**
 * Cleanup owns everything a run started and stops it whatever happens: at the end of the run
 * (`stopAll`), on the first SIGINT/SIGTERM (orderly stop, then exit 130/143), on a second signal
 * (SIGKILL at once) and on process exit (SIGKILL for whatever is still registered). Tasks stop in
 * reverse order of registration.
 */
export class Cleanup {
  private readonly tasks: CleanupTask[] = [];
  private abortResolve: () => void = () => undefined;
  private stopping: Promise<void> | null = null;
  /** Resolves on the first signal; benchmarks pass it to runBench as their stop signal. */
  readonly aborted: Promise<void>;
  abortedBy: NodeJS.Signals | null = null;

  constructor(private readonly say: (line: string) => void = () => undefined) {
    this.aborted = new Promise((resolve) => {
      this.abortResolve = resolve;
    });
  }

  /** Registers a task; the returned function unregisters it (after the caller stopped it itself). */
  add(task: CleanupTask): () => void {
    this.tasks.push(task);
    return () => {
      const i = this.tasks.indexOf(task);
      if (i >= 0) this.tasks.splice(i, 1);
    };
  }

  get size(): number {
    return this.tasks.length;
  }

  /** Stops every registered task, newest first; a failing stop is reported and the rest still run. */
  stopAll(): Promise<void> {
    this.stopping ??= (async () => {
      while (this.tasks.length > 0) {
        const task = this.tasks.pop()!;
        try {
          await task.stop();
        } catch (err) {
          this.say(`stopping ${task.name} failed (${(err as Error).message}); killing it`);
          try {
            task.kill();
          } catch (killErr) {
            this.say(`killing ${task.name} failed: ${(killErr as Error).message}`);
          }
        }
      }
    })().finally(() => {
      this.stopping = null;
    });
    return this.stopping;
  }

  /** SIGKILLs every registered task synchronously. */
  killAll(): void {
    while (this.tasks.length > 0) {
      const task = this.tasks.pop()!;
      try {
        task.kill();
      } catch (err) {
        this.say(`killing ${task.name} failed: ${(err as Error).message}`);
      }
    }
  }

  /** Marks the run aborted: running benchmarks stop at their next operation. */
  abort(): void {
    this.abortResolve();
  }

  /**
   * installProcessHandlers wires signals and exit: first SIGINT/SIGTERM aborts and stops everything
   * in order, then exits 128+signo; a second one kills at once. Returns the uninstaller.
   */
  installProcessHandlers(): () => void {
    const onSignal = (sig: NodeJS.Signals) => {
      if (this.abortedBy) {
        this.say(`${sig} again: killing everything`);
        this.killAll();
        process.exit(sig === 'SIGINT' ? 130 : 143);
      }
      this.abortedBy = sig;
      this.say(`${sig}: stopping every process this run started`);
      this.abort();
      void this.stopAll().finally(() => process.exit(sig === 'SIGINT' ? 130 : 143));
    };
    const onExit = () => this.killAll();
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    process.on('exit', onExit);
    return () => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      process.off('exit', onExit);
    };
  }
}
