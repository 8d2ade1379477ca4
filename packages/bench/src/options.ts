import type { Workload } from '@omnidict/cli';
import { InvalidArgumentError } from 'commander';
import type { SystemName } from './compareRun.js';

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
