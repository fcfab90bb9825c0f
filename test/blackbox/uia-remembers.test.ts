// A UIA session remembers its first request (as Synapse does): a later request
// may send only `auth` (clients finishing a stage through a fallback page do),
// but may not change what was asked. A repeated final request of a completed
// registration answers with the same user. New localparts are down-cased.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ACCOUNT_TABLES, countRows, expectMatrixError, expectNoChange } from '../support/assertions.js';
import { backends } from '../support/backends.js';
import { DEFAULT_PASSWORD, startInProcessServer as startServer, type TestServer } from '../support/server.js';

const C = '/_matrix/client/v3';
const TABLES = [...ACCOUNT_TABLES, 'uia_sessions'];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const dummy = (session: string) => ({ type: 'm.login.dummy', session });
const passwordAuth = (user: string, session?: string, password = DEFAULT_PASSWORD) => ({
  type: 'm.login.password',
  identifier: { type: 'm.id.user', user },
  password,
  ...(session ? { session } : {}),
});

describe.each(backends())('UIA remembers the session (%s)', (backend) => {
  let hs: TestServer;
  beforeAll(async () => {
    hs = await startServer(backend, { refreshable_access_token_lifetime: '1h' });
  });
  afterAll(async () => {
    await hs?.stop();
  });

  const register = (body: Record<string, unknown>) => hs.request('POST', `${C}/register`, { body });
  const whoami = (token: string) => hs.request('GET', `${C}/account/whoami`, { token });
  const sessionRow = (s: string) => hs.db()('uia_sessions').where({ session_id: s }).first();
  /** Opens a session with `body` (no auth): the 401's session ID. */
  const open = async (path: string, body: Record<string, unknown>, token?: string) => {
    const res = await hs.request('POST', `${C}${path}`, { body, token });
    expect(res.status, res.text).toBe(401);
    return res.body.session as string;
  };

  describe('registration', () => {
    it('completes with a request that sends only auth, using every parameter of the first request', async () => {
      const s = await open('/register', {
        username: 'rem_all',
        password: 'remembered password 1',
        device_id: 'REMDEVICE',
        initial_device_display_name: 'Remembered laptop',
        refresh_token: true,
      });
      // The session keeps the password only as an argon2 hash.
      const row = await sessionRow(s);
      expect(row.params).not.toContain('remembered password 1');
      expect(JSON.parse(row.params).secretHashes.password).toMatch(/^\$argon2id\$/);

      const done = await register({ auth: dummy(s) });
      expect(done.status, done.text).toBe(200);
      expect(done.body.user_id).toBe('@rem_all:test.local');
      expect(done.body.device_id).toBe('REMDEVICE');
      expect(typeof done.body.refresh_token).toBe('string');
      expect(done.body.expires_in_ms).toBeGreaterThan(0);
      expect((await whoami(done.body.access_token)).body.device_id).toBe('REMDEVICE');
      const device = await hs.db()('devices').where({ user_id: '@rem_all:test.local', device_id: 'REMDEVICE' }).first();
      expect(device.display_name).toBe('Remembered laptop');
      // The remembered password is the account's.
      expect((await hs.request('POST', `${C}/login`, { body: passwordAuthLogin('rem_all', 'remembered password 1') })).status).toBe(200);
    });

    it('takes what a later request adds (an empty probe first, as Element and Nheko send)', async () => {
      const s = await open('/register', {});
      expect(JSON.parse((await sessionRow(s)).params)).toEqual({ params: {}, secretHashes: {} });
      const mid = await register({ username: 'rem_probe', auth: { session: s } });
      expect(mid.status, mid.text).toBe(401);
      expect(mid.body.session).toBe(s);
      const done = await register({ password: DEFAULT_PASSWORD, inhibit_login: true, auth: dummy(s) });
      expect(done.status, done.text).toBe(200);
      expect(done.body).toEqual({ user_id: '@rem_probe:test.local', home_server: 'test.local' });
    });

    it('refuses a later request that changes the username or the password (403), creating nothing', async () => {
      const s = await open('/register', { username: 'rem_fixed', password: DEFAULT_PASSWORD });
      await expectNoChange(hs, async () => {
        for (const body of [
          { username: 'rem_other', password: DEFAULT_PASSWORD, auth: dummy(s) },
          { username: 'rem_fixed', password: 'another password', auth: dummy(s) },
          { password: 'another password', auth: dummy(s) },
          { username: 'rem_other', auth: dummy(s) },
          { inhibit_login: true, username: 'REM_OTHER', auth: dummy(s) },
        ]) expectMatrixError(await register(body), 403, 'M_FORBIDDEN');
      }, ACCOUNT_TABLES);
      // The session is intact: the original request still completes it.
      const done = await register({ auth: dummy(s) });
      expect(done.status, done.text).toBe(200);
      expect(done.body.user_id).toBe('@rem_fixed:test.local');
    });

    it('still needs a password from some request of the session', async () => {
      const s = await open('/register', { username: 'rem_nopw' });
      await expectNoChange(hs, async () => {
        expectMatrixError(await register({ auth: dummy(s) }), 400, 'M_MISSING_PARAM');
      });
      // The session was not spent: a request adding the password completes it.
      const done = await register({ password: DEFAULT_PASSWORD, auth: dummy(s) });
      expect(done.status, done.text).toBe(200);
      expect(done.body.user_id).toBe('@rem_nopw:test.local');
    });
  });

  describe('a repeated final registration request (lost response)', () => {
    it('answers with the same user and a new login, creating no second account', async () => {
      const s = await open('/register', { username: 'rep_named', password: DEFAULT_PASSWORD });
      const final = { username: 'rep_named', password: DEFAULT_PASSWORD, auth: dummy(s) };
      const first = await register(final);
      expect(first.status, first.text).toBe(200);
      const users = await countRows(hs, 'users');
      for (const again of [final, { auth: dummy(s) }, { auth: { session: s } }]) {
        const repeat = await register(again);
        expect(repeat.status, repeat.text).toBe(200);
        expect(repeat.body.user_id).toBe(first.body.user_id);
        expect(repeat.body.home_server).toBe('test.local');
        expect(repeat.body.access_token).not.toBe(first.body.access_token);
        expect((await whoami(repeat.body.access_token)).body.user_id).toBe('@rep_named:test.local');
      }
      expect(await countRows(hs, 'users')).toBe(users);
      // Every answer signed in (a device each); the first login still works.
      expect(await countRows(hs, 'devices', { user_id: '@rep_named:test.local' })).toBe(4);
      expect((await whoami(first.body.access_token)).status).toBe(200);
    });

    it('answers with the same generated user when the session named none', async () => {
      const s = await open('/register', { password: DEFAULT_PASSWORD });
      const first = await register({ password: DEFAULT_PASSWORD, auth: dummy(s) });
      expect(first.status, first.text).toBe(200);
      const repeat = await register({ password: DEFAULT_PASSWORD, auth: dummy(s) });
      expect(repeat.status, repeat.text).toBe(200);
      expect(repeat.body.user_id).toBe(first.body.user_id);
    });

    it('signs in again only when the session did not inhibit login', async () => {
      const s = await open('/register', { username: 'rep_inhibit', password: DEFAULT_PASSWORD, inhibit_login: true });
      const first = await register({ auth: dummy(s) });
      expect(first.body).toEqual({ user_id: '@rep_inhibit:test.local', home_server: 'test.local' });
      await expectNoChange(hs, async () => {
        const repeat = await register({ auth: dummy(s) });
        expect(repeat.status).toBe(200);
        expect(repeat.body).toEqual(first.body);
      });
    });

    it('refuses a repeat that asks for something else, and one for an account deactivated since', async () => {
      const s = await open('/register', { username: 'rep_other', password: DEFAULT_PASSWORD });
      const first = await register({ auth: dummy(s) });
      expect(first.status).toBe(200);
      await expectNoChange(hs, async () => {
        for (const body of [
          { username: 'rep_other2', password: DEFAULT_PASSWORD, auth: dummy(s) },
          { username: 'rep_other', password: 'not the password', auth: dummy(s) },
          { refresh_token: true, auth: dummy(s) },
        ]) expectMatrixError(await register(body), 403, 'M_FORBIDDEN');
      }, TABLES);

      const deactivate = await hs.request('POST', `${C}/account/deactivate`, {
        token: first.body.access_token,
        body: { auth: passwordAuth('rep_other') },
      });
      expect(deactivate.status, deactivate.text).toBe(200);
      await expectNoChange(hs, async () => {
        expectMatrixError(await register({ auth: dummy(s) }), 403, 'M_FORBIDDEN');
      });
    });
  });

  describe('signed-in operations', () => {
    it('password change: the completing request may send only auth; new_password and logout_devices are remembered', async () => {
      const me = await hs.register('rem_pw');
      const other = await hs.login('rem_pw');
      const s = await open('/account/password', { new_password: 'the remembered new one', logout_devices: false }, me.access_token);
      expect((await sessionRow(s)).params).not.toContain('the remembered new one');
      const done = await hs.request('POST', `${C}/account/password`, { token: me.access_token, body: { auth: passwordAuth('rem_pw', s) } });
      expect(done.status, done.text).toBe(200);
      expect((await hs.request('POST', `${C}/login`, { body: passwordAuthLogin('rem_pw', 'the remembered new one') })).status).toBe(200);
      // logout_devices: false was remembered: the other device is still signed in.
      expect((await whoami(other.access_token)).status).toBe(200);
    });

    it('password change: no new_password in any request is 400 M_MISSING_PARAM, changing nothing', async () => {
      const me = await hs.register('rem_pw_missing');
      const hash = (await hs.db()('users').where({ user_id: me.user_id }).first()).password_hash;
      await expectNoChange(hs, async () => {
        const res = await hs.request('POST', `${C}/account/password`, { token: me.access_token, body: { auth: passwordAuth('rem_pw_missing') } });
        expectMatrixError(res, 400, 'M_MISSING_PARAM');
        const bare = await hs.request('POST', `${C}/account/password`, { token: me.access_token, body: {} });
        expectMatrixError(bare, 400, 'M_MISSING_PARAM');
      }, TABLES);
      expect((await hs.db()('users').where({ user_id: me.user_id }).first()).password_hash).toBe(hash);
    });

    it('deactivation: erase is remembered; a changed id_server is refused', async () => {
      const me = await hs.register('rem_deact');
      const s = await open('/account/deactivate', { erase: true, id_server: 'id.example.org' }, me.access_token);
      const changed = await hs.request('POST', `${C}/account/deactivate`, {
        token: me.access_token,
        body: { id_server: 'other.example.org', auth: passwordAuth('rem_deact', s) },
      });
      expectMatrixError(changed, 403, 'M_FORBIDDEN');
      expect((await hs.db()('users').where({ user_id: me.user_id }).first()).deactivated).toBeFalsy();
      const done = await hs.request('POST', `${C}/account/deactivate`, { token: me.access_token, body: { auth: passwordAuth('rem_deact', s) } });
      expect(done.status, done.text).toBe(200);
      expect(done.body).toEqual({ id_server_unbind_result: 'success' });
      expect((await hs.db()('users').where({ user_id: me.user_id }).first()).deactivated).toBeTruthy();
    });

    it('delete_devices: the devices are remembered; none in any request is 400 M_MISSING_PARAM', async () => {
      const me = await hs.register('rem_devs');
      const b = await hs.login('rem_devs');
      const c = await hs.login('rem_devs');
      await expectNoChange(hs, async () => {
        const res = await hs.request('POST', `${C}/delete_devices`, { token: me.access_token, body: { auth: passwordAuth('rem_devs') } });
        expectMatrixError(res, 400, 'M_MISSING_PARAM');
      }, TABLES);
      const s = await open('/delete_devices', { devices: [b.device_id] }, me.access_token);
      const done = await hs.request('POST', `${C}/delete_devices`, { token: me.access_token, body: { auth: passwordAuth('rem_devs', s) } });
      expect(done.status, done.text).toBe(200);
      const left = (await hs.db()('devices').where({ user_id: me.user_id }).select('device_id')).map((r: { device_id: string }) => r.device_id);
      expect(left.sort()).toEqual([me.device_id, c.device_id].sort());
    });
  });
});

describe.each(backends())('UIA sessions expire (%s)', (backend) => {
  let hs: TestServer;
  beforeAll(async () => {
    hs = await startServer(backend, { ui_auth: { session_lifetime: '1500ms' } });
  });
  afterAll(async () => {
    await hs?.stop();
  });

  it('a repeated registration is answered only until its session expires', async () => {
    const open = await hs.request('POST', `${C}/register`, { body: { username: 'rep_expiry', password: DEFAULT_PASSWORD } });
    const s = open.body.session as string;
    const first = await hs.request('POST', `${C}/register`, { body: { auth: dummy(s) } });
    expect(first.status, first.text).toBe(200);
    await sleep(1600);
    await expectNoChange(hs, async () => {
      expectMatrixError(await hs.request('POST', `${C}/register`, { body: { auth: dummy(s) } }), 400, 'M_UNKNOWN');
    });
  });
});

describe.each(backends())('new localparts are down-cased (%s)', (backend) => {
  let hs: TestServer;
  beforeAll(async () => {
    hs = await startServer(backend);
  });
  afterAll(async () => {
    await hs?.stop();
  });

  it('registers "Carol" as @carol, and /register/available agrees', async () => {
    expect((await hs.request('GET', `${C}/register/available?username=Carol`)).body).toEqual({ available: true });
    const res = await hs.request('POST', `${C}/register`, { body: { username: 'Carol', password: DEFAULT_PASSWORD, auth: { type: 'm.login.dummy' } } });
    expect(res.status, res.text).toBe(200);
    expect(res.body.user_id).toBe('@carol:test.local');
    expect(await countRows(hs, 'users', { localpart: 'carol' })).toBe(1);
    expect(await countRows(hs, 'users', { localpart: 'Carol' })).toBe(0);
    for (const name of ['Carol', 'CAROL', 'carol']) {
      expectMatrixError(await hs.request('GET', `${C}/register/available?username=${name}`), 400, 'M_USER_IN_USE');
      await expectNoChange(hs, async () => {
        const again = await hs.request('POST', `${C}/register`, { body: { username: name, password: DEFAULT_PASSWORD, auth: { type: 'm.login.dummy' } } });
        expectMatrixError(again, 400, 'M_USER_IN_USE');
      });
    }
    // Sign-in matches without regard to case, as before.
    expect((await hs.login('Carol')).user_id).toBe('@carol:test.local');
  });

  it('down-cases ASCII only: other characters are still refused', async () => {
    for (const name of ['Alicé', 'K\u212Aelvin', 'ALİCE']) {
      await expectNoChange(hs, async () => {
        expectMatrixError(await hs.request('GET', `${C}/register/available?username=${encodeURIComponent(name)}`), 400, 'M_INVALID_USERNAME');
        const res = await hs.request('POST', `${C}/register`, { body: { username: name, password: DEFAULT_PASSWORD, auth: { type: 'm.login.dummy' } } });
        expectMatrixError(res, 400, 'M_INVALID_USERNAME');
      });
    }
  });
});

function passwordAuthLogin(user: string, password: string) {
  return { type: 'm.login.password', identifier: { type: 'm.id.user', user }, password };
}
