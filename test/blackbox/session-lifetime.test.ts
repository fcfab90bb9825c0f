// session_lifetime (Synapse's key): every sign-in ends at sign-in time plus
// the lifetime, refreshed or not. Access tokens, refresh tokens and the tokens
// /refresh gives out all expire by then; expires_in_ms is clipped to it; after
// it the access token is a soft logout and /refresh fails.

import { createHmac } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectMatrixError, expectNoChange } from '../support/assertions.js';
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

/** The stored row of an access or refresh token, found through its device (the newest one). */
async function newestRow(hs: TestServer, table: 'access_tokens' | 'refresh_tokens', s: { user_id: string; device_id: string }) {
  const row = await hs.db()(table).where({ user_id: s.user_id, device_id: s.device_id }).orderBy('id', 'desc').first();
  expect(row, `${table} row of ${s.device_id}`).toBeDefined();
  const n = (v: unknown) => (v == null ? null : Number(v));
  return { id: Number(row.id), created_ts: Number(row.created_ts), expires_ts: n(row.expires_ts), ultimate: n(row.ultimate_session_expiry_ts) };
}

/** Shared-secret registration as register_new_matrix_user does it (startServer's secret). */
async function sharedSecretRegister(hs: TestServer, username: string): Promise<Session> {
  const path = '/_synapse/admin/v1/register';
  const { nonce } = (await hs.request('GET', path)).body;
  const mac = createHmac('sha1', 'test-shared-secret').update([nonce, username, DEFAULT_PASSWORD, 'notadmin'].join('\x00'), 'utf8').digest('hex');
  const res = await hs.request('POST', path, { body: { nonce, username, password: DEFAULT_PASSWORD, admin: false, mac } });
  expect(res.status).toBe(200);
  return res.body;
}

describe.each(backends())('session_lifetime (%s)', (backend) => {
  describe('a short session (3s), longer token lifetimes', () => {
    let hs: TestServer;
    const LIFETIME = 3000;
    beforeAll(async () => {
      hs = await startServer(backend, { session_lifetime: '3s', refreshable_access_token_lifetime: '1h', allow_guest_access: true });
    });
    afterAll(async () => {
      await hs?.stop();
    });

    // The tests below run in order on these sign-ins: before the end, then after it.
    const signIns: Record<string, Session> = {};
    /** When the refreshable login's sign-in ends (ms since the epoch), as stored. */
    let loginEnd = 0;
    /** The newest refresh token of that sign-in. */
    let latestRefresh = '';

    it('caps every kind of sign-in: expires_in_ms is the session lifetime, given even for tokens that would not expire', async () => {
      signIns.registration = await hs.register('sl_user');
      signIns.refreshableRegistration = await hs.register('sl_user_r', DEFAULT_PASSWORD, { refresh_token: true });
      signIns.login = await hs.login('sl_user');
      signIns.refreshableLogin = await hs.login('sl_user', DEFAULT_PASSWORD, { refresh_token: true });
      const guest = await hs.request('POST', '/_matrix/client/v3/register?kind=guest', { body: {} });
      expect(guest.status).toBe(200);
      signIns.guest = guest.body;
      signIns.sharedSecret = await sharedSecretRegister(hs, 'sl_admin_made');

      for (const [name, s] of Object.entries(signIns)) {
        // Without session_lifetime these non-refreshable tokens would never expire and carry no expires_in_ms.
        expect(s.expires_in_ms, name).toBe(LIFETIME);
        const access = await newestRow(hs, 'access_tokens', s);
        expect(access.expires_ts! - access.created_ts, name).toBe(LIFETIME);
        expect((await hs.request('GET', WHOAMI, { token: s.access_token })).status, name).toBe(200);
      }
      for (const name of ['refreshableRegistration', 'refreshableLogin']) {
        const s = signIns[name]!;
        expect(typeof s.refresh_token).toBe('string');
        // The refresh token (no lifetime of its own) ends with the sign-in, which it remembers.
        const refresh = await newestRow(hs, 'refresh_tokens', s);
        expect(refresh.ultimate, name).toBe(refresh.created_ts + LIFETIME);
        expect(refresh.expires_ts, name).toBe(refresh.ultimate);
      }
      for (const name of ['registration', 'login', 'guest', 'sharedSecret']) {
        expect(signIns[name]).not.toHaveProperty('refresh_token');
        expect(await hs.db()('refresh_tokens').where({ device_id: signIns[name]!.device_id })).toHaveLength(0);
      }
      loginEnd = (await newestRow(hs, 'refresh_tokens', signIns.refreshableLogin!)).ultimate!;
      latestRefresh = signIns.refreshableLogin!.refresh_token!;
    });

    it('a refresh before the end gives tokens that end with the same sign-in, expires_in_ms clipped to it', async () => {
      await sleep(500);
      for (let round = 0; round < 2; round++) {
        const r = await hs.request('POST', REFRESH, { body: { refresh_token: latestRefresh } });
        expect(r.status).toBe(200);
        const access = await newestRow(hs, 'access_tokens', signIns.refreshableLogin!);
        const refresh = await newestRow(hs, 'refresh_tokens', signIns.refreshableLogin!);
        // refreshable_access_token_lifetime is an hour; the sign-in's end comes first.
        expect(access.expires_ts).toBe(loginEnd);
        expect(r.body.expires_in_ms).toBe(loginEnd - access.created_ts);
        expect(r.body.expires_in_ms).toBeLessThan(LIFETIME - 400);
        expect(r.body.expires_in_ms).toBeGreaterThan(0);
        // The new refresh token inherits the end; a refresh does not extend the sign-in.
        expect(refresh.ultimate).toBe(loginEnd);
        expect(refresh.expires_ts).toBe(loginEnd);
        expect((await hs.request('GET', WHOAMI, { token: r.body.access_token })).status).toBe(200);
        signIns.refreshableLogin = { ...signIns.refreshableLogin!, access_token: r.body.access_token };
        latestRefresh = r.body.refresh_token;
      }
    });

    it('after the end: every token is a soft logout, /refresh is 401 M_UNKNOWN_TOKEN, signing in again starts afresh', async () => {
      const wait = loginEnd - Date.now() + 200;
      if (wait > 0) await sleep(wait);

      for (const [name, s] of Object.entries(signIns)) {
        const res = await hs.request('GET', WHOAMI, { token: s.access_token });
        expectMatrixError(res, 401, 'M_UNKNOWN_TOKEN');
        expect(res.body.soft_logout, name).toBe(true);
      }
      for (const token of [latestRefresh, signIns.refreshableRegistration!.refresh_token!]) {
        await expectNoChange(hs, async () => {
          const res = await hs.request('POST', REFRESH, { body: { refresh_token: token } });
          expectMatrixError(res, 401, 'M_UNKNOWN_TOKEN');
          // As for an expired refresh token: the refresh token cannot be revived.
          expect(res.body.soft_logout).toBe(false);
        });
      }

      // The device survived; signing in again on it starts a new sign-in with a new end.
      const again: Session = await hs.login('sl_user', DEFAULT_PASSWORD, { device_id: signIns.refreshableLogin!.device_id, refresh_token: true });
      expect(again.device_id).toBe(signIns.refreshableLogin!.device_id);
      expect(again.expires_in_ms).toBe(LIFETIME);
      const refresh = await newestRow(hs, 'refresh_tokens', again);
      expect(refresh.ultimate).toBe(refresh.created_ts + LIFETIME);
      const who = await hs.request('GET', WHOAMI, { token: again.access_token });
      expect(who.status).toBe(200);
      expect(who.body.device_id).toBe(again.device_id);
    });
  });

  describe('a long session (1h), shorter token lifetimes', () => {
    let hs: TestServer;
    const HOUR = 3_600_000;
    beforeAll(async () => {
      hs = await startServer(backend, { session_lifetime: '1h', nonrefreshable_access_token_lifetime: '1s', refreshable_access_token_lifetime: '2s' });
    });
    afterAll(async () => {
      await hs?.stop();
    });

    it('keeps the shorter token lifetimes; refresh tokens end with the sign-in, across refreshes', async () => {
      await hs.register('sl_long');
      const plain: Session = await hs.login('sl_long');
      expect(plain.expires_in_ms).toBe(1000);
      const s: Session = await hs.login('sl_long', DEFAULT_PASSWORD, { refresh_token: true });
      expect(s.expires_in_ms).toBe(2000);
      const first = await newestRow(hs, 'refresh_tokens', s);
      expect(first.ultimate).toBe(first.created_ts + HOUR);
      expect(first.expires_ts).toBe(first.ultimate);

      await sleep(50);
      const r = await hs.request('POST', REFRESH, { body: { refresh_token: s.refresh_token } });
      expect(r.status).toBe(200);
      expect(r.body.expires_in_ms).toBe(2000);
      const next = await newestRow(hs, 'refresh_tokens', s);
      expect(next.id).not.toBe(first.id);
      // Inherited, not counted again from the refresh.
      expect(next.ultimate).toBe(first.ultimate);
      expect(next.expires_ts).toBe(first.ultimate);
    });
  });
});
