import { evenRanges } from '@omnidict/proto';
import HashRing from 'hashring';
import type { BootstrapShard } from '../state/pdState.js';
import type { ClusterState } from './clusterView.js';
import { upNodeIds } from './clusterView.js';

/**
 * placeBootstrap decides the initial layout once at least `replicationFactor` nodes are up and the
 * cluster is not bootstrapped: `evenRanges(initialShards)`, each shard's replicas chosen by a
 * ketama ring over the up node ids (`ring.range('shard-<start>', replicationFactor)`). Returns
 * undefined when it is not time yet. The layout may be unbalanced for few shards; the balance
 * scheduler evens it out later.
 */
export function placeBootstrap(state: ClusterState): BootstrapShard[] | undefined {
  if (state.bootstrapped) return undefined;
  const rf = state.config.replicationFactor;
  const up = upNodeIds(state);
  if (up.length < rf) return undefined;
  const ring = new HashRing(up.map(String));
  return evenRanges(state.config.initialShards).map((r) => ({
    start: r.start,
    end: r.end,
    nodeIds: ring.range(`shard-${r.start}`, rf).map(Number),
  }));
}
