// The signed-in user's account: POST /account/password and POST
// /account/deactivate, both behind UIA (m.login.password).

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends } from '../support/backends.js';
import { startServer, type TestServer } from '../support/server.js';

const V3 = '/_matrix/client/v3';
/** Passwords must satisfy the policy this server runs with. */
const PW = 'Original-passw0rd';
const NEW_PW = 'Brand-new-passw0rd';
const POLICY = { enabled: true, minimum_length: 12, require_digit: true };

describe.each(backends())('account (%s)', (backend) => {
  let hs: TestServer;
  beforeAll(async () => {
    hs = await startServer(backend, { password_config: { policy: POLICY }, allow_guest_access: true });
  });
  afterAll(async () => {
    await hs?.stop();
  });

  const pwAuth = (user: string, password = PW, session?: string) => ({
    type: 'm.login.password',
    identifier: { type: 'm.id.user', user },
    password,
    ...(session === undefined ? {} : { session }),
  });
  const userRow = (userId: string) => hs.db()('users').where({ user_id: userId }).first();
  const devicesOf = async (userId: string) =>
    (await hs.db()('devices').where({ user_id: userId })).map((d: { device_id: string }) => d.device_id).sort();
  const tokensOf = async (table: 'access_tokens' | 'refresh_tokens', userId: string) =>
    (await hs.db()(table).where({ user_id: userId })).map((t: { device_id: string }) => t.device_id).sort();
  const whoami = (token: string) => hs.request('GET', `${V3}/account/whoami`, { token });
  const loginStatus = async (user: string, password: string) =>
    (await hs.request('POST', `${V3}/login`, { body: { type: 'm.login.password', identifier: { type: 'm.id.user', user }, password } }));

  /** A user signed in on three devices; `c` has a refresh token. */
  async function threeDevices(name: string) {
    const a = await hs.register(name, PW);
    const b = await hs.login(name, PW);
    const c = (await hs.login(name, PW, { refresh_token: true })) as Awaited<ReturnType<TestServer['login']>> & { refresh_token: string };
    expect(typeof c.refresh_token).toBe('string');
    return { userId: a.user_id, a, b, c };
  }

  async function expectDead(token: string) {
    const res = await whoami(token);
    expect(res.status).toBe(401);
    expect(res.body.errcode).toBe('M_UNKNOWN_TOKEN');
  }

  describe('POST /account/password', () => {
    it('answers 401 with the password flow first, changing nothing', async () => {
      const u = await threeDevices('pw_flows');
      const before = (await userRow(u.userId)).password_hash;
      const res = await hs.request('POST', `${V3}/account/password`, { token: u.a.access_token, body: { new_password: NEW_PW } });
      expect(res.status).toBe(401);
      expect(res.body.flows).toEqual([{ stages: ['m.login.password'] }]);
      expect(res.body.completed).toEqual([]);
      expect(res.body.params).toEqual({});
      expect(typeof res.body.session).toBe('string');
      expect(res.body.errcode).toBeUndefined();
      expect((await userRow(u.userId)).password_hash).toBe(before);
      expect(await devicesOf(u.userId)).toHaveLength(3);
      expect((await loginStatus('pw_flows', PW)).status).toBe(200);
    });

    it('changes the password through a session: the new one logs in, the old one does not', async () => {
      const u = await threeDevices('pw_change');
      const before = (await userRow(u.userId)).password_hash;
      const first = await hs.request('POST', `${V3}/account/password`, { token: u.a.access_token, body: { new_password: NEW_PW } });
      const res = await hs.request('POST', `${V3}/account/password`, {
        token: u.a.access_token,
        body: { new_password: NEW_PW, auth: pwAuth('pw_change', PW, first.body.session) },
      });
      expect(res.status).toBe(200);
      expect(res.body).toEqual({});
      const after = (await userRow(u.userId)).password_hash;
      expect(after).not.toBe(before);
      expect(after).not.toContain(NEW_PW);
      expect(after).toMatch(/^\$argon2id\$/);

      expect((await loginStatus('pw_change', NEW_PW)).status).toBe(200);
      const old = await loginStatus('pw_change', PW);
      expect(old.status).toBe(403);
      expect(old.body.errcode).toBe('M_FORBIDDEN');
      // The session is spent: a repeat answers {} and changes nothing more (a new device stays signed in).
      const later = await hs.login('pw_change', NEW_PW);
      const hashNow = (await userRow(u.userId)).password_hash;
      const repeat = await hs.request('POST', `${V3}/account/password`, {
        token: u.a.access_token,
        body: { new_password: NEW_PW, auth: pwAuth('pw_change', NEW_PW, first.body.session) },
      });
      expect(repeat.status).toBe(200);
      expect(repeat.body).toEqual({});
      expect((await userRow(u.userId)).password_hash).toBe(hashNow);
      expect((await hs.request('GET', `${V3}/account/whoami`, { token: later.access_token })).status).toBe(200);
      // Not even for another password.
      const other = await hs.request('POST', `${V3}/account/password`, {
        token: u.a.access_token,
        body: { new_password: `${NEW_PW}-other`, auth: pwAuth('pw_change', NEW_PW, first.body.session) },
      });
      expect(other.status).toBe(403);
      expect((await userRow(u.userId)).password_hash).toBe(hashNow);
    });

    it('by default signs out every OTHER device: tokens dead, rows gone, the requesting device keeps working', async () => {
      const u = await threeDevices('pw_logout');
      const other = await hs.register('pw_bystander', PW);
      const res = await hs.request('POST', `${V3}/account/password`, {
        token: u.a.access_token,
        body: { new_password: NEW_PW, auth: pwAuth('pw_logout') },
      });
      expect(res.status).toBe(200);

      await expectDead(u.b.access_token);
      await expectDead(u.c.access_token);
      const refresh = await hs.request('POST', `${V3}/refresh`, { body: { refresh_token: u.c.refresh_token } });
      expect(refresh.status).toBe(401);
      expect(refresh.body.errcode).toBe('M_UNKNOWN_TOKEN');
      expect(await devicesOf(u.userId)).toEqual([u.a.device_id]);
      expect(await tokensOf('access_tokens', u.userId)).toEqual([u.a.device_id]);
      expect(await tokensOf('refresh_tokens', u.userId)).toEqual([]);

      const me = await whoami(u.a.access_token);
      expect(me.status).toBe(200);
      expect(me.body.device_id).toBe(u.a.device_id);
      // Other users are untouched.
      expect((await whoami(other.access_token)).status).toBe(200);
      expect(await devicesOf(other.user_id)).toEqual([other.device_id]);
    });

    it('keeps the other devices with logout_devices: false', async () => {
      const u = await threeDevices('pw_keep');
      const res = await hs.request('POST', `${V3}/account/password`, {
        token: u.a.access_token,
        body: { new_password: NEW_PW, logout_devices: false, auth: pwAuth('pw_keep') },
      });
      expect(res.status).toBe(200);
      for (const t of [u.a, u.b, u.c]) expect((await whoami(t.access_token)).status).toBe(200);
      expect(await devicesOf(u.userId)).toEqual([u.a.device_id, u.b.device_id, u.c.device_id].sort());
      expect((await hs.request('POST', `${V3}/refresh`, { body: { refresh_token: u.c.refresh_token } })).status).toBe(200);
      expect((await loginStatus('pw_keep', NEW_PW)).status).toBe(200);
    });

    it('refuses a missing or mistyped new_password / logout_devices, changing nothing', async () => {
      const u = await threeDevices('pw_params');
      const before = (await userRow(u.userId)).password_hash;
      const cases: [Record<string, unknown>, string][] = [
        [{ auth: pwAuth('pw_params') }, 'M_MISSING_PARAM'],
        [{ new_password: null, auth: pwAuth('pw_params') }, 'M_MISSING_PARAM'],
        [{ new_password: 12345678901234, auth: pwAuth('pw_params') }, 'M_BAD_JSON'],
        [{ new_password: [NEW_PW], auth: pwAuth('pw_params') }, 'M_BAD_JSON'],
        [{ new_password: NEW_PW, logout_devices: 'yes', auth: pwAuth('pw_params') }, 'M_BAD_JSON'],
        // Over Synapse's 512-character cap.
        [{ new_password: `A1-${'x'.repeat(600)}`, auth: pwAuth('pw_params') }, 'M_BAD_JSON'],
      ];
      for (const [body, errcode] of cases) {
        const res = await hs.request('POST', `${V3}/account/password`, { token: u.a.access_token, body });
        expect(res.status, JSON.stringify(body).slice(0, 80)).toBe(400);
        expect(res.body.errcode, JSON.stringify(body).slice(0, 80)).toBe(errcode);
      }
      expect((await userRow(u.userId)).password_hash).toBe(before);
      expect(await devicesOf(u.userId)).toHaveLength(3);
      expect((await whoami(u.b.access_token)).status).toBe(200);
    });

    it('refuses a password the policy calls weak with M_WEAK_PASSWORD, even with valid auth, changing nothing', async () => {
      const u = await threeDevices('pw_weak');
      const before = (await userRow(u.userId)).password_hash;
      for (const weak of ['Short-1', 'No-digits-at-all-here']) {
        const res = await hs.request('POST', `${V3}/account/password`, {
          token: u.a.access_token,
          body: { new_password: weak, auth: pwAuth('pw_weak') },
        });
        expect(res.status, weak).toBe(400);
        expect(res.body.errcode, weak).toBe('M_WEAK_PASSWORD');
        expect((await loginStatus('pw_weak', weak)).status).toBe(403);
      }
      expect((await userRow(u.userId)).password_hash).toBe(before);
      expect(await devicesOf(u.userId)).toHaveLength(3);
      expect((await whoami(u.c.access_token)).status).toBe(200);
      expect((await loginStatus('pw_weak', PW)).status).toBe(200);
    });

    it('refuses a wrong current password with 401 M_FORBIDDEN and the flows, changing nothing', async () => {
      const u = await threeDevices('pw_wrong');
      const before = (await userRow(u.userId)).password_hash;
      const res = await hs.request('POST', `${V3}/account/password`, {
        token: u.a.access_token,
        body: { new_password: NEW_PW, auth: pwAuth('pw_wrong', 'Not-the-passw0rd') },
      });
      expect(res.status).toBe(401);
      expect(res.body.errcode).toBe('M_FORBIDDEN');
      expect(res.body.flows).toEqual([{ stages: ['m.login.password'] }]);
      expect((await userRow(u.userId)).password_hash).toBe(before);
      expect(await devicesOf(u.userId)).toHaveLength(3);
      expect((await whoami(u.b.access_token)).status).toBe(200);
    });

    it('ends other devices\' sessions even while they are in use', async () => {
      const u = await threeDevices('pw_race');
      let changed = false;
      let firstOk!: () => void;
      const bInUse = new Promise<void>((r) => (firstOk = r));
      const after: { status: number; errcode?: string }[] = [];
      let okBeforeChange = 0;

      // Two loops of whoami on device B (and one on C) while A changes the password.
      const loop = async (token: string) => {
        let afterCount = 0;
        while (afterCount < 5) {
          const startedAfter = changed;
          const res = await whoami(token);
          if (startedAfter) {
            after.push({ status: res.status, errcode: res.body?.errcode });
            afterCount++;
          } else if (res.status === 200) {
            okBeforeChange++;
            firstOk();
          }
        }
      };
      const loops = [loop(u.b.access_token), loop(u.b.access_token), loop(u.c.access_token)];
      await bInUse;
      const res = await hs.request('POST', `${V3}/account/password`, {
        token: u.a.access_token,
        body: { new_password: NEW_PW, auth: pwAuth('pw_race') },
      });
      changed = true;
      expect(res.status).toBe(200);
      await Promise.all(loops);

      expect(okBeforeChange).toBeGreaterThan(0);
      expect(after).toHaveLength(15);
      for (const r of after) expect(r).toEqual({ status: 401, errcode: 'M_UNKNOWN_TOKEN' });
      expect(await devicesOf(u.userId)).toEqual([u.a.device_id]);
      expect(await tokensOf('access_tokens', u.userId)).toEqual([u.a.device_id]);
      expect(await tokensOf('refresh_tokens', u.userId)).toEqual([]);
      expect((await whoami(u.a.access_token)).status).toBe(200);
    });

    it('refuses guests with 403 M_GUEST_ACCESS_FORBIDDEN', async () => {
      const guest = await hs.request('POST', `${V3}/register?kind=guest`, { body: {} });
      expect(guest.status).toBe(200);
      const before = await userRow(guest.body.user_id);
      for (const path of ['/account/password', '/account/deactivate']) {
        const res = await hs.request('POST', V3 + path, { token: guest.body.access_token, body: { new_password: NEW_PW } });
        expect(res.status, path).toBe(403);
        expect(res.body.errcode, path).toBe('M_GUEST_ACCESS_FORBIDDEN');
      }
      expect(await userRow(guest.body.user_id)).toEqual(before);
      expect((await whoami(guest.body.access_token)).status).toBe(200);
      expect(Number((await hs.db()('uia_sessions').where({ user_id: guest.body.user_id }).count<{ n: number }[]>({ n: '*' }).first())?.n)).toBe(0);
    });

    it('requires an access token', async () => {
      const res = await hs.request('POST', `${V3}/account/password`, { body: { new_password: NEW_PW } });
      expect(res.status).toBe(401);
      expect(res.body.errcode).toBe('M_MISSING_TOKEN');
    });
  });

  describe('POST /account/deactivate', () => {
    it('deactivates after UIA: no login, all tokens dead, devices gone, profile kept (no erase), row kept, name not reusable', async () => {
      const u = await threeDevices('deact_me');
      expect((await hs.db()('profiles').where({ user_id: u.userId }).first()).displayname).toBe('deact_me');

      const first = await hs.request('POST', `${V3}/account/deactivate`, { token: u.a.access_token, body: {} });
      expect(first.status).toBe(401);
      expect(first.body.flows).toEqual([{ stages: ['m.login.password'] }]);
      expect(await devicesOf(u.userId)).toHaveLength(3);

      const res = await hs.request('POST', `${V3}/account/deactivate`, {
        token: u.a.access_token,
        body: { auth: pwAuth('deact_me', PW, first.body.session) },
      });
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ id_server_unbind_result: 'success' });

      // Deactivation removes the password, so a login answers as a wrong password would
      // (M_USER_DEACTIVATED would tell anyone that the account existed).
      const login = await loginStatus('deact_me', PW);
      expect(login.status).toBe(403);
      expect(login.body.errcode).toBe('M_FORBIDDEN');
      for (const t of [u.a, u.b, u.c]) await expectDead(t.access_token);
      const refresh = await hs.request('POST', `${V3}/refresh`, { body: { refresh_token: u.c.refresh_token } });
      expect(refresh.status).toBe(401);
      expect(refresh.body.errcode).toBe('M_UNKNOWN_TOKEN');

      expect(await devicesOf(u.userId)).toEqual([]);
      expect(await tokensOf('access_tokens', u.userId)).toEqual([]);
      expect(await tokensOf('refresh_tokens', u.userId)).toEqual([]);
      // As Synapse: only `erase` clears the profile.
      const profile = await hs.db()('profiles').where({ user_id: u.userId }).first();
      expect(profile.displayname).toBe('deact_me');
      const row = await userRow(u.userId);
      expect(row).toBeDefined();
      expect(!!row.deactivated).toBe(true);
      expect(!!row.erased).toBe(false);
      expect(row.password_hash).toBeNull();

      const again = await hs.request('POST', `${V3}/register`, {
        body: { username: 'deact_me', password: PW, auth: { type: 'm.login.dummy' } },
      });
      expect(again.status).toBe(400);
      expect(again.body.errcode).toBe('M_USER_IN_USE');
      const available = await hs.request('GET', `${V3}/register/available?username=deact_me`);
      expect(available.status).toBe(400);
      expect(available.body.errcode).toBe('M_USER_IN_USE');
      expect(Number((await hs.db()('users').where({ localpart: 'deact_me' }).count<{ n: number }[]>({ n: '*' }).first())?.n)).toBe(1);
    });

    it('answers id_server_unbind_result when an id_server is named, and erases with erase: profile cleared, marked erased', async () => {
      await hs.register('deact_idserver', PW);
      const tok = (await hs.login('deact_idserver', PW)).access_token;
      const res = await hs.request('POST', `${V3}/account/deactivate`, {
        token: tok,
        body: { id_server: 'id.example.org', erase: true, auth: pwAuth('deact_idserver') },
      });
      expect(res.status).toBe(200);
      expect(res.body.id_server_unbind_result).toBe('success');
      const row = await userRow('@deact_idserver:test.local');
      expect(!!row.deactivated).toBe(true);
      expect(!!row.erased).toBe(true);
      const profile = await hs.db()('profiles').where({ user_id: '@deact_idserver:test.local' }).first();
      expect(profile).toMatchObject({ displayname: null, avatar_url: null });
    });

    it('refuses a wrong password (401 M_FORBIDDEN), changing nothing', async () => {
      const u = await threeDevices('deact_wrong');
      const before = await userRow(u.userId);
      const res = await hs.request('POST', `${V3}/account/deactivate`, {
        token: u.a.access_token,
        body: { auth: pwAuth('deact_wrong', 'Wrong-passw0rd-here') },
      });
      expect(res.status).toBe(401);
      expect(res.body.errcode).toBe('M_FORBIDDEN');
      expect(res.body.flows).toEqual([{ stages: ['m.login.password'] }]);
      expect(await userRow(u.userId)).toEqual(before);
      expect(!!before.deactivated).toBe(false);
      expect(await devicesOf(u.userId)).toHaveLength(3);
      for (const t of [u.a, u.b, u.c]) expect((await whoami(t.access_token)).status).toBe(200);
      expect((await hs.db()('profiles').where({ user_id: u.userId }).first()).displayname).toBe('deact_wrong');
      expect((await loginStatus('deact_wrong', PW)).status).toBe(200);
    });

    it('refuses mistyped erase / id_server with M_BAD_JSON, changing nothing', async () => {
      const u = await threeDevices('deact_types');
      for (const body of [
        { erase: 'true', auth: pwAuth('deact_types') },
        { id_server: 42, auth: pwAuth('deact_types') },
        { id_server: 'x'.repeat(300), auth: pwAuth('deact_types') },
      ]) {
        const res = await hs.request('POST', `${V3}/account/deactivate`, { token: u.a.access_token, body });
        expect(res.status, JSON.stringify(body).slice(0, 60)).toBe(400);
        expect(res.body.errcode).toBe('M_BAD_JSON');
      }
      expect(!!(await userRow(u.userId)).deactivated).toBe(false);
      expect(await devicesOf(u.userId)).toHaveLength(3);
    });

    it('binds the session to erase: a session begun with erase false cannot deactivate with erase true', async () => {
      const u = await threeDevices('deact_bind');
      const first = await hs.request('POST', `${V3}/account/deactivate`, { token: u.a.access_token, body: { erase: false } });
      expect(first.status).toBe(401);
      const res = await hs.request('POST', `${V3}/account/deactivate`, {
        token: u.a.access_token,
        body: { erase: true, auth: pwAuth('deact_bind', PW, first.body.session) },
      });
      expect(res.status).toBe(403);
      expect(res.body.errcode).toBe('M_FORBIDDEN');
      expect(!!(await userRow(u.userId)).deactivated).toBe(false);
      expect(await devicesOf(u.userId)).toHaveLength(3);
    });
  });
});
