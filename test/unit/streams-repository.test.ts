// /sync's stream positions on SQLite (and PostgreSQL when GATEHOUSE_TEST_PG is
// set): positions only grow, writers of one kind get consecutive positions
// even in parallel, and the device-list changes read back by window.

import type { Knex } from 'knex';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { currentPositions, deviceListsChangedBetween, nextPosition, recordDeviceListChange } from '../../src/repositories/streams.js';
import { backends, type MigratedDatabases, openMigratedDatabases } from '../support/backends.js';

describe.each(backends())('stream positions (%s)', (backend) => {
  let db: Knex;
  let databases: MigratedDatabases | undefined;
  beforeAll(async () => {
    databases = await openMigratedDatabases(backend, 'streams');
    ({ db } = databases);
  });
  afterAll(async () => {
    await databases?.close();
  });

  it('starts at 0 and gives parallel writers of one kind consecutive positions', async () => {
    expect(await currentPositions(db)).toEqual({ account_data: 0, to_device: 0, device_lists: 0, presence: 0 });
    const got = await Promise.all(Array.from({ length: 20 }, () => db.transaction((trx) => nextPosition(trx, 'to_device'))));
    expect([...got].sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    expect((await currentPositions(db)).to_device).toBe(20);
    expect((await currentPositions(db)).account_data).toBe(0);
  });

  it('a rolled-back writer takes no position', async () => {
    const before = (await currentPositions(db)).account_data;
    await expect(
      db.transaction(async (trx) => {
        await nextPosition(trx, 'account_data');
        throw new Error('rolled back');
      }),
    ).rejects.toThrow('rolled back');
    expect((await currentPositions(db)).account_data).toBe(before);
  });

  it('reads device-list changes by window', async () => {
    const p1 = await db.transaction((trx) => recordDeviceListChange(trx, '@a:x'));
    const p2 = await db.transaction((trx) => recordDeviceListChange(trx, '@b:x'));
    expect(p2).toBe(p1 + 1);
    expect(await deviceListsChangedBetween(db, ['@a:x', '@b:x', '@c:x'], p1 - 1, p2)).toEqual(expect.arrayContaining(['@a:x', '@b:x']));
    expect(await deviceListsChangedBetween(db, ['@a:x', '@b:x'], p1, p2)).toEqual(['@b:x']);
    expect(await deviceListsChangedBetween(db, ['@a:x'], p2, p2 + 10)).toEqual([]);
    expect(await deviceListsChangedBetween(db, [], 0, p2)).toEqual([]);
  });
});
