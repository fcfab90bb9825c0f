// SQL for rate-limit buckets shared between server processes (PostgreSQL).

import type { Knex } from 'knex';

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
  // PostgreSQL would infer the rate's parameter type as BIGINT from `now - updated_ts`
  // and reject a fractional rate such as 0.17; the cast keeps it a double.
  const drained = `GREATEST(rate_limits.level - (? - rate_limits.updated_ts) * CAST(? AS DOUBLE PRECISION) / 1000.0, 0)`;
  const sqliteDrained = drained.replace('GREATEST', 'MAX');
  const expr = q.client.config.client === 'pg' ? drained : sqliteDrained;
  // Milliseconds one action takes to drain; a bucket that never drains is kept for a year per action.
  const msPerAction = rate > 0 ? 1000 / rate : 365 * 86_400_000;
  const res = await q.raw(
    `INSERT INTO rate_limits (key, level, updated_ts, empty_ts) VALUES (?, ?, ?, ?)
     ON CONFLICT (key) DO UPDATE SET level = ${expr} + ?, updated_ts = ?,
       empty_ts = ? + CAST((${expr} + ?) * CAST(? AS DOUBLE PRECISION) AS BIGINT)
     WHERE ${expr} + ? <= ?
     RETURNING level`,
    [
      key, cost, now, Math.ceil(now + cost * msPerAction),
      now, rate, cost, now,
      now, now, rate, cost, msPerAction,
      now, rate, cost, burst,
    ],
  );
  const rows: unknown[] = Array.isArray(res) ? res : (res as { rows: unknown[] }).rows;
  return rows.length > 0;
}

/** Takes `cost` back out of a bucket (draining it to now first), never below empty. */
export async function refundToBucket(q: Knex, key: string, cost: number, rate: number, now: number): Promise<void> {
  const max = q.client.config.client === 'pg' ? 'GREATEST' : 'MAX';
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
