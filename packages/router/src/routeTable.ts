import type { common, pdpb } from '@omnidict/proto';

type ShardDescriptor = common.ShardDescriptor;

/** One cached route: a shard's descriptor and the node believed to lead it (0 = unknown). */
export interface Route {
  readonly shard: ShardDescriptor;
  leaderNodeId: number;
}

/** Ring end: shards own [start, end) with end up to 2^32. */
export const RING_END = 2 ** 32;

function version(d: ShardDescriptor): number {
  return d.epoch?.version ?? 0;
}

function confVer(d: ShardDescriptor): number {
  return d.epoch?.confVer ?? 0;
}

/**
 * True when `a` is strictly newer than `b` as far as routing goes. For the same shard, compare
 * (version, confVer); for different shards with overlapping ranges, the higher `version` wins (a
 * split or merge bumps the version of every shard it produces beyond the version of its parent).
 */
export function isNewer(a: ShardDescriptor, b: ShardDescriptor): boolean {
  if (a.id === b.id) return version(a) > version(b) || (version(a) === version(b) && confVer(a) > confVer(b));
  return version(a) > version(b);
}

function overlaps(a: ShardDescriptor, b: ShardDescriptor): boolean {
  return a.start < b.end && b.start < a.end;
}

/**
 * RouteTable is the router's cache of the ring: shard ranges sorted by start, the leader of each
 * shard, and node addresses. Lookups are a binary search over starts.
 *
 * Invariant: routes never overlap. The table may have gaps (a split learned from a hint before its
 * sibling is known); a lookup in a gap returns undefined and the caller refreshes from PD.
 * Hints learned from nodes (STALE_EPOCH descriptors, NOT_LEADER leaders) update the table before PD
 * catches up; a PD map never replaces a route with an older one.
 */
export class RouteTable {
  private routes: Route[] = [];
  private readonly nodeAddresses = new Map<number, string>();
  private revisionValue = 0;
  private loaded = false;

  /** Revision of the last PD map applied (0 before the first). */
  get revision(): number {
    return this.revisionValue;
  }

  /** True once a PD map has been applied. */
  get hasMap(): boolean {
    return this.loaded;
  }

  get size(): number {
    return this.routes.length;
  }

  /**
   * applyMap installs a full PD shard map. Maps older than the last applied revision are ignored
   * (returns false). Routes learned locally that are newer than the PD's view of their range are
   * kept, so a lagging PD cannot undo a STALE_EPOCH hint.
   */
  applyMap(map: pdpb.ShardMap): boolean {
    if (this.loaded && map.revision < this.revisionValue) return false;
    const previous = this.routes;
    this.routes = [];
    for (const r of map.routes) {
      if (!r.shard) continue;
      this.insert({ shard: r.shard, leaderNodeId: r.leaderNodeId });
    }
    for (const r of previous) this.insertIfNewer(r.shard, r.leaderNodeId);
    for (const [id, addr] of Object.entries(map.nodeAddresses)) this.nodeAddresses.set(Number(id), addr);
    this.revisionValue = map.revision;
    this.loaded = true;
    return true;
  }

  /** locate returns the route owning ring position `pos`, or undefined (no map yet, or a gap). */
  locate(pos: number): Route | undefined {
    let lo = 0;
    let hi = this.routes.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const r = this.routes[mid]!;
      if (pos < r.shard.start) hi = mid - 1;
      else if (pos >= r.shard.end) lo = mid + 1;
      else return r;
    }
    return undefined;
  }

  /** All routes in ring order (a snapshot). */
  all(): Route[] {
    return [...this.routes];
  }

  byShardId(shardId: number): Route | undefined {
    return this.routes.find((r) => r.shard.id === shardId);
  }

  nodeAddress(nodeId: number): string | undefined {
    return this.nodeAddresses.get(nodeId);
  }

  setNodeAddress(nodeId: number, address: string): void {
    if (nodeId !== 0 && address !== '') this.nodeAddresses.set(nodeId, address);
  }

  /**
   * applyDescriptors folds in descriptors a node reported with STALE_EPOCH / SHARD_NOT_FOUND
   * (its current shard and, after a split, the new shards). Each replaces the overlapping routes
   * it is newer than. Returns true when the table changed.
   */
  applyDescriptors(descriptors: readonly ShardDescriptor[]): boolean {
    let changed = false;
    for (const d of descriptors) {
      const existing = this.byShardId(d.id);
      // A new descriptor keeps the leader we knew for the same shard when it still hosts a replica.
      const leader = existing && d.replicas.some((r) => r.nodeId === existing.leaderNodeId) ? existing.leaderNodeId : 0;
      if (this.insertIfNewer(d, leader)) changed = true;
    }
    return changed;
  }

  /**
   * applyLeaderHint records the leader a NOT_LEADER answer named. With no hint (leaderNodeId 0),
   * the next voter after `failedNodeId` is tried, so a request walks the replicas.
   */
  applyLeaderHint(shardId: number, failedNodeId: number, leaderNodeId: number, leaderAddress: string): void {
    const route = this.byShardId(shardId);
    if (leaderNodeId !== 0) {
      this.setNodeAddress(leaderNodeId, leaderAddress);
      if (route) route.leaderNodeId = leaderNodeId;
      return;
    }
    if (route) route.leaderNodeId = nextReplicaNode(route.shard, failedNodeId);
  }

  /** The node to send a shard's requests to: its leader, or its first voter when unknown. */
  targetNode(route: Route): number {
    if (route.leaderNodeId !== 0) return route.leaderNodeId;
    const voter = route.shard.replicas.find((r) => r.role === 0) ?? route.shard.replicas[0];
    return voter?.nodeId ?? 0;
  }

  private insertIfNewer(d: ShardDescriptor, leaderNodeId: number): boolean {
    for (const r of this.routes) {
      if (!overlaps(r.shard, d) && r.shard.id !== d.id) continue;
      if (!isNewer(d, r.shard)) return false;
    }
    this.insert({ shard: d, leaderNodeId });
    return true;
  }

  /** insert replaces every route that overlaps `route` (or has its id), keeping the order by start. */
  private insert(route: Route): void {
    const d = route.shard;
    if (d.end <= d.start) return;
    this.routes = this.routes.filter((r) => !overlaps(r.shard, d) && r.shard.id !== d.id);
    let i = this.routes.findIndex((r) => r.shard.start > d.start);
    if (i < 0) i = this.routes.length;
    this.routes.splice(i, 0, route);
  }
}

/** The node of the replica after `nodeId` in descriptor order (voters first), wrapping around. */
export function nextReplicaNode(shard: ShardDescriptor, nodeId: number): number {
  const voters = shard.replicas.filter((r) => r.role === 0);
  const list = voters.length > 0 ? voters : shard.replicas;
  if (list.length === 0) return 0;
  const i = list.findIndex((r) => r.nodeId === nodeId);
  return list[(i + 1) % list.length]!.nodeId;
}
