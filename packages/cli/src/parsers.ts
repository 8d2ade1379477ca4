import { InvalidArgumentError } from 'commander';

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Parses a duration: a bare integer is milliseconds; `250ms`, `10s`, `5m`, `2h`, `1d` also work. */
export function parseDuration(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(text.trim());
  if (!m) throw new InvalidArgumentError('expected a duration such as 500, 250ms, 10s, 5m or 2h.');
  const ms = Math.round(Number(m[1]) * UNIT_MS[m[2] ?? 'ms']!);
  if (!Number.isSafeInteger(ms)) throw new InvalidArgumentError('duration out of range.');
  return ms;
}

/** A duration that must be > 0 (ttl, timeout). */
export function parsePositiveDuration(text: string): number {
  const ms = parseDuration(text);
  if (ms <= 0) throw new InvalidArgumentError('must be greater than zero.');
  return ms;
}

/**
 * A benchmark's run time: positive, and with an explicit unit — elsewhere a bare number means
 * milliseconds, and `--duration 5` running for 5 ms is never what anyone meant.
 */
export function parseRunDuration(text: string): number {
  const bare = /^\s*(\d+(?:\.\d+)?)\s*$/.exec(text);
  if (bare) throw new InvalidArgumentError(`give a unit, e.g. ${bare[1]}s or ${bare[1]}ms.`);
  return parsePositiveDuration(text);
}

/** A non-negative integer (ids, mod indexes, ring positions). */
export function parseUint(text: string): number {
  if (!/^\d+$/.test(text.trim())) throw new InvalidArgumentError('expected a non-negative integer.');
  const n = Number(text);
  if (!Number.isSafeInteger(n)) throw new InvalidArgumentError('integer out of range.');
  return n;
}

export function parsePositiveInt(text: string): number {
  const n = parseUint(text);
  if (n <= 0) throw new InvalidArgumentError('must be greater than zero.');
  return n;
}

/** A fraction in [0, 1]. */
export function parseRatio(text: string): number {
  const n = Number(text);
  if (text.trim() === '' || !Number.isFinite(n) || n < 0 || n > 1) {
    throw new InvalidArgumentError('expected a number between 0 and 1.');
  }
  return n;
}

/** Builds a parser accepting exactly one of `choices`. */
export function oneOf<T extends string>(...choices: T[]): (text: string) => T {
  return (text) => {
    if (!(choices as string[]).includes(text)) throw new InvalidArgumentError(`expected one of ${choices.join(', ')}.`);
    return text as T;
  };
}
