// GET/POST /login, /logout, /logout/all and how access tokens are accepted,
// black-box. Every refusal is checked to have issued no token and no device.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { countRows, expectMatrixError, expectNoChange } from '../support/assertions.js';
import { backends } from '../support/backends.js';
import { DEFAULT_PASSWORD, startServer, type TestServer } from '../support/server.js';

const V3 = '/_matrix/client/v3';
const R0 = '/_matrix/client/r0';

describe.each(backends())('login (%s)', (backend) => {
  let hs: TestServer;
  beforeAll(async () => {
    hs = await startServer(backend);
    await hs.register('lou');
  });
  afterAll(async () => {
    await hs?.stop();
  });

  const login = (body: unknown, prefix = V3) => hs.request('POST', `${prefix}/login`, { body });
  const whoami = (token: string) => hs.request('GET', `${V3}/account/whoami`, { token });

  describe('GET /login', () => {
    it.each([V3, R0])('offers m.login.password (%s)', async (prefix) => {
      const res = await hs.request('GET', `${prefix}/login`);
      expect(res.status).toBe(200);
      expect(res.body.flows).toContainEqual({ type: 'm.login.password' });
    });
  });

  describe('POST /login: who is signing in', () => {
    it.each([
      ['identifier m.id.user with the localpart', { identifier: { type: 'm.id.user', user: 'lou' } }],
      ['identifier m.id.user with the full user ID', { identifier: { type: 'm.id.user', user: '@lou:test.local' } }],
      ['the legacy user field with the localpart', { user: 'lou' }],
      ['the legacy user field with the full user ID', { user: '@lou:test.local' }],
      ['the localpart in another case', { identifier: { type: 'm.id.user', user: 'LOU' } }],
    ])('signs in by %s', async (_why, who) => {
      const devicesBefore = await countRows(hs, 'devices', { user_id: '@lou:test.local' });
      const res = await login({ type: 'm.login.password', password: DEFAULT_PASSWORD, ...who });
      expect(res.status).toBe(200);
      expect(res.body.user_id).toBe('@lou:test.local');
      expect(res.body.home_server).toBe('test.local');
      expect(typeof res.body.access_token).toBe('string');
      expect(typeof res.body.device_id).toBe('string');
      // No public_baseurl configured: no well_known to steer the client with.
      expect(res.body.well_known).toBeUndefined();
      expect(res.body.refresh_token).toBeUndefined();
      expect(await countRows(hs, 'devices', { user_id: '@lou:test.local' })).toBe(devicesBefore + 1);
      const who2 = await whoami(res.body.access_token);
      expect(who2.body).toEqual({ user_id: '@lou:test.local', device_id: res.body.device_id, is_guest: false });
    });

    it('signs in on the r0 path', async () => {
      const res = await login({ type: 'm.login.password', identifier: { type: 'm.id.user', user: 'lou' }, password: DEFAULT_PASSWORD }, R0);
      expect(res.status).toBe(200);
      expect(res.body.user_id).toBe('@lou:test.local');
    });

    it('honours device_id, initial_device_display_name and refresh_token', async () => {
      const res = await login({
        type: 'm.login.password',
        identifier: { type: 'm.id.user', user: 'lou' },
        password: DEFAULT_PASSWORD,
        device_id: 'LOUPHONE',
        initial_device_display_name: "Lou's phone",
        refresh_token: true,
      });
      expect(res.status).toBe(200);
      expect(res.body.device_id).toBe('LOUPHONE');
      expect(typeof res.body.refresh_token).toBe('string');
      expect(res.body.expires_in_ms).toBeGreaterThan(0);
      const device = await hs.request('GET', `${V3}/devices/LOUPHONE`, { token: res.body.access_token });
      expect(device.status).toBe(200);
      expect(device.body.display_name).toBe("Lou's phone");
    });
  });

  describe('POST /login: refusals', () => {
    it('refuses a wrong password with 403 M_FORBIDDEN', async () => {
      await expectNoChange(hs, async () => {
        const res = await login({ type: 'm.login.password', identifier: { type: 'm.id.user', user: 'lou' }, password: 'wrong password' });
        expectMatrixError(res, 403, 'M_FORBIDDEN');
      });
    });

    it('refuses an unknown user with the same 403 M_FORBIDDEN', async () => {
      await expectNoChange(hs, async () => {
        const unknown = await login({ type: 'm.login.password', identifier: { type: 'm.id.user', user: 'nobody' }, password: DEFAULT_PASSWORD });
        expectMatrixError(unknown, 403, 'M_FORBIDDEN');
        const wrong = await login({ type: 'm.login.password', identifier: { type: 'm.id.user', user: 'lou' }, password: 'wrong password' });
        // Nothing tells an unknown account from a wrong password.
        expect(unknown.body).toEqual(wrong.body);
      });
    });

    it('refuses a user ID on another server with 403 M_FORBIDDEN', async () => {
      await expectNoChange(hs, async () => {
        const res = await login({ type: 'm.login.password', identifier: { type: 'm.id.user', user: '@lou:elsewhere.example' }, password: DEFAULT_PASSWORD });
        expectMatrixError(res, 403, 'M_FORBIDDEN');
      });
    });

    it('refuses an unknown login type with 400 M_UNKNOWN', async () => {
      await expectNoChange(hs, async () => {
        const res = await login({ type: 'm.login.token', token: 'abc', identifier: { type: 'm.id.user', user: 'lou' }, password: DEFAULT_PASSWORD });
        expectMatrixError(res, 400, 'M_UNKNOWN');
      });
    });

    it('refuses an unknown identifier type with 400 M_UNKNOWN', async () => {
      await expectNoChange(hs, async () => {
        const res = await login({ type: 'm.login.password', identifier: { type: 'm.id.carrier_pigeon', user: 'lou' }, password: DEFAULT_PASSWORD });
        expectMatrixError(res, 400, 'M_UNKNOWN');
      });
    });

    it.each([
      ['the password', { type: 'm.login.password', identifier: { type: 'm.id.user', user: 'lou' } }],
      ['the identifier (and the legacy user field)', { type: 'm.login.password', password: DEFAULT_PASSWORD }],
      ['the type', { identifier: { type: 'm.id.user', user: 'lou' }, password: DEFAULT_PASSWORD }],
    ])('refuses a request without %s with 400 M_MISSING_PARAM', async (_why, body) => {
      await expectNoChange(hs, async () => {
        expectMatrixError(await login(body), 400, 'M_MISSING_PARAM');
      });
    });

    it.each([
      ['type is a number', { type: 1, identifier: { type: 'm.id.user', user: 'lou' }, password: DEFAULT_PASSWORD }],
      ['password is a number', { type: 'm.login.password', identifier: { type: 'm.id.user', user: 'lou' }, password: 12345 }],
      ['password is an object', { type: 'm.login.password', identifier: { type: 'm.id.user', user: 'lou' }, password: { p: DEFAULT_PASSWORD } }],
      ['identifier is a string', { type: 'm.login.password', identifier: 'lou', password: DEFAULT_PASSWORD }],
      ['identifier is an array', { type: 'm.login.password', identifier: [{ type: 'm.id.user', user: 'lou' }], password: DEFAULT_PASSWORD }],
      ['identifier.type is missing', { type: 'm.login.password', identifier: { user: 'lou' }, password: DEFAULT_PASSWORD }],
      ['identifier.user is a number', { type: 'm.login.password', identifier: { type: 'm.id.user', user: 7 }, password: DEFAULT_PASSWORD }],
      ['identifier.user is missing', { type: 'm.login.password', identifier: { type: 'm.id.user' }, password: DEFAULT_PASSWORD }],
      ['the legacy user is a boolean', { type: 'm.login.password', user: true, password: DEFAULT_PASSWORD }],
      ['device_id is a number', { type: 'm.login.password', identifier: { type: 'm.id.user', user: 'lou' }, password: DEFAULT_PASSWORD, device_id: 5 }],
      ['refresh_token is a string', { type: 'm.login.password', identifier: { type: 'm.id.user', user: 'lou' }, password: DEFAULT_PASSWORD, refresh_token: 'true' }],
      [
        'initial_device_display_name is a number',
        { type: 'm.login.password', identifier: { type: 'm.id.user', user: 'lou' }, password: DEFAULT_PASSWORD, initial_device_display_name: 3 },
      ],
    ])('refuses a body where %s with 400 M_BAD_JSON', async (_why, body) => {
      await expectNoChange(hs, async () => {
        expectMatrixError(await login(body), 400, 'M_BAD_JSON');
      });
    });

    it('refuses a body that is not JSON with 400 M_NOT_JSON', async () => {
      await expectNoChange(hs, async () => {
        const res = await hs.request('POST', `${V3}/login`, { rawBody: 'type=m.login.password', headers: { 'Content-Type': 'application/json' } });
        expectMatrixError(res, 400, 'M_NOT_JSON');
      });
    });

    it('refuses a deactivated account as a wrong password: 403 M_FORBIDDEN, not M_USER_DEACTIVATED', async () => {
      const reg = await hs.register('dea');
      const res = await hs.request('POST', `${V3}/account/deactivate`, {
        token: reg.access_token,
        body: { auth: { type: 'm.login.password', identifier: { type: 'm.id.user', user: 'dea' }, password: DEFAULT_PASSWORD } },
      });
      expect(res.status).toBe(200);
      await expectNoChange(hs, async () => {
        const again = await login({ type: 'm.login.password', identifier: { type: 'm.id.user', user: 'dea' }, password: DEFAULT_PASSWORD });
        // Deactivation removed the password: saying "deactivated" would tell anyone the account existed.
        expectMatrixError(again, 403, 'M_FORBIDDEN');
        expect(again.body.error).toBe('Invalid username or password');
      });
      expect(await countRows(hs, 'devices', { user_id: '@dea:test.local' })).toBe(0);
    });
  });

  describe('device IDs', () => {
    it('signing in again on a device ID ends that device’s old token and keeps one device', async () => {
      await hs.register('dora');
      const first = await hs.login('dora', DEFAULT_PASSWORD, { device_id: 'DORADEV' });
      const other = await hs.login('dora');
      expect((await whoami(first.access_token)).status).toBe(200);
      const second = await hs.login('dora', DEFAULT_PASSWORD, { device_id: 'DORADEV' });
      expect(second.device_id).toBe('DORADEV');
      expect(second.access_token).not.toBe(first.access_token);
      const old = await whoami(first.access_token);
      expectMatrixError(old, 401, 'M_UNKNOWN_TOKEN');
      expect((await whoami(second.access_token)).body.device_id).toBe('DORADEV');
      // The other device is not touched.
      expect((await whoami(other.access_token)).status).toBe(200);
      expect(await countRows(hs, 'devices', { user_id: '@dora:test.local', device_id: 'DORADEV' })).toBe(1);
      expect(await countRows(hs, 'access_tokens', { user_id: '@dora:test.local', device_id: 'DORADEV' })).toBe(1);
      // The registration's device, the other login and DORADEV.
      expect(await countRows(hs, 'devices', { user_id: '@dora:test.local' })).toBe(3);
    });

    it('keeps a device’s name when signing in again without one', async () => {
      await hs.register('dana');
      await hs.login('dana', DEFAULT_PASSWORD, { device_id: 'DANADEV', initial_device_display_name: 'Laptop' });
      const again = await hs.login('dana', DEFAULT_PASSWORD, { device_id: 'DANADEV' });
      const device = await hs.request('GET', `${V3}/devices/DANADEV`, { token: again.access_token });
      expect(device.body.display_name).toBe('Laptop');
    });

    it('gives a new device each login without device_id', async () => {
      await hs.register('nina');
      const a = await hs.login('nina');
      const b = await hs.login('nina');
      expect(a.device_id).not.toBe(b.device_id);
      expect((await whoami(a.access_token)).status).toBe(200);
      expect((await whoami(b.access_token)).status).toBe(200);
    });
  });

  describe('logout', () => {
    it.each([V3, R0])('POST /logout ends the token and removes the device, and only that one (%s)', async (prefix) => {
      const name = prefix === V3 ? 'leo' : 'leor';
      const reg = await hs.register(name);
      const session = await hs.login(name);
      const res = await hs.request('POST', `${prefix}/logout`, { token: session.access_token, body: {} });
      expect(res.status).toBe(200);
      expect(res.body).toEqual({});
      expectMatrixError(await whoami(session.access_token), 401, 'M_UNKNOWN_TOKEN');
      expect(await countRows(hs, 'devices', { user_id: reg.user_id, device_id: session.device_id })).toBe(0);
      expect(await countRows(hs, 'access_tokens', { user_id: reg.user_id, device_id: session.device_id })).toBe(0);
      // The registration's own session still works.
      expect((await whoami(reg.access_token)).status).toBe(200);
      expect(await countRows(hs, 'devices', { user_id: reg.user_id })).toBe(1);
      // Logging out again with the dead token is refused.
      expectMatrixError(await hs.request('POST', `${prefix}/logout`, { token: session.access_token, body: {} }), 401, 'M_UNKNOWN_TOKEN');
    });

    it('POST /logout/all ends every token and removes every device of the user only', async () => {
      const reg = await hs.register('lana');
      const a = await hs.login('lana', DEFAULT_PASSWORD, { refresh_token: true });
      const b = await hs.login('lana');
      const bystander = await hs.register('bystander');
      const res = await hs.request('POST', `${V3}/logout/all`, { token: a.access_token, body: {} });
      expect(res.status).toBe(200);
      expect(res.body).toEqual({});
      for (const token of [reg.access_token, a.access_token, b.access_token]) expectMatrixError(await whoami(token), 401, 'M_UNKNOWN_TOKEN');
      expect(await countRows(hs, 'devices', { user_id: '@lana:test.local' })).toBe(0);
      expect(await countRows(hs, 'access_tokens', { user_id: '@lana:test.local' })).toBe(0);
      expect(await countRows(hs, 'refresh_tokens', { user_id: '@lana:test.local' })).toBe(0);
      // The refresh token is dead too.
      const refresh = await hs.request('POST', `${V3}/refresh`, { body: { refresh_token: (a as any).refresh_token } });
      expectMatrixError(refresh, 401, 'M_UNKNOWN_TOKEN');
      // Other users are untouched, and the account can sign in again.
      expect((await whoami(bystander.access_token)).status).toBe(200);
      const again = await hs.login('lana');
      expect((await whoami(again.access_token)).status).toBe(200);
    });

    it('refuses /logout without a token with 401 M_MISSING_TOKEN', async () => {
      await expectNoChange(hs, async () => {
        expectMatrixError(await hs.request('POST', `${V3}/logout`, { body: {} }), 401, 'M_MISSING_TOKEN');
        expectMatrixError(await hs.request('POST', `${V3}/logout/all`, { body: {} }), 401, 'M_MISSING_TOKEN');
      });
    });
  });

  describe('access tokens', () => {
    let token: string;
    beforeAll(async () => {
      token = (await hs.register('tok')).access_token;
    });

    it('accepts the token in the ?access_token= query parameter', async () => {
      const res = await hs.request('GET', `${V3}/account/whoami?access_token=${encodeURIComponent(token)}`);
      expect(res.status).toBe(200);
      expect(res.body.user_id).toBe('@tok:test.local');
    });

    it('accepts the Bearer scheme in any case', async () => {
      const res = await hs.request('GET', `${V3}/account/whoami`, { headers: { Authorization: `bearer ${token}` } });
      expect(res.status).toBe(200);
      expect(res.body.user_id).toBe('@tok:test.local');
    });

    it('refuses a request without a token with 401 M_MISSING_TOKEN', async () => {
      expectMatrixError(await hs.request('GET', `${V3}/account/whoami`), 401, 'M_MISSING_TOKEN');
      expectMatrixError(await hs.request('GET', `${V3}/account/whoami?access_token=`), 401, 'M_MISSING_TOKEN');
    });

    it('refuses a bogus token with 401 M_UNKNOWN_TOKEN and soft_logout false', async () => {
      const res = await whoami('syt_bogus_token');
      expectMatrixError(res, 401, 'M_UNKNOWN_TOKEN');
      expect(res.body.soft_logout).toBe(false);
      const query = await hs.request('GET', `${V3}/account/whoami?access_token=syt_bogus_token`);
      expectMatrixError(query, 401, 'M_UNKNOWN_TOKEN');
      expect(query.body.soft_logout).toBe(false);
    });

    it('refuses a token that differs from a real one by its last character', async () => {
      const last = token.at(-1) === 'a' ? 'b' : 'a';
      expectMatrixError(await whoami(token.slice(0, -1) + last), 401, 'M_UNKNOWN_TOKEN');
    });
  });
});

describe.each(backends())('login with public_baseurl (%s)', (backend) => {
  let hs: TestServer;
  beforeAll(async () => {
    hs = await startServer(backend, { public_baseurl: 'https://matrix.example.org' });
    await hs.register('wendy');
  });
  afterAll(async () => {
    await hs?.stop();
  });

  it('sends well_known with the configured base URL', async () => {
    const res = await hs.login('wendy');
    expect((res as any).well_known).toEqual({ 'm.homeserver': { base_url: 'https://matrix.example.org/' } });
  });
});

describe.each(backends())('login with passwords disabled (%s)', (backend) => {
  let hs: TestServer;
  beforeAll(async () => {
    hs = await startServer(backend, { password_config: { enabled: false } });
  });
  afterAll(async () => {
    await hs?.stop();
  });

  it('offers no password flow and refuses password login with 400 M_UNKNOWN', async () => {
    const flows = await hs.request('GET', `${V3}/login`);
    expect(flows.status).toBe(200);
    expect(flows.body.flows).not.toContainEqual({ type: 'm.login.password' });
    await expectNoChange(hs, async () => {
      const res = await hs.request('POST', `${V3}/login`, {
        body: { type: 'm.login.password', identifier: { type: 'm.id.user', user: 'anyone' }, password: DEFAULT_PASSWORD },
      });
      expectMatrixError(res, 400, 'M_UNKNOWN');
    });
  });

  it('offers no password re-authentication either (as Synapse): UIA operations have no flow to complete', async () => {
    const me = await hs.register('nopw_reauth');
    await expectNoChange(hs, async () => {
      const bare = await hs.request('POST', `${V3}/account/deactivate`, { token: me.access_token, body: {} });
      expect(bare.status).toBe(401);
      expect(bare.body.flows).toEqual([]);
      const withPassword = await hs.request('DELETE', `${V3}/devices/${me.device_id}`, {
        token: me.access_token,
        body: { auth: { type: 'm.login.password', identifier: { type: 'm.id.user', user: 'nopw_reauth' }, password: DEFAULT_PASSWORD } },
      });
      expectMatrixError(withPassword, 400, 'M_UNRECOGNIZED');
    });
    expect((await hs.request('GET', `${V3}/account/whoami`, { token: me.access_token })).status).toBe(200);
  });
});
