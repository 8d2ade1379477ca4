import { evenRanges } from '@omnidict/proto';
import HashRing from 'hashring';
import type { BootstrapShard } from '../state/pdState.js';
import type { ClusterState, LeaderPlacement } from './clusterView.js';
import { upNodeIds } from './clusterView.js';

/**
 * placeBootstrap decides the initial layout once at least `replicationFactor` nodes are up and the
 * cluster is not bootstrapped: `evenRanges(initialShards)`, each shard's replicas chosen by a
 * ketama ring over the up node ids (`ring.range('shard-<start>', replicationFactor)`). Returns
 * undefined when it is not time yet. The layout may be unbalanced for few shards; the balance
 * scheduler evens it out later. The first node of each shard hosts its first leader (the create
 * operator asks that replica to campaign): the ring's first choice under `balance`, which spreads
 * them; under `gather`, the lowest-id up node whenever it is among the chosen ones.
 */
export function placeBootstrap(
  state: ClusterState,
  leaderPlacement: LeaderPlacement = 'balance',
): BootstrapShard[] | undefined {
  if (state.bootstrapped) return undefined;
  const rf = state.config.replicationFactor;
  const up = upNodeIds(state);
  if (up.length < rf) return undefined;
  const ring = new HashRing(up.map(String));
  const leaderNode = up[0]!; // upNodeIds is sorted
  return evenRanges(state.config.initialShards).map((r) => {
    const nodeIds: number[] = ring.range(`shard-${r.start}`, rf).map(Number);
    if (leaderPlacement === 'gather' && nodeIds.includes(leaderNode)) {
      nodeIds.splice(nodeIds.indexOf(leaderNode), 1);
      nodeIds.unshift(leaderNode);
    }
    return { start: r.start, end: r.end, nodeIds };
  });
}
