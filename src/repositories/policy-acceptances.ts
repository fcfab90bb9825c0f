// SQL for terms of service (MSC1692): which version of which policy each user
// accepted, and when.

import type { Knex } from 'knex';

const TABLE = 'user_policy_acceptances';

export interface PolicyAcceptance {
  policy_id: string;
  version: string;
  /** Milliseconds since the epoch. */
  accepted_ts: number;
}

/** Records that `userId` accepted each of `accepted` (policy ID → version) at `now`. */
export async function insertAcceptances(q: Knex, userId: string, accepted: Record<string, string>, now: number): Promise<void> {
  const rows = Object.entries(accepted).map(([policy_id, version]) => ({ user_id: userId, policy_id, version, accepted_ts: now }));
  if (rows.length > 0) await q(TABLE).insert(rows);
}

/** Every acceptance of `userId`, oldest first (then by policy ID and version). */
export async function listAcceptances(q: Knex, userId: string): Promise<PolicyAcceptance[]> {
  const rows = await q(TABLE)
    .where({ user_id: userId })
    .orderBy([{ column: 'accepted_ts' }, { column: 'policy_id' }, { column: 'version' }])
    .select('policy_id', 'version', 'accepted_ts');
  return rows.map((r: Record<string, unknown>) => ({
    policy_id: r.policy_id as string,
    version: r.version as string,
    accepted_ts: Number(r.accepted_ts),
  }));
}
