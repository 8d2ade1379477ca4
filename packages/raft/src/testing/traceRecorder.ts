/**
 * TraceRecorder keeps the readable event log of one simulation run: one line per event, prefixed
 * with the step number and the simulated time. When disabled it records nothing and costs one
 * branch per event, so the suite runs seeds untraced and reruns a failing seed with tracing on
 * (runs are deterministic, so the rerun fails the same way).
 */
export class TraceRecorder {
  readonly enabled: boolean;
  readonly #lines: string[] = [];
  readonly #maxLines: number;
  #dropped = 0;
  step = 0;
  time = 0;

  /** `maxLines` bounds memory: only the last `maxLines` lines are kept (0 = unbounded). */
  constructor(opts: { enabled: boolean; maxLines?: number }) {
    this.enabled = opts.enabled;
    this.#maxLines = opts.maxLines ?? 0;
  }

  /** record adds a line; pass a function to build the string only when tracing is enabled. */
  record(line: string | (() => string)): void {
    if (!this.enabled) return;
    const text = typeof line === 'string' ? line : line();
    this.#lines.push(`[${String(this.step).padStart(5)} t=${String(this.time).padStart(4)}] ${text}`);
    if (this.#maxLines > 0 && this.#lines.length > this.#maxLines * 2) {
      const cut = this.#lines.length - this.#maxLines;
      this.#lines.splice(0, cut);
      this.#dropped += cut;
    }
  }

  lines(): string[] {
    const kept = this.#maxLines > 0 ? this.#lines.slice(-this.#maxLines) : this.#lines;
    const dropped = this.#dropped + (this.#lines.length - kept.length);
    return dropped > 0 ? [`... ${dropped} earlier lines omitted`, ...kept] : [...kept];
  }

  /** format returns the whole trace as printable text. */
  format(): string {
    return this.lines().join('\n');
  }
}
