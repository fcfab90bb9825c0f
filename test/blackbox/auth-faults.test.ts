// Faults in signing in and device handling, black-box: shared-secret
// registration (down-cased usernames, user_type), device shapes and limits
// (nulls, 100-character names, unaddressable device IDs), soft-logged-out
// tokens signing out, the UIA password stage naming someone else, what a
// deactivated account's login tells, and NUL in login names.

import { createHmac } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ACCOUNT_TABLES, countRows, expectMatrixError, expectNoChange } from '../support/assertions.js';
import { backends } from '../support/backends.js';
import { DEFAULT_PASSWORD, startServer, type TestServer } from '../support/server.js';

const V3 = '/_matrix/client/v3';
const ADMIN_REGISTER = '/_synapse/admin/v1/register';
const SECRET = 'test-shared-secret';
const OPEN = { per_second: 100000, burst_count: 100000 };
type Session = { user_id: string; access_token: string; device_id: string; refresh_token: string };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The mac register_new_matrix_user computes. */
function mac(nonce: string, username: string, password: string, admin: boolean, userType?: string): string {
  const parts = [nonce, username, password, admin ? 'admin' : 'notadmin'];
  if (userType !== undefined) parts.push(userType);
  return createHmac('sha1', SECRET).update(parts.join('\x00'), 'utf8').digest('hex');
}

const loginBody = (user: string, password = DEFAULT_PASSWORD, extra: Record<string, unknown> = {}) => ({
  type: 'm.login.password',
  identifier: { type: 'm.id.user', user },
  password,
  ...extra,
});

const passwordAuth = (user: string | undefined, password = DEFAULT_PASSWORD, extra: Record<string, unknown> = {}) => ({
  type: 'm.login.password',
  ...(user === undefined ? {} : { identifier: { type: 'm.id.user', user } }),
  password,
  ...extra,
});

describe.each(backends())('auth faults (%s)', (backend) => {
  let hs: TestServer;
  beforeAll(async () => {
    hs = await startServer(backend, { allow_guest_access: true });
  });
  afterAll(async () => {
    await hs?.stop();
  });

  const login = (body: unknown) => hs.request('POST', `${V3}/login`, { body });
  const devicePath = (id: string) => `${V3}/devices/${encodeURIComponent(id)}`;
  const deviceIds = async (userId: string) =>
    (await hs.db()('devices').where({ user_id: userId })).map((d: { device_id: string }) => d.device_id).sort();

  describe('shared-secret registration', () => {
    const TABLES = [...ACCOUNT_TABLES, 'registration_nonces'];
    const nonce = async (): Promise<string> => {
      const res = await hs.request('GET', ADMIN_REGISTER);
      expect(res.status).toBe(200);
      return res.body.nonce;
    };
    const post = (body: unknown) => hs.request('POST', ADMIN_REGISTER, { body });
    const nonceKept = async (n: string) => (await countRows(hs, 'registration_nonces', { nonce: n })) === 1;

    it('down-cases the username (as Synapse), with the MAC over the name as sent: register_new_matrix_user -u Carol', async () => {
      const n = await nonce();
      const res = await post({ nonce: n, username: 'Carol', password: DEFAULT_PASSWORD, admin: false, mac: mac(n, 'Carol', DEFAULT_PASSWORD, false) });
      expect(res.status).toBe(200);
      expect(res.body.user_id).toBe('@carol:test.local');
      const row = await hs.db()('users').where({ user_id: '@carol:test.local' }).first();
      expect(row.localpart).toBe('carol');
      // The display name defaults to the localpart, as Synapse.
      expect((await hs.db()('profiles').where({ user_id: '@carol:test.local' }).first()).displayname).toBe('carol');
      expect((await hs.request('GET', `${V3}/account/whoami`, { token: res.body.access_token })).body.user_id).toBe('@carol:test.local');
      expect((await hs.login('carol')).user_id).toBe('@carol:test.local');
    });

    it('refuses a MAC made over the down-cased name when another case was sent (403), spending the nonce', async () => {
      const n = await nonce();
      await expectNoChange(hs, async () => {
        const res = await post({ nonce: n, username: 'Dave', password: DEFAULT_PASSWORD, admin: false, mac: mac(n, 'dave', DEFAULT_PASSWORD, false) });
        expectMatrixError(res, 403, 'M_FORBIDDEN');
      });
      expect(await nonceKept(n)).toBe(false);
      expect(await countRows(hs, 'users', { localpart: 'dave' })).toBe(0);
    });

    it('refuses a name taken in another case with 400 M_USER_IN_USE', async () => {
      await hs.register('erin');
      const n = await nonce();
      await expectNoChange(hs, async () => {
        const res = await post({ nonce: n, username: 'ERIN', password: 'other password', admin: true, mac: mac(n, 'ERIN', 'other password', true) });
        expectMatrixError(res, 400, 'M_USER_IN_USE');
      });
      expect(!!(await hs.db()('users').where({ user_id: '@erin:test.local' }).first()).is_admin).toBe(false);
    });

    it.each([
      ['characters outside the grammar', 'Bad Name!'],
      ['a non-ASCII capital (not folded)', 'Élodie'],
      ['a user ID over 255 characters', 'L'.repeat(300)],
    ])('refuses a username with %s with 400 M_INVALID_USERNAME, after the MAC', async (_why, username) => {
      const n = await nonce();
      await expectNoChange(hs, async () => {
        const res = await post({ nonce: n, username, password: DEFAULT_PASSWORD, admin: false, mac: mac(n, username, DEFAULT_PASSWORD, false) });
        expectMatrixError(res, 400, 'M_INVALID_USERNAME');
      }, TABLES.filter((t) => t !== 'registration_nonces'));
      // As Synapse: the nonce is spent before the name is looked at.
      expect(await nonceKept(n)).toBe(false);
    });

    it('refuses a username over 512 characters with 400 M_BAD_JSON, keeping the nonce', async () => {
      const n = await nonce();
      const username = 'x'.repeat(513);
      await expectNoChange(hs, async () => {
        const res = await post({ nonce: n, username, password: DEFAULT_PASSWORD, admin: false, mac: mac(n, username, DEFAULT_PASSWORD, false) });
        expectMatrixError(res, 400, 'M_BAD_JSON');
      }, TABLES);
    });

    it.each(['support', 'bot'])('accepts user_type %s, with the MAC covering it', async (userType) => {
      const n = await nonce();
      const username = `typed_${userType}`;
      const res = await post({ nonce: n, username, password: DEFAULT_PASSWORD, admin: true, user_type: userType, mac: mac(n, username, DEFAULT_PASSWORD, true, userType) });
      expect(res.status).toBe(200);
      expect(res.body.user_id).toBe(`@${username}:test.local`);
      // Stored with the account, as the user admin API and the CLI store it.
      expect((await hs.db()('users').where({ user_id: res.body.user_id }).first()).user_type).toBe(userType);
    });

    it('treats user_type null as absent (the MAC leaves it out)', async () => {
      const n = await nonce();
      const res = await post({ nonce: n, username: 'typed_null', password: DEFAULT_PASSWORD, admin: false, user_type: null, mac: mac(n, 'typed_null', DEFAULT_PASSWORD, false) });
      expect(res.status).toBe(200);
      expect((await hs.db()('users').where({ user_id: res.body.user_id }).first()).user_type).toBeNull();
    });

    it('refuses a MAC that leaves out a known user_type with 403', async () => {
      const n = await nonce();
      await expectNoChange(hs, async () => {
        const res = await post({ nonce: n, username: 'typed_nomac', password: DEFAULT_PASSWORD, admin: false, user_type: 'bot', mac: mac(n, 'typed_nomac', DEFAULT_PASSWORD, false) });
        expectMatrixError(res, 403, 'M_FORBIDDEN');
      });
    });

    it.each([
      ['an unknown type, MAC covering it', 'admin', true],
      ['an unknown type, MAC without it', 'admin', false],
      ['an empty type', '', true],
      ['a type in another case', 'Bot', true],
      ['a very long type', 'b'.repeat(500), true],
    ])('refuses %s with 400 M_INVALID_PARAM (not a wrong MAC), keeping the nonce', async (_why, userType, covered) => {
      const n = await nonce();
      await expectNoChange(hs, async () => {
        const res = await post({
          nonce: n,
          username: 'typed_bad',
          password: DEFAULT_PASSWORD,
          admin: false,
          user_type: userType,
          mac: covered ? mac(n, 'typed_bad', DEFAULT_PASSWORD, false, userType) : mac(n, 'typed_bad', DEFAULT_PASSWORD, false),
        });
        expectMatrixError(res, 400, 'M_INVALID_PARAM');
      }, TABLES);
      expect(await nonceKept(n)).toBe(true);
    });

    it('refuses a user_type that is not a string with 400 M_BAD_JSON', async () => {
      const n = await nonce();
      await expectNoChange(hs, async () => {
        const res = await post({ nonce: n, username: 'typed_num', password: DEFAULT_PASSWORD, admin: false, user_type: 1, mac: mac(n, 'typed_num', DEFAULT_PASSWORD, false) });
        expectMatrixError(res, 400, 'M_BAD_JSON');
      }, TABLES);
    });
  });

  describe('device shapes', () => {
    it('lists and gets devices with every key present, null when unknown (as Synapse; matrix-nio needs them)', async () => {
      const reg = await hs.register('shape_user');
      const other = await hs.login('shape_user');
      // A device never seen from an address (as one made by shared-secret registration, or
      // from before last-seen was recorded).
      await hs.db()('devices').where({ user_id: reg.user_id, device_id: other.device_id }).update({ last_seen_ip: null, last_seen_ts: null });

      const list = await hs.request('GET', `${V3}/devices`, { token: reg.access_token });
      expect(list.status).toBe(200);
      const byId = new Map((list.body.devices as Record<string, unknown>[]).map((d) => [d.device_id, d]));
      expect(byId.get(other.device_id)).toEqual({ device_id: other.device_id, display_name: null, last_seen_ip: null, last_seen_ts: null });
      const mine = byId.get(reg.device_id)!;
      expect(Object.keys(mine).sort()).toEqual(['device_id', 'display_name', 'last_seen_ip', 'last_seen_ts']);
      expect(mine.display_name).toBeNull();
      expect(typeof mine.last_seen_ip).toBe('string');
      expect(typeof mine.last_seen_ts).toBe('number');

      const one = await hs.request('GET', devicePath(other.device_id), { token: reg.access_token });
      expect(one.status).toBe(200);
      expect(one.body).toEqual({ device_id: other.device_id, display_name: null, last_seen_ip: null, last_seen_ts: null });
    });
  });

  describe('device display names: at most 100 characters (Synapse’s limit)', () => {
    const EMOJI = '\u{1F600}'; // one code point, two UTF-16 units

    it('accepts 100 characters (counted as code points) at login, registration and PUT /devices', async () => {
      for (const name of ['n'.repeat(100), EMOJI.repeat(100)]) {
        const reg = await hs.register(`name100_${name.length}`, DEFAULT_PASSWORD, { initial_device_display_name: name });
        const lg = await hs.login(reg.user_id, DEFAULT_PASSWORD, { initial_device_display_name: name });
        const guest = await hs.request('POST', `${V3}/register?kind=guest`, { body: { initial_device_display_name: name } });
        expect(guest.status).toBe(200);
        for (const [userId, deviceId] of [[reg.user_id, reg.device_id], [lg.user_id, lg.device_id], [guest.body.user_id, guest.body.device_id]]) {
          expect((await hs.db()('devices').where({ user_id: userId, device_id: deviceId }).first()).display_name).toBe(name);
        }
        expect((await hs.request('PUT', devicePath(reg.device_id), { token: reg.access_token, body: { display_name: name } })).status).toBe(200);
      }
    });

    it.each([
      ['101 letters', 'n'.repeat(101)],
      ['101 emoji', EMOJI.repeat(101)],
      ['a huge name', 'h'.repeat(100_000)],
    ])('refuses %s with 400 M_TOO_LARGE at login, registration and PUT /devices, changing nothing', async (_why, name) => {
      const reg = await hs.register(`name101_${name.length}`, DEFAULT_PASSWORD, { initial_device_display_name: 'Keep', device_id: 'KEEPDEV' });
      await expectNoChange(hs, async () => {
        expectMatrixError(await login(loginBody(reg.user_id, DEFAULT_PASSWORD, { initial_device_display_name: name })), 400, 'M_TOO_LARGE');
        // Also for a known device (whose name would be kept): its token is not replaced either.
        expectMatrixError(await login(loginBody(reg.user_id, DEFAULT_PASSWORD, { initial_device_display_name: name, device_id: 'KEEPDEV' })), 400, 'M_TOO_LARGE');
        const register = await hs.request('POST', `${V3}/register`, {
          body: { username: `${reg.user_id.slice(1, reg.user_id.indexOf(':'))}_b`, password: DEFAULT_PASSWORD, initial_device_display_name: name, auth: { type: 'm.login.dummy' } },
        });
        expectMatrixError(register, 400, 'M_TOO_LARGE');
        const guest = await hs.request('POST', `${V3}/register?kind=guest`, { body: { initial_device_display_name: name } });
        expectMatrixError(guest, 400, 'M_TOO_LARGE');
        expectMatrixError(await hs.request('PUT', devicePath(reg.device_id), { token: reg.access_token, body: { display_name: name } }), 400, 'M_TOO_LARGE');
      }, [...ACCOUNT_TABLES, 'uia_sessions']);
      expect((await hs.db()('devices').where({ user_id: reg.user_id, device_id: 'KEEPDEV' }).first()).display_name).toBe('Keep');
      expect((await hs.request('GET', `${V3}/account/whoami`, { token: reg.access_token })).status).toBe(200);
    });

    it('checks the length before the device: an unknown device with a long name is 400, not 404', async () => {
      const reg = await hs.register('name_unknown');
      expectMatrixError(await hs.request('PUT', devicePath('NOSUCH'), { token: reg.access_token, body: { display_name: 'n'.repeat(101) } }), 400, 'M_TOO_LARGE');
    });
  });

  describe('client-chosen device IDs', () => {
    beforeAll(async () => {
      await hs.register('devid_user');
    });

    it.each([
      ['empty', ''],
      ['"."', '.'],
      ['".."', '..'],
      ['over 255 characters', 'D'.repeat(256)],
    ])('refuses a device_id that is %s with 400 M_INVALID_PARAM at login and registration, changing nothing', async (_why, deviceId) => {
      await expectNoChange(hs, async () => {
        expectMatrixError(await login(loginBody('devid_user', DEFAULT_PASSWORD, { device_id: deviceId })), 400, 'M_INVALID_PARAM');
        const register = await hs.request('POST', `${V3}/register`, {
          body: { username: 'devid_new', password: DEFAULT_PASSWORD, device_id: deviceId, auth: { type: 'm.login.dummy' } },
        });
        expectMatrixError(register, 400, 'M_INVALID_PARAM');
      }, [...ACCOUNT_TABLES, 'uia_sessions']);
    });

    it('accepts other odd device IDs, which can be addressed percent-encoded (here: listed, got, renamed and deleted)', async () => {
      const reg = await hs.register('devid_odd');
      for (const id of ['a/b', '...', ' ', '%2E', '?x=1#y', 'D'.repeat(255)]) {
        const s = await hs.login('devid_odd', DEFAULT_PASSWORD, { device_id: id });
        expect(s.device_id).toBe(id);
        const got = await hs.request('GET', devicePath(id), { token: reg.access_token });
        expect(got.status, id).toBe(200);
        expect(got.body.device_id).toBe(id);
        expect((await hs.request('PUT', devicePath(id), { token: reg.access_token, body: { display_name: 'odd' } })).status, id).toBe(200);
        const del = await hs.request('DELETE', devicePath(id), { token: reg.access_token, body: { auth: passwordAuth('devid_odd') } });
        expect(del.status, id).toBe(200);
        expect(await deviceIds(reg.user_id)).toEqual([reg.device_id]);
      }
    });
  });

  describe('UIA m.login.password naming someone else', () => {
    const deactivate = (token: string, auth: unknown) => hs.request('POST', `${V3}/account/deactivate`, { token, body: { auth } });

    it('is a plain 403 M_FORBIDDEN (no challenge) for another local user, a user on another server, or the legacy user field', async () => {
      const me = await hs.register('uia_me');
      await hs.register('uia_them');
      const first = await deactivate(me.access_token, undefined);
      expect(first.status).toBe(401);
      const session = first.body.session as string;
      const cases = [
        passwordAuth('uia_them'), // their correct password
        passwordAuth('uia_them', 'wrong password'),
        passwordAuth('@uia_them:test.local'),
        passwordAuth('@uia_me:other.server'),
        passwordAuth('@uia_me:test.local.'),
        passwordAuth('u'.repeat(300)),
        { type: 'm.login.password', user: 'uia_them', password: DEFAULT_PASSWORD },
        { type: 'm.login.password', user: '@uia_me:elsewhere', password: DEFAULT_PASSWORD },
      ];
      const bodies: unknown[] = [];
      for (const auth of cases) {
        for (const withSession of [true, false]) {
          await expectNoChange(hs, async () => {
            const res = await deactivate(me.access_token, withSession ? { ...auth, session } : auth);
            expectMatrixError(res, 403, 'M_FORBIDDEN');
            expect(res.body.flows, JSON.stringify(auth)).toBeUndefined();
            expect(res.body.session).toBeUndefined();
            bodies.push(res.body);
          });
        }
      }
      // One shape, one answer, whoever is named.
      expect(new Set(bodies.map((b) => JSON.stringify(b))).size).toBe(1);
      // The session gained nothing, and still works for the signed-in user.
      expect(JSON.parse((await hs.db()('uia_sessions').where({ session_id: session }).first()).completed)).toEqual([]);
      const ok = await deactivate(me.access_token, { ...passwordAuth('uia_me'), session });
      expect(ok.status).toBe(200);
      // The other user is untouched.
      expect((await hs.login('uia_them')).user_id).toBe('@uia_them:test.local');
    });

    it('matches the signed-in user without regard to case, as login does', async () => {
      const me = await hs.register('uia_case');
      const res = await deactivate(me.access_token, passwordAuth('UIA_Case'));
      expect(res.status).toBe(200);
    });

    it('refuses a NUL in the named user or the password with 400 M_BAD_JSON', async () => {
      const me = await hs.register('uia_nul');
      for (const auth of [passwordAuth('uia_\u0000nul'), passwordAuth('uia_nul', 'pass\u0000word'), passwordAuth(undefined, '\u0000')]) {
        await expectNoChange(hs, async () => {
          expectMatrixError(await deactivate(me.access_token, auth), 400, 'M_BAD_JSON');
        });
      }
      expect((await hs.request('GET', `${V3}/account/whoami`, { token: me.access_token })).status).toBe(200);
    });
  });

  describe('deactivated accounts at login', () => {
    it('answers as a wrong password, whatever the password: no M_USER_DEACTIVATED for anyone to probe', async () => {
      const reg = await hs.register('gone_user');
      const res = await hs.request('POST', `${V3}/account/deactivate`, { token: reg.access_token, body: { auth: passwordAuth('gone_user') } });
      expect(res.status).toBe(200);
      const nobody = await login(loginBody('never_existed', 'wrong password'));
      expectMatrixError(nobody, 403, 'M_FORBIDDEN');
      for (const password of [DEFAULT_PASSWORD, 'wrong password']) {
        await expectNoChange(hs, async () => {
          const again = await login(loginBody('gone_user', password));
          expect(again.status).toBe(403);
          expect(again.body).toEqual(nobody.body);
        });
      }
    });

    it('says M_USER_DEACTIVATED only after the password verifies (an account deactivated with its password kept)', async () => {
      const reg = await hs.register('kept_pw');
      // No endpoint deactivates an account and keeps its password yet: mark the row directly.
      await hs.db()('users').where({ user_id: reg.user_id }).update({ deactivated: true });
      await hs.db()('devices').where({ user_id: reg.user_id }).delete();
      await hs.db()('access_tokens').where({ user_id: reg.user_id }).delete();
      await expectNoChange(hs, async () => {
        const wrong = await login(loginBody('kept_pw', 'wrong password'));
        expectMatrixError(wrong, 403, 'M_FORBIDDEN');
        expect(wrong.body.error).toBe('Invalid username or password');
        expectMatrixError(await login(loginBody('kept_pw')), 403, 'M_USER_DEACTIVATED');
      });
      expect(await deviceIds(reg.user_id)).toEqual([]);
    });
  });

  describe('NUL in login names', () => {
    it('is 400 M_BAD_JSON in identifier.user, identifier.type or the legacy user field, as in any string', async () => {
      await hs.register('nul_login');
      for (const body of [
        loginBody('nul_\u0000login'),
        loginBody('@nul_login:test.local\u0000'),
        { type: 'm.login.password', user: 'nul_login\u0000', password: DEFAULT_PASSWORD },
        { type: 'm.login.password', identifier: { type: 'm.id.user\u0000', user: 'nul_login' }, password: DEFAULT_PASSWORD },
      ]) {
        await expectNoChange(hs, async () => {
          expectMatrixError(await login(body), 400, 'M_BAD_JSON');
        });
      }
      expect((await hs.login('nul_login')).user_id).toBe('@nul_login:test.local');
    });

    it('keeps 403 M_FORBIDDEN for a name no user can have (too long, another server)', async () => {
      for (const user of ['u'.repeat(256), '@nul_login:elsewhere']) {
        await expectNoChange(hs, async () => {
          const res = await login(loginBody(user));
          expectMatrixError(res, 403, 'M_FORBIDDEN');
          expect(res.body.error).toBe('Invalid username or password');
        });
      }
    });
  });
});

describe.each(backends())('auth faults: limits and expiry (%s)', (backend) => {
  describe('UIA naming someone else takes no failed attempt', () => {
    let hs: TestServer;
    beforeAll(async () => {
      hs = await startServer(backend, { rc_login: { address: OPEN, account: OPEN, failed_attempts: { per_second: 0.001, burst_count: 2 } } });
    });
    afterAll(async () => {
      await hs?.stop();
    });

    it('leaves the caller’s failed-attempt budget whole (no password is checked)', async () => {
      const me = await hs.register('budget_me');
      await hs.register('budget_them');
      for (let i = 0; i < 5; i++) {
        const res = await hs.request('POST', `${V3}/account/deactivate`, { token: me.access_token, body: { auth: passwordAuth('budget_them', `guess ${i}`) } });
        expectMatrixError(res, 403, 'M_FORBIDDEN');
      }
      // Nor the named user's: they can still sign in.
      expect((await hs.login('budget_them')).user_id).toBe('@budget_them:test.local');
      const ok = await hs.request('POST', `${V3}/account/deactivate`, { token: me.access_token, body: { auth: passwordAuth('budget_me') } });
      expect(ok.status).toBe(200);
    });
  });

  describe('signing out with an expired access token (soft logout)', () => {
    let hs: TestServer;
    beforeAll(async () => {
      hs = await startServer(backend, { nonrefreshable_access_token_lifetime: '1s', refreshable_access_token_lifetime: '1s', allow_guest_access: true });
    });
    afterAll(async () => {
      await hs?.stop();
    });

    const whoami = (token: string) => hs.request('GET', `${V3}/account/whoami`, { token });
    const tokensOf = async (table: string, userId: string) => countRows(hs, table, { user_id: userId });

    it('lets /logout and /logout/all use an expired token; other endpoints, unknown and revoked tokens still get 401', async () => {
      const a = await hs.register('soft_a');
      const a2 = (await hs.login('soft_a', DEFAULT_PASSWORD, { refresh_token: true })) as Session;
      const a3 = await hs.login('soft_a');
      const b = await hs.register('soft_b');
      const b2 = (await hs.login('soft_b', DEFAULT_PASSWORD, { refresh_token: true })) as Session;
      const guest = await hs.request('POST', `${V3}/register?kind=guest`, { body: {} });
      expect(guest.status).toBe(200);
      await sleep(1300);

      for (const t of [a.access_token, a2.access_token, b.access_token, guest.body.access_token]) {
        const expired = await whoami(t);
        expectMatrixError(expired, 401, 'M_UNKNOWN_TOKEN');
        expect(expired.body.soft_logout).toBe(true);
      }
      // Still refused elsewhere.
      expectMatrixError(await hs.request('GET', `${V3}/devices`, { token: a.access_token }), 401, 'M_UNKNOWN_TOKEN');

      // /logout with an expired refreshable token: that device, its access and refresh tokens go.
      const out = await hs.request('POST', `${V3}/logout`, { token: a2.access_token, body: {} });
      expect(out.status).toBe(200);
      expect(out.body).toEqual({});
      expect(await deviceIdsOf(hs, a.user_id)).toEqual([a.device_id, a3.device_id].sort());
      expect(await countRows(hs, 'access_tokens', { user_id: a.user_id, device_id: a2.device_id })).toBe(0);
      expect(await countRows(hs, 'refresh_tokens', { user_id: a.user_id, device_id: a2.device_id })).toBe(0);
      expectMatrixError(await hs.request('POST', `${V3}/refresh`, { body: { refresh_token: a2.refresh_token } }), 401, 'M_UNKNOWN_TOKEN');
      // The token is now unknown: a hard logout, and a second /logout is refused.
      const gone = await whoami(a2.access_token);
      expect(gone.body.soft_logout).toBe(false);
      expectMatrixError(await hs.request('POST', `${V3}/logout`, { token: a2.access_token, body: {} }), 401, 'M_UNKNOWN_TOKEN');

      // A guest may sign out when expired too.
      expect((await hs.request('POST', `${V3}/logout`, { token: guest.body.access_token })).status).toBe(200);
      expect(await countRows(hs, 'devices', { user_id: guest.body.user_id })).toBe(0);

      // /logout/all with an expired token: every device of that user goes, no one else's.
      const all = await hs.request('POST', `${V3}/logout/all`, { token: b.access_token, body: {} });
      expect(all.status).toBe(200);
      expect(await countRows(hs, 'devices', { user_id: b.user_id })).toBe(0);
      expect(await tokensOf('access_tokens', b.user_id)).toBe(0);
      expect(await tokensOf('refresh_tokens', b.user_id)).toBe(0);
      expectMatrixError(await hs.request('POST', `${V3}/refresh`, { body: { refresh_token: b2.refresh_token } }), 401, 'M_UNKNOWN_TOKEN');
      expect(await deviceIdsOf(hs, a.user_id)).toEqual([a.device_id, a3.device_id].sort());

      // Unknown tokens are not let through.
      for (const path of ['/logout', '/logout/all']) {
        const res = await hs.request('POST', V3 + path, { token: 'gha_not_a_token', body: {} });
        expectMatrixError(res, 401, 'M_UNKNOWN_TOKEN');
        expect(res.body.soft_logout).toBe(false);
      }
    });
  });
});

async function deviceIdsOf(hs: TestServer, userId: string): Promise<string[]> {
  return (await hs.db()('devices').where({ user_id: userId })).map((d: { device_id: string }) => d.device_id).sort();
}
