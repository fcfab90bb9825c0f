// RateLimiter.takeEach (login's rc_login.address, .account and .failed_attempts
// in one go) over each store, and the repository's tryTakeFromBuckets (one
// statement on PostgreSQL): the same answers and bucket levels as separate
// takes, including the refused bucket's wait and under parallel requests.

import type { Knex } from 'knex';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RateLimit } from '../../src/config/types.js';
import { MatrixError } from '../../src/errors.js';
import { type BucketStore, DatabaseBucketStore, MemoryBucketStore, RateLimiter } from '../../src/ratelimit/limiter.js';
import { readBucket, tryTakeFromBucket, tryTakeFromBuckets } from '../../src/repositories/rate-limits.js';
import { backends, openMigratedDatabases } from '../support/backends.js';

const T0 = 1_763_856_000_000;
let seq = 0;
const uniq = (p: string) => `${p}${(++seq).toString(36)}${Math.random().toString(36).slice(2, 6)}`;

async function limitedWait(p: Promise<unknown>): Promise<number | null> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  if (err === null) return null;
  expect(err).toBeInstanceOf(MatrixError);
  expect((err as MatrixError).errcode).toBe('M_LIMIT_EXCEEDED');
  return (err as MatrixError).extra.retry_after_ms as number;
}

const kinds = ['memory', ...backends()] as const;

describe.each(kinds)('RateLimiter.takeEach over the %s store', (kind) => {
  let store: BucketStore;
  let db: Knex | null = null;
  let close: () => Promise<void> = async () => {};
  let now = T0;
  const clock = () => now;
  beforeAll(async () => {
    if (kind === 'memory') store = new MemoryBucketStore();
    else {
      ({ db, close } = await openMigratedDatabases(kind, 'rl-each'));
      store = new DatabaseBucketStore(db);
    }
  });
  afterAll(async () => {
    await close();
  });

  const limiter = (limit: RateLimit, s: BucketStore = store) => new RateLimiter(s, uniq('rc_each'), limit, clock);
  /** Whether one more take fits, asked without counting one. */
  const fits = async (rl: RateLimiter, key: string) => (await limitedWait(rl.check(key))) === null;

  it('takes one from every limiter when all allow', async () => {
    now = T0;
    const [a, b, c] = [limiter({ per_second: 1, burst_count: 2 }), limiter({ per_second: 1, burst_count: 2 }), limiter({ per_second: 1, burst_count: 2 })];
    await RateLimiter.takeEach([
      [a, 'ip'],
      [b, 'acct'],
      [c, 'acct'],
    ]);
    await RateLimiter.takeEach([
      [a, 'ip'],
      [b, 'acct'],
      [c, 'acct'],
    ]);
    // Two each: all three are full now.
    for (const [rl, key] of [
      [a, 'ip'],
      [b, 'acct'],
      [c, 'acct'],
    ] as const)
      expect(await fits(rl, key)).toBe(false);
  });

  it('stops at the first refusal: the ones before stay taken, the ones after are untouched, and the wait is the refused one’s', async () => {
    now = T0;
    const first = limiter({ per_second: 1, burst_count: 5 });
    const full = limiter({ per_second: 0.25, burst_count: 1 });
    const last = limiter({ per_second: 1, burst_count: 1 });
    await full.take('k');
    now = T0 + 1000;
    // One action drains from `full` in 4 s, 1 s of which has passed.
    expect(await limitedWait(RateLimiter.takeEach([[first, 'k'], [full, 'k'], [last, 'k']]))).toBe(3000);
    // `first` counted the attempt (as separate takes would have), `last` was never reached.
    for (let i = 0; i < 4; i++) await first.take('k');
    expect(await limitedWait(first.take('k'))).not.toBeNull();
    expect(await fits(last, 'k')).toBe(true);
  });

  it('refuses a limiter that can never fit (burst_count 0) after taking the ones before it', async () => {
    now = T0;
    const first = limiter({ per_second: 1, burst_count: 1 });
    const never = limiter({ per_second: 1, burst_count: 0 });
    const last = limiter({ per_second: 1, burst_count: 1 });
    expect(await limitedWait(RateLimiter.takeEach([[first, 'k'], [never, 'k'], [last, 'k']]))).toBe(1000);
    expect(await fits(first, 'k')).toBe(false);
    expect(await fits(last, 'k')).toBe(true);
  });

  it('never lets parallel calls exceed any limiter’s burst', async () => {
    now = T0;
    const address = limiter({ per_second: 0.001, burst_count: 20 });
    const account = limiter({ per_second: 0.001, burst_count: 7 });
    const failed = limiter({ per_second: 0.001, burst_count: 5 });
    const outcomes = await Promise.allSettled(
      Array.from({ length: 16 }, () =>
        RateLimiter.takeEach([
          [address, 'ip'],
          [account, 'acct'],
          [failed, 'acct'],
        ]),
      ),
    );
    expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(5);
    for (const o of outcomes) if (o.status === 'rejected') expect((o.reason as MatrixError).errcode).toBe('M_LIMIT_EXCEEDED');
    // Every call took from the address; those refused by the account took nothing more.
    expect(await limitedWait(address.take('ip'))).toBeNull();
    for (let i = 0; i < 3; i++) await address.take('ip');
    expect(await limitedWait(address.take('ip'))).not.toBeNull();
    expect(await fits(account, 'acct')).toBe(false);
    expect(await fits(failed, 'acct')).toBe(false);
  });

  it('takes limiters of different stores one by one, with the same answers', async () => {
    now = T0;
    const other = limiter({ per_second: 1, burst_count: 1 }, new MemoryBucketStore());
    const mine = limiter({ per_second: 1, burst_count: 1 });
    await RateLimiter.takeEach([
      [other, 'k'],
      [mine, 'k'],
    ]);
    expect(await fits(other, 'k')).toBe(false);
    expect(await fits(mine, 'k')).toBe(false);
    expect(await limitedWait(RateLimiter.takeEach([[other, 'k'], [mine, 'k']]))).toBe(1000);
  });
});

describe.each(backends())('tryTakeFromBuckets (%s)', (backend) => {
  let db: Knex;
  let close: () => Promise<void>;
  beforeAll(async () => {
    ({ db, close } = await openMigratedDatabases(backend, 'rl-buckets'));
  });
  afterAll(async () => {
    await close?.();
  });

  it('leaves every bucket at the level separate tryTakeFromBucket calls leave, fractional rates included', async () => {
    const keys = [uniq('a'), uniq('b'), uniq('c')];
    const mirror = keys.map((k) => `${k}-mirror`);
    // The second bucket fills first: by the third call it refuses (the first has drained, the third is not reached).
    const rates = [2, 0.17, 0];
    const steps = (ks: string[]) => ks.map((key, i) => ({ key, cost: 1, rate: rates[i]!, burst: 2 }));
    for (const [t, n] of [
      [T0, 3],
      [T0 + 700, 3],
      [T0 + 900, 1],
    ] as const) {
      expect(await tryTakeFromBuckets(db, steps(keys), t)).toBe(n);
      let taken = 0;
      for (const s of steps(mirror)) {
        if (!(await tryTakeFromBucket(db, s.key, s.cost, s.rate, s.burst, t))) break;
        taken++;
      }
      expect(taken).toBe(n);
    }
    for (const [i, k] of keys.entries()) {
      const [got, want] = [await readBucket(db, k), await readBucket(db, mirror[i]!)];
      expect(got!.updated_ts).toBe(want!.updated_ts);
      expect(got!.level).toBeCloseTo(want!.level, 9);
      const rows = await db('rate_limits').whereIn('key', [k, mirror[i]!]).select('empty_ts');
      expect(Number(rows[0].empty_ts)).toBe(Number(rows[1].empty_ts));
    }
  });

  it('takes nothing past the first full bucket, and returns 0 when the first refuses', async () => {
    const [a, b, c] = [uniq('a'), uniq('b'), uniq('c')];
    expect(await tryTakeFromBucket(db, b, 1, 0, 1, T0)).toBe(true);
    expect(await tryTakeFromBuckets(db, [a, b, c].map((key) => ({ key, cost: 1, rate: 0, burst: 1 })), T0)).toBe(1);
    expect((await readBucket(db, a))!.level).toBe(1);
    expect((await readBucket(db, b))!.level).toBe(1);
    expect(await readBucket(db, c)).toBeNull();
    expect(await tryTakeFromBuckets(db, [b, c].map((key) => ({ key, cost: 1, rate: 0, burst: 1 })), T0)).toBe(0);
    expect(await readBucket(db, c)).toBeNull();
  });
});
