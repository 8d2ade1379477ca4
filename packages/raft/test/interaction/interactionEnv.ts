import { decodeConfChange } from '../../src/core/confChangeCodec.js';
import { RaftError } from '../../src/core/errors.js';
import { MemoryStorage } from '../../src/core/memoryStorage.js';
import { RawNode } from '../../src/core/rawNode.js';
import type { ConfChange, ConfState, Message, ReadOnlyOption, ReplicaId } from '../../src/core/types.js';
import { ConfChangeType, EntryType } from '../../src/core/types.js';
import {
  formatConfChange,
  formatConfState,
  formatEntry,
  formatMessage,
  formatReady,
  formatRole,
} from '../../src/testing/formatMessage.js';

/*
 * InteractionEnv executes the commands of the data-driven interaction scripts (in the style of
 * etcd-io/raft's testdata/*.txt, with our own format and code). Every node is a RawNode over a
 * MemoryStorage, driven exactly by the Ready contract: persist, then send, then apply, then advance.
 * Messages wait in a per-destination inbox until `deliver-msgs` or `stabilize` hands them over, so
 * a script controls every interleaving. The RNG is constant, so election timeouts are exactly
 * `electionTick` ticks and transcripts are stable.
 */

interface EnvNode {
  readonly id: ReplicaId;
  readonly storage: MemoryStorage;
  raw: RawNode | undefined;
  config: NodeConfig;
  applied: number;
  confState: ConfState;
  /** Last role/term/lead reported in the transcript, to print only changes. */
  shown: string;
}

interface NodeConfig {
  electionTick: number;
  heartbeatTick: number;
  preVote: boolean;
  checkQuorum: boolean;
  readOnlyOption: ReadOnlyOption;
  maxInflightMsgs: number;
  maxSizePerMsg: number;
}

/** One parsed command: `name arg1 key=value (list) ...`. */
export interface Command {
  readonly name: string;
  readonly args: readonly string[];
}

export class InteractionEnv {
  readonly #nodes = new Map<ReplicaId, EnvNode>();
  readonly #inbox = new Map<ReplicaId, Message[]>();
  /** Partition side per node; nodes on different sides cannot exchange messages. */
  #side = new Map<ReplicaId, number>();
  #out: string[] = [];

  /** run executes one command and returns its transcript lines. */
  run(cmd: Command): string[] {
    this.#out = [];
    try {
      this.#dispatch(cmd);
    } catch (e) {
      if (e instanceof RaftError) this.#out.push(`error: ${e.code}: ${e.message}`);
      else if (e instanceof UsageError) this.#out.push(`usage error: ${e.message}`);
      else throw e;
    }
    return this.#out.length > 0 ? this.#out : ['ok'];
  }

  #dispatch(cmd: Command): void {
    const a = new Args(cmd.args);
    switch (cmd.name) {
      case 'add-nodes':
        this.#addNodes(a);
        return;
      case 'campaign':
        this.#withNode(a, (n) => this.#raw(n).campaign());
        return;
      case 'tick':
        this.#tick(a.ids(), Number(a.opt('n') ?? '1'));
        return;
      case 'tick-election':
        this.#forNodes(a, (n) => this.#tick([n.id], n.config.electionTick));
        return;
      case 'tick-heartbeat':
        this.#forNodes(a, (n) => this.#tick([n.id], n.config.heartbeatTick));
        return;
      case 'propose': {
        const n = this.#node(a.id(0));
        const r = this.#raw(n).propose(new TextEncoder().encode(a.pos(1)));
        this.#out.push(`proposed at ${r.term}/${r.index}`);
        this.#noteChanges();
        return;
      }
      case 'propose-conf-change': {
        const n = this.#node(a.id(0));
        const cc = parseConfChange(a);
        const r = this.#raw(n).proposeConfChange(cc);
        this.#out.push(`proposed ${formatConfChange(cc)} at ${r.term}/${r.index}`);
        this.#noteChanges();
        return;
      }
      case 'transfer-leader':
        this.#withNode(a, (n) => this.#raw(n).transferLeader(a.id(1)));
        return;
      case 'read-index':
        this.#withNode(a, (n) => this.#raw(n).readIndex(new TextEncoder().encode(a.pos(1))));
        return;
      case 'process-ready':
        this.#forNodes(a, (n) => this.#processReady(n));
        return;
      case 'deliver-msgs':
        this.#forNodes(a, (n) => this.#deliver(n, a.flag('drop')));
        return;
      case 'stabilize':
        this.#stabilize(a.ids().length > 0 ? a.ids() : [...this.#nodes.keys()]);
        return;
      case 'partition':
        this.#partition(a);
        return;
      case 'heal':
        this.#side = new Map();
        this.#out.push('network healed');
        return;
      case 'compact':
        this.#compact(this.#node(a.id(0)), a.id(1));
        return;
      case 'crash':
        this.#crash(this.#node(a.id(0)));
        return;
      case 'restart':
        this.#restart(this.#node(a.id(0)));
        return;
      case 'status':
        this.#forNodes(a, (n) => this.#status(n));
        return;
      case 'raft-state':
        for (const n of this.#nodes.values()) this.#out.push(this.#describe(n));
        return;
      case 'raft-log':
        this.#forNodes(a, (n) => this.#raftLog(n));
        return;
      default:
        throw new UsageError(`unknown command ${cmd.name}`);
    }
  }

  // --- nodes ---------------------------------------------------------------------------------

  #addNodes(a: Args): void {
    const count = a.id(0);
    const voters = a.list('voters');
    const learners = a.list('learners');
    const index = Number(a.opt('index') ?? '1');
    const config: NodeConfig = {
      electionTick: Number(a.opt('election') ?? '10'),
      heartbeatTick: Number(a.opt('heartbeat') ?? '1'),
      preVote: a.opt('pre-vote') === 'true',
      checkQuorum: a.opt('check-quorum') === 'true',
      readOnlyOption: a.opt('read-only') === 'lease' ? 'leaseBased' : 'safe',
      maxInflightMsgs: Number(a.opt('max-inflight') ?? '256'),
      maxSizePerMsg: Number(a.opt('max-size') ?? String(1 << 20)),
    };
    const firstId = this.#nodes.size === 0 ? 1 : Math.max(...this.#nodes.keys()) + 1;
    for (let id = firstId; id < firstId + count; id++) {
      const storage = new MemoryStorage({ voters, learners });
      if (voters.length > 0) {
        // Bootstrapped members start from a snapshot at `index` (term 1) holding the membership;
        // a node added without voters starts empty and must be caught up by the leader.
        storage.applySnapshot({
          metadata: { index, term: 1, confState: { voters, learners } },
          data: new Uint8Array(),
        });
        storage.setHardState({ term: 1, vote: 0, commit: index });
      }
      const n: EnvNode = {
        id,
        storage,
        raw: undefined,
        config,
        applied: 0,
        confState: { voters: [], learners: [] },
        shown: '',
      };
      this.#nodes.set(id, n);
      this.#inbox.set(id, []);
      this.#start(n);
      this.#out.push(
        `node ${id}: ${formatConfState(n.confState)} log [${storage.firstIndex()}, ${storage.lastIndex()}] ` +
          `term ${storage.hardState.term} commit ${storage.hardState.commit}`,
      );
      n.shown = this.#roleKey(n);
    }
  }

  #start(n: EnvNode): void {
    const snap = n.storage.snapshot();
    n.applied = snap.metadata.index;
    n.confState = snap.metadata.confState;
    n.raw = new RawNode({
      id: n.id,
      storage: n.storage,
      applied: n.applied,
      electionTick: n.config.electionTick,
      heartbeatTick: n.config.heartbeatTick,
      preVote: n.config.preVote,
      checkQuorum: n.config.checkQuorum,
      readOnlyOption: n.config.readOnlyOption,
      maxInflightMsgs: n.config.maxInflightMsgs,
      maxSizePerMsg: n.config.maxSizePerMsg,
      rng: () => 0,
    });
  }

  #crash(n: EnvNode): void {
    n.raw = undefined;
    this.#inbox.set(n.id, []);
    this.#out.push(`node ${n.id} crashed (unpersisted state and its inbox are lost)`);
  }

  #restart(n: EnvNode): void {
    this.#start(n);
    const hs = n.storage.hardState;
    this.#out.push(
      `node ${n.id} restarted: term ${hs.term} vote ${hs.vote} commit ${hs.commit} applied ${n.applied} ` +
        `log [${n.storage.firstIndex()}, ${n.storage.lastIndex()}] ${formatConfState(n.confState)}`,
    );
    n.shown = this.#roleKey(n);
  }

  #node(id: ReplicaId): EnvNode {
    const n = this.#nodes.get(id);
    if (n === undefined) throw new UsageError(`no node ${id}`);
    return n;
  }

  #raw(n: EnvNode): RawNode {
    if (n.raw === undefined) throw new UsageError(`node ${n.id} is crashed`);
    return n.raw;
  }

  #withNode(a: Args, f: (n: EnvNode) => void): void {
    f(this.#node(a.id(0)));
    this.#noteChanges();
  }

  #forNodes(a: Args, f: (n: EnvNode) => void): void {
    const ids = a.ids();
    for (const id of ids.length > 0 ? ids : [...this.#nodes.keys()]) f(this.#node(id));
  }

  #tick(ids: readonly ReplicaId[], times: number): void {
    for (const id of ids) {
      const raw = this.#raw(this.#node(id));
      for (let i = 0; i < times; i++) raw.tick();
    }
    this.#noteChanges();
  }

  // --- Ready and messages --------------------------------------------------------------------

  /** #processReady handles one Ready by the contract; returns whether there was one. */
  #processReady(n: EnvNode): boolean {
    const raw = this.#raw(n);
    raw.flushCommit(); // commit notices go with the next Ready
    if (!raw.hasReady()) return false;
    const rd = raw.ready();
    this.#out.push(`> ${n.id} handling Ready`, ...formatReady(rd, '  '));
    // 1. persist
    if (rd.snapshot !== undefined) n.storage.applySnapshot(rd.snapshot);
    n.storage.append(rd.entries);
    if (rd.hardState !== undefined) n.storage.setHardState(rd.hardState);
    // 2. send
    for (const m of rd.messages) {
      const to = this.#nodes.get(m.to);
      if (to === undefined) this.#out.push(`  dropped (no node ${m.to}): ${formatMessage(m)}`);
      else if (this.#cut(m.from, m.to)) this.#out.push(`  dropped (partition): ${formatMessage(m)}`);
      else this.#inbox.get(m.to)?.push(m);
    }
    // 3. apply
    if (rd.snapshot !== undefined) {
      n.applied = rd.snapshot.metadata.index;
      n.confState = rd.snapshot.metadata.confState;
    }
    for (const e of rd.committedEntries) {
      n.applied = e.index;
      if (e.type === EntryType.ConfChange) {
        n.confState = raw.applyConfChange(decodeConfChange(e.data));
        this.#out.push(`  INFO ${n.id} applied ${formatEntry(e)} -> ${formatConfState(n.confState)}`);
      }
    }
    raw.advance(rd);
    this.#noteChanges();
    return true;
  }

  #deliver(n: EnvNode, drop: boolean): boolean {
    const msgs = this.#inbox.get(n.id) ?? [];
    if (msgs.length === 0) return false;
    this.#inbox.set(n.id, []);
    if (n.raw === undefined) {
      for (const m of msgs) this.#out.push(`  dropped (node ${n.id} crashed): ${formatMessage(m)}`);
      return true;
    }
    this.#out.push(drop ? `> ${n.id} dropping messages` : `> ${n.id} receiving messages`);
    for (const m of msgs) {
      this.#out.push(`  ${formatMessage(m)}`);
      if (drop) continue;
      try {
        n.raw.step(m);
      } catch (e) {
        if (!(e instanceof RaftError)) throw e;
        this.#out.push(`  error: ${e.code}: ${e.message}`);
      }
      this.#noteChanges();
    }
    return true;
  }

  /** #stabilize processes Readys and delivers messages among `ids` until nothing is left. */
  #stabilize(ids: readonly ReplicaId[]): void {
    for (let round = 0; round < 1000; round++) {
      let busy = false;
      for (const id of ids) {
        const n = this.#node(id);
        if (n.raw !== undefined && this.#processReady(n)) busy = true;
      }
      for (const id of ids) if (this.#deliver(this.#node(id), false)) busy = true;
      if (!busy) return;
    }
    throw new Error('stabilize did not converge in 1000 rounds');
  }

  #partition(a: Args): void {
    this.#side = new Map();
    const groups = a.groups();
    groups.forEach((g, i) => {
      for (const id of g) this.#side.set(id, i);
    });
    this.#out.push(`partitioned: ${groups.map((g) => `(${g.join(' ')})`).join(' | ')}`);
  }

  #cut(a: ReplicaId, b: ReplicaId): boolean {
    if (this.#side.size === 0) return false;
    return (this.#side.get(a) ?? -1) !== (this.#side.get(b) ?? -1);
  }

  // --- storage -------------------------------------------------------------------------------

  #compact(n: EnvNode, index: number): void {
    const s = n.storage;
    if (n.applied > s.snapshot().metadata.index) s.createSnapshot(n.applied, n.confState, new Uint8Array());
    s.compact(Math.min(index, n.applied));
    const md = s.snapshot().metadata;
    this.#out.push(`node ${n.id}: snapshot ${md.term}/${md.index}, log [${s.firstIndex()}, ${s.lastIndex()}]`);
  }

  // --- reporting -----------------------------------------------------------------------------

  #roleKey(n: EnvNode): string {
    if (n.raw === undefined) return 'crashed';
    const st = n.raw.status();
    return `${formatRole(st.softState.role)} at term ${st.hardState.term}`;
  }

  /** #noteChanges prints a line for every node whose role or term changed since last shown. */
  #noteChanges(): void {
    for (const n of this.#nodes.values()) {
      const key = this.#roleKey(n);
      if (key !== n.shown) {
        n.shown = key;
        this.#out.push(`  INFO ${n.id} is ${key}`);
      }
    }
  }

  #describe(n: EnvNode): string {
    if (n.raw === undefined) return `${n.id}: crashed`;
    const st = n.raw.status();
    return `${n.id}: ${formatRole(st.softState.role)} term ${st.hardState.term} lead ${st.softState.leaderId}`;
  }

  #status(n: EnvNode): void {
    if (n.raw === undefined) {
      this.#out.push(`${n.id}: crashed`);
      return;
    }
    const st = n.raw.status();
    this.#out.push(
      `${this.#describe(n)} vote ${st.hardState.vote} commit ${st.hardState.commit} applied ${st.applied} ` +
        `last ${st.lastIndex} ${formatConfState(st.confState)}`,
    );
    if (st.progress === undefined) return;
    for (const [id, p] of [...st.progress].sort((x, y) => x[0] - y[0])) {
      const role = p.isLearner ? ' learner' : '';
      this.#out.push(`  ${id}: ${p.state} match=${p.match} next=${p.next}${role}`);
    }
  }

  #raftLog(n: EnvNode): void {
    const s = n.storage;
    const md = s.snapshot().metadata;
    if (md.index > 0) this.#out.push(`${n.id}: snapshot ${md.term}/${md.index} ${formatConfState(md.confState)}`);
    if (s.lastIndex() < s.firstIndex()) {
      this.#out.push(`${n.id}: log is empty`);
      return;
    }
    for (const e of s.entries(s.firstIndex(), s.lastIndex() + 1, Number.POSITIVE_INFINITY)) {
      this.#out.push(`${n.id}: ${formatEntry(e)}`);
    }
  }
}

class UsageError extends Error {}

function parseConfChange(a: Args): ConfChange {
  const kinds: [string, ConfChangeType][] = [
    ['add-learner', ConfChangeType.AddLearner],
    ['add-voter', ConfChangeType.AddVoter],
    ['remove', ConfChangeType.RemoveNode],
  ];
  for (const [k, type] of kinds) {
    const v = a.opt(k);
    if (v !== undefined) return { type, replicaId: Number(v) };
  }
  throw new UsageError('propose-conf-change needs add-learner=N, add-voter=N or remove=N');
}

/** Args: positional words, `key=value` options, `key=(1,2)` lists and `(1 2)` groups. */
class Args {
  readonly #positional: string[] = [];
  readonly #options = new Map<string, string>();
  readonly #groups: number[][] = [];

  constructor(words: readonly string[]) {
    for (const w of words) {
      const eq = w.indexOf('=');
      if (w.startsWith('(')) this.#groups.push(parseList(w));
      else if (eq > 0) this.#options.set(w.slice(0, eq), w.slice(eq + 1));
      else this.#positional.push(w);
    }
  }

  pos(i: number): string {
    const v = this.#positional[i];
    if (v === undefined) throw new UsageError(`missing argument ${i + 1}`);
    return v;
  }

  id(i: number): number {
    const v = Number(this.pos(i));
    if (!Number.isInteger(v)) throw new UsageError(`argument ${i + 1} must be a number`);
    return v;
  }

  /** ids: every numeric positional argument. */
  ids(): number[] {
    return this.#positional.filter((w) => /^\d+$/.test(w)).map(Number);
  }

  opt(key: string): string | undefined {
    return this.#options.get(key);
  }

  flag(word: string): boolean {
    return this.#positional.includes(word);
  }

  list(key: string): number[] {
    const v = this.#options.get(key);
    return v === undefined ? [] : parseList(v);
  }

  groups(): number[][] {
    return this.#groups;
  }
}

function parseList(s: string): number[] {
  return s
    .replace(/[()]/g, '')
    .split(/[ ,]+/)
    .filter((x) => x !== '')
    .map(Number);
}

/** A parsed script block: leading comment/blank lines, the command, its expected output. */
export interface Block {
  readonly preamble: readonly string[];
  readonly line: number;
  readonly command: string;
  readonly expected: readonly string[];
}

/**
 * parseScript splits a script into blocks. Format: optional `#` comments and blank lines, then a
 * command line, a `----` line, and the expected output up to the next blank line (or end of file).
 */
export function parseScript(text: string): { blocks: Block[]; trailer: string[] } {
  const lines = text.split('\n');
  const blocks: Block[] = [];
  let preamble: string[] = [];
  let i = 0;
  while (i < lines.length) {
    const l = lines[i] as string;
    if (l.trim() === '' || l.startsWith('#')) {
      preamble.push(l);
      i++;
      continue;
    }
    const command = l;
    const line = i + 1;
    if (lines[i + 1] !== '----') throw new Error(`line ${line + 1}: expected "----" after command "${command}"`);
    i += 2;
    const expected: string[] = [];
    while (i < lines.length && (lines[i] as string) !== '') expected.push(lines[i++] as string);
    i++; // the blank line that ends the output belongs to the block
    blocks.push({ preamble, line, command, expected });
    preamble = [];
  }
  return { blocks, trailer: preamble };
}

/** parseCommand splits `name args...`, keeping `( ... )` groups as one word. */
export function parseCommand(line: string): Command {
  const words = line.match(/\S*\([^)]*\)|\S+/g) ?? [];
  const [name, ...args] = words;
  if (name === undefined) throw new Error('empty command');
  return { name, args };
}

/** renderScript writes blocks back with their actual outputs (one blank line after each). */
export function renderScript(
  blocks: readonly Block[],
  outputs: readonly (readonly string[])[],
  trailer: string[],
): string {
  const parts: string[] = [];
  blocks.forEach((b, k) => {
    parts.push(...b.preamble, b.command, '----', ...(outputs[k] ?? []), '');
  });
  while (trailer.length > 0 && (trailer[trailer.length - 1] as string).trim() === '') trailer.pop();
  if (trailer.length > 0) parts.push(...trailer, '');
  return parts.join('\n');
}
