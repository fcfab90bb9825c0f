// POST /register (v3 and r0) and GET /register/available, black-box: the UIA
// challenge, the one- and two-request dummy flows, what the response carries,
// username rules, guests, config switches and the password policy. Every
// refusal is checked to have created nothing.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { countRows, expectMatrixError, expectNoChange } from '../support/assertions.js';
import { backends } from '../support/backends.js';
import { DEFAULT_PASSWORD, startInProcessServer as startServer, type TestServer } from '../support/server.js';

const V3 = '/_matrix/client/v3';
const R0 = '/_matrix/client/r0';

describe.each(backends())('registration (%s)', (backend) => {
  let hs: TestServer;
  beforeAll(async () => {
    hs = await startServer(backend);
  });
  afterAll(async () => {
    await hs?.stop();
  });

  const register = (body: unknown, prefix = V3, query = '') => hs.request('POST', `${prefix}/register${query}`, { body });

  describe('the UIA challenge', () => {
    it.each([V3, R0])('answers {} with 401, the dummy flow, empty params and a session (%s)', async (prefix) => {
      let session = '';
      await expectNoChange(hs, async () => {
        const res = await register({}, prefix);
        expect(res.status).toBe(401);
        expect(res.body.flows).toContainEqual({ stages: ['m.login.dummy'] });
        expect(res.body.params).toEqual({});
        expect(typeof res.body.session).toBe('string');
        expect(res.body.session.length).toBeGreaterThan(0);
        expect(res.body.errcode).toBeUndefined();
        session = res.body.session;
      });
      // The session is stored, so a later request (to any process) can continue it.
      expect(await countRows(hs, 'uia_sessions', { session_id: session })).toBe(1);
    });

    it('gives each challenge its own session', async () => {
      const a = await register({ username: 'chal1', password: DEFAULT_PASSWORD });
      const b = await register({ username: 'chal1', password: DEFAULT_PASSWORD });
      expect(a.status).toBe(401);
      expect(b.status).toBe(401);
      expect(a.body.session).not.toBe(b.body.session);
      expect(await countRows(hs, 'users', { localpart: 'chal1' })).toBe(0);
    });
  });

  describe('the dummy flow', () => {
    it('registers in two steps: 401, then m.login.dummy with the session', async () => {
      const first = await register({ username: 'twostep', password: DEFAULT_PASSWORD });
      expect(first.status).toBe(401);
      expect(await countRows(hs, 'users', { localpart: 'twostep' })).toBe(0);
      const second = await register({
        username: 'twostep',
        password: DEFAULT_PASSWORD,
        auth: { type: 'm.login.dummy', session: first.body.session },
      });
      expect(second.status).toBe(200);
      expect(second.body.user_id).toBe('@twostep:test.local');
      expect(second.body.home_server).toBe('test.local');
      expect(typeof second.body.access_token).toBe('string');
      expect(typeof second.body.device_id).toBe('string');
      // A plain registration gets no refresh token and a token that does not expire.
      expect(second.body.refresh_token).toBeUndefined();
      expect(second.body.expires_in_ms).toBeUndefined();
      const who = await hs.request('GET', `${V3}/account/whoami`, { token: second.body.access_token });
      expect(who.body).toEqual({ user_id: '@twostep:test.local', device_id: second.body.device_id, is_guest: false });
      // The completed session is spent: using it again is refused.
      const again = await register({
        username: 'twostep2',
        password: DEFAULT_PASSWORD,
        auth: { type: 'm.login.dummy', session: first.body.session },
      });
      expect(again.status).not.toBe(200);
      expect(await countRows(hs, 'users', { localpart: 'twostep2' })).toBe(0);
    });

    it('continues a session opened by an empty probe with the real request (as Nheko does)', async () => {
      const probe = await register({});
      expect(probe.status).toBe(401);
      const res = await register({
        username: 'probed',
        password: DEFAULT_PASSWORD,
        auth: { type: 'm.login.dummy', session: probe.body.session },
      });
      expect(res.status).toBe(200);
      expect(res.body.user_id).toBe('@probed:test.local');
    });

    it('refuses to continue a session with a different username', async () => {
      const first = await register({ username: 'bound1', password: DEFAULT_PASSWORD });
      await expectNoChange(hs, async () => {
        const res = await register({
          username: 'bound2',
          password: DEFAULT_PASSWORD,
          auth: { type: 'm.login.dummy', session: first.body.session },
        });
        expectMatrixError(res, 403, 'M_FORBIDDEN');
      });
    });

    it.each([V3, R0])('registers in one request with m.login.dummy and no session (%s)', async (prefix) => {
      const name = prefix === V3 ? 'onestep' : 'onestepr0';
      const res = await register({ username: name, password: DEFAULT_PASSWORD, auth: { type: 'm.login.dummy' } }, prefix);
      expect(res.status).toBe(200);
      expect(res.body.user_id).toBe(`@${name}:test.local`);
      const row = await hs.db()('users').where({ user_id: `@${name}:test.local` }).first();
      expect(row).toBeDefined();
      expect(!!row.is_guest).toBe(false);
      expect(!!row.is_admin).toBe(false);
      expect(!!row.deactivated).toBe(false);
      // The password is stored hashed, never in the clear.
      expect(row.password_hash).toMatch(/^\$argon2id\$/);
      // ... and it works for logging in.
      const login = await hs.login(name);
      expect(login.user_id).toBe(`@${name}:test.local`);
    });

    it('refuses an unknown auth type with 400 M_UNRECOGNIZED', async () => {
      await expectNoChange(hs, async () => {
        const res = await register({ username: 'badstage', password: DEFAULT_PASSWORD, auth: { type: 'm.login.bogus' } });
        expectMatrixError(res, 400, 'M_UNRECOGNIZED');
      });
    });

    it('refuses an unknown session with 400', async () => {
      await expectNoChange(hs, async () => {
        const res = await register({
          username: 'badsession',
          password: DEFAULT_PASSWORD,
          auth: { type: 'm.login.dummy', session: 'no-such-session' },
        });
        expectMatrixError(res, 400, 'M_UNKNOWN');
      });
    });
  });

  describe('what the response carries', () => {
    it('inhibit_login: no access token, no device', async () => {
      const res = await register({ username: 'inhibited', password: DEFAULT_PASSWORD, inhibit_login: true, auth: { type: 'm.login.dummy' } });
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ user_id: '@inhibited:test.local', home_server: 'test.local' });
      expect(await countRows(hs, 'users', { user_id: '@inhibited:test.local' })).toBe(1);
      expect(await countRows(hs, 'devices', { user_id: '@inhibited:test.local' })).toBe(0);
      expect(await countRows(hs, 'access_tokens', { user_id: '@inhibited:test.local' })).toBe(0);
      // The account is usable: logging in works.
      const login = await hs.login('inhibited');
      expect(login.user_id).toBe('@inhibited:test.local');
    });

    it('honours device_id and initial_device_display_name', async () => {
      const res = await register({
        username: 'devnamed',
        password: DEFAULT_PASSWORD,
        device_id: 'MYDEVICE',
        initial_device_display_name: 'My phone',
        auth: { type: 'm.login.dummy' },
      });
      expect(res.status).toBe(200);
      expect(res.body.device_id).toBe('MYDEVICE');
      const devices = await hs.request('GET', `${V3}/devices`, { token: res.body.access_token });
      expect(devices.status).toBe(200);
      expect(devices.body.devices).toHaveLength(1);
      expect(devices.body.devices[0]).toMatchObject({ device_id: 'MYDEVICE', display_name: 'My phone' });
      const row = await hs.db()('devices').where({ user_id: '@devnamed:test.local' }).first();
      expect(row.device_id).toBe('MYDEVICE');
      expect(row.display_name).toBe('My phone');
    });

    it('generates a device ID when none is given', async () => {
      const a = await hs.register('gendev1');
      const b = await hs.register('gendev2');
      expect(a.device_id).toMatch(/^[A-Za-z0-9]+$/);
      expect(a.device_id).not.toBe(b.device_id);
      expect(await countRows(hs, 'devices', { user_id: a.user_id, device_id: a.device_id })).toBe(1);
    });

    it('refresh_token: true gives a refresh token and expires_in_ms', async () => {
      const res = await register({ username: 'refresher', password: DEFAULT_PASSWORD, refresh_token: true, auth: { type: 'm.login.dummy' } });
      expect(res.status).toBe(200);
      expect(typeof res.body.refresh_token).toBe('string');
      expect(res.body.refresh_token).not.toBe(res.body.access_token);
      expect(res.body.expires_in_ms).toBeGreaterThan(0);
      expect(Number.isInteger(res.body.expires_in_ms)).toBe(true);
      expect(await countRows(hs, 'refresh_tokens', { user_id: '@refresher:test.local' })).toBe(1);
      const refreshed = await hs.request('POST', `${V3}/refresh`, { body: { refresh_token: res.body.refresh_token } });
      expect(refreshed.status).toBe(200);
      expect(typeof refreshed.body.access_token).toBe('string');
    });

    it('generates a username when none is given', async () => {
      const before = await countRows(hs, 'users');
      const res = await register({ password: DEFAULT_PASSWORD, auth: { type: 'm.login.dummy' } });
      expect(res.status).toBe(200);
      const m = /^@([^:]+):test\.local$/.exec(res.body.user_id);
      expect(m).not.toBeNull();
      const localpart = m![1]!;
      // A valid, non-numeric localpart that a user could not have asked for by accident.
      expect(localpart).toMatch(/^[a-z0-9._=\-/+]+$/);
      expect(localpart).not.toMatch(/^\d+$/);
      expect(await countRows(hs, 'users')).toBe(before + 1);
      const login = await hs.login(localpart);
      expect(login.user_id).toBe(res.body.user_id);
      const other = await register({ password: DEFAULT_PASSWORD, auth: { type: 'm.login.dummy' } });
      expect(other.body.user_id).not.toBe(res.body.user_id);
    });

    it('accepts every character the grammar allows, and a user ID of exactly 255 characters', async () => {
      const res = await register({ username: 'a.b_c=d-e/f+g9', password: DEFAULT_PASSWORD, auth: { type: 'm.login.dummy' } });
      expect(res.status).toBe(200);
      expect(res.body.user_id).toBe('@a.b_c=d-e/f+g9:test.local');
      // "@" + localpart + ":test.local" = 255
      const longest = 'l'.repeat(255 - '@:test.local'.length);
      const long = await register({ username: longest, password: DEFAULT_PASSWORD, auth: { type: 'm.login.dummy' } });
      expect(long.status).toBe(200);
      expect(long.body.user_id).toHaveLength(255);
    });
  });

  describe('username rules', () => {
    const tooLong = 'x'.repeat(256 - '@:test.local'.length); // user ID of 256 characters
    it.each([
      ['a space', 'al ice'],
      ['a leading underscore', '_alice'],
      ['only digits', '12345'],
      ['a colon', 'al:ice'],
      ['an @', '@alice'],
      ['non-ASCII', 'alicé'],
      ['a user ID over 255 characters', tooLong],
      ['a localpart over 255 characters', 'y'.repeat(300)],
      ['nothing', ''],
    ])('refuses %s with 400 M_INVALID_USERNAME', async (_why, username) => {
      await expectNoChange(hs, async () => {
        // Checked before UIA: a client learns it without completing a stage...
        const early = await register({ username, password: DEFAULT_PASSWORD });
        expectMatrixError(early, 400, 'M_INVALID_USERNAME');
        // ...and completing the stage does not get past it.
        const res = await register({ username, password: DEFAULT_PASSWORD, auth: { type: 'm.login.dummy' } });
        expectMatrixError(res, 400, 'M_INVALID_USERNAME');
        const available = await hs.request('GET', `${V3}/register/available?username=${encodeURIComponent(username)}`);
        expectMatrixError(available, 400, 'M_INVALID_USERNAME');
      });
    });

    it('refuses a taken username with 400 M_USER_IN_USE, before and after UIA', async () => {
      await hs.register('taken');
      await expectNoChange(hs, async () => {
        const early = await register({ username: 'taken', password: DEFAULT_PASSWORD });
        expectMatrixError(early, 400, 'M_USER_IN_USE');
        const res = await register({ username: 'taken', password: 'another password', auth: { type: 'm.login.dummy' } });
        expectMatrixError(res, 400, 'M_USER_IN_USE');
      });
      // The existing account is untouched: its password still works.
      const login = await hs.login('taken');
      expect(login.user_id).toBe('@taken:test.local');
    });

    it('treats a name as taken case-insensitively', async () => {
      // An account from before the lowercase rule (e.g. migrated from another server).
      await hs.db()('users').insert({
        user_id: '@LegacyBob:test.local',
        localpart: 'LegacyBob',
        password_hash: null,
        is_admin: false,
        is_guest: false,
        deactivated: false,
        created_ts: Date.now(),
      });
      await expectNoChange(hs, async () => {
        const res = await register({ username: 'legacybob', password: DEFAULT_PASSWORD, auth: { type: 'm.login.dummy' } });
        expectMatrixError(res, 400, 'M_USER_IN_USE');
        const available = await hs.request('GET', `${V3}/register/available?username=legacybob`);
        expectMatrixError(available, 400, 'M_USER_IN_USE');
      });
    });

    it("never gives a deactivated user's name out again", async () => {
      const reg = await hs.register('gone');
      const deactivate = await hs.request('POST', `${V3}/account/deactivate`, {
        token: reg.access_token,
        body: { auth: { type: 'm.login.password', identifier: { type: 'm.id.user', user: 'gone' }, password: DEFAULT_PASSWORD } },
      });
      expect(deactivate.status).toBe(200);
      await expectNoChange(hs, async () => {
        const res = await register({ username: 'gone', password: DEFAULT_PASSWORD, auth: { type: 'm.login.dummy' } });
        expectMatrixError(res, 400, 'M_USER_IN_USE');
        const available = await hs.request('GET', `${V3}/register/available?username=gone`);
        expectMatrixError(available, 400, 'M_USER_IN_USE');
      });
      const row = await hs.db()('users').where({ user_id: '@gone:test.local' }).first();
      expect(!!row.deactivated).toBe(true);
    });
  });

  describe('malformed requests', () => {
    it('refuses a missing password after UIA with 400 M_MISSING_PARAM', async () => {
      await expectNoChange(hs, async () => {
        const res = await register({ username: 'nopass', auth: { type: 'm.login.dummy' } });
        expectMatrixError(res, 400, 'M_MISSING_PARAM');
        const nulled = await register({ username: 'nopass', password: null, auth: { type: 'm.login.dummy' } });
        expectMatrixError(nulled, 400, 'M_MISSING_PARAM');
      });
    });

    it.each([
      ['username is a number', { username: 42, password: DEFAULT_PASSWORD }],
      ['username is an object', { username: { a: 1 }, password: DEFAULT_PASSWORD }],
      ['password is a number', { username: 'typed1', password: 12345678 }],
      ['password is an array', { username: 'typed2', password: ['x'] }],
      ['inhibit_login is a string', { username: 'typed3', password: DEFAULT_PASSWORD, inhibit_login: 'true' }],
      ['refresh_token is a string', { username: 'typed4', password: DEFAULT_PASSWORD, refresh_token: 'yes' }],
      ['device_id is a number', { username: 'typed5', password: DEFAULT_PASSWORD, device_id: 7 }],
      ['initial_device_display_name is a boolean', { username: 'typed6', password: DEFAULT_PASSWORD, initial_device_display_name: true }],
      ['auth is a string', { username: 'typed7', password: DEFAULT_PASSWORD, auth: 'm.login.dummy' }],
      ['auth is an array', { username: 'typed8', password: DEFAULT_PASSWORD, auth: [{ type: 'm.login.dummy' }] }],
      ['auth.type is a number', { username: 'typed9', password: DEFAULT_PASSWORD, auth: { type: 1 } }],
      ['auth.session is a number', { username: 'typed10', password: DEFAULT_PASSWORD, auth: { type: 'm.login.dummy', session: 1 } }],
      ['password is over 512 characters', { username: 'typed11', password: 'p'.repeat(513) }],
    ])('refuses a body where %s with 400 M_BAD_JSON', async (_why, body) => {
      await expectNoChange(hs, async () => {
        const res = await register({ auth: { type: 'm.login.dummy' }, ...body });
        expectMatrixError(res, 400, 'M_BAD_JSON');
      });
    });

    it('refuses a body that is not JSON or not an object', async () => {
      await expectNoChange(hs, async () => {
        const notJson = await hs.request('POST', `${V3}/register`, { rawBody: '{"username": "nj",', headers: { 'Content-Type': 'application/json' } });
        expectMatrixError(notJson, 400, 'M_NOT_JSON');
        const array = await hs.request('POST', `${V3}/register`, { rawBody: '[]', headers: { 'Content-Type': 'application/json' } });
        expectMatrixError(array, 400, 'M_BAD_JSON');
      });
    });

    it('refuses an unknown kind with 400 M_UNRECOGNIZED (as Synapse)', async () => {
      await expectNoChange(hs, async () => {
        const res = await register({ username: 'kindly', password: DEFAULT_PASSWORD, auth: { type: 'm.login.dummy' } }, V3, '?kind=admin');
        expectMatrixError(res, 400, 'M_UNRECOGNIZED');
      });
    });

    it('refuses guests with 403 M_GUEST_ACCESS_FORBIDDEN when guest access is off', async () => {
      await expectNoChange(hs, async () => {
        const res = await register({}, V3, '?kind=guest');
        expectMatrixError(res, 403, 'M_GUEST_ACCESS_FORBIDDEN');
      });
    });
  });

  describe('GET /register/available', () => {
    it.each([V3, R0])('says true for a free name (%s)', async (prefix) => {
      await expectNoChange(hs, async () => {
        const res = await hs.request('GET', `${prefix}/register/available?username=freename`);
        expect(res.status).toBe(200);
        expect(res.body).toEqual({ available: true });
      });
    });

    it('says M_USER_IN_USE for a taken name', async () => {
      await hs.register('availtaken');
      const res = await hs.request('GET', `${V3}/register/available?username=availtaken`);
      expectMatrixError(res, 400, 'M_USER_IN_USE');
    });

    it('says M_MISSING_PARAM without a username', async () => {
      const res = await hs.request('GET', `${V3}/register/available`);
      expectMatrixError(res, 400, 'M_MISSING_PARAM');
    });
  });
});

describe.each(backends())('registration with guests allowed (%s)', (backend) => {
  let hs: TestServer;
  beforeAll(async () => {
    hs = await startServer(backend, { allow_guest_access: true });
  });
  afterAll(async () => {
    await hs?.stop();
  });

  it('registers a guest with a token; whoami says is_guest', async () => {
    const before = await countRows(hs, 'users');
    const res = await hs.request('POST', `${V3}/register?kind=guest`, { body: {} });
    expect(res.status).toBe(200);
    expect(res.body.user_id).toMatch(/^@\d+:test\.local$/);
    expect(typeof res.body.access_token).toBe('string');
    expect(typeof res.body.device_id).toBe('string');
    expect(await countRows(hs, 'users')).toBe(before + 1);
    const row = await hs.db()('users').where({ user_id: res.body.user_id }).first();
    expect(!!row.is_guest).toBe(true);
    expect(row.password_hash).toBeNull();
    const who = await hs.request('GET', `${V3}/account/whoami`, { token: res.body.access_token });
    expect(who.status).toBe(200);
    expect(who.body).toEqual({ user_id: res.body.user_id, device_id: res.body.device_id, is_guest: true });
  });

  it('gives each guest its own account', async () => {
    const a = await hs.request('POST', `${V3}/register?kind=guest`, { body: {} });
    const b = await hs.request('POST', `${R0}/register?kind=guest`, { body: {} });
    expect(a.status).toBe(200);
    expect(b.status).toBe(200);
    expect(a.body.user_id).not.toBe(b.body.user_id);
  });

  it('refuses guests on /account/password with 403 M_GUEST_ACCESS_FORBIDDEN', async () => {
    const guest = await hs.request('POST', `${V3}/register?kind=guest`, { body: {} });
    const res = await hs.request('POST', `${V3}/account/password`, {
      token: guest.body.access_token,
      body: { new_password: 'a new password', auth: { type: 'm.login.dummy' } },
    });
    expectMatrixError(res, 403, 'M_GUEST_ACCESS_FORBIDDEN');
    const row = await hs.db()('users').where({ user_id: guest.body.user_id }).first();
    expect(row.password_hash).toBeNull();
  });

  it('still registers ordinary users', async () => {
    const reg = await hs.register('notaguest');
    const who = await hs.request('GET', `${V3}/account/whoami`, { token: reg.access_token });
    expect(who.body.is_guest).toBe(false);
  });
});

describe.each(backends())('registration disabled (%s)', (backend) => {
  let hs: TestServer;
  beforeAll(async () => {
    hs = await startServer(backend, { enable_registration: false });
  });
  afterAll(async () => {
    await hs?.stop();
  });

  it.each([
    ['an empty probe', {}],
    ['a complete dummy request', { username: 'closed', password: DEFAULT_PASSWORD, auth: { type: 'm.login.dummy' } }],
  ])('refuses %s with 403 M_FORBIDDEN', async (_why, body) => {
    await expectNoChange(hs, async () => {
      const res = await hs.request('POST', `${V3}/register`, { body });
      expectMatrixError(res, 403, 'M_FORBIDDEN');
    });
  });

  it('refuses /register/available with 403 M_FORBIDDEN', async () => {
    const res = await hs.request('GET', `${V3}/register/available?username=closed`);
    expectMatrixError(res, 403, 'M_FORBIDDEN');
  });

  it('leaves shared-secret registration working', async () => {
    const nonce = await hs.request('GET', '/_synapse/admin/v1/register');
    expect(nonce.status).toBe(200);
  });
});

describe.each(backends())('registration password policy (%s)', (backend) => {
  let hs: TestServer;
  beforeAll(async () => {
    hs = await startServer(backend, {
      password_config: {
        policy: { enabled: true, minimum_length: 10, require_digit: true, require_symbol: true, require_lowercase: true, require_uppercase: true },
      },
    });
  });
  afterAll(async () => {
    await hs?.stop();
  });

  it.each([
    ['too short', 'Ab1!efgh'],
    ['without a digit', 'Abcdefgh!jk'],
    ['without a symbol', 'Abcdefgh1jk'],
    ['without a lowercase letter', 'ABCDEFGH1!K'],
    ['without an uppercase letter', 'abcdefgh1!k'],
  ])('refuses a password %s with 400 M_WEAK_PASSWORD, creating nothing', async (_why, password) => {
    await expectNoChange(hs, async () => {
      // Before UIA (so the client learns early)...
      const early = await hs.request('POST', `${V3}/register`, { body: { username: 'weakling', password } });
      expectMatrixError(early, 400, 'M_WEAK_PASSWORD');
      // ...and with the stage completed.
      const res = await hs.request('POST', `${V3}/register`, { body: { username: 'weakling', password, auth: { type: 'm.login.dummy' } } });
      expectMatrixError(res, 400, 'M_WEAK_PASSWORD');
    });
  });

  it('accepts a password that meets every rule', async () => {
    const reg = await hs.register('strong', 'Abcdefgh1!k');
    expect(reg.user_id).toBe('@strong:test.local');
    const login = await hs.login('strong', 'Abcdefgh1!k');
    expect(login.user_id).toBe('@strong:test.local');
  });

  it('counts characters, not UTF-16 units, for minimum_length', async () => {
    // Nine characters, one of them outside the BMP (two UTF-16 units): too short.
    await expectNoChange(hs, async () => {
      const res = await hs.request('POST', `${V3}/register`, {
        body: { username: 'emoji', password: 'Abcdef1!\u{1F600}', auth: { type: 'm.login.dummy' } },
      });
      expectMatrixError(res, 400, 'M_WEAK_PASSWORD');
    });
  });
});
