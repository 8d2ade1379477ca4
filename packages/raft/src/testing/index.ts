/**
 * @omnidict/raft/testing: the seeded simulation harness of the Raft core and its building blocks
 * (deterministic PRNG, simulated network, invariant checker, trace recorder, readable formatting).
 */

export {
  formatConfChange,
  formatConfState,
  formatData,
  formatEntries,
  formatEntry,
  formatHardState,
  formatMessage,
  formatMessageType,
  formatReady,
  formatRole,
  formatSnapshot,
} from './formatMessage.js';
export { InvariantChecker, SimulationFailure } from './invariantChecker.js';
export { decodeSnapshotData, digestEntry, EMPTY_DIGEST, encodeSnapshotData } from './logDigest.js';
export { hash32, mulberry32, Prng } from './prng.js';
export { runSeeds, type SeedRangeResult } from './runSeeds.js';
export { healthyNetwork, type NetworkFaults, type SendOutcome, SimNetwork } from './simNetwork.js';
export {
  rerunCommand,
  runSimulation,
  type SimulationOptions,
  type SimulationResult,
  type SimulationStats,
} from './simulation.js';
export { TraceRecorder } from './traceRecorder.js';
