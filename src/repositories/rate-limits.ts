// SQL for rate-limit buckets shared between server processes (PostgreSQL).

import type { Knex } from 'knex';
import { dialectOf, rawRows } from '../db/database.js';

/**
 * One leaky bucket step as a single conditional upsert: the bucket drains at
 * `rate` per second; the action is allowed when level + cost <= burst. The
 * row comes back only when allowed, so parallel processes cannot overshoot.
 */
export async function tryTakeFromBucket(
  q: Knex,
  key: string,
  cost: number,
  rate: number,
  burst: number,
  now: number,
): Promise<boolean> {
  const step = bucketStep({ key, cost, rate, burst }, now, dialectOf(q) === 'postgres');
  const res = await q.raw(`INSERT INTO rate_limits (key, level, updated_ts, empty_ts) VALUES (?, ?, ?, ?) ${step.upsert} RETURNING level`, [
    ...step.values,
    ...step.upsertBindings,
  ]);
  return rawRows(res).length > 0;
}

/** One bucket of `tryTakeFromBuckets`: `rate` actions per second drain, `burst` fit. */
export interface BucketTake {
  key: string;
  cost: number;
  rate: number;
  burst: number;
}

/** The inserted row's values and the conditional ON CONFLICT clause of one leaky-bucket step. */
function bucketStep(b: BucketTake, now: number, pg: boolean): { values: (string | number)[]; upsert: string; upsertBindings: (string | number)[] } {
  // PostgreSQL would infer the rate's parameter type as BIGINT from `now - updated_ts`
  // and reject a fractional rate such as 0.17; the cast keeps it a double.
  const drained = `${pg ? 'GREATEST' : 'MAX'}(rate_limits.level - (? - rate_limits.updated_ts) * CAST(? AS DOUBLE PRECISION) / 1000.0, 0)`;
  // Milliseconds one action takes to drain; a bucket that never drains is kept for a year per action.
  const msPerAction = b.rate > 0 ? 1000 / b.rate : 365 * 86_400_000;
  return {
    values: [b.key, b.cost, now, Math.ceil(now + b.cost * msPerAction)],
    upsert: `ON CONFLICT (key) DO UPDATE SET level = ${drained} + ?, updated_ts = ?,
       empty_ts = ? + CAST((${drained} + ?) * CAST(? AS DOUBLE PRECISION) AS BIGINT)
     WHERE ${drained} + ? <= ?`,
    upsertBindings: [now, b.rate, b.cost, now, now, now, b.rate, b.cost, msPerAction, now, b.rate, b.cost, b.burst],
  };
}

/**
 * `tryTakeFromBucket` on each bucket in order, stopping at the first that
 * refuses: the buckets before it stay taken, as separate takes would leave
 * them, and the ones after it are not touched. Returns how many were taken
 * (all of them when every one allowed). Keys must differ. On PostgreSQL one
 * statement (chained data-modifying CTEs, each step inserting only when the
 * one before returned its row); SQLite, which has no such CTEs, takes them
 * one statement at a time.
 */
export async function tryTakeFromBuckets(q: Knex, buckets: BucketTake[], now: number): Promise<number> {
  if (dialectOf(q) !== 'postgres' || buckets.length < 2) {
    let taken = 0;
    for (const b of buckets) {
      if (!(await tryTakeFromBucket(q, b.key, b.cost, b.rate, b.burst, now))) break;
      taken++;
    }
    return taken;
  }
  const ctes: string[] = [];
  const bindings: (string | number)[] = [];
  buckets.forEach((b, i) => {
    const step = bucketStep(b, now, true);
    // Typed: a parameter in a SELECT list would otherwise be text.
    ctes.push(
      `s${i} AS (INSERT INTO rate_limits (key, level, updated_ts, empty_ts)
       SELECT CAST(? AS TEXT), CAST(? AS DOUBLE PRECISION), CAST(? AS BIGINT), CAST(? AS BIGINT)${i > 0 ? ` WHERE EXISTS (SELECT 1 FROM s${i - 1})` : ''}
       ${step.upsert} RETURNING 1)`,
    );
    bindings.push(...step.values, ...step.upsertBindings);
  });
  const res = await q.raw(
    `WITH ${ctes.join(',\n')} SELECT ${buckets.map((_, i) => `(SELECT count(*) FROM s${i})`).join(' + ')} AS taken`,
    bindings,
  );
  return Number((res as { rows: { taken: unknown }[] }).rows[0]!.taken);
}

/** Takes `cost` back out of a bucket (draining it to now first), never below empty. */
export async function refundToBucket(q: Knex, key: string, cost: number, rate: number, now: number): Promise<void> {
  const max = dialectOf(q) === 'postgres' ? 'GREATEST' : 'MAX';
  await q.raw(
    `UPDATE rate_limits SET level = ${max}(level - (? - updated_ts) * CAST(? AS DOUBLE PRECISION) / 1000.0 - ?, 0), updated_ts = ?
     WHERE key = ?`,
    [now, rate, cost, now, key],
  );
}

export async function readBucket(q: Knex, key: string): Promise<{ level: number; updated_ts: number } | null> {
  const r = await q('rate_limits').where({ key }).first();
  return r ? { level: Number(r.level), updated_ts: Number(r.updated_ts) } : null;
}

export async function deleteBucket(q: Knex, key: string): Promise<void> {
  await q('rate_limits').where({ key }).delete();
}

/** Deletes buckets that have drained empty (they hold nothing a fresh bucket would not). */
export async function deleteDrainedBuckets(q: Knex, now: number): Promise<number> {
  return q('rate_limits').where('empty_ts', '<=', now).delete();
}
