import type { Message, ReplicaId } from '../core/types.js';
import type { Prng } from './prng.js';

/** Fault knobs of the simulated network. All probabilities are per message. */
export interface NetworkFaults {
  /** Probability that a sent message is lost. */
  dropRate: number;
  /** Probability that a sent message is delivered twice (each copy with its own delay). */
  duplicateRate: number;
  /** Each message is delayed by a uniform number of ticks in [0, maxDelayTicks]. */
  maxDelayTicks: number;
  /** Probability that a message gets a long delay in [maxDelayTicks, longDelayTicks] instead. */
  longDelayRate: number;
  longDelayTicks: number;
}

export const healthyNetwork: NetworkFaults = {
  dropRate: 0,
  duplicateRate: 0,
  maxDelayTicks: 0,
  longDelayRate: 0,
  longDelayTicks: 0,
};

interface InFlight {
  readonly message: Message;
  readonly deliverAt: number;
}

/** Why a message did not get into the network. */
export type SendOutcome = 'queued' | 'dropped' | 'partitioned';

/**
 * SimNetwork is the simulated transport between replicas: messages sit in flight until their
 * delivery time, and the simulation delivers the due ones in random order (reordering). It drops,
 * duplicates and delays per `faults`, and a partition cuts every link between two sides (checked
 * both when a message is sent and when it is delivered, so a partition also catches messages
 * already in flight). All randomness comes from the given Prng, so runs are reproducible.
 */
export class SimNetwork {
  faults: NetworkFaults;
  readonly #prng: Prng;
  #inFlight: InFlight[] = [];
  /** Partition side of each replica; replicas not listed are on side 0. */
  #side = new Map<ReplicaId, number>();

  constructor(prng: Prng, faults: NetworkFaults) {
    this.#prng = prng;
    this.faults = faults;
  }

  get inFlightCount(): number {
    return this.#inFlight.length;
  }

  /** send puts a message in flight at simulated time `now`. */
  send(m: Message, now: number): SendOutcome {
    if (this.isCut(m.from, m.to)) return 'partitioned';
    const f = this.faults;
    if (f.dropRate > 0 && this.#prng.chance(f.dropRate)) return 'dropped';
    this.#inFlight.push({ message: m, deliverAt: now + this.#delay() });
    if (f.duplicateRate > 0 && this.#prng.chance(f.duplicateRate)) {
      this.#inFlight.push({ message: m, deliverAt: now + this.#delay() });
    }
    return 'queued';
  }

  /** hasDue reports whether some message can be delivered at time `now`. */
  hasDue(now: number): boolean {
    for (const f of this.#inFlight) if (f.deliverAt <= now) return true;
    return false;
  }

  /**
   * takeDue removes and returns one random message due at `now` (random choice = reordering), or
   * undefined. A message whose link is cut by now is returned with `cut: true`: it is lost.
   */
  takeDue(now: number): { message: Message; cut: boolean } | undefined {
    let count = 0;
    for (const f of this.#inFlight) if (f.deliverAt <= now) count++;
    if (count === 0) return undefined;
    let k = this.#prng.int(count);
    for (let i = 0; i < this.#inFlight.length; i++) {
      const f = this.#inFlight[i] as InFlight;
      if (f.deliverAt > now) continue;
      if (k-- > 0) continue;
      this.#inFlight.splice(i, 1);
      return { message: f.message, cut: this.isCut(f.message.from, f.message.to) };
    }
    return undefined;
  }

  /** takeAllDue removes and returns every message due at `now`, in send order. */
  takeAllDue(now: number): { message: Message; cut: boolean }[] {
    const due: { message: Message; cut: boolean }[] = [];
    const rest: InFlight[] = [];
    for (const f of this.#inFlight) {
      if (f.deliverAt <= now) due.push({ message: f.message, cut: this.isCut(f.message.from, f.message.to) });
      else rest.push(f);
    }
    this.#inFlight = rest;
    return due;
  }

  /** dropTo discards every in-flight message addressed to `id` (its replica is gone). */
  dropTo(id: ReplicaId): void {
    this.#inFlight = this.#inFlight.filter((f) => f.message.to !== id);
  }

  /** partition splits the replicas into sides; replicas not named stay on side 0. */
  partition(sides: readonly (readonly ReplicaId[])[]): void {
    this.#side.clear();
    sides.forEach((ids, i) => {
      for (const id of ids) this.#side.set(id, i);
    });
  }

  /** isolate puts one replica on its own side, leaving other sides as they are. */
  isolate(id: ReplicaId): void {
    let max = 0;
    for (const s of this.#side.values()) max = Math.max(max, s);
    this.#side.set(id, max + 1);
  }

  heal(): void {
    this.#side.clear();
  }

  get partitioned(): boolean {
    return this.#side.size > 0;
  }

  isCut(a: ReplicaId, b: ReplicaId): boolean {
    return (this.#side.get(a) ?? 0) !== (this.#side.get(b) ?? 0);
  }

  #delay(): number {
    const f = this.faults;
    if (f.longDelayRate > 0 && this.#prng.chance(f.longDelayRate)) {
      return this.#prng.range(f.maxDelayTicks, Math.max(f.maxDelayTicks, f.longDelayTicks));
    }
    return f.maxDelayTicks > 0 ? this.#prng.int(f.maxDelayTicks + 1) : 0;
  }
}
