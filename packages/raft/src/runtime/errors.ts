/**
 * RuntimeError is the one error type of the multi-Raft runtime. `code` is a string union:
 *
 * | code | meaning |
 * | --- | --- |
 * | NOT_LEADER | this replica is not the leader; `leaderReplicaId`/`leaderNodeId` are hints (0 = unknown) |
 * | PROPOSAL_DROPPED | not appended, or appended and later overwritten by another leader's entry |
 * | TRANSFER_IN_PROGRESS | a leadership transfer is under way; retry on the new leader |
 * | CONF_CHANGE_PENDING | a membership change is already pending |
 * | GROUP_NOT_FOUND | this host has no replica of the group |
 * | GROUP_EXISTS | createGroup for a group this host already has |
 * | CLOSED | the host was closed (or crashed) before the operation finished; outcome unknown |
 * | UNAVAILABLE | a peer could not be reached (transport) |
 * | SNAPSHOT_FAILED | sending or receiving a snapshot failed |
 * | TOO_LARGE | a proposal or snapshot chunk exceeds a configured limit |
 * | STORAGE | the storage engine failed; the host stops (a restart recovers from disk) |
 * | INVALID_ARGUMENT | a caller error (bad group spec, bad option) |
 * | TIMEOUT | the caller's deadline passed; for a proposal the outcome is unknown |
 * | OUTCOME_UNKNOWN | the proposal's entry reached this replica in a snapshot: it may have been applied |
 */
export type RuntimeErrorCode =
  | 'NOT_LEADER'
  | 'PROPOSAL_DROPPED'
  | 'TRANSFER_IN_PROGRESS'
  | 'CONF_CHANGE_PENDING'
  | 'GROUP_NOT_FOUND'
  | 'GROUP_EXISTS'
  | 'CLOSED'
  | 'UNAVAILABLE'
  | 'SNAPSHOT_FAILED'
  | 'TOO_LARGE'
  | 'STORAGE'
  | 'INVALID_ARGUMENT'
  | 'TIMEOUT'
  | 'OUTCOME_UNKNOWN';

export interface RuntimeErrorDetails {
  readonly groupId?: number;
  /** NOT_LEADER: the leader's replica id within the group, 0 when unknown. */
  readonly leaderReplicaId?: number;
  /** NOT_LEADER: the process hosting the leader, 0 when unknown. */
  readonly leaderNodeId?: number;
  readonly cause?: unknown;
}

export class RuntimeError extends Error {
  readonly code: RuntimeErrorCode;
  readonly groupId: number;
  readonly leaderReplicaId: number;
  readonly leaderNodeId: number;

  constructor(code: RuntimeErrorCode, message: string, details: RuntimeErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'RuntimeError';
    this.code = code;
    this.groupId = details.groupId ?? 0;
    this.leaderReplicaId = details.leaderReplicaId ?? 0;
    this.leaderNodeId = details.leaderNodeId ?? 0;
  }
}
