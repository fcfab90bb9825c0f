// Leaky-bucket rate limiting with Synapse's semantics: a bucket holds up to
// `burst_count` actions and drains at `per_second`. Buckets live in memory for
// a single SQLite process, or in the database so PostgreSQL processes agree.

import type { Knex } from 'knex';
import type { RateLimit } from '../config/types.js';
import { limitExceeded } from '../errors.js';
import { createHash } from 'node:crypto';
import { deleteDrainedBuckets, readBucket, refundToBucket, tryTakeFromBucket, tryTakeFromBuckets } from '../repositories/rate-limits.js';

export interface BucketStore {
  /** Adds `cost` to the bucket if it fits; returns 0 when allowed, else ms until it would fit. */
  take(key: string, cost: number, limit: RateLimit, now: number): Promise<number>;
  /**
   * `take` on each bucket in order, stopping at the first that refuses (those
   * before it stay taken, those after it are untouched). Keys must differ.
   * Returns the index refused (-1 when none) and ms until it would fit.
   */
  takeInOrder(steps: BucketStep[], now: number): Promise<{ refused: number; wait: number }>;
  /** Like take, without adding anything. */
  peek(key: string, cost: number, limit: RateLimit, now: number): Promise<number>;
  /** Removes up to `cost` from the bucket (never below empty). */
  refund(key: string, cost: number, limit: RateLimit, now: number): Promise<void>;
}

export interface BucketStep {
  key: string;
  cost: number;
  limit: RateLimit;
}

function waitMs(level: number, cost: number, limit: RateLimit): number {
  const excess = level + cost - limit.burst_count;
  if (excess <= 0) return 0;
  return limit.per_second > 0 ? (excess / limit.per_second) * 1000 : 24 * 3_600_000;
}

const drained = (level: number, since: number, now: number, rate: number) => Math.max(level - ((now - since) * rate) / 1000, 0);

export class MemoryBucketStore implements BucketStore {
  private readonly buckets = new Map<string, { level: number; ts: number; rate: number }>();
  private lastSweep = 0;

  async take(key: string, cost: number, limit: RateLimit, now: number): Promise<number> {
    return this.takeNow(key, cost, limit, now);
  }

  async takeInOrder(steps: BucketStep[], now: number): Promise<{ refused: number; wait: number }> {
    // Synchronous inside: no promise per bucket, and no other request can take between the steps.
    for (let i = 0; i < steps.length; i++) {
      const s = steps[i]!;
      const wait = this.takeNow(s.key, s.cost, s.limit, now);
      if (wait > 0) return { refused: i, wait };
    }
    return { refused: -1, wait: 0 };
  }

  private takeNow(key: string, cost: number, limit: RateLimit, now: number): number {
    this.sweep(now);
    const b = this.buckets.get(key);
    const level = b ? drained(b.level, b.ts, now, limit.per_second) : 0;
    const wait = waitMs(level, cost, limit);
    if (wait === 0) this.buckets.set(key, { level: level + cost, ts: now, rate: limit.per_second });
    return wait;
  }

  async peek(key: string, cost: number, limit: RateLimit, now: number): Promise<number> {
    const b = this.buckets.get(key);
    return waitMs(b ? drained(b.level, b.ts, now, limit.per_second) : 0, cost, limit);
  }

  async refund(key: string, cost: number, limit: RateLimit, now: number): Promise<void> {
    const b = this.buckets.get(key);
    if (b) this.buckets.set(key, { level: Math.max(drained(b.level, b.ts, now, limit.per_second) - cost, 0), ts: now, rate: limit.per_second });
  }

  /**
   * Forgets buckets that have drained empty, so the map cannot grow without
   * bound (as Synapse prunes). A bucket still holding actions is kept, however
   * long it has been idle, or forgetting it would lift its limit early.
   */
  private sweep(now: number): void {
    if (now - this.lastSweep < 60_000) return;
    this.lastSweep = now;
    for (const [k, b] of this.buckets) if (drained(b.level, b.ts, now, b.rate) === 0) this.buckets.delete(k);
  }
}

export class DatabaseBucketStore implements BucketStore {
  private lastSweep = 0;

  constructor(private readonly db: Knex) {}

  async take(key: string, cost: number, limit: RateLimit, now: number): Promise<number> {
    await this.sweep(now);
    if (cost > limit.burst_count) return waitMs(0, cost, limit);
    if (await tryTakeFromBucket(this.db, key, cost, limit.per_second, limit.burst_count, now)) return 0;
    return this.peek(key, cost, limit, now);
  }

  /** One statement on PostgreSQL (see tryTakeFromBuckets), and one more only for the refused bucket's wait. */
  async takeInOrder(steps: BucketStep[], now: number): Promise<{ refused: number; wait: number }> {
    await this.sweep(now);
    // A step that can never fit is refused without a query, as `take` does; the ones before it are taken.
    const never = steps.findIndex((s) => s.cost > s.limit.burst_count);
    const tried = never === -1 ? steps : steps.slice(0, never);
    const taken = await tryTakeFromBuckets(
      this.db,
      tried.map((s) => ({ key: s.key, cost: s.cost, rate: s.limit.per_second, burst: s.limit.burst_count })),
      now,
    );
    if (taken < tried.length) {
      const s = tried[taken]!;
      const wait = await this.peek(s.key, s.cost, s.limit, now);
      if (wait > 0) return { refused: taken, wait };
      // Room again by the time it was read (a refund raced it): allowed uncounted, as `take`
      // answers then, and the rest are taken as separate takes would go on to.
      const rest = await this.takeInOrder(steps.slice(taken + 1), now);
      return rest.refused === -1 ? rest : { refused: taken + 1 + rest.refused, wait: rest.wait };
    }
    if (never !== -1) return { refused: never, wait: waitMs(0, steps[never]!.cost, steps[never]!.limit) };
    return { refused: -1, wait: 0 };
  }

  async peek(key: string, cost: number, limit: RateLimit, now: number): Promise<number> {
    const b = await readBucket(this.db, key);
    return waitMs(b ? drained(b.level, b.updated_ts, now, limit.per_second) : 0, cost, limit);
  }

  async refund(key: string, cost: number, limit: RateLimit, now: number): Promise<void> {
    await refundToBucket(this.db, key, cost, limit.per_second, now);
  }

  /** Once a minute per process, deletes drained rows so the table cannot grow without bound. */
  private async sweep(now: number): Promise<void> {
    if (now - this.lastSweep < 60_000) return;
    this.lastSweep = now;
    await deleteDrainedBuckets(this.db, now);
  }
}

/** One named limit (e.g. rc_login.address) over a store. */
export class RateLimiter {
  constructor(
    private readonly store: BucketStore,
    private readonly name: string,
    private readonly limit: RateLimit,
    private readonly clock: () => number = Date.now,
  ) {}

  /** The bucket's name: client-chosen keys (user names, forwarded addresses) are hashed when long. */
  private bucket(key: string): string {
    return `${this.name}:${key.length > 128 ? `sha256:${createHash('sha256').update(key).digest('hex')}` : key}`;
  }

  /** Counts one action for `key`, or throws M_LIMIT_EXCEEDED. */
  async take(key: string): Promise<void> {
    const wait = await this.store.take(this.bucket(key), 1, this.limit, this.clock());
    if (wait > 0) throw limitExceeded(wait);
  }

  /**
   * `take` on each (limiter, key) in order, throwing M_LIMIT_EXCEEDED for the
   * first that refuses: those before it stay counted and those after it are
   * not, exactly as separate `take` calls; on the database store (PostgreSQL)
   * in one statement. Limiters on different stores are taken one by one.
   */
  static async takeEach(takes: [RateLimiter, string][]): Promise<void> {
    const store = takes[0]?.[0].store;
    if (!store || takes.some(([l]) => l.store !== store)) {
      for (const [limiter, key] of takes) await limiter.take(key);
      return;
    }
    const steps = takes.map(([l, key]) => ({ key: l.bucket(key), cost: 1, limit: l.limit }));
    // One clock for all: a shared store's limiters read the same one (Date.now unless injected).
    const { refused, wait } = await store.takeInOrder(steps, takes[0]![0].clock());
    if (refused !== -1) throw limitExceeded(wait);
  }

  /** Throws M_LIMIT_EXCEEDED if one more action would not fit, without counting one. */
  async check(key: string): Promise<void> {
    const wait = await this.store.peek(this.bucket(key), 1, this.limit, this.clock());
    if (wait > 0) throw limitExceeded(wait);
  }

  /** Counts one action without refusing (e.g. a failed login attempt). */
  async record(key: string): Promise<void> {
    await this.store.take(this.bucket(key), 1, this.limit, this.clock());
  }

  /** Gives back one action taken with `take` (an attempt that turned out not to count). */
  async refund(key: string): Promise<void> {
    await this.store.refund(this.bucket(key), 1, this.limit, this.clock());
  }
}
