import { type ErrorCode, OmniError } from '@omnidict/client';
import { CommanderError } from 'commander';

/**
 * omnictl's exit codes. Documented in README.md and `omnictl --help`; scripts rely on them.
 *
 * | exit | when |
 * | --- | --- |
 * | 0 | success |
 * | 1 | any other error (INTERNAL, CANCELLED, a launcher process failed to start) |
 * | 2 | usage: unknown command, wrong argument count, malformed flag, empty or oversized key (INVALID_ARGUMENT, TOO_LARGE) |
 * | 3 | NOT_FOUND: the key, node, shard or operator does not exist |
 * | 4 | UNAVAILABLE: router or PD unreachable (the address is named), no leader, no quorum |
 * | 5 | TIMEOUT: the deadline passed; a write may or may not have happened |
 * | 6 | CONFLICT: a cas did not swap, or an operator already runs on the shard |
 */
export const EXIT = { ok: 0, error: 1, usage: 2, notFound: 3, unavailable: 4, timeout: 5, conflict: 6 } as const;

const BY_CODE: Record<ErrorCode, number> = {
  NOT_FOUND: EXIT.notFound,
  INVALID_ARGUMENT: EXIT.usage,
  TOO_LARGE: EXIT.usage,
  NOT_LEADER: EXIT.unavailable,
  STALE_EPOCH: EXIT.unavailable,
  SHARD_NOT_FOUND: EXIT.unavailable,
  UNAVAILABLE: EXIT.unavailable,
  TIMEOUT: EXIT.timeout,
  CONFLICT: EXIT.conflict,
  CANCELLED: EXIT.error,
  INTERNAL: EXIT.error,
};

export const EXIT_CODE_HELP = `Exit codes:
  0  success
  1  other error (internal, a launched process failed to start)
  2  usage error: unknown command, wrong argument count, malformed flag, empty or oversized key (> 4096 bytes)
  3  not found (key, node, shard, operator)
  4  unavailable: router or placement driver unreachable (address named), no leader or quorum
  5  timeout: the deadline passed; a write may or may not have happened
  6  conflict: cas did not swap, or an operator already runs on the shard`;

export function exitCodeFor(err: unknown): number {
  if (err instanceof OmniError) return BY_CODE[err.code];
  if (err instanceof CommanderError) return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
  return EXIT.error;
}

/** The one line shown for an error: `omnictl: error: ...`, newlines folded. */
export function errorLine(err: unknown): string {
  let msg = err instanceof Error ? err.message : String(err);
  if (err instanceof CommanderError) msg = msg.replace(/^error: /, '');
  return `omnictl: error: ${msg.replace(/\s*\n\s*/g, ' ').trim()}\n`;
}
