// The login path's guarded device write (Devices.upsertDeviceIfUserMaySignIn)
// against real databases: it writes exactly when the user's row still has the
// password hash read before the check and lets the user sign in, and on
// PostgreSQL it holds the user's row locked until the transaction ends.

import type { Knex } from 'knex';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findDevice, upsertDevice, upsertDeviceIfUserMaySignIn } from '../../src/repositories/devices.js';
import { PreparedAccessTokenLookup } from '../../src/repositories/tokens.js';
import { findUser, insertUser, markDeactivated, setApproved, setLock, setPasswordHash, setSuspension } from '../../src/repositories/users.js';
import { backends, openMigratedDatabases } from '../support/backends.js';

const T0 = 1_700_000_000_000;
let n = 0;
const uniq = (p: string) => `${p}${++n}${Math.random().toString(36).slice(2, 6)}`;

describe.each(backends())('upsertDeviceIfUserMaySignIn (%s)', (backend) => {
  let db: Knex;
  let db2: Knex;
  let close: () => Promise<void>;
  beforeAll(async () => {
    ({ db, db2, close } = await openMigratedDatabases(backend, 'login-path'));
  });
  afterAll(async () => {
    await close?.();
  });

  const newUser = async () => {
    const localpart = uniq('u');
    const user_id = `@${localpart}:test.local`;
    expect(await insertUser(db, { user_id, localpart, password_hash: 'hash-1', is_admin: false, is_guest: false, displayname: null }, T0)).toBe(true);
    return user_id;
  };
  const device = (user_id: string, device_id = 'DEV1', extra: Partial<{ display_name: string | null; ip: string | null; user_agent: string | null }> = {}) => ({
    user_id,
    device_id,
    display_name: 'Phone',
    ip: '10.0.0.1',
    user_agent: 'ua/1',
    ...extra,
  });

  it('creates the device like upsertDevice when the row still has the hash and may sign in', async () => {
    const uid = await newUser();
    expect(await upsertDeviceIfUserMaySignIn(db, device(uid), T0, 'hash-1')).toBe(true);
    const row = await findDevice(db, uid, 'DEV1');
    expect(row).toEqual({
      user_id: uid,
      device_id: 'DEV1',
      display_name: 'Phone',
      created_ts: T0,
      last_seen_ts: T0,
      last_seen_ip: '10.0.0.1',
      last_seen_user_agent: 'ua/1',
    });
    expect(typeof row!.created_ts).toBe('number');
  });

  it('keeps a known device its name and created_ts and moves last-seen, the same row upsertDevice leaves', async () => {
    const a = await newUser();
    const b = await newUser();
    for (const uid of [a, b]) await upsertDevice(db, device(uid), T0);
    await upsertDevice(db, device(a, 'DEV1', { display_name: 'Laptop', ip: '10.0.0.2', user_agent: null }), T0 + 1000);
    expect(await upsertDeviceIfUserMaySignIn(db, device(b, 'DEV1', { display_name: 'Laptop', ip: '10.0.0.2', user_agent: null }), T0 + 1000, 'hash-1')).toBe(true);
    const [ra, rb] = [await findDevice(db, a, 'DEV1'), await findDevice(db, b, 'DEV1')];
    expect(rb).toEqual({ ...ra, user_id: b });
    expect(rb).toMatchObject({ display_name: 'Phone', created_ts: T0, last_seen_ts: T0 + 1000, last_seen_ip: '10.0.0.2', last_seen_user_agent: null });
    expect(await db('devices').where({ user_id: b })).toHaveLength(1);
  });

  it('writes nothing for another hash, a deactivated, unapproved or locked account, or an unknown user', async () => {
    const changed = await newUser();
    await setPasswordHash(db, changed, 'hash-2');
    const deactivated = await newUser();
    await markDeactivated(db, deactivated);
    const unapproved = await newUser();
    await setApproved(db, unapproved, false);
    const locked = await newUser();
    await setLock(db, locked, { reason: null, until: null });
    // A lock whose end has passed no longer holds, but this fast path leaves it to the caller's full check.
    const lockEnded = await newUser();
    await setLock(db, lockEnded, { reason: null, until: T0 - 1 });
    for (const [uid, hash] of [
      [changed, 'hash-1'],
      [deactivated, 'hash-1'],
      [unapproved, 'hash-1'],
      [locked, 'hash-1'],
      [lockEnded, 'hash-1'],
      ['@nobody:test.local', 'hash-1'],
    ] as const) {
      expect(await upsertDeviceIfUserMaySignIn(db, device(uid), T0, hash)).toBe(false);
      expect(await db('devices').where({ user_id: uid })).toHaveLength(0);
    }
    // An existing device is not touched either.
    await upsertDevice(db, device(locked), T0);
    expect(await upsertDeviceIfUserMaySignIn(db, device(locked, 'DEV1', { ip: '10.9.9.9' }), T0 + 5, 'hash-1')).toBe(false);
    expect(await findDevice(db, locked, 'DEV1')).toMatchObject({ last_seen_ts: T0, last_seen_ip: '10.0.0.1' });
  });

  it('lets a suspended account sign in (MSC3823)', async () => {
    const uid = await newUser();
    await setSuspension(db, uid, { reason: null, until: null });
    expect(await upsertDeviceIfUserMaySignIn(db, device(uid), T0, 'hash-1')).toBe(true);
  });

  it.runIf(backend === 'postgres')('holds the user row locked: a password change waits for the sign-in to commit', async () => {
    const uid = await newUser();
    let changed = false;
    let change!: Promise<void>;
    await db.transaction(async (trx) => {
      expect(await upsertDeviceIfUserMaySignIn(trx, device(uid), T0, 'hash-1')).toBe(true);
      change = db2.transaction(async (t2) => {
        await setPasswordHash(t2, uid, 'hash-2');
        changed = true;
      });
      await new Promise((r) => setTimeout(r, 300));
      expect(changed).toBe(false);
    });
    // Committing released the row: the change goes through.
    await change;
    expect(changed).toBe(true);
    expect((await db('users').where({ user_id: uid }).first()).password_hash).toBe('hash-2');
  });

  it.runIf(backend === 'postgres')('sees a password change committed while it waited for the row, and writes nothing', async () => {
    const uid = await newUser();
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let locked!: () => void;
    const isLocked = new Promise<void>((r) => (locked = r));
    const change = db2.transaction(async (t2) => {
      await t2('users').where({ user_id: uid }).forUpdate().first();
      locked();
      await held;
      await setPasswordHash(t2, uid, 'hash-2');
    });
    await isLocked;
    const signIn = db.transaction((trx) => upsertDeviceIfUserMaySignIn(trx, device(uid), T0, 'hash-1'));
    await new Promise((r) => setTimeout(r, 200));
    release();
    await change;
    expect(await signIn).toBe(false);
    expect(await db('devices').where({ user_id: uid })).toHaveLength(0);
  });
});

describe('PreparedAccessTokenLookup.findUser (sqlite)', () => {
  let db: Knex;
  let close: () => Promise<void>;
  let prepared: PreparedAccessTokenLookup;
  beforeAll(async () => {
    ({ db, close } = await openMigratedDatabases('sqlite', 'prepared-user'));
    prepared = await PreparedAccessTokenLookup.open(db.client.config.connection.filename as string);
  });
  afterAll(async () => {
    await prepared?.close();
    await close?.();
  });

  it('reads the same row as Users.findUser, states and types included, and null for no one', async () => {
    const user_id = '@prep:test.local';
    expect(await insertUser(db, { user_id, localpart: 'prep', password_hash: 'h', is_admin: true, is_guest: false, displayname: null, approved: false }, T0)).toBe(true);
    await setLock(db, user_id, { reason: 'why', until: T0 + 5 });
    await setSuspension(db, user_id, { reason: null, until: null });
    const row = await prepared.findUser(user_id);
    expect(row).toEqual(await findUser(db, user_id));
    expect(row).toMatchObject({ is_admin: true, approved: false, lock: { reason: 'why', until: T0 + 5 }, suspension: { reason: null, until: null }, created_ts: T0 });
    expect(await prepared.findUser('@nobody:test.local')).toBeNull();
  });

  it('sees a change as soon as the main connection commits it', async () => {
    const user_id = '@prep2:test.local';
    expect(await prepared.findUser(user_id)).toBeNull();
    expect(await insertUser(db, { user_id, localpart: 'prep2', password_hash: 'h1', is_admin: false, is_guest: false, displayname: null }, T0)).toBe(true);
    expect((await prepared.findUser(user_id))!.password_hash).toBe('h1');
    await setPasswordHash(db, user_id, 'h2');
    expect((await prepared.findUser(user_id))!.password_hash).toBe('h2');
  });
});
