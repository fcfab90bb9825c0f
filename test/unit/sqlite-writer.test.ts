// The sign-in's prepared SQLite transaction (SqliteWriter) and the sign-in
// statements that run on either runner (knex or prepared): commit, rollback
// on any failure inside, no interleaving with knex's queries on the one
// writer connection, and the same rows on every runner and backend.

import type { Knex } from 'knex';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type PreparedTx, type Runner, SqliteWriter } from '../../src/db/database.js';
import { upsertDeviceIfUserMaySignIn } from '../../src/repositories/devices.js';
import { deleteTokensForDevice, insertAccessToken, insertRefreshToken } from '../../src/repositories/tokens.js';
import { insertUser } from '../../src/repositories/users.js';
import { backends, openMigratedDatabases } from '../support/backends.js';

const T0 = 1_700_000_000_000;
let n = 0;
const uniq = (p: string) => `${p}${++n}${Math.random().toString(36).slice(2, 6)}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function newUser(db: Knex): Promise<string> {
  const localpart = uniq('w');
  const user_id = `@${localpart}:test.local`;
  expect(await insertUser(db, { user_id, localpart, password_hash: 'hash-1', is_admin: false, is_guest: false, displayname: null }, T0)).toBe(true);
  return user_id;
}
const device = (user_id: string, device_id = 'DEV1') => ({ user_id, device_id, display_name: 'Phone', ip: '10.0.0.1', user_agent: 'ua/1' });
const access = (user_id: string, device_id = 'DEV1', refresh_token_id: number | null = null) => ({
  token_hash: uniq('a').padEnd(64, '0'),
  user_id,
  device_id,
  refresh_token_id,
  expires_ts: T0 + 60_000,
});

describe('SqliteWriter (sqlite)', () => {
  let db: Knex;
  let close: () => Promise<void>;
  let writer: SqliteWriter;
  beforeAll(async () => {
    ({ db, close } = await openMigratedDatabases('sqlite', 'sqlite-writer'));
    writer = new SqliteWriter(db);
  });
  afterAll(async () => {
    await writer?.close();
    await close?.();
  });

  it('commits what the function wrote and resolves to its result', async () => {
    const uid = await newUser(db);
    const id = await writer.transaction(async (tx) => {
      expect(await upsertDeviceIfUserMaySignIn(tx, device(uid), T0, 'hash-1')).toBe(true);
      return insertAccessToken(tx, access(uid), T0);
    });
    expect(await db('devices').where({ user_id: uid })).toHaveLength(1);
    expect(await db('access_tokens').where({ id }).first()).toMatchObject({ user_id: uid, device_id: 'DEV1', created_ts: T0 });
  });

  it('rolls back everything when the function rejects, rejects with its error, and frees the connection', async () => {
    const uid = await newUser(db);
    const boom = new Error('boom');
    await expect(
      writer.transaction(async (tx) => {
        expect(await upsertDeviceIfUserMaySignIn(tx, device(uid), T0, 'hash-1')).toBe(true);
        await insertAccessToken(tx, access(uid), T0);
        throw boom;
      }),
    ).rejects.toBe(boom);
    expect(await db('devices').where({ user_id: uid })).toHaveLength(0);
    expect(await db('access_tokens').where({ user_id: uid })).toHaveLength(0);
    // The connection went back to knex's pool, outside any transaction: knex writes and commits on it.
    await db('devices').insert({ user_id: uid, device_id: 'AFTER', display_name: null, created_ts: T0 });
    expect(await db('devices').where({ user_id: uid })).toHaveLength(1);
  });

  it('rolls back when a statement fails inside (a duplicate token hash), with the statement’s error', async () => {
    const uid = await newUser(db);
    const taken = access(uid);
    await insertAccessToken(db, taken, T0);
    await expect(
      writer.transaction(async (tx) => {
        await upsertDeviceIfUserMaySignIn(tx, device(uid, 'DEV2'), T0, 'hash-1');
        await insertRefreshToken(tx, { token_hash: uniq('r').padEnd(64, '0'), user_id: uid, device_id: 'DEV2', expires_ts: null }, T0);
        await insertAccessToken(tx, { ...taken, device_id: 'DEV2' }, T0);
      }),
    ).rejects.toThrow(/UNIQUE/);
    expect(await db('devices').where({ user_id: uid, device_id: 'DEV2' })).toHaveLength(0);
    expect(await db('refresh_tokens').where({ user_id: uid })).toHaveLength(0);
    expect(await db('access_tokens').where({ user_id: uid })).toHaveLength(1);
    // The next transaction on the same (cached) statements works.
    await writer.transaction((tx) => upsertDeviceIfUserMaySignIn(tx, device(uid, 'DEV3'), T0, 'hash-1'));
    expect(await db('devices').where({ user_id: uid, device_id: 'DEV3' })).toHaveLength(1);
  });

  it('a knex write issued during the transaction waits for it to end, and is not undone by its rollback', async () => {
    const uid = await newUser(db);
    const order: string[] = [];
    let concurrent!: Promise<unknown>;
    await expect(
      writer.transaction(async (tx) => {
        await upsertDeviceIfUserMaySignIn(tx, device(uid, 'MINE'), T0, 'hash-1');
        concurrent = db('devices')
          .insert({ user_id: uid, device_id: 'OTHER', display_name: null, created_ts: T0 })
          .then(() => order.push('knex write'));
        await sleep(100);
        order.push('transaction body done');
        // Inside the transaction only its own write is there.
        expect((await tx.all('SELECT device_id FROM devices WHERE user_id = ?', [uid])).map((r) => r.device_id)).toEqual(['MINE']);
        throw new Error('undo');
      }),
    ).rejects.toThrow('undo');
    await concurrent;
    expect(order).toEqual(['transaction body done', 'knex write']);
    expect((await db('devices').where({ user_id: uid })).map((r) => r.device_id)).toEqual(['OTHER']);
  });

  it('runs transactions one after another, never interleaved', async () => {
    const uid = await newUser(db);
    const events: string[] = [];
    await Promise.all(
      [0, 1, 2].map((i) =>
        writer.transaction(async (tx) => {
          events.push(`begin ${i}`);
          await upsertDeviceIfUserMaySignIn(tx, device(uid, `P${i}`), T0, 'hash-1');
          await sleep(20);
          await insertAccessToken(tx, access(uid, `P${i}`), T0);
          events.push(`end ${i}`);
        }),
      ),
    );
    expect(events).toEqual(['begin 0', 'end 0', 'begin 1', 'end 1', 'begin 2', 'end 2']);
    expect(await db('access_tokens').where({ user_id: uid })).toHaveLength(3);
  });

  it('refuses statements on the transaction once it has ended, and runs afterEnd hooks after commit and after rollback', async () => {
    let kept!: PreparedTx;
    const hooks: string[] = [];
    await writer.transaction(async (tx) => {
      kept = tx;
      tx.afterEnd(() => hooks.push('committed'));
    });
    await expect(kept.all('SELECT 1', [])).rejects.toThrow(/ended/);
    await writer
      .transaction(async (tx) => {
        tx.afterEnd(() => hooks.push('rolled back'));
        throw new Error('x');
      })
      .catch(() => undefined);
    expect(hooks).toEqual(['committed', 'rolled back']);
  });

  it('rejects a statement that does not prepare, and rolls back', async () => {
    const uid = await newUser(db);
    await expect(
      writer.transaction(async (tx) => {
        await upsertDeviceIfUserMaySignIn(tx, device(uid, 'BAD'), T0, 'hash-1');
        await tx.all('SELECT * FROM no_such_table', []);
      }),
    ).rejects.toThrow(/no such table/);
    expect(await db('devices').where({ user_id: uid })).toHaveLength(0);
  });
});

describe.each(backends())('sign-in statements on each runner (%s)', (backend) => {
  let db: Knex;
  let close: () => Promise<void>;
  let writer: SqliteWriter | null;
  beforeAll(async () => {
    ({ db, close } = await openMigratedDatabases(backend, 'signin-runners'));
    writer = backend === 'sqlite' ? new SqliteWriter(db) : null;
  });
  afterAll(async () => {
    await writer?.close();
    await close?.();
  });

  /** Each runner the backend has: a knex transaction, and on SQLite the prepared one. */
  const runners = (): [string, <T>(fn: (q: Runner) => Promise<T>) => Promise<T>][] => [
    ['knex', (fn) => db.transaction((trx) => fn(trx))],
    ...(writer ? [['prepared', (fn: (q: Runner) => Promise<unknown>) => writer!.transaction(fn)] as [string, <T>(fn: (q: Runner) => Promise<T>) => Promise<T>]] : []),
  ];

  it('insertRefreshToken and insertAccessToken write the same rows, with ids that link them', async () => {
    const shapes: unknown[] = [];
    for (const [, run] of runners()) {
      const uid = await newUser(db);
      const { rid, aid } = await run(async (q) => {
        const rid = await insertRefreshToken(
          q,
          { token_hash: uniq('r').padEnd(64, '0'), user_id: uid, device_id: 'D', expires_ts: T0 + 5, ultimate_session_expiry_ts: T0 + 9 },
          T0,
        );
        const aid = await insertAccessToken(q, access(uid, 'D', rid), T0);
        return { rid, aid };
      });
      expect(typeof rid).toBe('number');
      expect(typeof aid).toBe('number');
      const r = await db('refresh_tokens').where({ id: rid }).first();
      const a = await db('access_tokens').where({ id: aid }).first();
      expect(Number(a.refresh_token_id)).toBe(rid);
      expect(!!a.used).toBe(false);
      shapes.push({
        refresh: { next: r.next_token_id, expires: Number(r.expires_ts), end: Number(r.ultimate_session_expiry_ts), created: Number(r.created_ts) },
        access: { expires: Number(a.expires_ts), created: Number(a.created_ts), device: a.device_id },
      });
    }
    for (const s of shapes)
      expect(s).toEqual({ refresh: { next: null, expires: T0 + 5, end: T0 + 9, created: T0 }, access: { expires: T0 + 60_000, created: T0, device: 'D' } });
  });

  it('deleteTokensForDevice deletes that device’s access and refresh tokens only', async () => {
    for (const [, run] of runners()) {
      const uid = await newUser(db);
      const other = await newUser(db);
      for (const [u, d] of [
        [uid, 'GONE'],
        [uid, 'KEPT'],
        [other, 'GONE'],
      ] as const) {
        const rid = await insertRefreshToken(db, { token_hash: uniq('r').padEnd(64, '0'), user_id: u, device_id: d, expires_ts: null }, T0);
        await insertAccessToken(db, access(u, d, rid), T0);
      }
      await run((q) => deleteTokensForDevice(q, uid, 'GONE'));
      for (const table of ['access_tokens', 'refresh_tokens']) {
        expect((await db(table).where({ user_id: uid })).map((r) => r.device_id)).toEqual(['KEPT']);
        expect((await db(table).where({ user_id: other })).map((r) => r.device_id)).toEqual(['GONE']);
      }
    }
  });

  it('upsertDeviceIfUserMaySignIn refuses another hash and writes nothing, on every runner', async () => {
    for (const [, run] of runners()) {
      const uid = await newUser(db);
      expect(await run((q) => upsertDeviceIfUserMaySignIn(q, device(uid), T0, 'hash-2'))).toBe(false);
      expect(await db('devices').where({ user_id: uid })).toHaveLength(0);
      expect(await run((q) => upsertDeviceIfUserMaySignIn(q, device(uid), T0, 'hash-1'))).toBe(true);
      expect(await db('devices').where({ user_id: uid })).toHaveLength(1);
    }
  });
});
