import type { NodeId } from '../ids.js';
import type { NodeStateName } from '../state/pdState.js';
import type { ClusterState } from './clusterView.js';

export interface NodeStateChange {
  readonly nodeId: NodeId;
  readonly state: NodeStateName;
}

/**
 * checkLiveness turns heartbeat times (soft state) into node state changes to propose: an up node
 * silent for more than `downTimeoutMs` goes down; a down node heard from within the timeout comes
 * back up. Removed nodes never change. A node with no heartbeat entry is judged from `sinceMs`
 * (when this PD became leader), so a new leader does not mark every node down at once.
 */
export function checkLiveness(
  state: ClusterState,
  lastHeartbeatMs: ReadonlyMap<NodeId, number>,
  nowMs: number,
  downTimeoutMs: number,
  sinceMs: number,
): NodeStateChange[] {
  const changes: NodeStateChange[] = [];
  for (const node of [...state.nodes.values()].sort((a, b) => a.id - b.id)) {
    if (node.state === 'removed') continue;
    const last = lastHeartbeatMs.get(node.id) ?? sinceMs;
    const alive = nowMs - last <= downTimeoutMs;
    if (node.state === 'up' && !alive) changes.push({ nodeId: node.id, state: 'down' });
    if (node.state === 'down' && alive && lastHeartbeatMs.has(node.id)) changes.push({ nodeId: node.id, state: 'up' });
  }
  return changes;
}
