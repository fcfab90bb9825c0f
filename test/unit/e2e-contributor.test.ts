// The e2e sync contributor against a real database: key counts, unused
// fallback types, and device_lists.changed only for a window holding a change.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Knex } from 'knex';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrateToLatest, openDatabase } from '../../src/db/database.js';
import { claimFallbackKey, insertOneTimeKeys, putFallbackKey } from '../../src/repositories/e2e-keys.js';
import { currentPositions, recordDeviceListChange } from '../../src/repositories/streams.js';
import { e2eSyncContributor } from '../../src/sync/e2e-contributor.js';
import type { SyncResponseParts } from '../../src/sync/types.js';
import { backends, createPgDatabase, type PgDatabase } from '../support/backends.js';

const empty = (): SyncResponseParts => ({
  account_data: { events: [] },
  presence: { events: [] },
  to_device: { events: [] },
  device_lists: { changed: [], left: [] },
  device_one_time_keys_count: {},
  device_unused_fallback_key_types: [],
  rooms: { join: {}, invite: {}, leave: {}, knock: {} },
});

describe.each(backends())('e2e sync contributor (%s)', (backend) => {
  let db: Knex;
  let dir: string;
  let pg: PgDatabase | null = null;
  const who = { userId: '@c:test', deviceId: 'DEV' };
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'gatehouse-e2e-'));
    if (backend === 'postgres') {
      pg = await createPgDatabase();
      db = openDatabase({ name: 'postgres', args: pg.args });
    } else db = openDatabase({ name: 'sqlite3', args: { database: join(dir, 'h.db') } });
    await migrateToLatest(db);
    await db('users').insert({ user_id: who.userId, localpart: 'c', created_ts: 0 });
    await db('devices').insert({ user_id: who.userId, device_id: who.deviceId, created_ts: 0 });
  });
  afterAll(async () => {
    await db?.destroy();
    await pg?.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('reports counts, unused fallback types, and own device-list changes in the window', async () => {
    const before = await currentPositions(db);
    await insertOneTimeKeys(db, who.userId, who.deviceId, [
      { algorithm: 'signed_curve25519', key_id: 'a', key_json: '{}' },
      { algorithm: 'signed_curve25519', key_id: 'b', key_json: '{}' },
    ]);
    await putFallbackKey(db, who.userId, who.deviceId, 'signed_curve25519', 'f', '{}');
    await db.transaction((trx) => recordDeviceListChange(trx, who.userId));
    const after = await currentPositions(db);

    const initial = empty();
    await e2eSyncContributor.contribute(db, who, { since: null, upTo: after, filter: {}, fullState: false }, initial);
    expect(initial.device_one_time_keys_count).toEqual({ signed_curve25519: 2 });
    expect(initial.device_unused_fallback_key_types).toEqual(['signed_curve25519']);
    expect(initial.device_lists.changed).toEqual([]);

    const incremental = empty();
    await e2eSyncContributor.contribute(db, who, { since: before, upTo: after, filter: {}, fullState: false }, incremental);
    expect(incremental.device_lists.changed).toEqual([who.userId]);
    const later = empty();
    await claimFallbackKey(db, who.userId, who.deviceId, 'signed_curve25519');
    await e2eSyncContributor.contribute(db, who, { since: after, upTo: after, filter: {}, fullState: false }, later);
    expect(later.device_lists.changed).toEqual([]);
    expect(later.device_unused_fallback_key_types).toEqual([]);
  });
});
