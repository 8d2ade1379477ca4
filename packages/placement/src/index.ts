/**
 * @omnidict/placement: the placement driver (`omnidict-pd`). `startPd` runs one PD replica; the
 * state, scheduler and operator modules are exported for tools and tests.
 */
export type { NodeId, OperatorId, ReplicaId, ShardId } from './ids.js';
export { instrumentUnary, type PdRequestObserver } from './instrumentUnary.js';
export { GrpcNodeAdmin } from './operators/grpcNodeAdmin.js';
export type { NodeAdminApi } from './operators/nodeAdminApi.js';
export type { OperatorKind, OperatorParams, OperatorSpec } from './operators/operatorTypes.js';
export type { OperatorConfig } from './operators/step.js';
export { DEFAULT_OPERATOR_CONFIG } from './operators/step.js';
export type { PdLogger } from './pdController.js';
export { PdController } from './pdController.js';
export { registerPdRequestMetrics } from './pdMetrics.js';
export type { PdHandle, PdLoggerFull, PdOptions } from './pdServer.js';
export { PD_GROUP_ID, PD_SERVICE_NAME, startPd } from './pdServer.js';
export type { LeaderPlacement, SchedulerConfig, ShardStats, SoftState } from './scheduler/clusterView.js';
export { DEFAULT_SCHEDULER_CONFIG, LEADER_PLACEMENTS } from './scheduler/clusterView.js';
export { schedule } from './scheduler/schedule.js';
export type {
  ApplyResult,
  ClusterConfig,
  NodeRecord,
  NodeStateName,
  OperatorRecord,
  OperatorStateName,
  PdCommand,
} from './state/pdState.js';
export { decodeCommand, encodeCommand, PdState } from './state/pdState.js';
