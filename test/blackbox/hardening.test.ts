// Regressions from review: the refresh-token chain, NUL bytes and over-long
// values (PostgreSQL rejects NUL in text and over-long varchars with a 500),
// parallel password guesses, guest registration ignoring its body, a known
// device keeping its name, X-Forwarded-For trust, the registration limit
// before UIA, and small answers (deactivate, capabilities, server keys).

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ACCOUNT_TABLES, countRows, expectMatrixError, expectNoChange } from '../support/assertions.js';
import { backends } from '../support/backends.js';
import { DEFAULT_PASSWORD, startInProcessServer as startServer, type Response, type TestServer } from '../support/server.js';

const C = '/_matrix/client/v3';
const OPEN = { per_second: 100000, burst_count: 100000 };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const NUL = 'a\u0000b';

const passwordAuth = (user: string, password: string) => ({
  type: 'm.login.password',
  identifier: { type: 'm.id.user', user },
  password,
});

const loginBody = (user: string, password = DEFAULT_PASSWORD, extra: Record<string, unknown> = {}) => ({
  type: 'm.login.password',
  identifier: { type: 'm.id.user', user },
  password,
  ...extra,
});

/** Splits parallel answers into the checked ones (`checkedStatus`, M_FORBIDDEN) and the rate-limited ones. */
function tally(results: Response[], checkedStatus: number): { checked: number; limited: number } {
  let checked = 0;
  let limited = 0;
  for (const r of results) {
    if (r.status === checkedStatus && r.body?.errcode === 'M_FORBIDDEN') checked++;
    else if (r.status === 429 && r.body?.errcode === 'M_LIMIT_EXCEEDED') limited++;
    else throw new Error(`unexpected answer ${r.status} ${r.text}`);
  }
  return { checked, limited };
}

describe.each(backends())('hardening (%s)', (backend) => {
  describe('default limits', () => {
    let hs: TestServer;
    beforeAll(async () => {
      hs = await startServer(backend, {
        allow_guest_access: true,
        refreshable_access_token_lifetime: '1h',
        enable_set_displayname: true,
        enable_set_avatar_url: true,
        enable_3pid_changes: true,
      });
    });
    afterAll(async () => {
      await hs?.stop();
    });

    const refresh = (token: string) => hs.request('POST', `${C}/refresh`, { body: { refresh_token: token } });
    const whoami = (token: string) => hs.request('GET', `${C}/account/whoami`, { token });

    /** Login with a refresh token, then two refreshes: RT0 -> RT1 -> RT2 (AT1 never used). */
    async function chain(user: string) {
      await hs.register(user);
      const s0 = await hs.login(user, DEFAULT_PASSWORD, { refresh_token: true });
      const r1 = await refresh((s0 as any).refresh_token);
      expect(r1.status).toBe(200);
      const r2 = await refresh(r1.body.refresh_token);
      expect(r2.status).toBe(200);
      return {
        userId: s0.user_id,
        deviceId: s0.device_id,
        rt0: (s0 as any).refresh_token as string,
        at0: s0.access_token,
        rt1: r1.body.refresh_token as string,
        at1: r1.body.access_token as string,
        rt2: r2.body.refresh_token as string,
        at2: r2.body.access_token as string,
        r1,
      };
    }

    describe('refresh chain', () => {
      it('answers exactly access_token, refresh_token and expires_in_ms', async () => {
        const c = await chain('hr_shape');
        expect(Object.keys(c.r1.body).sort()).toEqual(['access_token', 'expires_in_ms', 'refresh_token']);
        expect(c.r1.body.expires_in_ms).toBe(3_600_000);
        expect(c.r1.body.device_id).toBeUndefined();
      });

      it('revokes RT0 and AT0 once RT1 is used, even though AT1 never was', async () => {
        const c = await chain('hr_chain0');
        await expectNoChange(hs, async () => {
          expectMatrixError(await refresh(c.rt0), 401, 'M_UNKNOWN_TOKEN');
        });
        expectMatrixError(await whoami(c.at0), 401, 'M_UNKNOWN_TOKEN');
        // The newest pair works.
        expect((await whoami(c.at2)).status).toBe(200);
      });

      it('lets RT1 retry until its successor access token is used, then refuses it', async () => {
        const c = await chain('hr_chain1');
        // A retry (lost response) of RT1 works: it replaces the unused pair made last time.
        const retry = await refresh(c.rt1);
        expect(retry.status).toBe(200);
        expectMatrixError(await refresh(c.rt2), 401, 'M_UNKNOWN_TOKEN');
        expectMatrixError(await whoami(c.at2), 401, 'M_UNKNOWN_TOKEN');
        // Using the new access token retires RT1.
        expect((await whoami(retry.body.access_token)).status).toBe(200);
        expectMatrixError(await refresh(c.rt1), 401, 'M_UNKNOWN_TOKEN');
        expectMatrixError(await whoami(c.at1), 401, 'M_UNKNOWN_TOKEN');
        // Only the live pair is left on the device.
        const device = { user_id: c.userId, device_id: c.deviceId };
        expect(await countRows(hs, 'refresh_tokens', device)).toBe(1);
        expect(await countRows(hs, 'access_tokens', device)).toBe(1);
        expect((await refresh(retry.body.refresh_token)).status).toBe(200);
      });

      it('refuses RT1 once its successor refresh token is used', async () => {
        const c = await chain('hr_chain2');
        const r3 = await refresh(c.rt2);
        expect(r3.status).toBe(200);
        expectMatrixError(await refresh(c.rt1), 401, 'M_UNKNOWN_TOKEN');
        expectMatrixError(await whoami(c.at1), 401, 'M_UNKNOWN_TOKEN');
        expectMatrixError(await refresh(c.rt0), 401, 'M_UNKNOWN_TOKEN');
        expect((await whoami(r3.body.access_token)).status).toBe(200);
      });
    });

    describe('NUL bytes and over-long values', () => {
      const TABLES = [...ACCOUNT_TABLES, 'uia_sessions', 'registration_nonces'];

      it('login: NUL in identifier.user or legacy user is 400 M_BAD_JSON (as any string), changing nothing', async () => {
        await hs.register('hn_login');
        for (const body of [
          loginBody('hn_\u0000login'),
          loginBody('hn_login\u0000'),
          { type: 'm.login.password', user: 'hn_\u0000login', password: DEFAULT_PASSWORD },
          loginBody('@hn_login\u0000:test.local'),
        ]) {
          await expectNoChange(hs, async () => {
            expectMatrixError(await hs.request('POST', `${C}/login`, { body }), 400, 'M_BAD_JSON');
          }, TABLES);
        }
      });

      it('login: NUL in device_id or initial_device_display_name is 400 M_BAD_JSON, changing nothing', async () => {
        await hs.register('hn_login2');
        for (const extra of [{ device_id: NUL }, { initial_device_display_name: NUL }]) {
          await expectNoChange(hs, async () => {
            const res = await hs.request('POST', `${C}/login`, { body: loginBody('hn_login2', DEFAULT_PASSWORD, extra) });
            expectMatrixError(res, 400, 'M_BAD_JSON');
          }, TABLES);
        }
      });

      it('register: NUL in username, device_id or initial_device_display_name is 400 M_BAD_JSON, changing nothing', async () => {
        for (const extra of [{ username: NUL }, { device_id: NUL }, { initial_device_display_name: NUL }]) {
          await expectNoChange(hs, async () => {
            const res = await hs.request('POST', `${C}/register`, {
              body: { username: 'hn_reg', password: DEFAULT_PASSWORD, auth: { type: 'm.login.dummy' }, ...extra },
            });
            expectMatrixError(res, 400, 'M_BAD_JSON');
          }, TABLES);
        }
        expect(await countRows(hs, 'users', { localpart: 'hn_reg' })).toBe(0);
      });

      it('a malformed UIA session id (NUL, too long) is 400 M_UNKNOWN, changing nothing', async () => {
        const acct = await hs.register('hn_uia');
        for (const session of [`abc${NUL}`, 'A'.repeat(300), '']) {
          await expectNoChange(hs, async () => {
            const reg = await hs.request('POST', `${C}/register`, {
              body: { username: 'hn_uia2', password: DEFAULT_PASSWORD, auth: { type: 'm.login.dummy', session } },
            });
            expectMatrixError(reg, 400, 'M_UNKNOWN');
            const pw = await hs.request('POST', `${C}/account/password`, {
              token: acct.access_token,
              body: { new_password: 'another pass', auth: { ...passwordAuth('hn_uia', DEFAULT_PASSWORD), session } },
            });
            expectMatrixError(pw, 400, 'M_UNKNOWN');
          }, TABLES);
        }
        // The password did not change.
        expect((await hs.request('POST', `${C}/login`, { body: loginBody('hn_uia') })).status).toBe(200);
      });

      it('PUT /devices/{id}: NUL in display_name is 400 M_BAD_JSON and the name stays', async () => {
        const acct = await hs.register('hn_dev', DEFAULT_PASSWORD, { initial_device_display_name: 'Laptop' });
        await expectNoChange(hs, async () => {
          const res = await hs.request('PUT', `${C}/devices/${acct.device_id}`, { token: acct.access_token, body: { display_name: NUL } });
          expectMatrixError(res, 400, 'M_BAD_JSON');
        }, TABLES);
        const row = await hs.db()('devices').where({ user_id: acct.user_id, device_id: acct.device_id }).first();
        expect(row.display_name).toBe('Laptop');
      });

      it('a device ID path segment with NUL or of 300 characters is 404 M_NOT_FOUND for GET, PUT and DELETE', async () => {
        const acct = await hs.register('hn_path');
        for (const segment of ['AB%00CD', '%00', 'D'.repeat(300)]) {
          await expectNoChange(hs, async () => {
            const path = `${C}/devices/${segment}`;
            expectMatrixError(await hs.request('GET', path, { token: acct.access_token }), 404, 'M_NOT_FOUND');
            expectMatrixError(await hs.request('PUT', path, { token: acct.access_token, body: { display_name: 'x' } }), 404, 'M_NOT_FOUND');
            const del = await hs.request('DELETE', path, { token: acct.access_token, body: { auth: passwordAuth('hn_path', DEFAULT_PASSWORD) } });
            expectMatrixError(del, 404, 'M_NOT_FOUND');
          }, TABLES);
        }
        // The account's own device is untouched.
        expect((await hs.request('GET', `${C}/devices/${acct.device_id}`, { token: acct.access_token })).status).toBe(200);
      });

      it('shared-secret registration: NUL in the nonce is 400 M_BAD_JSON, changing nothing', async () => {
        const nonce = await hs.request('GET', '/_synapse/admin/v1/register');
        expect(nonce.status).toBe(200);
        await expectNoChange(hs, async () => {
          const res = await hs.request('POST', '/_synapse/admin/v1/register', {
            body: { nonce: `${nonce.body.nonce}\u0000`, username: 'hn_admin', password: DEFAULT_PASSWORD, admin: false, mac: 'ab'.repeat(20) },
          });
          expectMatrixError(res, 400, 'M_BAD_JSON');
        }, TABLES);
        // The real nonce was not consumed.
        expect(await countRows(hs, 'registration_nonces', { nonce: nonce.body.nonce })).toBe(1);
      });

      it('a login identifier of 1000 characters is 403 M_FORBIDDEN and leaves no long rate-limit key', async () => {
        for (const user of ['u'.repeat(1000), `@${'u'.repeat(1000)}:test.local`, 'u'.repeat(256)]) {
          await expectNoChange(hs, async () => {
            expectMatrixError(await hs.request('POST', `${C}/login`, { body: loginBody(user) }), 403, 'M_FORBIDDEN');
          }, TABLES);
        }
        if (backend === 'postgres') {
          // PostgreSQL keeps the buckets in the database: none may be keyed by the raw name.
          const keys: string[] = (await hs.db()('rate_limits').select('key')).map((r: { key: string }) => r.key);
          expect(keys.length).toBeGreaterThan(0);
          expect(keys.filter((k) => k.length > 200)).toEqual([]);
        }
      });
    });

    it('guest registration ignores every parameter but initial_device_display_name', async () => {
      const res = await hs.request('POST', `${C}/register?kind=guest`, {
        body: { username: 5, device_id: 'CHOSEN', refresh_token: true, initial_device_display_name: 'Guest phone' },
      });
      expect(res.status).toBe(200);
      expect(res.body.user_id).toMatch(/^@\d+:test\.local$/);
      expect(res.body.device_id).not.toBe('CHOSEN');
      expect(res.body.refresh_token).toBeUndefined();
      expect(await countRows(hs, 'refresh_tokens', { user_id: res.body.user_id })).toBe(0);
      expect(await countRows(hs, 'devices', { device_id: 'CHOSEN' })).toBe(0);
      const dev = await hs.request('GET', `${C}/devices/${res.body.device_id}`, { token: res.body.access_token });
      expect(dev.status).toBe(200);
      expect(dev.body.display_name).toBe('Guest phone');
    });

    it('a known device keeps its display name when signed in to again', async () => {
      await hs.register('hk_dev');
      await hs.login('hk_dev', DEFAULT_PASSWORD, { device_id: 'KNOWNDEV', initial_device_display_name: 'First' });
      const again = await hs.login('hk_dev', DEFAULT_PASSWORD, { device_id: 'KNOWNDEV', initial_device_display_name: 'Second' });
      expect(again.device_id).toBe('KNOWNDEV');
      const dev = await hs.request('GET', `${C}/devices/KNOWNDEV`, { token: again.access_token });
      expect(dev.status).toBe(200);
      expect(dev.body.display_name).toBe('First');
    });

    it('deactivation answers id_server_unbind_result: success', async () => {
      const acct = await hs.register('hd_gone');
      const res = await hs.request('POST', `${C}/account/deactivate`, {
        token: acct.access_token,
        body: { auth: passwordAuth('hd_gone', DEFAULT_PASSWORD) },
      });
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ id_server_unbind_result: 'success' });
    });

    it('capabilities: profile and password changes on, 3PID changes off (no email section)', async () => {
      const acct = await hs.register('hc_caps');
      const res = await hs.request('GET', `${C}/capabilities`, { token: acct.access_token });
      expect(res.status).toBe(200);
      const caps = res.body.capabilities;
      expect(caps['m.set_displayname']).toEqual({ enabled: true });
      expect(caps['m.set_avatar_url']).toEqual({ enabled: true });
      expect(caps['m.3pid_changes']).toEqual({ enabled: false });
      expect(caps['m.change_password']).toEqual({ enabled: true });
    });

    it('GET /_matrix/key/v2/server answers the same signed body a second later', async () => {
      const first = await hs.request('GET', '/_matrix/key/v2/server');
      expect(first.status).toBe(200);
      await sleep(1100);
      const second = await hs.request('GET', '/_matrix/key/v2/server');
      expect(second.status).toBe(200);
      expect(second.body.valid_until_ts).toBe(first.body.valid_until_ts);
      expect(second.body.signatures).toEqual(first.body.signatures);
      expect(second.body).toEqual(first.body);
      expect(first.body.valid_until_ts).toBeGreaterThan(Date.now());
    });
  });

  describe('behind a proxy (x_forwarded)', () => {
    let hs: TestServer;
    beforeAll(async () => {
      hs = await startServer(backend, {
        listeners: [{ port: 0, bind_addresses: ['127.0.0.1'], type: 'http', x_forwarded: true }],
        rc_login: { address: { per_second: 0.001, burst_count: 2 }, account: OPEN, failed_attempts: OPEN },
      });
    });
    afterAll(async () => {
      await hs?.stop();
    });

    it('a 500-character X-Forwarded-For still signs in, and the stored address is at most 64 characters', async () => {
      await hs.register('hx_long');
      const xff = '1'.repeat(500);
      const res = await hs.request('POST', `${C}/login`, { body: loginBody('hx_long'), headers: { 'X-Forwarded-For': xff } });
      expect(res.status).toBe(200);
      const who = await hs.request('GET', `${C}/account/whoami`, { token: res.body.access_token, headers: { 'X-Forwarded-For': xff } });
      expect(who.status).toBe(200);
      const row = await hs.db()('devices').where({ user_id: res.body.user_id, device_id: res.body.device_id }).first();
      expect(typeof row.last_seen_ip).toBe('string');
      expect(row.last_seen_ip.length).toBeGreaterThan(0);
      expect(row.last_seen_ip.length).toBeLessThanOrEqual(64);
      if (backend === 'postgres') {
        const keys: string[] = (await hs.db()('rate_limits').select('key')).map((r: { key: string }) => r.key);
        expect(keys.filter((k) => k.length > 200)).toEqual([]);
      }
    });

    it('trusts only the proxy-appended last X-Forwarded-For entry: client-chosen entries share one bucket', async () => {
      await hs.register('hx_bucket');
      const login = (first: string, last = '10.9.9.9') =>
        hs.request('POST', `${C}/login`, { body: loginBody('hx_bucket'), headers: { 'X-Forwarded-For': `${first}, ${last}` } });
      const random = () => `192.0.2.${Math.floor(Math.random() * 250) + 1}-${Math.random().toString(36).slice(2)}`;
      expect((await login(random())).status).toBe(200);
      expect((await login(random())).status).toBe(200);
      await expectNoChange(hs, async () => {
        expectMatrixError(await login(random()), 429, 'M_LIMIT_EXCEEDED');
      });
      // Another proxy-seen address has its own bucket.
      expect((await login(random(), '10.9.9.10')).status).toBe(200);
    });
  });

  describe('failed password attempts (burst 3)', () => {
    let hs: TestServer;
    beforeAll(async () => {
      hs = await startServer(backend, {
        rc_login: { failed_attempts: { per_second: 0.001, burst_count: 3 }, address: OPEN, account: OPEN },
      });
    });
    afterAll(async () => {
      await hs?.stop();
    });

    const changePassword = (token: string, user: string, current: string, next: string) =>
      hs.request('POST', `${C}/account/password`, { token, body: { new_password: next, auth: passwordAuth(user, current) } });

    it('UIA: 12 parallel wrong passwords check at most 3; the rest, and then the right one, are 429', async () => {
      const acct = await hs.register('hf_uia');
      const hashBefore = (await hs.db()('users').where({ user_id: acct.user_id }).first()).password_hash;
      const results = await Promise.all(
        Array.from({ length: 12 }, (_, i) => changePassword(acct.access_token, 'hf_uia', `wrong password ${i}`, 'new password')),
      );
      const { checked, limited } = tally(results, 401);
      expect(checked).toBeGreaterThanOrEqual(1);
      expect(checked).toBeLessThanOrEqual(3);
      expect(limited).toBe(12 - checked);
      expectMatrixError(await changePassword(acct.access_token, 'hf_uia', DEFAULT_PASSWORD, 'new password'), 429, 'M_LIMIT_EXCEEDED');
      expect((await hs.db()('users').where({ user_id: acct.user_id }).first()).password_hash).toBe(hashBefore);
    });

    it('UIA: right passwords do not use up the budget (5 successive changes with burst 3)', async () => {
      const acct = await hs.register('hf_uia_ok');
      let current = DEFAULT_PASSWORD;
      for (let i = 0; i < 5; i++) {
        const next = `password number ${i}`;
        const res = await changePassword(acct.access_token, 'hf_uia_ok', current, next);
        expect(res.status, res.text).toBe(200);
        current = next;
      }
      expect((await hs.request('POST', `${C}/login`, { body: loginBody('hf_uia_ok', current) })).status).toBe(200);
    });

    it('login: 12 parallel wrong passwords check at most 3; the rest, and then the right one, are 429', async () => {
      await hs.register('hf_login');
      await expectNoChange(hs, async () => {
        const results = await Promise.all(
          Array.from({ length: 12 }, (_, i) => hs.request('POST', `${C}/login`, { body: loginBody('hf_login', `wrong password ${i}`) })),
        );
        const { checked, limited } = tally(results, 403);
        expect(checked).toBeGreaterThanOrEqual(1);
        expect(checked).toBeLessThanOrEqual(3);
        expect(limited).toBe(12 - checked);
        expectMatrixError(await hs.request('POST', `${C}/login`, { body: loginBody('hf_login') }), 429, 'M_LIMIT_EXCEEDED');
      });
    });

    it('login: right passwords do not use up the budget (5 successive logins with burst 3)', async () => {
      await hs.register('hf_login_ok');
      for (let i = 0; i < 5; i++) {
        const res = await hs.request('POST', `${C}/login`, { body: loginBody('hf_login_ok') });
        expect(res.status, res.text).toBe(200);
      }
    });
  });

  describe('registration limit (burst 1)', () => {
    let hs: TestServer;
    beforeAll(async () => {
      hs = await startServer(backend, { rc_registration: { per_second: 0.001, burst_count: 1 } });
    });
    afterAll(async () => {
      await hs?.stop();
    });

    it('is checked before a UIA session is created', async () => {
      await hs.register('hl_first');
      // The first registration's (completed) session stays until it expires; no new one may appear.
      const sessions = await countRows(hs, 'uia_sessions');
      await expectNoChange(hs, async () => {
        expectMatrixError(await hs.request('POST', `${C}/register`, { body: {} }), 429, 'M_LIMIT_EXCEEDED');
      }, [...ACCOUNT_TABLES, 'uia_sessions']);
      expect(await countRows(hs, 'uia_sessions')).toBe(sessions);
    });
  });
});
