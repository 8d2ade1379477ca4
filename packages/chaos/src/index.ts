export type { DeepestPoint, Explanation } from './checker/explain.js';
export type { CheckOptions, CheckResult, KeyResult, SearchOutcome, Verdict } from './checker/linearizability.js';
export { checkLinearizability, relevantOps, searchLinearization } from './checker/linearizability.js';
export type { LostWrite, LostWriteReport } from './checker/lostWrites.js';
export { checkLostWrites } from './checker/lostWrites.js';
export type { ExpiryWindow, Model, RegisterModelOptions, RegisterState } from './checker/registerModel.js';
export { DEFAULT_TTL_SLACK_MS, RegisterModel } from './checker/registerModel.js';
export type { GetOp, History, Operation, OpInputs, OpKind, OpOutputs, Outcome, PendingOp } from './history.js';
export {
  describeOperation,
  effectiveCompleteMs,
  HISTORY_FORMAT_VERSION,
  HistoryRecorder,
  parseHistory,
  partitionByKey,
  serializeHistory,
} from './history.js';
export { Rng, randomSeed } from './rng.js';
export type { GenerateOptions, Mutation, MutationKind } from './testing/historyGenerator.js';
export { DEFAULT_GENERATE_OPTIONS, generateLinearizableHistory, mutateHistory } from './testing/historyGenerator.js';
