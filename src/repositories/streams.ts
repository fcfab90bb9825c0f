// SQL for /sync's stream positions (see migrations/20261129080000_sync_streams.ts)
// and the device-list changes stream.

import type { Knex } from 'knex';

/** The kinds of data /sync delivers, each with its own position. */
export type StreamKind = 'account_data' | 'to_device' | 'device_lists' | 'presence';

export const STREAM_KINDS: readonly StreamKind[] = ['account_data', 'to_device', 'device_lists', 'presence'];

/**
 * Takes the next position of `kind`, inside the writer's transaction (which
 * must also write the data at that position). The row stays locked until the
 * transaction ends, so writers of one kind commit in position order.
 */
export async function nextPosition(trx: Knex.Transaction, kind: StreamKind): Promise<number> {
  await trx('stream_positions').insert({ kind, position: 0 }).onConflict('kind').ignore();
  const rows = await trx('stream_positions').where({ kind }).increment('position', 1).returning('position');
  const row = rows[0] as { position: number | string } | number | string;
  return Number(typeof row === 'object' ? row.position : row);
}

/** The latest committed position of every kind (0 for a kind never written). */
export async function currentPositions(q: Knex): Promise<Record<StreamKind, number>> {
  const rows = await q('stream_positions').select('kind', 'position');
  const out = Object.fromEntries(STREAM_KINDS.map((k) => [k, 0])) as Record<StreamKind, number>;
  for (const r of rows as { kind: string; position: number | string }[]) if ((STREAM_KINDS as readonly string[]).includes(r.kind)) out[r.kind as StreamKind] = Number(r.position);
  return out;
}

/** Records that `userId`'s device list changed (a device or its keys added, changed or deleted). */
export async function recordDeviceListChange(trx: Knex.Transaction, userId: string): Promise<number> {
  const position = await nextPosition(trx, 'device_lists');
  await trx('device_list_changes').insert({ user_id: userId, stream_position: position });
  return position;
}

/** Which of `userIds` had device-list changes after `since`, up to `upTo` (inclusive). */
export async function deviceListsChangedBetween(q: Knex, userIds: string[], since: number, upTo: number): Promise<string[]> {
  if (userIds.length === 0) return [];
  const rows = await q('device_list_changes')
    .whereIn('user_id', userIds)
    .where('stream_position', '>', since)
    .where('stream_position', '<=', upTo)
    .distinct('user_id');
  return (rows as { user_id: string }[]).map((r) => r.user_id);
}
