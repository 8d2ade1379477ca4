/**
 * RaftError is the one error type of the Raft core (tikv/raft-rs style). `code` is a string union:
 *
 * | code | meaning |
 * | --- | --- |
 * | PROPOSAL_DROPPED | the proposal was not appended (no leader known, or this replica was removed) |
 * | NOT_LEADER | this replica is not the leader; `leaderId` in details when known |
 * | TRANSFER_IN_PROGRESS | a leadership transfer is under way; proposals are refused until it ends |
 * | CONF_CHANGE_PENDING | a membership change is already pending (one at a time) |
 * | COMPACTED | the requested index was compacted into a snapshot |
 * | UNAVAILABLE | the requested index is beyond the last index |
 * | SNAPSHOT_OUT_OF_DATE | the snapshot is older than the current one |
 * | SNAPSHOT_TEMPORARILY_UNAVAILABLE | the storage cannot produce a snapshot right now |
 * | INVALID_CONFIG | the configuration is not usable |
 */
export type RaftErrorCode =
  | 'PROPOSAL_DROPPED'
  | 'NOT_LEADER'
  | 'TRANSFER_IN_PROGRESS'
  | 'CONF_CHANGE_PENDING'
  | 'COMPACTED'
  | 'UNAVAILABLE'
  | 'SNAPSHOT_OUT_OF_DATE'
  | 'SNAPSHOT_TEMPORARILY_UNAVAILABLE'
  | 'INVALID_CONFIG';

export class RaftError extends Error {
  readonly code: RaftErrorCode;
  readonly leaderId: number;

  constructor(code: RaftErrorCode, message: string, details: { leaderId?: number } = {}) {
    super(message);
    this.name = 'RaftError';
    this.code = code;
    this.leaderId = details.leaderId ?? 0;
  }
}
