import type { SimulationOptions, SimulationResult } from './simulation.js';
import { runSimulation } from './simulation.js';

export type SeedRangeResult =
  | { readonly ok: true; readonly passed: number }
  | { readonly ok: false; readonly passed: number; readonly failure: Extract<SimulationResult, { ok: false }> };

/**
 * runSeeds runs seeds `start .. start+count-1` in order and stops at the first failure (whose
 * result carries the traced rerun). Shared by the CLI and the test suite.
 */
export function runSeeds(
  start: number,
  count: number,
  opts: Omit<SimulationOptions, 'seed' | 'trace'> = {},
): SeedRangeResult {
  for (let seed = start; seed < start + count; seed++) {
    const r = runSimulation({ ...opts, seed });
    if (!r.ok) return { ok: false, passed: seed - start, failure: r };
  }
  return { ok: true, passed: count };
}
