/**
 * @omnidict/bench: OmniDict against etcd (`pnpm bench:compare`). The pieces are exported for tests
 * and for other harnesses: the etcd cluster command line, the subjects, the tables.
 */
export { Cleanup, type CleanupTask } from './cleanup.js';
export { type CompareOptions, type CompareReport, CompareRun, type IdleCpu, type SystemName } from './compareRun.js';
export {
  clientUrl,
  EtcdCluster,
  type EtcdClusterPlan,
  type EtcdMember,
  ensureEtcd,
  etcdEnv,
  etcdMemberArgs,
  peerUrl,
  which,
} from './etcdCluster.js';
export { clusterUpArgs, OmniCluster, readClusterFile } from './omniCluster.js';
export { parseCountList } from './options.js';
export { cpuTimeMs, freePort } from './processes.js';
export { idleLine, renderReport } from './report.js';
export { etcdSubject, omniSubject, type Subject } from './subjects.js';
export {
  type Cell,
  comparisonTable,
  formatMs,
  formatOps,
  formatRatio,
  formatTable,
  ratio,
  type ShardCell,
  shardTable,
} from './table.js';
