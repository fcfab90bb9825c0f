// Synapse's user admin API (/_synapse/admin/v{1,2}/users..., deactivate,
// reset_password, whois, username_available, server_version) and the spec's
// GET /admin/whois, black-box: the admin check before anything, Synapse's
// shapes (every key), each field of PUT on its own, every refusal changing
// nothing, the list's filters, order and pagination, and deactivation (with
// and without erase) ending every session.

import { createHmac } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectMatrixError } from '../support/assertions.js';
import { backends } from '../support/backends.js';
import { DEFAULT_PASSWORD, startServer, type TestServer } from '../support/server.js';

const V3 = '/_matrix/client/v3';
const V1 = '/_synapse/admin/v1';
const V2 = '/_synapse/admin/v2';
const NEW_PW = 'another horse battery staple';

/** Every key of Synapse's GET /_synapse/admin/v2/users/{userId}. */
const DETAIL_KEYS = [
  'admin', 'appservice_id', 'approved', 'avatar_url', 'consent_server_notice_sent', 'consent_ts', 'consent_version', 'creation_ts',
  'deactivated', 'displayname', 'erased', 'external_ids', 'is_guest', 'last_seen_ts', 'locked', 'name', 'shadow_banned', 'suspended',
  'threepids', 'user_type',
].sort();
/** Every key of an account in Synapse's GET /_synapse/admin/v2/users. */
const LIST_KEYS = [
  'admin', 'approved', 'avatar_url', 'creation_ts', 'deactivated', 'displayname', 'erased', 'is_guest', 'last_seen_ts', 'locked', 'name',
  'shadow_banned', 'suspended', 'user_type',
].sort();

/** An account made through shared-secret registration, returning its access token. */
async function sharedSecretAccount(hs: TestServer, username: string, isAdmin: boolean): Promise<string> {
  const nonce = (await hs.request('GET', `${V1}/register`)).body.nonce as string;
  const mac = createHmac('sha1', 'test-shared-secret').update([nonce, username, DEFAULT_PASSWORD, isAdmin ? 'admin' : 'notadmin'].join('\x00'), 'utf8').digest('hex');
  const res = await hs.request('POST', `${V1}/register`, { body: { nonce, username, password: DEFAULT_PASSWORD, admin: isAdmin, mac } });
  expect(res.status, res.text).toBe(200);
  return res.body.access_token;
}

/** The rows a user admin request could change, without the last-seen fields every authenticated request may touch. */
async function snapshot(hs: TestServer) {
  const db = hs.db();
  const rows = async (table: string, order: string[], omit: string[] = []) =>
    (await db(table).orderBy(order)).map((r: Record<string, unknown>) => Object.fromEntries(Object.entries(r).filter(([k]) => !omit.includes(k))));
  return {
    users: await rows('users', ['user_id']),
    profiles: await rows('profiles', ['user_id']),
    devices: await rows('devices', ['user_id', 'device_id'], ['last_seen_ts', 'last_seen_ip', 'last_seen_user_agent']),
    access_tokens: await rows('access_tokens', ['id'], ['used']),
    refresh_tokens: await rows('refresh_tokens', ['id']),
  };
}

/** Runs `act` (which must be refused) and checks that no user, profile, device or token changed. */
async function unchanged(hs: TestServer, act: () => Promise<void>): Promise<void> {
  const before = await snapshot(hs);
  await act();
  expect(await snapshot(hs)).toEqual(before);
}

describe.each(backends())('user admin API (%s)', (backend) => {
  let hs: TestServer;
  let admin: string;
  let adminDevice: string;
  let user: { user_id: string; access_token: string; device_id: string };

  beforeAll(async () => {
    hs = await startServer(backend, { allow_guest_access: true });
    admin = await sharedSecretAccount(hs, 'uadmin', true);
    adminDevice = (await hs.request('GET', `${V3}/account/whoami`, { token: admin })).body.device_id;
    user = await hs.register('plainuser');
  });
  afterAll(async () => {
    await hs?.stop();
  });

  const path = (id: string) => encodeURIComponent(id);
  const get = (id: string, token = admin) => hs.request('GET', `${V2}/users/${path(id)}`, { token });
  const put = (id: string, body: unknown, token = admin) => hs.request('PUT', `${V2}/users/${path(id)}`, { body, token });
  const list = (query = '', token = admin) => hs.request('GET', `${V2}/users${query}`, { token });
  const whoami = (token: string) => hs.request('GET', `${V3}/account/whoami`, { token });
  const login = (name: string, password = DEFAULT_PASSWORD) =>
    hs.request('POST', `${V3}/login`, { body: { type: 'm.login.password', identifier: { type: 'm.id.user', user: name }, password } });
  const userRow = (id: string) => hs.db()('users').where({ user_id: id }).first();
  const profileRow = (id: string) => hs.db()('profiles').where({ user_id: id }).first();
  const devicesOf = async (id: string) => (await hs.db()('devices').where({ user_id: id })).map((d: { device_id: string }) => d.device_id).sort();
  /** A registered user signed in on two devices. */
  const twoDevices = async (name: string) => {
    const a = await hs.register(name);
    const b = await hs.login(name);
    return { id: a.user_id, a: a.access_token, b: b.access_token, aDevice: a.device_id, bDevice: b.device_id };
  };

  describe('only server admins', () => {
    const routes = (id: string): [string, string, unknown][] => [
      ['GET', `${V2}/users`, undefined],
      ['GET', `${V2}/users/${path(id)}`, undefined],
      ['PUT', `${V2}/users/${path(id)}`, { admin: true, password: NEW_PW }],
      ['POST', `${V1}/deactivate/${path(id)}`, { erase: true }],
      ['POST', `${V1}/reset_password/${path(id)}`, { new_password: NEW_PW }],
      ['GET', `${V1}/whois/${path(id)}`, undefined],
      ['GET', `${V1}/users/${path(id)}/admin`, undefined],
      ['PUT', `${V1}/users/${path(id)}/admin`, { admin: true }],
      ['GET', `${V2}/users/${path(id)}/devices`, undefined],
      ['GET', `${V2}/users/${path(id)}/devices/SOMEDEVICE`, undefined],
      ['DELETE', `${V2}/users/${path(id)}/devices/SOMEDEVICE`, undefined],
      ['GET', `${V1}/users/${path(id)}/joined_rooms`, undefined],
      ['GET', `${V1}/username_available?username=${path(id)}`, undefined],
    ];
    const targets = () => [user.user_id, '@nobody:test.local', '@someone:elsewhere.org', 'not a user id'];

    it('without an access token: 401 M_MISSING_TOKEN everywhere; with an unknown one 401 M_UNKNOWN_TOKEN', async () => {
      await unchanged(hs, async () => {
        for (const id of targets()) {
          for (const [method, p, body] of routes(id)) {
            const res = await hs.request(method, p, { body });
            expect({ route: `${method} ${p}`, status: res.status, errcode: res.body?.errcode }).toEqual({ route: `${method} ${p}`, status: 401, errcode: 'M_MISSING_TOKEN' });
            expectMatrixError(await hs.request(method, p, { body, token: 'gha_unknown' }), 401, 'M_UNKNOWN_TOKEN');
          }
        }
      });
    });

    it('a user who is not an admin: 403 M_FORBIDDEN before any lookup (never a 400 or 404), nothing changed', async () => {
      await unchanged(hs, async () => {
        for (const id of targets()) {
          for (const [method, p, body] of routes(id)) {
            const res = await hs.request(method, p, { body, token: user.access_token });
            expect({ route: `${method} ${p}`, status: res.status, errcode: res.body?.errcode }).toEqual({ route: `${method} ${p}`, status: 403, errcode: 'M_FORBIDDEN' });
          }
        }
        // Not even a body the route would refuse gets further.
        expectMatrixError(await put(user.user_id, { admin: 'yes' }, user.access_token), 403, 'M_FORBIDDEN');
      });
      expect((await get(user.user_id)).body.admin).toBe(false);
    });

    it('a guest: 403 M_GUEST_ACCESS_FORBIDDEN', async () => {
      const guest = await hs.request('POST', `${V3}/register?kind=guest`, { body: {} });
      expect(guest.status).toBe(200);
      expectMatrixError(await list('', guest.body.access_token), 403, 'M_GUEST_ACCESS_FORBIDDEN');
      expectMatrixError(await get(guest.body.user_id, guest.body.access_token), 403, 'M_GUEST_ACCESS_FORBIDDEN');
    });

    it('GET /server_version needs no token (as Synapse) and names Gatehouse', async () => {
      const res = await hs.request('GET', `${V1}/server_version`);
      expect(res.status).toBe(200);
      expect(Object.keys(res.body)).toEqual(['server_version']);
      expect(res.body.server_version).toMatch(/^Gatehouse \d+\.\d+\.\d+/);
    });
  });

  describe('GET /_synapse/admin/v2/users/{userId}', () => {
    it("sends every key Synapse sends: Gatehouse's facts, and Synapse's empty values for what it does not have", async () => {
      const before = Math.floor(Date.now() / 1000);
      const u = await hs.register('details_a');
      await whoami(u.access_token);
      const res = await get(u.user_id);
      expect(res.status).toBe(200);
      expect(Object.keys(res.body).sort()).toEqual(DETAIL_KEYS);
      expect(res.body).toMatchObject({
        name: '@details_a:test.local',
        displayname: 'details_a',
        avatar_url: null,
        threepids: [],
        external_ids: [],
        is_guest: false,
        admin: false,
        deactivated: false,
        erased: false,
        shadow_banned: false,
        locked: false,
        suspended: false,
        approved: true,
        user_type: null,
        appservice_id: null,
        consent_server_notice_sent: null,
        consent_version: null,
        consent_ts: null,
      });
      // As Synapse: seconds here (the list says milliseconds).
      expect(res.body.creation_ts).toBeGreaterThanOrEqual(before - 1);
      expect(res.body.creation_ts).toBeLessThanOrEqual(Math.ceil(Date.now() / 1000));
      const seen = (await hs.db()('devices').where({ user_id: u.user_id }).max({ t: 'last_seen_ts' }).first())?.t;
      expect(res.body.last_seen_ts).toBe(Number(seen));
      // Unquoted '@' and ':' in the path, as synadm sends them.
      const raw = await hs.request('GET', `${V2}/users/@details_a:test.local`, { token: admin });
      expect(raw.body).toEqual(res.body);
    });

    it('shows a lock or suspension only while it holds (one past its end time has lifted)', async () => {
      const u = await hs.register('details_state');
      await hs.db()('users').where({ user_id: u.user_id }).update({ locked: true, lock_reason: 'spam', locked_until: Date.now() + 3_600_000, suspended: true });
      expect((await get(u.user_id)).body).toMatchObject({ locked: true, suspended: true });
      await hs.db()('users').where({ user_id: u.user_id }).update({ locked_until: Date.now() - 1000, suspended_until: Date.now() - 1000 });
      expect((await get(u.user_id)).body).toMatchObject({ locked: false, suspended: false });
    });

    it('404 M_NOT_FOUND for an unknown local user; 400 M_INVALID_PARAM for another server or what is no user ID', async () => {
      expectMatrixError(await get('@nobody:test.local'), 404, 'M_NOT_FOUND');
      expectMatrixError(await get('@plainuser:elsewhere.org'), 400, 'M_INVALID_PARAM');
      for (const bad of ['plainuser', '@plainuser', '@:test.local', `@${'a'.repeat(260)}:test.local`]) expectMatrixError(await get(bad), 400, 'M_INVALID_PARAM');
      expectMatrixError(await hs.request('GET', `${V2}/users/%40a%00b%3Atest.local`, { token: admin }), 400, 'M_INVALID_PARAM');
    });
  });

  describe('PUT /_synapse/admin/v2/users/{userId}: creating', () => {
    it('201 with the account: a password to sign in with, the display name defaulting to the localpart', async () => {
      const res = await put('@made_a:test.local', { password: NEW_PW });
      expect(res.status).toBe(201);
      expect(Object.keys(res.body).sort()).toEqual(DETAIL_KEYS);
      expect(res.body).toMatchObject({ name: '@made_a:test.local', displayname: 'made_a', admin: false, deactivated: false, approved: true, user_type: null });
      expect((await login('made_a', NEW_PW)).status).toBe(200);
      // Again: 200, a change.
      const again = await put('@made_a:test.local', {});
      expect(again.status).toBe(200);
      expect(again.body).toEqual({ ...res.body, last_seen_ts: again.body.last_seen_ts });
    });

    it('with every field: admin, display name, avatar, user type, locked, unapproved; without a password none is set', async () => {
      const res = await put('@made_b:test.local', { admin: true, displayname: 'Made B', avatar_url: 'mxc://test.local/abc', user_type: 'bot', locked: true, approved: false, threepids: [], external_ids: [] });
      expect(res.status).toBe(201);
      expect(res.body).toMatchObject({ admin: true, displayname: 'Made B', avatar_url: 'mxc://test.local/abc', user_type: 'bot', locked: true, approved: false });
      const row = await userRow('@made_b:test.local');
      expect(row.password_hash).toBeNull();
      expect(!!row.locked).toBe(true);
      expect(!!row.approved).toBe(false);
    });

    it('deactivated: true makes an account that only reserves the name', async () => {
      const res = await put('@made_reserved:test.local', { deactivated: true, password: NEW_PW });
      expect(res.status).toBe(201);
      expect(res.body.deactivated).toBe(true);
      expect((await userRow('@made_reserved:test.local')).password_hash).toBeNull();
      expectMatrixError(await hs.request('POST', `${V3}/register`, { body: { username: 'made_reserved', password: NEW_PW, auth: { type: 'm.login.dummy' } } }), 400, 'M_USER_IN_USE');
    });

    it('refuses names /register refuses, names taken in another case, and other servers; nothing is created', async () => {
      await hs.db()('users').insert({ user_id: '@LegacyCaps:test.local', localpart: 'LegacyCaps', password_hash: null, is_admin: false, is_guest: false, deactivated: false, created_ts: Date.now() });
      await unchanged(hs, async () => {
        for (const [id, status, errcode] of [
          ['@Upper:test.local', 400, 'M_INVALID_USERNAME'],
          ['@_under:test.local', 400, 'M_INVALID_USERNAME'],
          ['@12345:test.local', 400, 'M_INVALID_USERNAME'],
          ['@sp ace:test.local', 400, 'M_INVALID_USERNAME'],
          ['@legacycaps:test.local', 400, 'M_USER_IN_USE'],
          ['@made_x:elsewhere.org', 400, 'M_INVALID_PARAM'],
          ['made_x', 400, 'M_INVALID_PARAM'],
        ] as [string, number, string][]) {
          const res = await put(id, { password: NEW_PW });
          expect({ id, status: res.status, errcode: res.body.errcode }).toEqual({ id, status, errcode });
        }
      });
    });
  });

  describe('PUT /_synapse/admin/v2/users/{userId}: changing', () => {
    it('display name and avatar: set, "" and null remove', async () => {
      const id = (await hs.register('chg_profile')).user_id;
      let res = await put(id, { displayname: 'Zoë 🐈', avatar_url: 'mxc://test.local/cat' });
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ displayname: 'Zoë 🐈', avatar_url: 'mxc://test.local/cat' });
      expect(await profileRow(id)).toMatchObject({ displayname: 'Zoë 🐈', avatar_url: 'mxc://test.local/cat' });
      res = await put(id, { displayname: '' });
      expect(res.body).toMatchObject({ displayname: null, avatar_url: 'mxc://test.local/cat' });
      res = await put(id, { avatar_url: null });
      expect(res.body).toMatchObject({ displayname: null, avatar_url: null });
    });

    it('password: the new one signs in; every session ends (logout_devices defaults to true)', async () => {
      const u = await twoDevices('chg_pw');
      const res = await put(u.id, { password: NEW_PW });
      expect(res.status).toBe(200);
      expect((await whoami(u.a)).status).toBe(401);
      expect((await whoami(u.b)).status).toBe(401);
      expect(await devicesOf(u.id)).toEqual([]);
      expect((await login('chg_pw', DEFAULT_PASSWORD)).status).toBe(403);
      expect((await login('chg_pw', NEW_PW)).status).toBe(200);
    });

    it('password with logout_devices: false keeps the sessions', async () => {
      const u = await twoDevices('chg_pw_keep');
      expect((await put(u.id, { password: NEW_PW, logout_devices: false })).status).toBe(200);
      expect((await whoami(u.a)).status).toBe(200);
      expect((await whoami(u.b)).status).toBe(200);
      expect((await login('chg_pw_keep', NEW_PW)).status).toBe(200);
    });

    it('admin: grants and takes away the admin API; an admin cannot demote themselves', async () => {
      const u = await hs.register('chg_admin');
      expect((await put(u.user_id, { admin: true })).body.admin).toBe(true);
      expect((await list('?limit=1', u.access_token)).status).toBe(200);
      expect((await put(u.user_id, { admin: false })).body.admin).toBe(false);
      expectMatrixError(await list('?limit=1', u.access_token), 403, 'M_FORBIDDEN');

      await unchanged(hs, async () => {
        const self = await put('@uadmin:test.local', { admin: false, displayname: 'Not Me' });
        expectMatrixError(self, 400, 'M_INVALID_PARAM');
        expect(self.body.error).toBe('You may not demote yourself.');
      });
      // Keeping oneself an admin is fine.
      expect((await put('@uadmin:test.local', { admin: true })).status).toBe(200);
    });

    it('user_type: bot, support, null; anything else 400 M_INVALID_PARAM', async () => {
      const id = (await hs.register('chg_type')).user_id;
      expect((await put(id, { user_type: 'bot' })).body.user_type).toBe('bot');
      expect((await put(id, { user_type: 'support' })).body.user_type).toBe('support');
      expect((await put(id, { displayname: 'kept type' })).body.user_type).toBe('support');
      expect((await put(id, { user_type: null })).body.user_type).toBeNull();
      await unchanged(hs, async () => expectMatrixError(await put(id, { user_type: 'robot' }), 400, 'M_INVALID_PARAM'));
    });

    it('locked: through the account state (a lock set elsewhere keeps its reason); unlocking', async () => {
      const u = await hs.register('chg_lock');
      expect((await put(u.user_id, { locked: true })).body.locked).toBe(true);
      await hs.db()('users').where({ user_id: u.user_id }).update({ lock_reason: 'spam' });
      expect((await put(u.user_id, { locked: true })).body.locked).toBe(true);
      expect((await userRow(u.user_id)).lock_reason).toBe('spam');
      const unlocked = await put(u.user_id, { locked: false });
      expect(unlocked.body.locked).toBe(false);
      expect(!!(await userRow(u.user_id)).locked).toBe(false);
    });

    it('approved: false makes the account wait (its requests refused), true lets it in again', async () => {
      const u = await hs.register('chg_approve');
      expect((await put(u.user_id, { approved: false })).body.approved).toBe(false);
      expectMatrixError(await whoami(u.access_token), 403, 'M_USER_AWAITING_APPROVAL');
      expect((await put(u.user_id, { approved: true })).body.approved).toBe(true);
      expect((await whoami(u.access_token)).status).toBe(200);
    });

    it('deactivated: true deactivates (sessions end, password gone, profile kept); false reactivates, with a password to sign in', async () => {
      const u = await twoDevices('chg_deact');
      const res = await put(u.id, { deactivated: true });
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ deactivated: true, erased: false, displayname: 'chg_deact' });
      for (const t of [u.a, u.b]) expectMatrixError(await whoami(t), 401, 'M_UNKNOWN_TOKEN');
      expect(await devicesOf(u.id)).toEqual([]);
      expect((await userRow(u.id)).password_hash).toBeNull();
      expectMatrixError(await login('chg_deact'), 403, 'M_FORBIDDEN');

      const back = await put(u.id, { deactivated: false, password: NEW_PW });
      expect(back.status).toBe(200);
      expect(back.body).toMatchObject({ deactivated: false, erased: false });
      expect((await login('chg_deact', NEW_PW)).status).toBe(200);
    });

    it('threepids and external_ids: [] is accepted; external IDs are 400, never ignored; a bad address is 400 (admin-threepids.test.ts has the rest)', async () => {
      const id = (await hs.register('chg_3pid')).user_id;
      expect((await put(id, { threepids: [], external_ids: [] })).status).toBe(200);
      await unchanged(hs, async () => {
        const t = await put(id, { displayname: 'x', threepids: [{ medium: 'email', address: 'not an address' }] });
        expectMatrixError(t, 400, 'M_INVALID_PARAM');
        expectMatrixError(await put(id, { external_ids: [{ auth_provider: 'oidc-x', external_id: '1' }] }), 400, 'M_INVALID_PARAM');
      });
    });

    it('refuses values of the wrong type, out of bounds or contradictory, each changing nothing', async () => {
      const id = (await hs.register('chg_bad')).user_id;
      const cases: [unknown, number, string][] = [
        [[], 400, 'M_BAD_JSON'],
        ['x', 400, 'M_BAD_JSON'],
        [{ admin: 'yes' }, 400, 'M_BAD_JSON'],
        [{ deactivated: 1 }, 400, 'M_BAD_JSON'],
        [{ locked: 'true' }, 400, 'M_BAD_JSON'],
        [{ approved: 0 }, 400, 'M_BAD_JSON'],
        [{ logout_devices: 'no', password: NEW_PW }, 400, 'M_BAD_JSON'],
        [{ password: 12345678 }, 400, 'M_BAD_JSON'],
        [{ password: 'a'.repeat(513) }, 400, 'M_BAD_JSON'],
        [{ password: 'nul\u0000inside' }, 400, 'M_BAD_JSON'],
        [{ password: '' }, 400, 'M_INVALID_PARAM'],
        [{ displayname: 5 }, 400, 'M_BAD_JSON'],
        [{ displayname: 'd'.repeat(257) }, 400, 'M_INVALID_PARAM'],
        [{ avatar_url: 'https://example.org/cat.png' }, 400, 'M_INVALID_PARAM'],
        [{ avatar_url: `mxc://test.local/${'a'.repeat(1000)}` }, 400, 'M_INVALID_PARAM'],
        [{ avatar_url: ['mxc://test.local/a'] }, 400, 'M_BAD_JSON'],
        [{ user_type: 5 }, 400, 'M_BAD_JSON'],
        [{ threepids: 'email' }, 400, 'M_BAD_JSON'],
        [{ threepids: [{ medium: 'email' }] }, 400, 'M_MISSING_PARAM'],
        [{ threepids: ['a@example.org'] }, 400, 'M_BAD_JSON'],
        [{ external_ids: [{ auth_provider: 'x' }] }, 400, 'M_MISSING_PARAM'],
        [{ deactivated: true, locked: true }, 400, 'M_INVALID_PARAM'],
        // A bad field spoils the good ones beside it.
        [{ displayname: 'fine', admin: true, user_type: 'robot' }, 400, 'M_INVALID_PARAM'],
      ];
      await unchanged(hs, async () => {
        for (const [body, status, errcode] of cases) {
          const res = await put(id, body);
          expect({ body, status: res.status, errcode: res.body?.errcode }).toEqual({ body, status, errcode });
        }
      });
      // The user has kept the password and display name they had.
      expect((await login('chg_bad')).status).toBe(200);
      expect((await get(id)).body).toMatchObject({ displayname: 'chg_bad', admin: false, deactivated: false, locked: false });
    });
  });

  describe('GET /_synapse/admin/v2/users', () => {
    // Accounts of their own (lst_ in the ID), so that other tests' accounts do not count.
    const only = 'user_id=lst_';
    const names = (res: { body: { users: { name: string }[] } }) => res.body.users.map((u) => u.name);
    beforeAll(async () => {
      for (const [name, body] of [
        ['lst_alice', { displayname: 'Alice Aardvark' }],
        ['lst_bob', { displayname: 'Bobby Tables', admin: true }],
        ['lst_carol', { displayname: 'carol', user_type: 'bot' }],
        ['lst_dave', { displayname: 'Dave', locked: true }],
        ['lst_erin', { displayname: 'Erin', deactivated: true }],
        ['lst_frank', { displayname: null, approved: false, user_type: 'support' }],
        ['lstxgrace', { displayname: 'Grace' }],
      ] as [string, Record<string, unknown>][]) {
        const res = await put(`@${name}:test.local`, body);
        expect(res.status, res.text).toBe(201);
        // Distinct creation times, for the order by creation_ts.
        await new Promise((r) => setTimeout(r, 5));
      }
      await hs.db()('users').where({ user_id: '@lst_carol:test.local' }).update({ is_guest: true });
    });

    it("by default, as Synapse: guests in, deactivated and locked accounts out; every list key; creation_ts in milliseconds", async () => {
      const res = await list(`?${only}`);
      expect(res.status).toBe(200);
      expect(names(res)).toEqual(['@lst_alice:test.local', '@lst_bob:test.local', '@lst_carol:test.local', '@lst_frank:test.local']);
      expect(res.body.total).toBe(4);
      expect(res.body.next_token).toBeUndefined();
      for (const u of res.body.users) expect(Object.keys(u).sort()).toEqual(LIST_KEYS);
      const alice = res.body.users[0];
      expect(alice).toMatchObject({ displayname: 'Alice Aardvark', admin: false, is_guest: false, deactivated: false, erased: false, shadow_banned: false, locked: false, suspended: false, approved: true, user_type: null, last_seen_ts: null });
      expect(alice.creation_ts).toBe(Number((await userRow('@lst_alice:test.local')).created_ts));
      expect(alice.creation_ts).toBeGreaterThan(1e12);
    });

    it('filters: deactivated, locked, guests, admins, approved, not_user_type', async () => {
      expect(names(await list(`?${only}&deactivated=true&locked=true`))).toHaveLength(6);
      expect(names(await list(`?${only}&deactivated=true`))).toContain('@lst_erin:test.local');
      expect(names(await list(`?${only}&locked=true`))).toContain('@lst_dave:test.local');
      expect(names(await list(`?${only}&guests=false`))).not.toContain('@lst_carol:test.local');
      expect(names(await list(`?${only}&admins=true`))).toEqual(['@lst_bob:test.local']);
      expect(names(await list(`?${only}&admins=false`))).not.toContain('@lst_bob:test.local');
      expect(names(await list(`?${only}&approved=false`))).toEqual(['@lst_frank:test.local']);
      expect(names(await list(`?${only}&not_user_type=bot`))).toEqual(['@lst_alice:test.local', '@lst_bob:test.local', '@lst_frank:test.local']);
      expect(names(await list(`?${only}&not_user_type=bot&not_user_type=support`))).toEqual(['@lst_alice:test.local', '@lst_bob:test.local']);
      // "" leaves out accounts without a type.
      expect(names(await list(`?${only}&not_user_type=`))).toEqual(['@lst_carol:test.local', '@lst_frank:test.local']);
    });

    it('name: part of the localpart or the display name, either case; user_id: part of the ID; wildcards are literal', async () => {
      expect(names(await list('?name=AARDV'))).toEqual(['@lst_alice:test.local']);
      expect(names(await list('?name=lst_bo'))).toEqual(['@lst_bob:test.local']);
      expect(names(await list('?name=tables'))).toEqual(['@lst_bob:test.local']);
      // `_` is not "any character": lstxgrace does not match lst_.
      expect(names(await list('?user_id=lst_&deactivated=true&locked=true'))).not.toContain('@lstxgrace:test.local');
      expect(names(await list('?user_id=lst%25'))).toEqual([]);
      expect(names(await list('?user_id=lstxgrace:test'))).toEqual(['@lstxgrace:test.local']);
      // name wins over user_id (as Synapse).
      expect(names(await list('?name=grace&user_id=lst_alice'))).toEqual(['@lstxgrace:test.local']);
    });

    it('order_by and dir, ties by user ID', async () => {
      const all = `?${only}&deactivated=true&locked=true`;
      expect(names(await list(`${all}&dir=b`))).toEqual(names(await list(all)).reverse());
      expect(names(await list(`${all}&order_by=creation_ts&dir=b`))).toEqual(
        ['lst_frank', 'lst_erin', 'lst_dave', 'lst_carol', 'lst_bob', 'lst_alice'].map((n) => `@${n}:test.local`),
      );
      // NULL display names last going forwards.
      const byName = names(await list(`${all}&order_by=displayname`));
      expect(byName.at(-1)).toBe('@lst_frank:test.local');
      expect(byName.slice(0, 2)).toEqual(['@lst_alice:test.local', '@lst_bob:test.local']);
      const admins = names(await list(`${all}&order_by=admin&dir=b`));
      expect(admins[0]).toBe('@lst_bob:test.local');
      expect(admins.slice(1)).toEqual(['@lst_alice:test.local', '@lst_carol:test.local', '@lst_dave:test.local', '@lst_erin:test.local', '@lst_frank:test.local']);
      for (const order of ['name', 'displayname', 'is_guest', 'admin', 'deactivated', 'user_type', 'avatar_url', 'shadow_banned', 'creation_ts', 'last_seen_ts', 'locked']) {
        const res = await list(`${all}&order_by=${order}`);
        expect({ order, status: res.status, n: res.body.users?.length }).toEqual({ order, status: 200, n: 6 });
      }
    });

    it('pages with from, limit and next_token; total counts every page', async () => {
      const all = `${only}&deactivated=true&locked=true`;
      const seen: string[] = [];
      let from: string | undefined = '0';
      let pages = 0;
      while (from !== undefined) {
        const res = await list(`?${all}&limit=4&from=${from}`);
        expect(res.status).toBe(200);
        expect(res.body.total).toBe(6);
        seen.push(...names(res));
        from = res.body.next_token;
        if (from !== undefined) expect(typeof from).toBe('string');
        pages++;
      }
      expect(pages).toBe(2);
      expect(seen).toEqual(names(await list(`?${all}`)));
      // limit=0: only the total.
      expect((await list(`?${all}&limit=0`)).body).toEqual({ users: [], total: 6 });
      // Past the end: an empty page.
      expect((await list(`?${all}&from=50`)).body).toEqual({ users: [], total: 6 });
    });

    it('refuses bad parameters with 400 M_INVALID_PARAM', async () => {
      for (const q of ['from=-1', 'limit=-5', 'limit=ten', 'from=1e3', 'limit=1&limit=2', 'guests=yes', 'deactivated=1', 'locked=TRUE', 'admins=', 'approved=no', 'order_by=password_hash', 'dir=up', 'name=a&name=b']) {
        const res = await list(`?${q}`);
        expect({ q, status: res.status, errcode: res.body.errcode }).toEqual({ q, status: 400, errcode: 'M_INVALID_PARAM' });
      }
    });
  });

  describe('POST /_synapse/admin/v1/deactivate/{userId}', () => {
    it('ends every session, removes the password, keeps the profile and the name; answers as Synapse', async () => {
      const u = await twoDevices('deact_a');
      const res = await hs.request('POST', `${V1}/deactivate/${path(u.id)}`, { token: admin, body: {} });
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ id_server_unbind_result: 'success' });
      for (const t of [u.a, u.b]) expectMatrixError(await whoami(t), 401, 'M_UNKNOWN_TOKEN');
      expect(await devicesOf(u.id)).toEqual([]);
      expect(await hs.db()('access_tokens').where({ user_id: u.id })).toEqual([]);
      expect((await userRow(u.id)).password_hash).toBeNull();
      expect((await get(u.id)).body).toMatchObject({ deactivated: true, erased: false, displayname: 'deact_a' });
      expectMatrixError(await login('deact_a'), 403, 'M_FORBIDDEN');
      expectMatrixError(await hs.request('GET', `${V3}/register/available?username=deact_a`), 400, 'M_USER_IN_USE');
      expectMatrixError(await put(u.id.replace('deact_a', 'DEACT_A'), {}), 400, 'M_INVALID_USERNAME');
    });

    it('with erase: the profile is cleared and the account marked erased; an empty body is fine', async () => {
      const u = await hs.register('deact_erase');
      await put(u.user_id, { avatar_url: 'mxc://test.local/me' });
      const res = await hs.request('POST', `${V1}/deactivate/${path(u.user_id)}`, { token: admin, body: { erase: true } });
      expect(res.status).toBe(200);
      expect((await get(u.user_id)).body).toMatchObject({ deactivated: true, erased: true, displayname: null, avatar_url: null });
      expect(await profileRow(u.user_id)).toMatchObject({ displayname: null, avatar_url: null });
      // Reactivating clears the mark.
      expect((await put(u.user_id, { deactivated: false })).body).toMatchObject({ deactivated: false, erased: false });

      const v = await hs.register('deact_empty');
      expect((await hs.request('POST', `${V1}/deactivate/${path(v.user_id)}`, { token: admin, rawBody: '' })).status).toBe(200);
      expect((await get(v.user_id)).body.deactivated).toBe(true);
    });

    it('the user deactivating themselves shares it: erase clears, no erase keeps the profile', async () => {
      for (const [name, erase] of [['self_erase', true], ['self_keep', false]] as [string, boolean][]) {
        const u = await hs.register(name);
        const auth = { type: 'm.login.password', identifier: { type: 'm.id.user', user: name }, password: DEFAULT_PASSWORD };
        expect((await hs.request('POST', `${V3}/account/deactivate`, { token: u.access_token, body: { erase, auth } })).status).toBe(200);
        expect((await get(u.user_id)).body).toMatchObject({ deactivated: true, erased: erase, displayname: erase ? null : name });
      }
    });

    it('refuses a wrong erase, an unknown user, another server; nothing changes', async () => {
      const u = await hs.register('deact_bad');
      await unchanged(hs, async () => {
        for (const [id, body, status, errcode] of [
          [u.user_id, { erase: 'yes' }, 400, 'M_BAD_JSON'],
          [u.user_id, [], 400, 'M_BAD_JSON'],
          ['@nobody:test.local', {}, 404, 'M_NOT_FOUND'],
          ['@deact_bad:elsewhere.org', {}, 400, 'M_INVALID_PARAM'],
          ['deact_bad', {}, 400, 'M_INVALID_PARAM'],
        ] as [string, unknown, number, string][]) {
          const res = await hs.request('POST', `${V1}/deactivate/${path(id)}`, { token: admin, body });
          expect({ id, status: res.status, errcode: res.body.errcode }).toEqual({ id, status, errcode });
        }
      });
      expect((await whoami(u.access_token)).status).toBe(200);
    });
  });

  describe('POST /_synapse/admin/v1/reset_password/{userId}', () => {
    const reset = (id: string, body: unknown, token = admin) => hs.request('POST', `${V1}/reset_password/${path(id)}`, { token, body });

    it('sets the password and ends every session (logout_devices defaults to true)', async () => {
      const u = await twoDevices('reset_a');
      const res = await reset(u.id, { new_password: NEW_PW });
      expect(res.status).toBe(200);
      expect(res.body).toEqual({});
      for (const t of [u.a, u.b]) expect((await whoami(t)).status).toBe(401);
      expect((await login('reset_a', NEW_PW)).status).toBe(200);
      expect((await login('reset_a', DEFAULT_PASSWORD)).status).toBe(403);
    });

    it('logout_devices: false keeps the sessions; an admin resetting their own keeps the device they do it from', async () => {
      const u = await twoDevices('reset_keep');
      expect((await reset(u.id, { new_password: NEW_PW, logout_devices: false })).status).toBe(200);
      for (const t of [u.a, u.b]) expect((await whoami(t)).status).toBe(200);

      const other = await hs.login('uadmin');
      expect((await reset('@uadmin:test.local', { new_password: DEFAULT_PASSWORD })).status).toBe(200);
      expect((await whoami(admin)).status).toBe(200);
      expect((await whoami(other.access_token)).status).toBe(401);
      expect(await devicesOf('@uadmin:test.local')).toEqual([adminDevice]);
    });

    it('refuses a missing or wrong new_password, a wrong logout_devices, an unknown user; nothing changes', async () => {
      const u = await hs.register('reset_bad');
      await unchanged(hs, async () => {
        for (const [id, body, status, errcode] of [
          [u.user_id, {}, 400, 'M_MISSING_PARAM'],
          [u.user_id, { new_password: 5 }, 400, 'M_BAD_JSON'],
          [u.user_id, { new_password: 'x'.repeat(513) }, 400, 'M_BAD_JSON'],
          [u.user_id, { new_password: '' }, 400, 'M_INVALID_PARAM'],
          [u.user_id, { new_password: NEW_PW, logout_devices: 'no' }, 400, 'M_BAD_JSON'],
          [u.user_id, null, 400, 'M_BAD_JSON'],
          ['@nobody:test.local', { new_password: NEW_PW }, 404, 'M_NOT_FOUND'],
          ['@reset_bad:elsewhere.org', { new_password: NEW_PW }, 400, 'M_INVALID_PARAM'],
        ] as [string, unknown, number, string][]) {
          const res = await hs.request('POST', `${V1}/reset_password/${path(id)}`, { token: admin, rawBody: JSON.stringify(body) });
          expect({ id, body, status: res.status, errcode: res.body.errcode }).toEqual({ id, body, status, errcode });
        }
      });
      expect((await login('reset_bad')).status).toBe(200);
    });
  });

  describe('GET and PUT /_synapse/admin/v1/users/{userId}/admin', () => {
    const adminPath = (id: string) => `${V1}/users/${path(id)}/admin`;
    it('reads and sets the flag', async () => {
      const u = await hs.register('flag_a');
      expect((await hs.request('GET', adminPath(u.user_id), { token: admin })).body).toEqual({ admin: false });
      const set = await hs.request('PUT', adminPath(u.user_id), { token: admin, body: { admin: true } });
      expect(set.status).toBe(200);
      expect(set.body).toEqual({});
      expect((await hs.request('GET', adminPath(u.user_id), { token: admin })).body).toEqual({ admin: true });
      expect((await list('?limit=1', u.access_token)).status).toBe(200);
      expect((await hs.request('PUT', adminPath(u.user_id), { token: admin, body: { admin: false } })).status).toBe(200);
      expect(!!(await userRow(u.user_id)).is_admin).toBe(false);
    });

    it('refuses self-demotion, a missing or wrong admin, unknown users, other servers; nothing changes', async () => {
      await unchanged(hs, async () => {
        for (const [id, body, status, errcode] of [
          ['@uadmin:test.local', { admin: false }, 400, 'M_INVALID_PARAM'],
          [user.user_id, {}, 400, 'M_MISSING_PARAM'],
          [user.user_id, { admin: 'yes' }, 400, 'M_BAD_JSON'],
          ['@nobody:test.local', { admin: true }, 404, 'M_NOT_FOUND'],
          ['@plainuser:elsewhere.org', { admin: true }, 400, 'M_INVALID_PARAM'],
        ] as [string, unknown, number, string][]) {
          const res = await hs.request('PUT', adminPath(id), { token: admin, body });
          expect({ id, status: res.status, errcode: res.body.errcode }).toEqual({ id, status, errcode });
        }
      });
      expectMatrixError(await hs.request('GET', adminPath('@nobody:test.local'), { token: admin }), 404, 'M_NOT_FOUND');
      expectMatrixError(await hs.request('GET', adminPath('@x:elsewhere.org'), { token: admin }), 400, 'M_INVALID_PARAM');
    });
  });

  describe('devices, whois, joined rooms', () => {
    it('lists, shows and deletes a user\'s devices in Synapse\'s shape', async () => {
      const u = await twoDevices('dev_a');
      const listed = await hs.request('GET', `${V2}/users/${path(u.id)}/devices`, { token: admin });
      expect(listed.status).toBe(200);
      expect(listed.body.total).toBe(2);
      expect(listed.body.devices.map((d: { device_id: string }) => d.device_id).sort()).toEqual([u.aDevice, u.bDevice].sort());
      for (const d of listed.body.devices) {
        expect(Object.keys(d).sort()).toEqual(['dehydrated', 'device_id', 'display_name', 'last_seen_ip', 'last_seen_ts', 'last_seen_user_agent', 'user_id']);
        expect(d).toMatchObject({ user_id: u.id, dehydrated: false, last_seen_ip: '127.0.0.1' });
      }
      const one = await hs.request('GET', `${V2}/users/${path(u.id)}/devices/${u.aDevice}`, { token: admin });
      expect(one.status).toBe(200);
      expect(Object.keys(one.body).sort()).toEqual(['device_id', 'display_name', 'last_seen_ip', 'last_seen_ts', 'last_seen_user_agent', 'user_id']);

      const del = await hs.request('DELETE', `${V2}/users/${path(u.id)}/devices/${u.aDevice}`, { token: admin });
      expect(del.status).toBe(200);
      expect(del.body).toEqual({});
      expect((await whoami(u.a)).status).toBe(401);
      expect((await whoami(u.b)).status).toBe(200);
      expect(await devicesOf(u.id)).toEqual([u.bDevice]);
      // As Synapse: deleting a device that is gone is fine.
      expect((await hs.request('DELETE', `${V2}/users/${path(u.id)}/devices/${u.aDevice}`, { token: admin })).status).toBe(200);
      expectMatrixError(await hs.request('GET', `${V2}/users/${path(u.id)}/devices/${u.aDevice}`, { token: admin }), 404, 'M_NOT_FOUND');
      expectMatrixError(await hs.request('GET', `${V2}/users/${path(u.id)}/devices/${'x'.repeat(300)}`, { token: admin }), 404, 'M_NOT_FOUND');
      for (const m of ['GET', 'DELETE']) {
        expectMatrixError(await hs.request(m, `${V2}/users/${path('@nobody:test.local')}/devices/${u.bDevice}`, { token: admin }), 404, 'M_NOT_FOUND');
        expectMatrixError(await hs.request(m, `${V2}/users/${path('@dev_a:elsewhere.org')}/devices/${u.bDevice}`, { token: admin }), 400, 'M_INVALID_PARAM');
      }
      expectMatrixError(await hs.request('GET', `${V2}/users/${path('@nobody:test.local')}/devices`, { token: admin }), 404, 'M_NOT_FOUND');
    });

    it("whois for admins, in Synapse's shape: every connection under the one \"\" entry", async () => {
      const u = await twoDevices('whois_a');
      await hs.request('GET', `${V3}/account/whoami`, { token: u.b, headers: { 'User-Agent': 'other-client/1.0' } });
      const res = await hs.request('GET', `${V1}/whois/${path(u.id)}`, { token: admin });
      expect(res.status).toBe(200);
      expect(Object.keys(res.body.devices)).toEqual(['']);
      const connections = res.body.devices[''].sessions[0].connections as { ip: string; last_seen: number; user_agent: string }[];
      expect(res.body.user_id).toBe(u.id);
      expect(connections.length).toBeGreaterThanOrEqual(1);
      for (const c of connections) {
        expect(Object.keys(c).sort()).toEqual(['ip', 'last_seen', 'user_agent']);
        expect(c.ip).toBe('127.0.0.1');
        expect(typeof c.last_seen).toBe('number');
      }
      expectMatrixError(await hs.request('GET', `${V1}/whois/${path('@nobody:test.local')}`, { token: admin }), 404, 'M_NOT_FOUND');
    });

    it('the client API\'s whois: for oneself and for admins, keyed by device ID; 403 for others', async () => {
      const u = await twoDevices('whois_b');
      const self = await hs.request('GET', `${V3}/admin/whois/${path(u.id)}`, { token: u.a });
      expect(self.status).toBe(200);
      expect(self.body.user_id).toBe(u.id);
      expect(Object.keys(self.body.devices).sort()).toEqual([u.aDevice, u.bDevice].sort());
      expect(self.body.devices[u.aDevice].sessions[0].connections[0]).toMatchObject({ ip: '127.0.0.1' });
      const byAdmin = await hs.request('GET', `/_matrix/client/r0/admin/whois/${path(u.id)}`, { token: admin });
      expect(byAdmin.status).toBe(200);
      expect(Object.keys(byAdmin.body.devices).sort()).toEqual([u.aDevice, u.bDevice].sort());
      expectMatrixError(await hs.request('GET', `${V3}/admin/whois/${path(u.id)}`, { token: user.access_token }), 403, 'M_FORBIDDEN');
      expectMatrixError(await hs.request('GET', `${V3}/admin/whois/${path('@nobody:test.local')}`, { token: user.access_token }), 403, 'M_FORBIDDEN');
      expectMatrixError(await hs.request('GET', `${V3}/admin/whois/${path(u.id)}`), 401, 'M_MISSING_TOKEN');
      expectMatrixError(await hs.request('GET', `${V3}/admin/whois/${path('@nobody:test.local')}`, { token: admin }), 404, 'M_NOT_FOUND');
      expectMatrixError(await hs.request('GET', `${V3}/admin/whois/${path('@x:elsewhere.org')}`, { token: admin }), 400, 'M_INVALID_PARAM');
    });

    it('joined_rooms: none (no rooms yet), as Synapse also for an unknown local user', async () => {
      expect((await hs.request('GET', `${V1}/users/${path(user.user_id)}/joined_rooms`, { token: admin })).body).toEqual({ joined_rooms: [], total: 0 });
      expect((await hs.request('GET', `${V1}/users/${path('@nobody:test.local')}/joined_rooms`, { token: admin })).body).toEqual({ joined_rooms: [], total: 0 });
      expectMatrixError(await hs.request('GET', `${V1}/users/${path('@x:elsewhere.org')}/joined_rooms`, { token: admin }), 400, 'M_INVALID_PARAM');
    });
  });

  describe('GET /_synapse/admin/v1/username_available', () => {
    const available = (q: string) => hs.request('GET', `${V1}/username_available${q}`, { token: admin });
    it('as /register/available: free, taken (in any case), malformed, missing', async () => {
      expect((await available('?username=free_name')).body).toEqual({ available: true });
      expectMatrixError(await available('?username=plainuser'), 400, 'M_USER_IN_USE');
      expectMatrixError(await available('?username=PlainUser'), 400, 'M_USER_IN_USE');
      expectMatrixError(await available('?username=_hidden'), 400, 'M_INVALID_USERNAME');
      expectMatrixError(await available('?username=a%20b'), 400, 'M_INVALID_USERNAME');
      expectMatrixError(await available(''), 400, 'M_MISSING_PARAM');
      expectMatrixError(await available('?username=a&username=b'), 400, 'M_INVALID_PARAM');
    });
  });
});

describe.each(backends())('user admin API with registration and passwords switched off (%s)', (backend) => {
  let hs: TestServer;
  let admin: string;
  beforeAll(async () => {
    hs = await startServer(backend, { enable_registration: false, password_config: { enabled: false } });
    admin = await sharedSecretAccount(hs, 'offadmin', true);
  });
  afterAll(async () => {
    await hs?.stop();
  });

  it('username_available still answers; no password can be set (403 M_FORBIDDEN), nothing changes; accounts without one can be made', async () => {
    expect((await hs.request('GET', `${V1}/username_available?username=newbie`, { token: admin })).body).toEqual({ available: true });
    await unchanged(hs, async () => {
      expectMatrixError(await hs.request('PUT', `${V2}/users/${encodeURIComponent('@newbie:test.local')}`, { token: admin, body: { password: NEW_PW } }), 403, 'M_FORBIDDEN');
      expectMatrixError(await hs.request('POST', `${V1}/reset_password/${encodeURIComponent('@offadmin:test.local')}`, { token: admin, body: { new_password: NEW_PW } }), 403, 'M_FORBIDDEN');
    });
    const made = await hs.request('PUT', `${V2}/users/${encodeURIComponent('@newbie:test.local')}`, { token: admin, body: { displayname: 'Newbie' } });
    expect(made.status).toBe(201);
    expect(made.body.displayname).toBe('Newbie');
  });
});
