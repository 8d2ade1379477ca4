import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { common } from '@omnidict/proto';
import { ClassicLevel } from 'classic-level';
import {
  ApplyContext,
  chainedBatchWriter,
  type KvCommand,
  type KvReader,
  type KvResult,
  KvStateMachine,
  levelReader,
} from '../src/index.js';

export const FULL_RING = 2 ** 32;

export function shard(start = 0, end = FULL_RING, id = 1): common.ShardDescriptor {
  return {
    id,
    start,
    end,
    epoch: { version: 1, confVer: 1 },
    replicas: [
      { replicaId: 1, nodeId: 1, role: 0 },
      { replicaId: 2, nodeId: 2, role: 0 },
      { replicaId: 3, nodeId: 3, role: 0 },
    ],
  };
}

/** A temp classic-level DB, removed by `close`. */
export async function openTempDb(): Promise<{ db: ClassicLevel<Buffer, Buffer>; dir: string; close(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'omnidict-node-test-'));
  const db = new ClassicLevel<Buffer, Buffer>(dir, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
  await db.open();
  return {
    db,
    dir,
    close: async () => {
      await db.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** One replica's state machine over a temp DB, applying commands at increasing Raft indexes. */
export class Harness {
  index = 0;
  readonly sm: KvStateMachine;
  readonly reader: KvReader;

  private constructor(
    readonly db: ClassicLevel<Buffer, Buffer>,
    private readonly closeDb: () => Promise<void>,
    descriptor: common.ShardDescriptor,
  ) {
    this.sm = new KvStateMachine(descriptor);
    this.reader = levelReader(db);
  }

  static async open(descriptor: common.ShardDescriptor = shard()): Promise<Harness> {
    const t = await openTempDb();
    return new Harness(t.db, t.close, descriptor);
  }

  /** Applies the commands in ONE atomic batch (they share an overlay), one Raft index each. */
  async apply(...cmds: KvCommand[]): Promise<KvResult[]> {
    const batch = this.db.batch();
    const ctx = new ApplyContext(this.reader, chainedBatchWriter(batch));
    const results: KvResult[] = [];
    for (const cmd of cmds) results.push(await this.sm.apply(ctx, ++this.index, cmd));
    await batch.write();
    return results;
  }

  async apply1(cmd: KvCommand): Promise<KvResult> {
    const [r] = await this.apply(cmd);
    return r as KvResult;
  }

  /** Every key/value in the DB, hex, in order. */
  async dump(): Promise<string[]> {
    const out: string[] = [];
    for await (const [k, v] of this.db.iterator({ keyEncoding: 'buffer', valueEncoding: 'buffer' })) {
      out.push(`${k.toString('hex')}=${v.toString('hex')}`);
    }
    return out;
  }

  close(): Promise<void> {
    return this.closeDb();
  }
}

export const b = (s: string): Buffer => Buffer.from(s, 'utf8');
