import type { common } from '@omnidict/proto';
import type { OperatorRecord, OperatorStateName } from '../state/pdState.js';
import { isActive } from '../state/pdState.js';
import { isReplicaChange } from './operatorTypes.js';
import { createSteps, splitSteps, transferLeaderSteps } from './otherSteps.js';
import { replicaChangeSteps } from './replicaChangeSteps.js';
import type { OperatorContext, OperatorMemory, Step } from './step.js';

/** The step list of an operator, derived from its (replicated) params alone. */
export function stepsOf(op: OperatorRecord): Step[] {
  const p = op.params;
  if (p.kind === 'create') return createSteps();
  if (p.kind === 'split') return splitSteps(p);
  if (p.kind === 'transferLeader') return transferLeaderSteps(p);
  if (isReplicaChange(p)) return replicaChangeSteps(p);
  return [];
}

export interface DriveResult {
  readonly state: OperatorStateName;
  readonly step: string;
  readonly reason: string;
  /** True when state or step differ from the record: the driver proposes an `updateOperator`. */
  readonly changed: boolean;
  /** Descriptors learned from NodeAdmin responses, to propose as shard reports. */
  readonly learned: common.ShardDescriptor[];
  /** 0..1, for a move's catch-up. */
  readonly progress: number;
}

/**
 * driveOperator runs an operator from its recorded step as far as it can go now: each step that
 * reports `next` hands over to the following one in the same drive; the first `wait` ends the
 * drive; the last step's `next` makes the operator done. An operator past its kind's timeout
 * fails with a reason naming the step it was stuck in and the last error seen.
 */
export async function driveOperator(
  op: OperatorRecord,
  ctx: OperatorContext,
  mem: OperatorMemory,
): Promise<DriveResult> {
  mem.learned = [];
  const result = (state: OperatorStateName, step: string, reason: string): DriveResult => ({
    state,
    step,
    reason,
    changed: state !== op.state || step !== op.step || reason !== op.reason,
    learned: mem.learned,
    progress: mem.progress,
  });
  if (!isActive(op)) return result(op.state, op.step, op.reason);
  const steps = stepsOf(op);
  let idx = op.step === '' ? 0 : steps.findIndex((s) => s.name === op.step);
  if (idx < 0) return result('failed', op.step, `unknown step '${op.step}' for ${op.kind}`);
  const timeoutMs = ctx.config.timeoutMsByKind[op.kind];
  if (ctx.nowMs - op.createdMs > timeoutMs) {
    const last = mem.lastError ? ` (last error: ${mem.lastError})` : '';
    return result(
      'failed',
      steps[idx]?.name ?? op.step,
      `timeout after ${timeoutMs} ms in step ${steps[idx]?.name}${last}`,
    );
  }
  while (idx < steps.length) {
    const step = steps[idx]!;
    const outcome = await step.run(op, ctx, mem);
    if (outcome.kind === 'fail') return result('failed', step.name, outcome.reason);
    if (outcome.kind === 'wait') return result('running', step.name, op.reason);
    idx++;
    mem.lastIssuedMs = Number.NEGATIVE_INFINITY;
    mem.acked.clear();
    mem.lastError = '';
  }
  return result('done', steps[steps.length - 1]?.name ?? '', op.reason);
}
