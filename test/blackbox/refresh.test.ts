// Refresh tokens (POST /refresh, MSC2918): issuing them at login and
// registration, rotation with a retry window, expiry (soft logout), the
// refresh token's own lifetime, and logout removing them.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends } from '../support/backends.js';
import { DEFAULT_PASSWORD, startServer, type TestServer } from '../support/server.js';

const REFRESH = '/_matrix/client/v3/refresh';
const WHOAMI = '/_matrix/client/v3/account/whoami';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Session {
  user_id: string;
  access_token: string;
  device_id: string;
  refresh_token?: string;
  expires_in_ms?: number;
}

/** The user's token rows (only one device's, when given). */
async function tokenRows(hs: TestServer, userId: string, deviceId?: string) {
  const db = hs.db();
  const where = deviceId === undefined ? { user_id: userId } : { user_id: userId, device_id: deviceId };
  const access = await db('access_tokens').where(where).orderBy('id');
  const refresh = await db('refresh_tokens').where(where).orderBy('id');
  return { access, refresh };
}

async function tableCounts(hs: TestServer) {
  const db = hs.db();
  const count = async (t: string) => Number((await db(t).count({ n: '*' }))[0]!.n);
  return { access: await count('access_tokens'), refresh: await count('refresh_tokens'), devices: await count('devices'), users: await count('users') };
}

describe.each(backends())('refresh tokens (%s)', (backend) => {
  describe('rotation and validation (long lifetimes)', () => {
    let hs: TestServer;
    const LIFETIME = 3_600_000;
    beforeAll(async () => {
      hs = await startServer(backend, { refreshable_access_token_lifetime: '1h' });
    });
    afterAll(async () => {
      await hs?.stop();
    });

    const refresh = (token: unknown, path = REFRESH) => hs.request('POST', path, { body: { refresh_token: token } });
    const whoami = (token: string) => hs.request('GET', WHOAMI, { token });

    it('login with refresh_token: true returns a refresh token and expires_in_ms, and stores both hashed', async () => {
      await hs.register('rf_login');
      const before = Date.now();
      const s: Session = await hs.login('rf_login', DEFAULT_PASSWORD, { refresh_token: true });
      expect(typeof s.refresh_token).toBe('string');
      expect(s.refresh_token!.length).toBeGreaterThan(20);
      expect(s.refresh_token).not.toBe(s.access_token);
      expect(s.expires_in_ms).toBe(LIFETIME);

      const rows = await tokenRows(hs, s.user_id);
      const access = rows.access.filter((r) => r.device_id === s.device_id);
      const refreshRows = rows.refresh.filter((r) => r.device_id === s.device_id);
      expect(access).toHaveLength(1);
      expect(refreshRows).toHaveLength(1);
      // Only hashes are stored.
      expect(access[0].token_hash).not.toBe(s.access_token);
      expect(refreshRows[0].token_hash).not.toBe(s.refresh_token);
      expect(JSON.stringify(rows)).not.toContain(s.refresh_token);
      expect(JSON.stringify(rows)).not.toContain(s.access_token);
      // The access token points at its refresh token and expires after the configured lifetime.
      expect(Number(access[0].refresh_token_id)).toBe(Number(refreshRows[0].id));
      const expires = Number(access[0].expires_ts);
      expect(expires).toBeGreaterThanOrEqual(before + LIFETIME);
      expect(expires).toBeLessThanOrEqual(Date.now() + LIFETIME);
      expect(Number(access[0].expires_ts) - Number(access[0].created_ts)).toBe(LIFETIME);
      // No refresh_token_lifetime configured: the refresh token never expires.
      expect(refreshRows[0].expires_ts).toBeNull();
      expect(refreshRows[0].next_token_id).toBeNull();
      expect((await whoami(s.access_token)).status).toBe(200);
    });

    it('registration with refresh_token: true returns a refresh token that works', async () => {
      const res = await hs.request('POST', '/_matrix/client/v3/register', {
        body: { username: 'rf_reg', password: DEFAULT_PASSWORD, auth: { type: 'm.login.dummy' }, refresh_token: true },
      });
      expect(res.status).toBe(200);
      expect(typeof res.body.refresh_token).toBe('string');
      expect(res.body.expires_in_ms).toBe(LIFETIME);
      const rows = await tokenRows(hs, res.body.user_id);
      expect(rows.refresh).toHaveLength(1);
      expect(rows.access).toHaveLength(1);

      const r = await refresh(res.body.refresh_token);
      expect(r.status).toBe(200);
      const who = await whoami(r.body.access_token);
      expect(who.status).toBe(200);
      expect(who.body.device_id).toBe(res.body.device_id);
    });

    it('registration with inhibit_login and refresh_token: true issues no tokens', async () => {
      const res = await hs.request('POST', '/_matrix/client/v3/register', {
        body: { username: 'rf_inhibit', password: DEFAULT_PASSWORD, auth: { type: 'm.login.dummy' }, refresh_token: true, inhibit_login: true },
      });
      expect(res.status).toBe(200);
      expect(res.body.access_token).toBeUndefined();
      expect(res.body.refresh_token).toBeUndefined();
      const rows = await tokenRows(hs, '@rf_inhibit:test.local');
      expect(rows.access).toHaveLength(0);
      expect(rows.refresh).toHaveLength(0);
    });

    it('without refresh_token: true there is no refresh token and (by default) no expiry', async () => {
      const reg = await hs.register('rf_none');
      expect(reg).not.toHaveProperty('refresh_token');
      expect(reg).not.toHaveProperty('expires_in_ms');
      for (const extra of [{}, { refresh_token: false }]) {
        const s = await hs.login('rf_none', DEFAULT_PASSWORD, extra);
        expect(s).not.toHaveProperty('refresh_token');
        expect(s).not.toHaveProperty('expires_in_ms');
      }
      const rows = await tokenRows(hs, reg.user_id);
      expect(rows.refresh).toHaveLength(0);
      expect(rows.access).toHaveLength(3);
      for (const a of rows.access) {
        expect(a.expires_ts).toBeNull();
        expect(a.refresh_token_id).toBeNull();
      }
    });

    it('refresh_token of the wrong type at login is M_BAD_JSON and creates nothing', async () => {
      await hs.register('rf_badflag');
      const before = await tableCounts(hs);
      for (const flag of ['yes', 1, {}, []]) {
        const res = await hs.request('POST', '/_matrix/client/v3/login', {
          body: { type: 'm.login.password', identifier: { type: 'm.id.user', user: 'rf_badflag' }, password: DEFAULT_PASSWORD, refresh_token: flag },
        });
        expect(res.status).toBe(400);
        expect(res.body.errcode).toBe('M_BAD_JSON');
      }
      expect(await tableCounts(hs)).toEqual(before);
    });

    it('refreshing returns a new pair on the same device, on /v3, /r0 and /v1', async () => {
      await hs.register('rf_rotate');
      let s: Session = await hs.login('rf_rotate', DEFAULT_PASSWORD, { refresh_token: true });
      const seen = new Set([s.access_token, s.refresh_token]);
      for (const path of [REFRESH, '/_matrix/client/r0/refresh', '/_matrix/client/v1/refresh']) {
        const res = await refresh(s.refresh_token, path);
        expect(res.status, path).toBe(200);
        expect(res.headers.get('content-type')).toBe('application/json');
        expect(Object.keys(res.body).sort()).toEqual(['access_token', 'expires_in_ms', 'refresh_token']);
        expect(res.body.expires_in_ms).toBe(LIFETIME);
        expect(seen.has(res.body.access_token)).toBe(false);
        expect(seen.has(res.body.refresh_token)).toBe(false);
        seen.add(res.body.access_token);
        seen.add(res.body.refresh_token);
        const who = await whoami(res.body.access_token);
        expect(who.status).toBe(200);
        expect(who.body).toMatchObject({ user_id: s.user_id, device_id: s.device_id });
        s = { ...s, access_token: res.body.access_token, refresh_token: res.body.refresh_token };
      }
      // Each use retired the predecessor: one pair left for the device.
      const rows = await tokenRows(hs, s.user_id, s.device_id);
      expect(rows.access).toHaveLength(1);
      expect(rows.refresh).toHaveLength(1);
      expect(Number(rows.access[0].refresh_token_id)).toBe(Number(rows.refresh[0].id));
      // The registration's device and the login's: refreshing made no new one.
      expect(await hs.db()('devices').where({ user_id: s.user_id })).toHaveLength(2);
    });

    it('the old refresh token works again (retry) until the new access token is used; then old tokens are dead', async () => {
      await hs.register('rf_retry');
      const s: Session = await hs.login('rf_retry', DEFAULT_PASSWORD, { refresh_token: true });
      const [r1] = (await tokenRows(hs, s.user_id, s.device_id)).refresh;

      const first = await refresh(s.refresh_token);
      expect(first.status).toBe(200);
      let rows = await tokenRows(hs, s.user_id, s.device_id);
      expect(rows.refresh).toHaveLength(2);
      expect(rows.access).toHaveLength(2);
      const r2 = rows.refresh.find((r) => Number(r.id) !== Number(r1.id))!;
      expect(Number(rows.refresh.find((r) => Number(r.id) === Number(r1.id))!.next_token_id)).toBe(Number(r2.id));

      // The response was "lost": the client retries with the same refresh token.
      const retry = await refresh(s.refresh_token);
      expect(retry.status).toBe(200);
      expect(retry.body.access_token).not.toBe(first.body.access_token);
      expect(retry.body.refresh_token).not.toBe(first.body.refresh_token);
      // The unused pair from the first attempt is gone; the original pair is still there.
      expect((await whoami(first.body.access_token)).body.errcode).toBe('M_UNKNOWN_TOKEN');
      expect((await refresh(first.body.refresh_token)).body.errcode).toBe('M_UNKNOWN_TOKEN');
      rows = await tokenRows(hs, s.user_id, s.device_id);
      expect(rows.refresh).toHaveLength(2);
      expect(rows.access).toHaveLength(2);
      expect(rows.refresh.some((r) => Number(r.id) === Number(r2.id))).toBe(false);

      // Until the new access token is used, the old access token still works.
      expect((await whoami(s.access_token)).status).toBe(200);

      // First use of the new access token retires the old refresh token and its access token.
      const who = await whoami(retry.body.access_token);
      expect(who.status).toBe(200);
      expect(who.body.device_id).toBe(s.device_id);
      rows = await tokenRows(hs, s.user_id, s.device_id);
      expect(rows.refresh).toHaveLength(1);
      expect(rows.access).toHaveLength(1);
      expect(rows.access[0].used === true || Number(rows.access[0].used) === 1).toBe(true);

      const stale = await refresh(s.refresh_token);
      expect(stale.status).toBe(401);
      expect(stale.body.errcode).toBe('M_UNKNOWN_TOKEN');
      const oldAccess = await whoami(s.access_token);
      expect(oldAccess.status).toBe(401);
      expect(oldAccess.body.errcode).toBe('M_UNKNOWN_TOKEN');
      expect(oldAccess.body.soft_logout).toBe(false);
      // Failed attempts changed nothing.
      expect(await tokenRows(hs, s.user_id, s.device_id)).toEqual(rows);

      // The current refresh token still rotates.
      const next = await refresh(retry.body.refresh_token);
      expect(next.status).toBe(200);
      expect((await whoami(next.body.access_token)).status).toBe(200);
    });

    it('an unknown refresh token is 401 M_UNKNOWN_TOKEN and changes nothing', async () => {
      const reg = await hs.register('rf_unknown');
      const before = await tableCounts(hs);
      for (const token of ['ghr_doesnotexist', 'x', reg.access_token, 'ghr_' + 'A'.repeat(40)]) {
        const res = await refresh(token);
        expect(res.status, token).toBe(401);
        expect(res.body.errcode).toBe('M_UNKNOWN_TOKEN');
      }
      expect(await tableCounts(hs)).toEqual(before);
    });

    it('a refresh token is not an access token', async () => {
      await hs.register('rf_notaccess');
      const s: Session = await hs.login('rf_notaccess', DEFAULT_PASSWORD, { refresh_token: true });
      const res = await whoami(s.refresh_token!);
      expect(res.status).toBe(401);
      expect(res.body.errcode).toBe('M_UNKNOWN_TOKEN');
    });

    it('a missing refresh_token is 400 M_MISSING_PARAM, a wrong type is 400 M_BAD_JSON; nothing changes', async () => {
      await hs.register('rf_params');
      const s: Session = await hs.login('rf_params', DEFAULT_PASSWORD, { refresh_token: true });
      const rowsBefore = await tokenRows(hs, s.user_id);
      const before = await tableCounts(hs);

      for (const body of [{}, { refresh_token: null }, { something_else: s.refresh_token }]) {
        const res = await hs.request('POST', REFRESH, { body });
        expect(res.status).toBe(400);
        expect(res.body.errcode).toBe('M_MISSING_PARAM');
      }
      for (const value of [42, true, [s.refresh_token], { token: s.refresh_token }, 'x'.repeat(10_000)]) {
        const res = await refresh(value);
        expect(res.status).toBe(400);
        expect(res.body.errcode).toBe('M_BAD_JSON');
      }
      // No body at all.
      const empty = await hs.request('POST', REFRESH);
      expect(empty.status).toBe(400);
      expect(empty.body.errcode).toBe('M_MISSING_PARAM');

      expect(await tableCounts(hs)).toEqual(before);
      expect(await tokenRows(hs, s.user_id)).toEqual(rowsBefore);
      // The real token is untouched by all of that.
      expect((await refresh(s.refresh_token)).status).toBe(200);
    });

    it('refresh needs no access token, and ignores a bad one', async () => {
      await hs.register('rf_noauth');
      const s: Session = await hs.login('rf_noauth', DEFAULT_PASSWORD, { refresh_token: true });
      const res = await hs.request('POST', REFRESH, { body: { refresh_token: s.refresh_token }, token: 'not-a-token' });
      expect(res.status).toBe(200);
    });

    it('logout removes the device refresh tokens', async () => {
      await hs.register('rf_logout');
      const s: Session = await hs.login('rf_logout', DEFAULT_PASSWORD, { refresh_token: true });
      // One rotation, so that there is a predecessor and a successor.
      const r = await refresh(s.refresh_token);
      expect(r.status).toBe(200);
      const out = await hs.request('POST', '/_matrix/client/v3/logout', { token: r.body.access_token });
      expect(out.status).toBe(200);

      const rows = await tokenRows(hs, s.user_id);
      expect(rows.access.filter((a) => a.device_id === s.device_id)).toHaveLength(0);
      expect(rows.refresh.filter((a) => a.device_id === s.device_id)).toHaveLength(0);
      for (const token of [s.refresh_token, r.body.refresh_token]) {
        const res = await refresh(token);
        expect(res.status).toBe(401);
        expect(res.body.errcode).toBe('M_UNKNOWN_TOKEN');
      }
    });

    it('logout/all removes the refresh tokens of every device', async () => {
      await hs.register('rf_logoutall');
      const a: Session = await hs.login('rf_logoutall', DEFAULT_PASSWORD, { refresh_token: true });
      const b: Session = await hs.login('rf_logoutall', DEFAULT_PASSWORD, { refresh_token: true });
      expect((await tokenRows(hs, a.user_id)).refresh).toHaveLength(2);
      const out = await hs.request('POST', '/_matrix/client/v3/logout/all', { token: a.access_token });
      expect(out.status).toBe(200);
      const rows = await tokenRows(hs, a.user_id);
      expect(rows.refresh).toHaveLength(0);
      expect(rows.access).toHaveLength(0);
      for (const token of [a.refresh_token, b.refresh_token]) expect((await refresh(token)).status).toBe(401);
    });

    it('a password change (logout_devices) removes other devices refresh tokens but keeps the own one', async () => {
      await hs.register('rf_pw');
      const mine: Session = await hs.login('rf_pw', DEFAULT_PASSWORD, { refresh_token: true });
      const other: Session = await hs.login('rf_pw', DEFAULT_PASSWORD, { refresh_token: true });
      const res = await hs.request('POST', '/_matrix/client/v3/account/password', {
        token: mine.access_token,
        body: {
          new_password: 'another fine password 123',
          auth: { type: 'm.login.password', identifier: { type: 'm.id.user', user: 'rf_pw' }, password: DEFAULT_PASSWORD },
        },
      });
      expect(res.status).toBe(200);
      const rows = await tokenRows(hs, mine.user_id);
      expect(rows.refresh.map((r) => r.device_id)).toEqual([mine.device_id]);
      expect((await refresh(other.refresh_token)).status).toBe(401);
      expect((await refresh(mine.refresh_token)).status).toBe(200);
    });

    it('signing in again on the same device_id ends that device earlier refresh token', async () => {
      await hs.register('rf_samedev');
      const a: Session = await hs.login('rf_samedev', DEFAULT_PASSWORD, { refresh_token: true, device_id: 'RFDEV' });
      const b: Session = await hs.login('rf_samedev', DEFAULT_PASSWORD, { refresh_token: true, device_id: 'RFDEV' });
      expect(b.device_id).toBe('RFDEV');
      const rows = await tokenRows(hs, a.user_id);
      expect(rows.refresh).toHaveLength(1);
      expect((await refresh(a.refresh_token)).body.errcode).toBe('M_UNKNOWN_TOKEN');
      expect((await refresh(b.refresh_token)).status).toBe(200);
    });
  });

  describe('access token expiry (soft logout)', () => {
    let hs: TestServer;
    const LIFETIME = 1000;
    beforeAll(async () => {
      hs = await startServer(backend, { refreshable_access_token_lifetime: LIFETIME, nonrefreshable_access_token_lifetime: '1s' });
    });
    afterAll(async () => {
      await hs?.stop();
    });

    it('an expired access token is 401 M_UNKNOWN_TOKEN soft_logout; refreshing continues the same device', async () => {
      await hs.register('rf_soft');
      const s: Session = await hs.login('rf_soft', DEFAULT_PASSWORD, { refresh_token: true });
      expect(s.expires_in_ms).toBe(LIFETIME);
      const plain: Session = await hs.login('rf_soft');
      // nonrefreshable_access_token_lifetime applies to tokens without a refresh token.
      expect(plain).not.toHaveProperty('refresh_token');
      expect(plain.expires_in_ms).toBe(1000);

      const [row] = (await tokenRows(hs, s.user_id)).access.filter((a) => a.device_id === s.device_id);
      expect(Number(row.expires_ts) - Number(row.created_ts)).toBe(LIFETIME);
      const wait = Number(row.expires_ts) - Date.now() + 150;
      if (wait > 0) await sleep(wait);

      for (const token of [s.access_token, plain.access_token]) {
        const expired = await hs.request('GET', WHOAMI, { token });
        expect(expired.status).toBe(401);
        expect(expired.body.errcode).toBe('M_UNKNOWN_TOKEN');
        expect(expired.body.soft_logout).toBe(true);
      }
      // An unknown token is a hard logout.
      const unknown = await hs.request('GET', WHOAMI, { token: 'gha_nope' });
      expect(unknown.body.soft_logout).toBe(false);
      // The device survives the expiry.
      expect(await hs.db()('devices').where({ user_id: s.user_id, device_id: s.device_id })).toHaveLength(1);

      const r = await hs.request('POST', REFRESH, { body: { refresh_token: s.refresh_token } });
      expect(r.status).toBe(200);
      expect(r.body.expires_in_ms).toBe(LIFETIME);
      const who = await hs.request('GET', WHOAMI, { token: r.body.access_token });
      expect(who.status).toBe(200);
      expect(who.body).toEqual({ user_id: s.user_id, device_id: s.device_id, is_guest: false });
      // Registration, refreshable login, plain login: refreshing made no new device.
      expect(await hs.db()('devices').where({ user_id: s.user_id })).toHaveLength(3);
      // The old token stays dead, and is now gone from the database.
      expect((await hs.request('GET', WHOAMI, { token: s.access_token })).status).toBe(401);
      const rows = await tokenRows(hs, s.user_id, s.device_id);
      expect(rows.access).toHaveLength(1);
      expect(rows.refresh).toHaveLength(1);
    });
  });

  describe('refresh_token_lifetime', () => {
    let hs: TestServer;
    const RTL = 1000;
    beforeAll(async () => {
      hs = await startServer(backend, { refreshable_access_token_lifetime: '1h', refresh_token_lifetime: '1s' });
    });
    afterAll(async () => {
      await hs?.stop();
    });

    it('a refresh token past its lifetime is 401 M_UNKNOWN_TOKEN and changes nothing', async () => {
      await hs.register('rf_rtl');
      const s: Session = await hs.login('rf_rtl', DEFAULT_PASSWORD, { refresh_token: true });
      const [r1] = (await tokenRows(hs, s.user_id)).refresh;
      expect(Number(r1.expires_ts) - Number(r1.created_ts)).toBe(RTL);

      // A rotation gives the new refresh token a lifetime of its own.
      const r = await hs.request('POST', REFRESH, { body: { refresh_token: s.refresh_token } });
      expect(r.status).toBe(200);
      expect((await hs.request('GET', WHOAMI, { token: r.body.access_token })).status).toBe(200);
      const [r2] = (await tokenRows(hs, s.user_id)).refresh;
      expect(Number(r2.id)).not.toBe(Number(r1.id));
      expect(Number(r2.expires_ts) - Number(r2.created_ts)).toBe(RTL);

      const wait = Number(r2.expires_ts) - Date.now() + 150;
      if (wait > 0) await sleep(wait);
      const before = await tokenRows(hs, s.user_id);
      const expired = await hs.request('POST', REFRESH, { body: { refresh_token: r.body.refresh_token } });
      expect(expired.status).toBe(401);
      expect(expired.body.errcode).toBe('M_UNKNOWN_TOKEN');
      expect(await tokenRows(hs, s.user_id)).toEqual(before);
      // The access token has its own (long) lifetime and still works.
      expect((await hs.request('GET', WHOAMI, { token: r.body.access_token })).status).toBe(200);
    });
  });
});
