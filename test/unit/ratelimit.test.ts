// RateLimiter over each bucket store: memory (single SQLite process) and the
// database store on SQLite and PostgreSQL, with an injected clock.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Knex } from 'knex';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RateLimit } from '../../src/config/types.js';
import { migrateToLatest, openDatabase } from '../../src/db/database.js';
import { MatrixError } from '../../src/errors.js';
import { type BucketStore, DatabaseBucketStore, MemoryBucketStore, RateLimiter } from '../../src/ratelimit/limiter.js';
import { readBucket } from '../../src/repositories/rate-limits.js';
import { backends, describeOnPostgres, createPgDatabase, type PgDatabase } from '../support/backends.js';

const T0 = 1_763_856_000_000;

let seq = 0;
const uniq = (p: string) => `${p}${(++seq).toString(36)}${Math.random().toString(36).slice(2, 6)}`;

/** Asserts that `p` rejects with M_LIMIT_EXCEEDED and the given retry delay. */
async function expectLimited(p: Promise<unknown>, retryAfterMs: number): Promise<void> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err, 'expected M_LIMIT_EXCEEDED').toBeInstanceOf(MatrixError);
  const m = err as MatrixError;
  expect(m.status).toBe(429);
  expect(m.errcode).toBe('M_LIMIT_EXCEEDED');
  expect(m.extra.retry_after_ms).toBe(retryAfterMs);
  expect(Number.isInteger(m.extra.retry_after_ms)).toBe(true);
  expect(m.headers['Retry-After']).toBe(String(Math.ceil(retryAfterMs / 1000)));
  expect(m.toJSON()).toMatchObject({ errcode: 'M_LIMIT_EXCEEDED', retry_after_ms: retryAfterMs });
}

interface StoreSetup {
  store: BucketStore;
  db: Knex | null;
  close(): Promise<void>;
}

async function openStore(kind: 'memory' | 'sqlite' | 'postgres'): Promise<StoreSetup> {
  if (kind === 'memory') return { store: new MemoryBucketStore(), db: null, close: async () => {} };
  if (kind === 'postgres') {
    const pg = await createPgDatabase();
    const db = openDatabase({ name: 'postgres', args: pg.args });
    await migrateToLatest(db);
    return {
      store: new DatabaseBucketStore(db),
      db,
      async close() {
        await db.destroy();
        await pg.drop();
      },
    };
  }
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-rl-'));
  const db = openDatabase({ name: 'sqlite3', args: { database: join(dir, 'homeserver.db') } });
  await migrateToLatest(db);
  return {
    store: new DatabaseBucketStore(db),
    db,
    async close() {
      await db.destroy();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const kinds = ['memory', ...backends()] as const;

describe.each(kinds)('RateLimiter over the %s store', (kind) => {
  let setup: StoreSetup;
  let now = T0;
  const clock = () => now;
  beforeAll(async () => {
    setup = await openStore(kind);
  });
  afterAll(async () => {
    await setup?.close();
  });

  /** A limiter with a name of its own, so tests do not share buckets. */
  const limiter = (limit: RateLimit) => new RateLimiter(setup.store, uniq('rc_test'), limit, clock);

  it('allows the burst, then refuses with the time until one action drains', async () => {
    now = T0;
    const rl = limiter({ per_second: 0.5, burst_count: 3 });
    for (let i = 0; i < 3; i++) await rl.take('k');
    // Full: one action drains in 1 / 0.5 s.
    await expectLimited(rl.take('k'), 2000);
    // Refusals are not counted: the wait does not grow.
    await expectLimited(rl.take('k'), 2000);
    now = T0 + 500;
    await expectLimited(rl.take('k'), 1500);
    now = T0 + 1000;
    await expectLimited(rl.take('k'), 1000);
    now = T0 + 1999;
    await expectLimited(rl.take('k'), 1);
    now = T0 + 2000;
    await rl.take('k');
    await expectLimited(rl.take('k'), 2000);
  });

  it('rounds retry_after_ms up to a whole millisecond and Retry-After up to a whole second (Synapse defaults)', async () => {
    now = T0;
    // rc_registration's defaults: 0.17/s, burst 3; one action drains in 5882.35 ms.
    const rl = limiter({ per_second: 0.17, burst_count: 3 });
    for (let i = 0; i < 3; i++) await rl.take('ip');
    await expectLimited(rl.take('ip'), 5883);
    // rc_login.address: 0.003/s, burst 5; one action drains in 333.33 s.
    const login = limiter({ per_second: 0.003, burst_count: 5 });
    for (let i = 0; i < 5; i++) await login.take('ip');
    await expectLimited(login.take('ip'), 333_334);
    now = T0 + 333_000;
    await expectLimited(login.take('ip'), 334);
  });

  it('drains completely over a long wait and then allows a whole burst again', async () => {
    now = T0;
    const rl = limiter({ per_second: 1, burst_count: 4 });
    for (let i = 0; i < 4; i++) await rl.take('k');
    await expectLimited(rl.take('k'), 1000);
    now = T0 + 10 * 60_000;
    for (let i = 0; i < 4; i++) await rl.take('k');
    await expectLimited(rl.take('k'), 1000);
  });

  it('refuses for a day when the bucket never drains, and always with burst_count 0', async () => {
    now = T0;
    const never = limiter({ per_second: 0, burst_count: 2 });
    await never.take('k');
    await never.take('k');
    await expectLimited(never.take('k'), 86_400_000);
    now = T0 + 7 * 86_400_000;
    await expectLimited(never.take('k'), 86_400_000);

    const closed = limiter({ per_second: 2, burst_count: 0 });
    await expectLimited(closed.take('k'), 500);
    await expectLimited(closed.check('k'), 500);
  });

  it('check refuses when full but never counts', async () => {
    now = T0;
    const rl = limiter({ per_second: 0.5, burst_count: 2 });
    for (let i = 0; i < 10; i++) await rl.check('k');
    await rl.take('k');
    await rl.take('k');
    await expectLimited(rl.check('k'), 2000);
    await expectLimited(rl.take('k'), 2000);
    now = T0 + 2000;
    // One action has drained: check passes repeatedly, and a take still fits.
    await rl.check('k');
    await rl.check('k');
    await rl.take('k');
    await expectLimited(rl.check('k'), 2000);
  });

  it('record counts without ever refusing', async () => {
    now = T0;
    const rl = limiter({ per_second: 0.5, burst_count: 3 });
    await rl.record('k');
    await rl.record('k');
    await rl.check('k');
    await rl.record('k');
    await expectLimited(rl.check('k'), 2000);
    await expectLimited(rl.take('k'), 2000);
    // Recording past the burst does not throw, and does not push the bucket past it.
    await rl.record('k');
    await rl.record('k');
    await expectLimited(rl.check('k'), 2000);
  });

  it('keeps keys and limiter names apart', async () => {
    now = T0;
    const limit = { per_second: 0.1, burst_count: 1 };
    const name = uniq('rc_shared');
    const a = new RateLimiter(setup.store, name, limit, clock);
    const sameName = new RateLimiter(setup.store, name, limit, clock);
    const otherName = limiter(limit);
    await a.take('@alice:hs');
    await expectLimited(a.take('@alice:hs'), 10_000);
    // Another key under the same limiter is untouched.
    await a.take('@bob:hs');
    // A limiter of the same name shares the buckets; one of another name does not.
    await expectLimited(sameName.take('@alice:hs'), 10_000);
    await otherName.take('@alice:hs');
  });

  it('never lets parallel takes exceed the burst', async () => {
    now = T0;
    const rl = limiter({ per_second: 0.003, burst_count: 6 });
    const outcomes = await Promise.allSettled(Array.from({ length: 20 }, () => rl.take('k')));
    expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(6);
    for (const o of outcomes) if (o.status === 'rejected') expect((o.reason as MatrixError).errcode).toBe('M_LIMIT_EXCEEDED');
  });

  if (kind === 'memory') {
    it('does not forget a bucket that has not drained, however long it stays idle', async () => {
      // A store of its own, so that its sweep clock starts here.
      const store = new MemoryBucketStore();
      now = T0;
      // Drains one action in 8192 s (over two hours); a power of two keeps the arithmetic exact.
      const slow = new RateLimiter(store, 'rc_slow', { per_second: 1 / 8192, burst_count: 1 }, clock);
      const other = new RateLimiter(store, 'rc_other', { per_second: 1, burst_count: 1 }, clock);
      await slow.take('k');
      // Two hours later another key's take sweeps idle buckets; 7200 of 8192 s have drained.
      now = T0 + 2 * 3_600_000;
      await other.take('x');
      await expectLimited(slow.take('k'), 992_000);
      // Drained buckets may be forgotten: after the full drain it allows again.
      now = T0 + 8192_000;
      await slow.take('k');
      // ... and the sweep did forget the drained ones: only the fresh bucket is left.
      const buckets = (store as unknown as { buckets: Map<string, unknown> }).buckets;
      expect([...buckets.keys()]).toEqual(['rc_slow:k']);
    });
  } else {
    it('stores the bucket level in the rate_limits table', async () => {
      now = T0;
      const name = uniq('rc_table');
      const rl = new RateLimiter(setup.store, name, { per_second: 1, burst_count: 5 }, clock);
      await rl.take('k');
      await rl.take('k');
      expect(await readBucket(setup.db!, `${name}:k`)).toEqual({ level: 2, updated_ts: T0 });
      now = T0 + 1500;
      await rl.take('k');
      expect(await readBucket(setup.db!, `${name}:k`)).toEqual({ level: 1.5, updated_ts: T0 + 1500 });
      // check leaves the row as it was.
      now = T0 + 1600;
      await rl.check('k');
      expect(await readBucket(setup.db!, `${name}:k`)).toEqual({ level: 1.5, updated_ts: T0 + 1500 });
    });
  }
});

// PostgreSQL only: without GATEHOUSE_TEST_PG it shows as skipped.
describeOnPostgres('DatabaseBucketStore: several processes on one PostgreSQL database', () => {
  let pg: PgDatabase;
  let db1: Knex;
  let db2: Knex;
  let now = T0;
  const clock = () => now;
  beforeAll(async () => {
    pg = await createPgDatabase();
    db1 = openDatabase({ name: 'postgres', args: pg.args });
    await migrateToLatest(db1);
    db2 = openDatabase({ name: 'postgres', args: pg.args });
  });
  afterAll(async () => {
    await db1?.destroy();
    await db2?.destroy();
    await pg?.drop();
  });

  it('shares buckets between the two stores', async () => {
    const limit = { per_second: 0.5, burst_count: 3 };
    const one = new RateLimiter(new DatabaseBucketStore(db1), 'rc_login.address', limit, clock);
    const two = new RateLimiter(new DatabaseBucketStore(db2), 'rc_login.address', limit, clock);
    await one.take('10.0.0.1');
    await two.take('10.0.0.1');
    await one.record('10.0.0.1');
    await expectLimited(two.check('10.0.0.1'), 2000);
    await expectLimited(two.take('10.0.0.1'), 2000);
    await expectLimited(one.take('10.0.0.1'), 2000);
    now = T0 + 2000;
    await two.take('10.0.0.1');
    await expectLimited(one.take('10.0.0.1'), 2000);
  });

  it('never lets parallel takes through both stores exceed the burst', async () => {
    const limit = { per_second: 0.003, burst_count: 5 };
    const one = new RateLimiter(new DatabaseBucketStore(db1), 'rc_registration', limit, clock);
    const two = new RateLimiter(new DatabaseBucketStore(db2), 'rc_registration', limit, clock);
    const outcomes = await Promise.allSettled(Array.from({ length: 24 }, (_, i) => (i % 2 ? one : two).take('10.0.0.2')));
    expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(5);
    expect(await readBucket(db2, 'rc_registration:10.0.0.2')).toEqual({ level: 5, updated_ts: now });
  });
});

describe.each(kinds)('RateLimiter.refund over the %s store', (kind) => {
  let setup: StoreSetup;
  let now = T0;
  const clock = () => now;
  beforeAll(async () => {
    setup = await openStore(kind);
  });
  afterAll(async () => {
    await setup?.close();
  });

  const limiter = (limit: RateLimit) => new RateLimiter(setup.store, uniq('rc_refund'), limit, clock);

  it('gives back one action per refund', async () => {
    now = T0;
    const rl = limiter({ per_second: 0.5, burst_count: 3 });
    for (let i = 0; i < 3; i++) await rl.take('k');
    await expectLimited(rl.take('k'), 2000);
    await rl.refund('k');
    // One action's room again, and only one.
    await rl.check('k');
    await rl.take('k');
    await expectLimited(rl.take('k'), 2000);
    await rl.refund('k');
    await rl.refund('k');
    await rl.take('k');
    await rl.take('k');
    await expectLimited(rl.take('k'), 2000);
  });

  it('drains to now before giving back', async () => {
    now = T0;
    const rl = limiter({ per_second: 1, burst_count: 2 });
    await rl.take('k');
    await rl.take('k');
    // Half an action has drained: 1.5 left, 0.5 after the refund, so one more fits but not two.
    now = T0 + 500;
    await rl.refund('k');
    await rl.take('k');
    await expectLimited(rl.take('k'), 500);
  });

  it('never goes below empty: extra refunds do not raise the burst', async () => {
    now = T0;
    const rl = limiter({ per_second: 0.5, burst_count: 2 });
    // Refunding a bucket that does not exist yet is a no-op.
    for (let i = 0; i < 5; i++) await rl.refund('fresh');
    await rl.take('fresh');
    for (let i = 0; i < 5; i++) await rl.refund('fresh');
    await rl.take('fresh');
    await rl.take('fresh');
    await expectLimited(rl.take('fresh'), 2000);
  });

  it('refunds only its own key and limiter name', async () => {
    now = T0;
    const limit = { per_second: 0.5, burst_count: 1 };
    const name = uniq('rc_refund_shared');
    const a = new RateLimiter(setup.store, name, limit, clock);
    const other = new RateLimiter(setup.store, uniq('rc_refund_other'), limit, clock);
    await a.take('x');
    await a.take('y').catch(() => undefined);
    await other.take('x');
    await a.refund('y');
    await other.refund('x');
    await expectLimited(a.take('x'), 2000);
    await other.take('x');
  });

  if (kind !== 'memory') {
    it('stores the refunded level, never below 0', async () => {
      now = T0;
      const name = uniq('rc_refund_table');
      const rl = new RateLimiter(setup.store, name, { per_second: 1, burst_count: 5 }, clock);
      await rl.take('k');
      await rl.take('k');
      await rl.take('k');
      now = T0 + 500;
      await rl.refund('k');
      expect(await readBucket(setup.db!, `${name}:k`)).toEqual({ level: 1.5, updated_ts: T0 + 500 });
      await rl.refund('k');
      await rl.refund('k');
      expect(await readBucket(setup.db!, `${name}:k`)).toEqual({ level: 0, updated_ts: T0 + 500 });
    });
  }
});
