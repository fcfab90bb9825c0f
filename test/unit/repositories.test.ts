// The repositories against real databases: SQLite (a temp file) and, when
// GATEHOUSE_TEST_PG is set, a fresh PostgreSQL database. Both must give the
// same answers, with the same JS types, including under concurrency.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Knex } from 'knex';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrateToLatest, openDatabase } from '../../src/db/database.js';
import { deleteDevices, findDevice, listDevices, setDeviceDisplayName, touchDevice, upsertDevice } from '../../src/repositories/devices.js';
import { deleteBucket, deleteDrainedBuckets, readBucket, tryTakeFromBucket } from '../../src/repositories/rate-limits.js';
import { consumeNonce, deleteExpiredNonces, insertNonce } from '../../src/repositories/registration-nonces.js';
import {
  deletePredecessorRefreshTokens,
  deleteRefreshTokenWithAccessTokens,
  deleteExpiredAccessTokens,
  deleteExpiredRefreshTokens,
  deleteTokensForDevices,
  findAccessTokenWithUser,
  findRefreshToken,
  insertAccessToken,
  insertRefreshToken,
  markAccessTokenUsed,
  linkNextRefreshToken,
} from '../../src/repositories/tokens.js';
import {
  deleteSession,
  findExpiredSessions,
  findSession,
  insertSession,
  markCompleted,
  updateRemembered,
  recordStage,
  type UiaSessionRow,
} from '../../src/repositories/uia-sessions.js';
import {
  countUsers,
  findUser,
  findUserByLocalpartCaseInsensitive,
  insertUser,
  localpartExists,
  markDeactivated,
  setLock,
  setPasswordHash,
  setSuspension,
} from '../../src/repositories/users.js';
import { eraseProfile } from '../../src/repositories/profiles.js';
import { type Backend, backends, createPgDatabase } from '../support/backends.js';

/** A timestamp beyond 2^32 so a BIGINT that comes back as a string or is truncated shows. */
const T0 = 1_763_856_000_123;

let seq = 0;
/** Short names unique within this file. */
const uniq = (p: string) => `${p}${(++seq).toString(36)}${Math.random().toString(36).slice(2, 6)}`;

async function openBackend(backend: Backend): Promise<{ db: Knex; close(): Promise<void> }> {
  if (backend === 'postgres') {
    const pg = await createPgDatabase();
    const db = openDatabase({ name: 'postgres', args: pg.args });
    await migrateToLatest(db);
    return {
      db,
      async close() {
        await db.destroy();
        await pg.drop();
      },
    };
  }
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-repo-'));
  const db = openDatabase({ name: 'sqlite3', args: { database: join(dir, 'homeserver.db') } });
  await migrateToLatest(db);
  return {
    db,
    async close() {
      await db.destroy();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

describe.each(backends())('repositories (%s)', (backend) => {
  let db: Knex;
  let close: () => Promise<void>;
  beforeAll(async () => {
    ({ db, close } = await openBackend(backend));
  });
  afterAll(async () => {
    await close?.();
  });

  const newUser = async (localpart = uniq('u'), extra: Partial<{ is_admin: boolean; is_guest: boolean }> = {}) => {
    const user_id = `@${localpart}:test.local`;
    const ok = await insertUser(
      db,
      { user_id, localpart, password_hash: 'hash', is_admin: false, is_guest: false, displayname: null, ...extra },
      T0,
    );
    expect(ok).toBe(true);
    return user_id;
  };

  it('applies no migration twice', async () => {
    expect(await migrateToLatest(db)).toEqual([]);
  });

  describe('users', () => {
    it('inserts a user and its profile, and reads booleans as booleans and timestamps as numbers', async () => {
      const lp = uniq('alice');
      const ok = await insertUser(
        db,
        { user_id: `@${lp}:test.local`, localpart: lp, password_hash: '$argon2id$x', is_admin: true, is_guest: false, displayname: 'Alice' },
        T0,
      );
      expect(ok).toBe(true);
      const u = await findUser(db, `@${lp}:test.local`);
      expect(u).toEqual({
        user_id: `@${lp}:test.local`,
        localpart: lp,
        password_hash: '$argon2id$x',
        is_admin: true,
        is_guest: false,
        deactivated: false,
        approved: true,
        lock: null,
        suspension: null,
        user_type: null,
        created_ts: T0,
      });
      expect(typeof u!.created_ts).toBe('number');
      const profile = await db('profiles').where({ user_id: `@${lp}:test.local` }).first();
      expect(profile).toMatchObject({ displayname: 'Alice', avatar_url: null });
    });

    it('returns null for an unknown user', async () => {
      expect(await findUser(db, '@nobody-here:test.local')).toBeNull();
      expect(await findUserByLocalpartCaseInsensitive(db, 'nobody-here')).toBeNull();
      expect(await localpartExists(db, 'nobody-here')).toBe(false);
    });

    it('refuses a duplicate user ID without touching the existing row or profile', async () => {
      const lp = uniq('dup');
      const uid = await newUser(lp);
      const before = await countUsers(db);
      const again = await insertUser(
        db,
        { user_id: uid, localpart: lp, password_hash: 'other', is_admin: true, is_guest: true, displayname: 'Imposter' },
        T0 + 5,
      );
      expect(again).toBe(false);
      expect(await countUsers(db)).toBe(before);
      const u = await findUser(db, uid);
      expect(u).toMatchObject({ password_hash: 'hash', is_admin: false, is_guest: false, created_ts: T0 });
      expect(await db('profiles').where({ user_id: uid })).toHaveLength(1);
      expect((await db('profiles').where({ user_id: uid }).first()).displayname).toBeNull();
    });

    it('refuses a duplicate localpart under another user ID', async () => {
      const lp = uniq('lp');
      await newUser(lp);
      const before = await countUsers(db);
      const ok = await insertUser(
        db,
        { user_id: `@${lp}:elsewhere.example`, localpart: lp, password_hash: null, is_admin: false, is_guest: false, displayname: null },
        T0,
      );
      expect(ok).toBe(false);
      expect(await countUsers(db)).toBe(before);
      expect(await findUser(db, `@${lp}:elsewhere.example`)).toBeNull();
      expect(await db('profiles').where({ user_id: `@${lp}:elsewhere.example` })).toHaveLength(0);
    });

    it('lets exactly one of several parallel inserts of one name win', async () => {
      const lp = uniq('race');
      const results = await Promise.all(
        Array.from({ length: 8 }, (_, i) =>
          insertUser(
            db,
            { user_id: `@${lp}:test.local`, localpart: lp, password_hash: `h${i}`, is_admin: false, is_guest: false, displayname: `d${i}` },
            T0 + i,
          ),
        ),
      );
      expect(results.filter((r) => r)).toHaveLength(1);
      expect(await db('users').where({ localpart: lp })).toHaveLength(1);
      const profiles = await db('profiles').where({ user_id: `@${lp}:test.local` });
      expect(profiles).toHaveLength(1);
      // The profile belongs to the insert that won.
      const winner = results.indexOf(true);
      expect(profiles[0].displayname).toBe(`d${winner}`);
      expect((await findUser(db, `@${lp}:test.local`))!.password_hash).toBe(`h${winner}`);
    });

    it('finds a localpart case-insensitively, but only when exactly one matches', async () => {
      const lp = uniq('mixedcase');
      const uid = await newUser(lp);
      expect((await findUserByLocalpartCaseInsensitive(db, lp.toUpperCase()))?.user_id).toBe(uid);
      expect(await localpartExists(db, lp.toUpperCase())).toBe(true);
      expect(await localpartExists(db, `${lp}x`)).toBe(false);

      // A legacy database can hold two localparts that differ only in case: then nobody matches.
      const base = uniq('twin');
      await newUser(base);
      await newUser(base.toUpperCase());
      expect(await findUserByLocalpartCaseInsensitive(db, base)).toBeNull();
      expect(await localpartExists(db, base)).toBe(true);
      // The exact-ID lookup is not case-insensitive.
      expect(await findUser(db, `@${base.toUpperCase()}:test.local`)).not.toBeNull();
      expect((await findUser(db, `@${base.toUpperCase()}:test.local`))!.localpart).toBe(base.toUpperCase());
    });

    it('changes the password hash, deactivates and clears the profile', async () => {
      const uid = await newUser();
      await setPasswordHash(db, uid, 'new-hash');
      expect((await findUser(db, uid))!.password_hash).toBe('new-hash');
      await db('profiles').where({ user_id: uid }).update({ displayname: 'x', avatar_url: 'mxc://a/b' });
      await markDeactivated(db, uid);
      const u = await findUser(db, uid);
      expect(u!.deactivated).toBe(true);
      expect(u!.password_hash).toBeNull();
      await eraseProfile(db, uid);
      expect(await db('profiles').where({ user_id: uid }).first()).toMatchObject({ displayname: null, avatar_url: null });
    });

    it('counts users as a number', async () => {
      const before = await countUsers(db);
      expect(typeof before).toBe('number');
      await newUser();
      expect(await countUsers(db)).toBe(before + 1);
    });
  });

  describe('devices', () => {
    it('creates a device, then keeps its created_ts and its name (a known device is not renamed by sign-in)', async () => {
      const uid = await newUser();
      await upsertDevice(db, { user_id: uid, device_id: 'DEV1', display_name: 'Phone', ip: '10.0.0.1', user_agent: 'ua/1' }, T0);
      const first = await findDevice(db, uid, 'DEV1');
      expect(first).toEqual({
        user_id: uid,
        device_id: 'DEV1',
        display_name: 'Phone',
        created_ts: T0,
        last_seen_ts: T0,
        last_seen_ip: '10.0.0.1',
        last_seen_user_agent: 'ua/1',
      });
      expect(typeof first!.created_ts).toBe('number');
      expect(typeof first!.last_seen_ts).toBe('number');

      // No name given: the old one stays, created_ts stays, last-seen moves.
      await upsertDevice(db, { user_id: uid, device_id: 'DEV1', display_name: null, ip: '10.0.0.2', user_agent: 'ua/2' }, T0 + 1000);
      expect(await findDevice(db, uid, 'DEV1')).toEqual({ ...first, last_seen_ts: T0 + 1000, last_seen_ip: '10.0.0.2', last_seen_user_agent: 'ua/2' });

      // A name given: a known device keeps its own (spec: initial_device_display_name is then ignored).
      await upsertDevice(db, { user_id: uid, device_id: 'DEV1', display_name: 'Laptop', ip: null, user_agent: null }, T0 + 2000);
      const third = await findDevice(db, uid, 'DEV1');
      expect(third).toMatchObject({ display_name: 'Phone', created_ts: T0, last_seen_ts: T0 + 2000, last_seen_ip: null });
      expect(await db('devices').where({ user_id: uid })).toHaveLength(1);
    });

    it('keeps devices of different users apart', async () => {
      const a = await newUser();
      const b = await newUser();
      await upsertDevice(db, { user_id: a, device_id: 'SAME', display_name: 'A', ip: null, user_agent: null }, T0);
      await upsertDevice(db, { user_id: b, device_id: 'SAME', display_name: 'B', ip: null, user_agent: null }, T0 + 1);
      expect((await findDevice(db, a, 'SAME'))!.display_name).toBe('A');
      expect((await findDevice(db, b, 'SAME'))!.display_name).toBe('B');
      expect(await findDevice(db, a, 'OTHER')).toBeNull();
    });

    it('lists devices oldest first, renames, and touches last-seen', async () => {
      const uid = await newUser();
      await upsertDevice(db, { user_id: uid, device_id: 'NEW', display_name: null, ip: null, user_agent: null }, T0 + 50);
      await upsertDevice(db, { user_id: uid, device_id: 'OLD', display_name: null, ip: null, user_agent: null }, T0);
      expect((await listDevices(db, uid)).map((d) => d.device_id)).toEqual(['OLD', 'NEW']);
      expect(await listDevices(db, '@nobody:test.local')).toEqual([]);

      expect(await setDeviceDisplayName(db, uid, 'OLD', 'Renamed')).toBe(true);
      expect((await findDevice(db, uid, 'OLD'))!.display_name).toBe('Renamed');
      expect(await setDeviceDisplayName(db, uid, 'OLD', null)).toBe(true);
      expect((await findDevice(db, uid, 'OLD'))!.display_name).toBeNull();
      expect(await setDeviceDisplayName(db, uid, 'MISSING', 'x')).toBe(false);
      expect(await findDevice(db, uid, 'MISSING')).toBeNull();

      await touchDevice(db, uid, 'NEW', T0 + 9999, '::1', 'curl');
      expect(await findDevice(db, uid, 'NEW')).toMatchObject({ created_ts: T0 + 50, last_seen_ts: T0 + 9999, last_seen_ip: '::1', last_seen_user_agent: 'curl' });
    });

    it('deletes the named devices, all of them, or all but the one kept', async () => {
      const uid = await newUser();
      const other = await newUser();
      for (const id of ['D1', 'D2', 'D3', 'D4', 'D5'])
        await upsertDevice(db, { user_id: uid, device_id: id, display_name: null, ip: null, user_agent: null }, T0);
      await upsertDevice(db, { user_id: other, device_id: 'D1', display_name: null, ip: null, user_agent: null }, T0);

      expect(await deleteDevices(db, uid, ['D1', 'NOPE'])).toBe(1);
      expect((await listDevices(db, uid)).map((d) => d.device_id).sort()).toEqual(['D2', 'D3', 'D4', 'D5']);

      // Named devices with `keep` among them: `keep` survives.
      expect(await deleteDevices(db, uid, ['D2', 'D3'], 'D3')).toBe(1);
      expect((await listDevices(db, uid)).map((d) => d.device_id).sort()).toEqual(['D3', 'D4', 'D5']);

      // All devices but `keep`.
      expect(await deleteDevices(db, uid, null, 'D4')).toBe(2);
      expect((await listDevices(db, uid)).map((d) => d.device_id)).toEqual(['D4']);

      // All devices.
      expect(await deleteDevices(db, uid, null)).toBe(1);
      expect(await listDevices(db, uid)).toEqual([]);
      // Another user's device of the same ID was never touched.
      expect(await findDevice(db, other, 'D1')).not.toBeNull();
    });

    it('deletes nothing for an empty list', async () => {
      const uid = await newUser();
      await upsertDevice(db, { user_id: uid, device_id: 'KEEP', display_name: null, ip: null, user_agent: null }, T0);
      expect(await deleteDevices(db, uid, [])).toBe(0);
      expect(await listDevices(db, uid)).toHaveLength(1);
    });
  });

  describe('tokens', () => {
    it('sweeps expired refresh tokens with their access tokens, and expired lone access tokens', async () => {
      const uid = await newUser();
      const dev = uniq('SWEEP');
      const rOld = await insertRefreshToken(db, { token_hash: hash(), user_id: uid, device_id: dev, expires_ts: T0 }, T0 - 10);
      const rLive = await insertRefreshToken(db, { token_hash: hash(), user_id: uid, device_id: dev, expires_ts: T0 + 1_000_000 }, T0 - 10);
      const rForever = await insertRefreshToken(db, { token_hash: hash(), user_id: uid, device_id: dev, expires_ts: null }, T0 - 10);
      const aOfOld = hash();
      const aOfLive = hash();
      const aLoneOld = hash();
      const aLoneNew = hash();
      const aForever = hash();
      await insertAccessToken(db, { token_hash: aOfOld, user_id: uid, device_id: dev, refresh_token_id: rOld, expires_ts: T0 }, T0 - 10);
      await insertAccessToken(db, { token_hash: aOfLive, user_id: uid, device_id: dev, refresh_token_id: rLive, expires_ts: T0 }, T0 - 10);
      await insertAccessToken(db, { token_hash: aLoneOld, user_id: uid, device_id: dev, refresh_token_id: null, expires_ts: T0 }, T0 - 10);
      await insertAccessToken(db, { token_hash: aLoneNew, user_id: uid, device_id: dev, refresh_token_id: null, expires_ts: T0 + 1 }, T0 - 10);
      await insertAccessToken(db, { token_hash: aForever, user_id: uid, device_id: dev, refresh_token_id: rForever, expires_ts: null }, T0 - 10);

      // Nothing has expired before T0.
      expect(await deleteExpiredRefreshTokens(db, T0)).toBe(0);
      expect(await deleteExpiredAccessTokens(db, T0)).toBe(0);
      expect(await deleteExpiredRefreshTokens(db, T0 + 1)).toBe(1);
      expect(await deleteExpiredAccessTokens(db, T0 + 1)).toBe(1);
      const left = (await db('access_tokens').where({ user_id: uid }).select('token_hash')).map((r) => r.token_hash).sort();
      // The refresh token's access token went with it; a live refresh token keeps its (expired) access token.
      expect(left).toEqual([aOfLive, aLoneNew, aForever].sort());
      const refreshLeft = (await db('refresh_tokens').where({ user_id: uid }).select('id')).map((r) => Number(r.id)).sort((a, b) => a - b);
      expect(refreshLeft).toEqual([rLive, rForever].sort((a, b) => a - b));
    });

    const hash = () => uniq('h').padEnd(64, '0');

    it('finds access tokens by hash, with their user facts, and unknown hashes as null', async () => {
      const uid = await newUser(uniq('tok'), { is_guest: true });
      const h = hash();
      const id = await insertAccessToken(db, { token_hash: h, user_id: uid, device_id: 'DEV', refresh_token_id: null, expires_ts: T0 + 60_000 }, T0);
      expect(Number.isInteger(id)).toBe(true);
      const t = await findAccessTokenWithUser(db, h);
      expect(t).toEqual({
        id,
        token_hash: h,
        user_id: uid,
        device_id: 'DEV',
        refresh_token_id: null,
        used: false,
        expires_ts: T0 + 60_000,
        is_guest: true,
        is_admin: false,
        deactivated: false,
        approved: true,
        lock: null,
        suspension: null,
      });
      expect(typeof t!.expires_ts).toBe('number');
      expect(typeof t!.used).toBe('boolean');
      // The lock and suspension come with the token (their end times as numbers; reasons stay behind).
      await setLock(db, uid, { reason: 'why', until: T0 + 5_000 });
      await setSuspension(db, uid, { reason: null, until: null });
      const restricted = (await findAccessTokenWithUser(db, h))!;
      expect({ lock: restricted.lock, suspension: restricted.suspension }).toEqual({ lock: { until: T0 + 5_000 }, suspension: { until: null } });
      expect(typeof restricted.lock!.until).toBe('number');
      await setLock(db, uid, null);
      await setSuspension(db, uid, null);
      expect((await findAccessTokenWithUser(db, h))!).toMatchObject({ lock: null, suspension: null });
      await markDeactivated(db, uid);
      expect((await findAccessTokenWithUser(db, h))!.deactivated).toBe(true);

      expect(await findAccessTokenWithUser(db, hash())).toBeNull();
      // The hash is matched exactly.
      expect(await findAccessTokenWithUser(db, h.toUpperCase())).toBeNull();
    });

    it('stores a null expiry as null', async () => {
      const uid = await newUser();
      const h = hash();
      await insertAccessToken(db, { token_hash: h, user_id: uid, device_id: 'D', refresh_token_id: null, expires_ts: null }, T0);
      expect((await findAccessTokenWithUser(db, h))!.expires_ts).toBeNull();
    });

    it('refuses a duplicate token hash', async () => {
      const uid = await newUser();
      const h = hash();
      await insertAccessToken(db, { token_hash: h, user_id: uid, device_id: 'D', refresh_token_id: null, expires_ts: null }, T0);
      await expect(
        insertAccessToken(db, { token_hash: h, user_id: uid, device_id: 'E', refresh_token_id: null, expires_ts: null }, T0),
      ).rejects.toThrow();
      expect(await db('access_tokens').where({ token_hash: h })).toHaveLength(1);
      expect((await findAccessTokenWithUser(db, h))!.device_id).toBe('D');
    });

    it('finds refresh tokens by hash and links a successor', async () => {
      const uid = await newUser();
      const h1 = hash();
      const h2 = hash();
      const h3 = hash();
      const r1 = await insertRefreshToken(db, { token_hash: h1, user_id: uid, device_id: 'D', expires_ts: null }, T0);
      const r2 = await insertRefreshToken(db, { token_hash: h2, user_id: uid, device_id: 'D', expires_ts: T0 + 1, ultimate_session_expiry_ts: T0 + 2 }, T0);
      const r3 = await insertRefreshToken(db, { token_hash: h3, user_id: uid, device_id: 'D', expires_ts: null }, T0);
      expect(new Set([r1, r2, r3]).size).toBe(3);
      expect(await findRefreshToken(db, h1)).toEqual({ id: r1, token_hash: h1, user_id: uid, device_id: 'D', next_token_id: null, expires_ts: null, ultimate_session_expiry_ts: null });
      expect((await findRefreshToken(db, h2))!.expires_ts).toBe(T0 + 1);
      expect((await findRefreshToken(db, h2))!.ultimate_session_expiry_ts).toBe(T0 + 2);
      expect(await findRefreshToken(db, hash())).toBeNull();

      await linkNextRefreshToken(db, r1, r2);
      expect((await findRefreshToken(db, h1))!.next_token_id).toBe(r2);
      // A retry links the newer successor instead.
      await linkNextRefreshToken(db, r1, r3);
      expect((await findRefreshToken(db, h1))!.next_token_id).toBe(r3);
      expect((await findRefreshToken(db, h2))!.next_token_id).toBeNull();
    });

    it('marks an access token used once only, even in parallel', async () => {
      const uid = await newUser();
      const h = hash();
      const id = await insertAccessToken(db, { token_hash: h, user_id: uid, device_id: 'D', refresh_token_id: null, expires_ts: null }, T0);
      const results = await Promise.all(Array.from({ length: 10 }, () => markAccessTokenUsed(db, id)));
      expect(results.filter((r) => r)).toHaveLength(1);
      expect((await findAccessTokenWithUser(db, h))!.used).toBe(true);
      expect(await markAccessTokenUsed(db, id)).toBe(false);
      // An unknown ID flips nothing.
      expect(await markAccessTokenUsed(db, id + 1_000_000)).toBe(false);
    });

    it('deletes the refresh tokens exchanged for a given one, with their access tokens, and nothing else', async () => {
      const uid = await newUser();
      const rOld = await insertRefreshToken(db, { token_hash: hash(), user_id: uid, device_id: 'D', expires_ts: null }, T0);
      const rNew = await insertRefreshToken(db, { token_hash: hash(), user_id: uid, device_id: 'D', expires_ts: null }, T0);
      const rOther = await insertRefreshToken(db, { token_hash: hash(), user_id: uid, device_id: 'E', expires_ts: null }, T0);
      await linkNextRefreshToken(db, rOld, rNew);
      const hOldAccess = hash();
      const hNewAccess = hash();
      const hOtherAccess = hash();
      await insertAccessToken(db, { token_hash: hOldAccess, user_id: uid, device_id: 'D', refresh_token_id: rOld, expires_ts: null }, T0);
      await insertAccessToken(db, { token_hash: hNewAccess, user_id: uid, device_id: 'D', refresh_token_id: rNew, expires_ts: null }, T0);
      await insertAccessToken(db, { token_hash: hOtherAccess, user_id: uid, device_id: 'E', refresh_token_id: rOther, expires_ts: null }, T0);

      await deletePredecessorRefreshTokens(db, rNew);
      expect(await db('refresh_tokens').where({ id: rOld })).toHaveLength(0);
      expect(await findAccessTokenWithUser(db, hOldAccess)).toBeNull();
      expect(await db('refresh_tokens').where({ id: rNew })).toHaveLength(1);
      expect(await findAccessTokenWithUser(db, hNewAccess)).not.toBeNull();
      expect(await db('refresh_tokens').where({ id: rOther })).toHaveLength(1);
      expect(await findAccessTokenWithUser(db, hOtherAccess)).not.toBeNull();

      // A second call finds nothing more to delete.
      await deletePredecessorRefreshTokens(db, rNew);
      expect(await db('refresh_tokens').where({ user_id: uid })).toHaveLength(2);

      await deleteRefreshTokenWithAccessTokens(db, rNew);
      expect(await db('refresh_tokens').where({ id: rNew })).toHaveLength(0);
      expect(await findAccessTokenWithUser(db, hNewAccess)).toBeNull();
      expect(await findAccessTokenWithUser(db, hOtherAccess)).not.toBeNull();
    });

    it("deletes the tokens of given devices, of all devices, or of all but the kept one; never another user's", async () => {
      const uid = await newUser();
      const other = await newUser();
      const add = async (user: string, device: string) => {
        const r = await insertRefreshToken(db, { token_hash: hash(), user_id: user, device_id: device, expires_ts: null }, T0);
        await insertAccessToken(db, { token_hash: hash(), user_id: user, device_id: device, refresh_token_id: r, expires_ts: null }, T0);
        await insertAccessToken(db, { token_hash: hash(), user_id: user, device_id: device, refresh_token_id: null, expires_ts: null }, T0);
      };
      for (const d of ['A', 'B', 'C', 'D']) await add(uid, d);
      await add(other, 'A');
      const devicesWithTokens = async (user: string) => ({
        access: [...new Set((await db('access_tokens').where({ user_id: user })).map((r) => r.device_id))].sort(),
        refresh: [...new Set((await db('refresh_tokens').where({ user_id: user })).map((r) => r.device_id))].sort(),
      });

      await deleteTokensForDevices(db, uid, ['A']);
      expect(await devicesWithTokens(uid)).toEqual({ access: ['B', 'C', 'D'], refresh: ['B', 'C', 'D'] });

      await deleteTokensForDevices(db, uid, ['B', 'C'], 'C');
      expect(await devicesWithTokens(uid)).toEqual({ access: ['C', 'D'], refresh: ['C', 'D'] });

      await deleteTokensForDevices(db, uid, null, 'D');
      expect(await devicesWithTokens(uid)).toEqual({ access: ['D'], refresh: ['D'] });

      await deleteTokensForDevices(db, uid, null);
      expect(await devicesWithTokens(uid)).toEqual({ access: [], refresh: [] });

      expect(await devicesWithTokens(other)).toEqual({ access: ['A'], refresh: ['A'] });
      expect(await db('access_tokens').where({ user_id: other })).toHaveLength(2);
    });
  });

  describe('uia sessions', () => {
    const session = (over: Partial<UiaSessionRow> = {}): UiaSessionRow => ({
      session_id: uniq('s'),
      operation: 'POST /account/deactivate',
      user_id: '@someone:test.local',
      completed: [],
      stage_state: {},
      remembered: { params: {}, secretHashes: {} },
      result: null,
      created_ts: T0,
      expires_ts: T0 + 172_800_000,
      ...over,
    });

    it('stores and reads a session with its JSON fields and numeric timestamps', async () => {
      const s = session({ completed: ['m.login.dummy'], stage_state: { 'm.login.dummy': { n: 1 } } });
      await insertSession(db, s);
      const back = await findSession(db, s.session_id);
      expect(back).toEqual(s);
      expect(typeof back!.expires_ts).toBe('number');
      expect(await findSession(db, 'no-such-session')).toBeNull();
    });

    it('replaces the remembered parameters only from the state the caller read', async () => {
      const s = session({ remembered: { params: { a: 1 }, secretHashes: {} } });
      await insertSession(db, s);
      const next = { params: { a: 1, b: 2 }, secretHashes: { pw: '$argon2id$x' } };
      expect(await updateRemembered(db, s.session_id, s.remembered, next)).toBe(true);
      // A second writer that read the old state loses.
      expect(await updateRemembered(db, s.session_id, s.remembered, { params: { a: 1, c: 3 }, secretHashes: {} })).toBe(false);
      expect((await findSession(db, s.session_id))!.remembered).toEqual(next);
      expect(await updateRemembered(db, 'no-such-session', next, next)).toBe(false);
    });

    it('lets one of several parallel updates of the remembered parameters win', async () => {
      const s = session();
      await insertSession(db, s);
      const results = await Promise.all(
        Array.from({ length: 6 }, (_, i) => updateRemembered(db, s.session_id, s.remembered, { params: { i }, secretHashes: {} })),
      );
      expect(results.filter((r) => r)).toHaveLength(1);
      expect((await findSession(db, s.session_id))!.remembered.params).toEqual({ i: results.indexOf(true) });
    });

    it('marks a session completed once, keeping its result', async () => {
      const s = session();
      await insertSession(db, s);
      expect(await markCompleted(db, s.session_id, { user_id: '@x:test.local' })).toBe(true);
      expect(await markCompleted(db, s.session_id, { user_id: '@y:test.local' })).toBe(false);
      expect((await findSession(db, s.session_id))!.result).toEqual({ user_id: '@x:test.local' });
      expect(await markCompleted(db, 'no-such-session', {})).toBe(false);
    });

    it('records stages idempotently and merges their state', async () => {
      const s = session();
      await insertSession(db, s);
      await recordStage(db, s.session_id, 'm.login.password', { user: 'x' });
      await recordStage(db, s.session_id, 'm.login.password', { user: 'y' });
      await recordStage(db, s.session_id, 'm.login.dummy', undefined);
      const back = await findSession(db, s.session_id);
      expect(back!.completed).toEqual(['m.login.password', 'm.login.dummy']);
      expect(back!.stage_state).toEqual({ 'm.login.password': { user: 'y' } });
      // Recording on a missing session creates nothing.
      await recordStage(db, 'no-such-session', 'm.login.dummy', {});
      expect(await findSession(db, 'no-such-session')).toBeNull();
    });

    it('keeps every stage when different stages are recorded in parallel', async () => {
      const s = session();
      await insertSession(db, s);
      const stages = ['m.login.password', 'm.login.dummy', 'm.login.terms', 'm.login.recaptcha'];
      await Promise.all(stages.map((st, i) => recordStage(db, s.session_id, st, { i })));
      const back = await findSession(db, s.session_id);
      expect([...back!.completed].sort()).toEqual([...stages].sort());
      expect(back!.stage_state).toEqual(Object.fromEntries(stages.map((st, i) => [st, { i }])));
    });

    it('deletes a session once and finds the expired ones', async () => {
      const live = session({ expires_ts: T0 + 10_000_000_000 });
      const dead = session({ expires_ts: T0 - 1 });
      await insertSession(db, live);
      await insertSession(db, dead);
      const expired = await findExpiredSessions(db, T0, 1000);
      expect(expired.map((e) => e.session_id)).toContain(dead.session_id);
      expect(expired.map((e) => e.session_id)).not.toContain(live.session_id);

      const results = await Promise.all([deleteSession(db, dead.session_id), deleteSession(db, dead.session_id)]);
      expect(results.filter((r) => r)).toHaveLength(1);
      expect(await findSession(db, dead.session_id)).toBeNull();
      expect(await findSession(db, live.session_id)).not.toBeNull();
    });
  });

  describe('registration nonces', () => {
    it('consumes a nonce once only', async () => {
      const n = uniq('n');
      await insertNonce(db, n, T0 + 60_000);
      expect(await consumeNonce(db, n, T0)).toBe(true);
      expect(await consumeNonce(db, n, T0)).toBe(false);
      expect(await consumeNonce(db, uniq('unknown'), T0)).toBe(false);
    });

    it('lets exactly one of several parallel consumers have it', async () => {
      const n = uniq('n');
      await insertNonce(db, n, T0 + 60_000);
      const results = await Promise.all(Array.from({ length: 10 }, () => consumeNonce(db, n, T0)));
      expect(results.filter((r) => r)).toHaveLength(1);
      expect(await db('registration_nonces').where({ nonce: n })).toHaveLength(0);
    });

    it('refuses an expired nonce (expiry is exclusive) and sweeps it', async () => {
      const n = uniq('n');
      await insertNonce(db, n, T0 + 60_000);
      expect(await consumeNonce(db, n, T0 + 60_000)).toBe(false);
      expect(await consumeNonce(db, n, T0 + 120_000)).toBe(false);
      // Still there until swept; consuming it late did not delete it.
      expect(await db('registration_nonces').where({ nonce: n })).toHaveLength(1);
      const fresh = uniq('n');
      await insertNonce(db, fresh, T0 + 500_000);
      await deleteExpiredNonces(db, T0 + 60_000);
      expect(await db('registration_nonces').where({ nonce: n })).toHaveLength(0);
      expect(await db('registration_nonces').where({ nonce: fresh })).toHaveLength(1);
      // One millisecond before expiry it is still good.
      expect(await consumeNonce(db, fresh, T0 + 499_999)).toBe(true);
    });
  });

  describe('rate-limit buckets', () => {
    it('allows up to the burst, then refuses without counting the refusals', async () => {
      const key = uniq('rl');
      const results: boolean[] = [];
      for (let i = 0; i < 5; i++) results.push(await tryTakeFromBucket(db, key, 1, 0.17, 3, T0));
      expect(results).toEqual([true, true, true, false, false]);
      expect(await readBucket(db, key)).toEqual({ level: 3, updated_ts: T0 });
    });

    it('drains over time at the given (fractional) rate', async () => {
      const key = uniq('rl');
      for (let i = 0; i < 3; i++) expect(await tryTakeFromBucket(db, key, 1, 0.5, 3, T0)).toBe(true);
      // 0.5/s: after 1.9 s less than one action has drained.
      expect(await tryTakeFromBucket(db, key, 1, 0.5, 3, T0 + 1900)).toBe(false);
      // After 2 s exactly one has.
      expect(await tryTakeFromBucket(db, key, 1, 0.5, 3, T0 + 2000)).toBe(true);
      expect(await readBucket(db, key)).toEqual({ level: 3, updated_ts: T0 + 2000 });
      expect(await tryTakeFromBucket(db, key, 1, 0.5, 3, T0 + 2000)).toBe(false);
      // A long wait empties the bucket completely (it never goes negative).
      expect(await tryTakeFromBucket(db, key, 1, 0.5, 3, T0 + 3_600_000)).toBe(true);
      expect(await readBucket(db, key)).toEqual({ level: 1, updated_ts: T0 + 3_600_000 });
    });

    it('keeps keys apart and forgets a deleted bucket', async () => {
      const a = uniq('rl');
      const b = uniq('rl');
      expect(await tryTakeFromBucket(db, a, 1, 0, 1, T0)).toBe(true);
      expect(await tryTakeFromBucket(db, a, 1, 0, 1, T0 + 1_000_000)).toBe(false);
      expect(await tryTakeFromBucket(db, b, 1, 0, 1, T0)).toBe(true);
      await deleteBucket(db, a);
      expect(await readBucket(db, a)).toBeNull();
      expect(await tryTakeFromBucket(db, a, 1, 0, 1, T0)).toBe(true);
    });

    it('takes costs larger than one', async () => {
      const key = uniq('rl');
      expect(await tryTakeFromBucket(db, key, 2, 1, 5, T0)).toBe(true);
      expect(await tryTakeFromBucket(db, key, 3, 1, 5, T0)).toBe(true);
      expect(await tryTakeFromBucket(db, key, 1, 1, 5, T0)).toBe(false);
      expect((await readBucket(db, key))!.level).toBe(5);
    });

    it('deletes a bucket only once it has drained empty', async () => {
      const key = uniq('rl');
      const keep = uniq('rl');
      // 0.5/s: two actions at T0 leave 1.5 at T0 + 1 s; one more makes 2.5, empty 5 s later (T0 + 6 s).
      expect(await tryTakeFromBucket(db, key, 1, 0.5, 3, T0)).toBe(true);
      expect(await tryTakeFromBucket(db, key, 1, 0.5, 3, T0)).toBe(true);
      expect(await tryTakeFromBucket(db, key, 1, 0.5, 3, T0 + 1000)).toBe(true);
      // A bucket that never drains (rate 0) is kept.
      expect(await tryTakeFromBucket(db, keep, 1, 0, 1, T0)).toBe(true);
      await deleteDrainedBuckets(db, T0 + 5999);
      expect(await readBucket(db, key)).not.toBeNull();
      await deleteDrainedBuckets(db, T0 + 6000);
      expect(await readBucket(db, key)).toBeNull();
      expect(await readBucket(db, keep)).not.toBeNull();
    });

    it('never lets parallel takes exceed the burst', async () => {
      const key = uniq('rl');
      const results = await Promise.all(Array.from({ length: 25 }, () => tryTakeFromBucket(db, key, 1, 0.003, 7, T0)));
      expect(results.filter((r) => r)).toHaveLength(7);
      expect((await readBucket(db, key))!.level).toBe(7);
    });
  });
});
