import type { Workload } from '@omnidict/cli';
import { InvalidArgumentError } from 'commander';
import type { SystemName } from './compareRun.js';

/** `5` (seconds), `5s`, `1500ms`, `2m` → milliseconds. */
export function parseDuration(value: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(value.trim());
  if (!m) throw new InvalidArgumentError(`expected a duration like 5s, 1500ms or 2m, got ${value}`);
  const n = Number(m[1]);
  const ms = m[2] === 'ms' ? n : m[2] === 'm' ? n * 60_000 : n * 1000;
  if (ms <= 0) throw new InvalidArgumentError('a duration must be positive');
  return Math.round(ms);
}

/** `1,16,64` → [1, 16, 64]; every entry a positive integer, duplicates dropped, order kept. */
export function parseCountList(value: string): number[] {
  if (value.trim() === 'none') return [];
  const out: number[] = [];
  for (const part of value.split(',')) {
    const n = Number(part.trim());
    if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError(`expected positive integers, got ${part}`);
    if (!out.includes(n)) out.push(n);
  }
  return out;
}

function parseNameList<T extends string>(value: string, allowed: readonly T[]): T[] {
  const out: T[] = [];
  for (const part of value.split(',').map((s) => s.trim())) {
    if (!(allowed as readonly string[]).includes(part)) {
      throw new InvalidArgumentError(`unknown ${part}; expected some of ${allowed.join(',')}`);
    }
    if (!out.includes(part as T)) out.push(part as T);
  }
  return out;
}

export const WORKLOADS: readonly Workload[] = ['put', 'get', 'mixed'];
export const SYSTEMS: readonly SystemName[] = ['etcd', 'omnidict'];

export const parseWorkloads = (v: string) => parseNameList(v, WORKLOADS);
export const parseSystems = (v: string) => parseNameList(v, SYSTEMS);

export function parseNonNegativeInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`expected a non-negative integer, got ${value}`);
  return n;
}

export function parsePositiveInt(value: string): number {
  const n = parseNonNegativeInt(value);
  if (n === 0) throw new InvalidArgumentError('expected a positive integer');
  return n;
}

export function parseRatio(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0 || n > 1) throw new InvalidArgumentError(`expected a ratio in [0, 1], got ${value}`);
  return n;
}
