import {
  ApplyContext,
  chainedBatchWriter,
  dataKey,
  decodeExpiryKey,
  EXPIRY_RANGE,
  type KvCommand,
  type KvReader,
  KvStateMachine,
  levelReader,
  type TtlKeySet,
} from '../../src/index.js';
import { b, openTempDb, shard } from '../helpers.js';

const NOW = 1_700_000_000_000;

/** One replica: a temp DB, a state machine, a reader counting point gets, and optionally a TtlKeySet. */
async function replica(ttlKeys: TtlKeySet | undefined) {
  const t = await openTempDb();
  const inner = levelReader(t.db);
  const counts = { gets: 0 };
  const reader: KvReader = {
    get: (key) => {
      counts.gets++;
      return inner.get(key);
    },
    iterate: (range) => inner.iterate(range),
  };
  const sm = new KvStateMachine(shard());
  let index = 0;
  return {
    t,
    counts,
    sm,
    async apply(cmds: KvCommand[]): Promise<void> {
      const batch = t.db.batch();
      const ctx = new ApplyContext(reader, chainedBatchWriter(batch), ttlKeys);
      for (const cmd of cmds) await sm.apply(ctx, ++index, cmd);
      await batch.write();
    },
    async dump(): Promise<string[]> {
      const out: string[] = [];
      for await (const [k, v] of t.db.iterator({ keyEncoding: 'buffer', valueEncoding: 'buffer' })) {
        out.push(`${k.toString('hex')}=${v.toString('hex')}`);
      }
      return out;
    },
  };
}

/** A seeded xorshift32 (tests print their seed). */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 0x1_0000_0000;
  };
}

describe('TtlKeySet: plain puts skip the apply-time read', () => {
  test('puts of keys without an expiry read nothing; a key with one is still read and its index entry moved', async () => {
    const r = await replica(new Set());
    try {
      await r.apply([{ type: 'put', nowMs: NOW, key: b('a'), value: b('1'), expireAtMs: 0 }]);
      await r.apply([{ type: 'put', nowMs: NOW, key: b('a'), value: b('2'), expireAtMs: 0 }]);
      expect(r.counts.gets).toBe(0);
      await r.apply([{ type: 'put', nowMs: NOW, key: b('t'), value: b('1'), expireAtMs: NOW + 100 }]);
      await r.apply([{ type: 'put', nowMs: NOW, key: b('t'), value: b('2'), expireAtMs: 0 }]);
      expect(r.counts.gets).toBe(1);
      let entries = 0;
      for await (const _ of r.t.db.iterator({ gte: Buffer.from(EXPIRY_RANGE.gte), lt: Buffer.from(EXPIRY_RANGE.lt) }))
        entries++;
      expect(entries).toBe(0);
      // Now without an expiry: the next put of `t` reads nothing.
      await r.apply([{ type: 'put', nowMs: NOW, key: b('t'), value: b('3'), expireAtMs: 0 }]);
      expect(r.counts.gets).toBe(1);
    } finally {
      await r.t.close();
    }
  });

  test('replicas with and without the set (and one whose set is rebuilt from the index mid-way) write identical bytes', async () => {
    const seed = Number(process.env.SEED ?? Date.now() % 1_000_000);
    console.log(`TtlKeySet determinism seed=${seed} (rerun with SEED=${seed})`);
    const rand = rng(seed);
    const withSet = await replica(new Set());
    const without = await replica(undefined);
    const rebuiltSet: TtlKeySet = new Set();
    const rebuilt = await replica(rebuiltSet);
    try {
      const keys = ['a', 'b', 'c', 'd', 'e'].map(b);
      let now = NOW;
      for (let batchNo = 0; batchNo < 200; batchNo++) {
        const cmds: KvCommand[] = [];
        const n = 1 + Math.floor(rand() * 4);
        for (let i = 0; i < n; i++) {
          now += Math.floor(rand() * 20);
          const key = keys[Math.floor(rand() * keys.length)] as Buffer;
          const ttl = rand() < 0.4 ? now + 1 + Math.floor(rand() * 60) : 0;
          const p = rand();
          if (p < 0.5) cmds.push({ type: 'put', nowMs: now, key, value: b(`v${batchNo}`), expireAtMs: ttl });
          else if (p < 0.6) cmds.push({ type: 'delete', nowMs: now, key });
          else if (p < 0.7) cmds.push({ type: 'expire', nowMs: now, key, expireAtMs: ttl });
          else if (p < 0.8) cmds.push({ type: 'persist', nowMs: now, key });
          else if (p < 0.9) {
            cmds.push({
              type: 'update',
              nowMs: now,
              key,
              value: b(`u${batchNo}`),
              expireAtMs: ttl,
              keepTtl: rand() < 0.5,
            });
          } else {
            const sweep = await withSet.sm.collectExpired(levelReader(withSet.t.db), now);
            if (sweep !== undefined) cmds.push(sweep);
          }
        }
        await withSet.apply(cmds);
        await without.apply(cmds);
        await rebuilt.apply(cmds);
        if (batchNo === 100) {
          // A restart: the set is rebuilt from the expiry index, as Store.open does.
          rebuiltSet.clear();
          for await (const [k] of rebuilt.t.db.iterator({
            keyEncoding: 'buffer',
            gte: Buffer.from(EXPIRY_RANGE.gte),
            lt: Buffer.from(EXPIRY_RANGE.lt),
          })) {
            const e = decodeExpiryKey(k);
            rebuiltSet.add(dataKey(e.pos, e.userKey).toString('latin1'));
          }
        }
      }
      const expected = await without.dump();
      expect(await withSet.dump()).toEqual(expected);
      expect(await rebuilt.dump()).toEqual(expected);
      expect(withSet.counts.gets).toBeLessThan(without.counts.gets);
      console.log(`apply-time point gets: with the set ${withSet.counts.gets}, without ${without.counts.gets}`);
    } finally {
      await withSet.t.close();
      await without.t.close();
      await rebuilt.t.close();
    }
  });
});
