// Account state, black-box: locking (MSC3939) and suspension (MSC3823) as the
// user meets them, the admin endpoints that set them (MSC4323, stable and
// unstable, and Synapse's PUT /_synapse/admin/v1/suspend) with their error
// order, end times that lift a restriction by themselves, the precedence of
// several states, and the admins-only m.account_moderation capability.
// Every route's locked answer is walked in locked-routes.test.ts.

import { createHmac } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { countRows, expectMatrixError, expectNoChange } from '../support/assertions.js';
import { backends } from '../support/backends.js';
import { DEFAULT_PASSWORD, startServer, type TestServer } from '../support/server.js';

const V3 = '/_matrix/client/v3';
const STABLE = '/_matrix/client/v1/admin';
const UNSTABLE = '/_matrix/client/unstable/uk.timedout.msc4323/admin';
const SYNAPSE_SUSPEND = '/_synapse/admin/v1/suspend';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.each(backends())('account state (%s)', (backend) => {
  let hs: TestServer;
  let admin: { user_id: string; access_token: string };
  let otherAdmin: { user_id: string; access_token: string };

  /** An account made through shared-secret registration (the only way to make an admin). */
  const sharedSecretAccount = async (username: string, isAdmin: boolean) => {
    const nonce = (await hs.request('GET', '/_synapse/admin/v1/register')).body.nonce as string;
    const parts = [nonce, username, DEFAULT_PASSWORD, isAdmin ? 'admin' : 'notadmin'];
    const mac = createHmac('sha1', 'test-shared-secret').update(parts.join('\x00'), 'utf8').digest('hex');
    const res = await hs.request('POST', '/_synapse/admin/v1/register', { body: { nonce, username, password: DEFAULT_PASSWORD, admin: isAdmin, mac } });
    expect(res.status).toBe(200);
    return res.body as { user_id: string; access_token: string };
  };

  beforeAll(async () => {
    hs = await startServer(backend, { refreshable_access_token_lifetime: '1h', allow_guest_access: true });
    admin = await sharedSecretAccount('st_admin', true);
    otherAdmin = await sharedSecretAccount('st_admin2', true);
  });
  afterAll(async () => {
    await hs?.stop();
  });

  const enc = encodeURIComponent;
  const whoami = (token: string) => hs.request('GET', `${V3}/account/whoami`, { token });
  const setState = (kind: 'lock' | 'suspend', userId: string, body: unknown, token = admin.access_token, prefix = STABLE) =>
    hs.request('PUT', `${prefix}/${kind}/${enc(userId)}`, { body, token });
  const getState = (kind: 'lock' | 'suspend', userId: string, token = admin.access_token, prefix = STABLE) =>
    hs.request('GET', `${prefix}/${kind}/${enc(userId)}`, { token });
  const lock = async (userId: string, extra: Record<string, unknown> = {}) =>
    expect((await setState('lock', userId, { locked: true, ...extra })).status).toBe(200);
  const unlock = async (userId: string) => expect((await setState('lock', userId, { locked: false })).status).toBe(200);
  const suspend = async (userId: string, extra: Record<string, unknown> = {}) =>
    expect((await setState('suspend', userId, { suspended: true, ...extra })).status).toBe(200);
  const unsuspend = async (userId: string) => expect((await setState('suspend', userId, { suspended: false })).status).toBe(200);
  const loginRequest = (user: string, password = DEFAULT_PASSWORD) =>
    hs.request('POST', `${V3}/login`, { body: { type: 'm.login.password', identifier: { type: 'm.id.user', user }, password } });
  const userRow = (userId: string) => hs.db()('users').where({ user_id: userId }).first();
  const stateColumns = async (userId: string) => {
    const r = await userRow(userId);
    return [!!r.locked, r.lock_reason, r.locked_until, !!r.suspended, r.suspension_reason, r.suspended_until];
  };
  const tokenHashes = async (userId: string) =>
    (await hs.db()('access_tokens').where({ user_id: userId }).select('token_hash')).map((t: { token_hash: string }) => t.token_hash).sort();

  function expectLocked(res: { status: number; body: any }) {
    expectMatrixError(res, 401, 'M_USER_LOCKED');
    expect(res.body.soft_logout).toBe(true);
  }
  function expectSuspended(res: { status: number; body: any }) {
    expectMatrixError(res, 403, 'M_USER_SUSPENDED');
    expect(res.body).not.toHaveProperty('soft_logout');
  }
  /** Runs `act` (which must be refused) and checks that neither the account's state nor any account table changed. */
  const refused = async (userId: string, act: () => Promise<void>) => {
    const before = await stateColumns(userId);
    await expectNoChange(hs, act, ['users', 'devices', 'access_tokens', 'refresh_tokens', 'registration_tokens']);
    expect(await stateColumns(userId)).toEqual(before);
  };

  describe('locking', () => {
    it('answers 401 M_USER_LOCKED with soft_logout on every session, keeps the tokens, and unlocking restores the same sessions', async () => {
      const a = await hs.register('lk_user');
      const b = await hs.login('lk_user');
      const tokensBefore = await tokenHashes(a.user_id);
      expect(tokensBefore).toHaveLength(2);

      const res = await setState('lock', a.user_id, { locked: true });
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ locked: true });
      expect((await getState('lock', a.user_id)).body).toEqual({ locked: true });
      expect((await getState('suspend', a.user_id)).body).toEqual({ suspended: false });
      for (const t of [a, b]) {
        expectLocked(await whoami(t.access_token));
        expectLocked(await hs.request('GET', `${V3}/devices`, { token: t.access_token }));
      }
      // The r0 twin and the query-string token are the same route and the same check.
      expectLocked(await hs.request('GET', `/_matrix/client/r0/account/whoami?access_token=${a.access_token}`));
      expect(await tokenHashes(a.user_id)).toEqual(tokensBefore);

      await unlock(a.user_id);
      expect((await getState('lock', a.user_id)).body).toEqual({ locked: false });
      for (const t of [a, b]) {
        const ok = await whoami(t.access_token);
        expect(ok.status).toBe(200);
        expect(ok.body).toMatchObject({ user_id: a.user_id, device_id: t.device_id });
      }
      expect(await tokenHashes(a.user_id)).toEqual(tokensBefore);
    });

    it('login with the right password answers M_USER_LOCKED and makes nothing; a wrong password tells nothing of the lock', async () => {
      const u = await hs.register('lk_login');
      await lock(u.user_id);
      await expectNoChange(hs, async () => {
        expectLocked(await loginRequest('lk_login'));
        expectMatrixError(await loginRequest('lk_login', 'wrong password'), 403, 'M_FORBIDDEN');
      });
      await unlock(u.user_id);
      expect((await loginRequest('lk_login')).status).toBe(200);
    });

    it('a locked account may still sign out (/logout, and /logout/all), which ends its tokens as usual', async () => {
      const a = await hs.register('lk_out');
      const b = await hs.login('lk_out');
      const c = await hs.login('lk_out');
      await lock(a.user_id);
      const out = await hs.request('POST', `${V3}/logout`, { token: a.access_token });
      expect(out.status).toBe(200);
      expect(await countRows(hs, 'access_tokens', { user_id: a.user_id })).toBe(2);
      expectMatrixError(await whoami(a.access_token), 401, 'M_UNKNOWN_TOKEN');
      expectLocked(await whoami(b.access_token));
      const all = await hs.request('POST', `${V3}/logout/all`, { token: b.access_token });
      expect(all.status).toBe(200);
      expect(await countRows(hs, 'access_tokens', { user_id: a.user_id })).toBe(0);
      expect(await countRows(hs, 'devices', { user_id: a.user_id })).toBe(0);
      // Unlocking brings back nothing that was signed out.
      await unlock(a.user_id);
      expectMatrixError(await whoami(c.access_token), 401, 'M_UNKNOWN_TOKEN');
    });

    it('as Synapse, a refresh token still refreshes while locked (the session survives a long lock); the new token is locked too', async () => {
      const u = await hs.register('lk_refresh');
      const s = (await hs.login('lk_refresh', DEFAULT_PASSWORD, { refresh_token: true })) as Awaited<ReturnType<TestServer['login']>> & { refresh_token: string };
      await lock(u.user_id);
      const refreshed = await hs.request('POST', `${V3}/refresh`, { body: { refresh_token: s.refresh_token } });
      expect(refreshed.status).toBe(200);
      expectLocked(await whoami(refreshed.body.access_token));
      await unlock(u.user_id);
      expect((await whoami(refreshed.body.access_token)).status).toBe(200);
    });

    it('a lock with an end time shows its reason and end, and lifts itself then, with no request from anyone', async () => {
      const u = await hs.register('lk_timed');
      const until = Date.now() + 1500;
      const res = await setState('lock', u.user_id, { locked: true, 'gatehouse.reason': 'too many failed sign-ins', 'gatehouse.until': until });
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ locked: true, 'gatehouse.reason': 'too many failed sign-ins', 'gatehouse.until': until });
      expect((await getState('lock', u.user_id, admin.access_token, UNSTABLE)).body).toEqual(res.body);
      expectLocked(await whoami(u.access_token));
      expectLocked(await loginRequest('lk_timed'));
      await sleep(until - Date.now() + 100);
      expect((await whoami(u.access_token)).status).toBe(200);
      expect((await loginRequest('lk_timed')).status).toBe(200);
      expect((await getState('lock', u.user_id)).body).toEqual({ locked: false });
    });
  });

  describe('suspension', () => {
    it('keeps the user signed in: reading, renaming devices, signing in again, changing the password and signing out all work', async () => {
      const u = await hs.register('sp_user');
      await suspend(u.user_id);
      expect((await getState('suspend', u.user_id)).body).toEqual({ suspended: true });
      expect((await whoami(u.access_token)).status).toBe(200);
      expect((await hs.request('GET', `${V3}/devices`, { token: u.access_token })).status).toBe(200);
      expect((await hs.request('GET', `${V3}/capabilities`, { token: u.access_token })).status).toBe(200);
      // Device names are not profile data (MSC3823 forbids changing the display name and avatar).
      const rename = await hs.request('PUT', `${V3}/devices/${enc(u.device_id)}`, { token: u.access_token, body: { display_name: 'phone' } });
      expect(rename.status).toBe(200);
      const second = await loginRequest('sp_user');
      expect(second.status).toBe(200);
      expect((await whoami(second.body.access_token)).status).toBe(200);

      const NEW = 'another horse battery staple';
      const first = await hs.request('POST', `${V3}/account/password`, { token: u.access_token, body: { new_password: NEW } });
      expect(first.status).toBe(401);
      const auth = { type: 'm.login.password', identifier: { type: 'm.id.user', user: 'sp_user' }, password: DEFAULT_PASSWORD, session: first.body.session };
      const changed = await hs.request('POST', `${V3}/account/password`, { token: u.access_token, body: { new_password: NEW, auth } });
      expect(changed.status).toBe(200);
      expect((await hs.request('POST', `${V3}/logout`, { token: u.access_token })).status).toBe(200);
      // Still suspended after all that.
      expect((await getState('suspend', u.user_id)).body).toEqual({ suspended: true });
    });

    it('a suspended user may deactivate their account', async () => {
      const u = await hs.register('sp_deact');
      await suspend(u.user_id);
      const first = await hs.request('POST', `${V3}/account/deactivate`, { token: u.access_token, body: {} });
      expect(first.status).toBe(401);
      const auth = { type: 'm.login.password', identifier: { type: 'm.id.user', user: 'sp_deact' }, password: DEFAULT_PASSWORD, session: first.body.session };
      expect((await hs.request('POST', `${V3}/account/deactivate`, { token: u.access_token, body: { auth } })).status).toBe(200);
      expect(!!(await userRow(u.user_id)).deactivated).toBe(true);
    });

    it('blocks only the declared writes: a suspended admin may read the admin APIs but not act through them', async () => {
      const s = await sharedSecretAccount('sp_admin', true);
      const victim = await hs.register('sp_victim');
      // The MSC4323 endpoints refuse to touch admins; Synapse's endpoint may suspend one.
      const put = await hs.request('PUT', `${SYNAPSE_SUSPEND}/${enc(s.user_id)}`, { token: admin.access_token, body: { suspend: true } });
      expect(put.status).toBe(200);

      expect((await whoami(s.access_token)).status).toBe(200);
      expect((await hs.request('GET', '/_synapse/admin/v1/registration_tokens', { token: s.access_token })).status).toBe(200);
      expect((await getState('lock', victim.user_id, s.access_token)).body).toEqual({ locked: false });
      await refused(victim.user_id, async () => {
        expectSuspended(await hs.request('POST', '/_synapse/admin/v1/registration_tokens/new', { token: s.access_token, body: {} }));
        expectSuspended(await setState('lock', victim.user_id, { locked: true }, s.access_token));
        expectSuspended(await setState('suspend', victim.user_id, { suspended: true }, s.access_token, UNSTABLE));
        expectSuspended(await hs.request('PUT', `${SYNAPSE_SUSPEND}/${enc(victim.user_id)}`, { token: s.access_token, body: { suspend: true } }));
        // The policy is checked before the body is read.
        expectSuspended(await hs.request('PUT', `${STABLE}/lock/${enc(victim.user_id)}`, { token: s.access_token, rawBody: '[]' }));
      });

      const lift = await hs.request('PUT', `${SYNAPSE_SUSPEND}/${enc(s.user_id)}`, { token: admin.access_token, body: { suspend: false } });
      expect(lift.body).toEqual({ [`user_${s.user_id}_suspended`]: false });
      expect((await hs.request('POST', '/_synapse/admin/v1/registration_tokens/new', { token: s.access_token, body: {} })).status).toBe(200);
    });

    it('a suspension with an end time shows it, refuses until then, and lifts itself', async () => {
      const s = await sharedSecretAccount('sp_timed', true);
      const victim = await hs.register('sp_timed_victim');
      await hs.db()('users').where({ user_id: s.user_id }).update({ suspended: true, suspension_reason: 'review', suspended_until: Date.now() + 1500 });
      expectSuspended(await setState('lock', victim.user_id, { locked: true }, s.access_token));
      const until = Date.now() + 1500;
      const res = await setState('suspend', victim.user_id, { suspended: true, 'gatehouse.until': until });
      expect(res.body).toEqual({ suspended: true, 'gatehouse.until': until });
      await sleep(1600);
      expect((await setState('lock', victim.user_id, { locked: false }, s.access_token)).status).toBe(200);
      expect((await getState('suspend', victim.user_id)).body).toEqual({ suspended: false });
    });

    it('PUT with suspended:false lifts it, and a reason or end time sent with it is ignored', async () => {
      const u = await hs.register('sp_lift');
      await suspend(u.user_id, { 'gatehouse.reason': 'spam' });
      expect((await getState('suspend', u.user_id)).body).toEqual({ suspended: true, 'gatehouse.reason': 'spam' });
      const res = await setState('suspend', u.user_id, { suspended: false, 'gatehouse.reason': 'x', 'gatehouse.until': Date.now() + 60_000 });
      expect(res.body).toEqual({ suspended: false });
      expect(await stateColumns(u.user_id)).toEqual([false, null, null, false, null, null]);
    });
  });

  describe('several states at once', () => {
    it('a lock comes before awaiting approval and before suspension; an expired token before the lock; sign-out before all', async () => {
      const u = await hs.register('pr_user');
      await lock(u.user_id);
      await suspend(u.user_id);
      await hs.db()('users').where({ user_id: u.user_id }).update({ approved: false });
      expectLocked(await whoami(u.access_token));
      expectLocked(await loginRequest('pr_user'));
      await unlock(u.user_id);
      expectMatrixError(await whoami(u.access_token), 403, 'M_USER_AWAITING_APPROVAL');
      expectMatrixError(await loginRequest('pr_user'), 403, 'M_USER_AWAITING_APPROVAL');
      // Through the admin API, not SQL: the server caches the token it just read (issue 15).
      const approve = await hs.request('PUT', `/_synapse/admin/v2/users/${encodeURIComponent(u.user_id)}`, { token: admin.access_token, body: { approved: true } });
      expect(approve.status).toBe(200);
      expect((await whoami(u.access_token)).status).toBe(200);

      await lock(u.user_id);
      await hs.db()('access_tokens').where({ user_id: u.user_id }).update({ expires_ts: Date.now() - 1000 });
      const expired = await whoami(u.access_token);
      expectMatrixError(expired, 401, 'M_UNKNOWN_TOKEN');
      expect(expired.body.soft_logout).toBe(true);
      expect((await hs.request('POST', `${V3}/logout`, { token: u.access_token })).status).toBe(200);
    });

    it('a deactivated account signs in to nothing, locked or not: its tokens are gone and its login is a wrong password', async () => {
      const u = await hs.register('pr_deact');
      await hs.db()('users').where({ user_id: u.user_id }).update({ locked: true, deactivated: true, password_hash: null });
      expectMatrixError(await whoami(u.access_token), 401, 'M_UNKNOWN_TOKEN');
      expectMatrixError(await loginRequest('pr_deact'), 403, 'M_FORBIDDEN');
    });
  });

  describe('the admin endpoints', () => {
    const KINDS = [
      { kind: 'lock' as const, key: 'locked' },
      { kind: 'suspend' as const, key: 'suspended' },
    ];
    const PREFIXES = [STABLE, UNSTABLE];

    it('check the requester before anything else: 401 without a valid token, 403 for non-admins and guests, even for unknown or remote users', async () => {
      const u = await hs.register('ep_user');
      const target = await hs.register('ep_target');
      const guest = await hs.request('POST', `${V3}/register?kind=guest`, { body: {} });
      expect(guest.status).toBe(200);
      for (const prefix of PREFIXES) {
        for (const { kind, key } of KINDS) {
          for (const who of [target.user_id, '@nobody:test.local', '@someone:elsewhere.example', 'not-a-user-id']) {
            await refused(target.user_id, async () => {
              expectMatrixError(await hs.request('GET', `${prefix}/${kind}/${enc(who)}`), 401, 'M_MISSING_TOKEN');
              expectMatrixError(await getState(kind, who, 'gha_notatoken', prefix), 401, 'M_UNKNOWN_TOKEN');
              expectMatrixError(await setState(kind, who, { [key]: true }, 'gha_notatoken', prefix), 401, 'M_UNKNOWN_TOKEN');
              expectMatrixError(await getState(kind, who, u.access_token, prefix), 403, 'M_FORBIDDEN');
              expectMatrixError(await setState(kind, who, { [key]: true }, u.access_token, prefix), 403, 'M_FORBIDDEN');
              // Even a bad body is a 403 for a non-admin.
              expectMatrixError(await setState(kind, who, { [key]: 'yes' }, u.access_token, prefix), 403, 'M_FORBIDDEN');
              expectMatrixError(await setState(kind, who, { [key]: true }, guest.body.access_token, prefix), 403, 'M_GUEST_ACCESS_FORBIDDEN');
            });
          }
        }
      }
      for (const who of [target.user_id, '@nobody:test.local', '@someone:elsewhere.example']) {
        expectMatrixError(await hs.request('PUT', `${SYNAPSE_SUSPEND}/${enc(who)}`, { body: { suspend: true } }), 401, 'M_MISSING_TOKEN');
        expectMatrixError(await hs.request('PUT', `${SYNAPSE_SUSPEND}/${enc(who)}`, { token: u.access_token, body: { suspend: true } }), 403, 'M_FORBIDDEN');
      }
    });

    it('then: 400 M_INVALID_PARAM for a user of another server or no user ID, 404 M_NOT_FOUND for an unknown or deactivated one', async () => {
      const gone = await hs.register('ep_gone');
      await hs.db()('users').where({ user_id: gone.user_id }).update({ deactivated: true });
      for (const prefix of PREFIXES) {
        for (const { kind, key } of KINDS) {
          for (const who of ['@someone:elsewhere.example', 'not-a-user-id', '@ep_gone']) {
            expectMatrixError(await getState(kind, who, admin.access_token, prefix), 400, 'M_INVALID_PARAM');
            expectMatrixError(await setState(kind, who, { [key]: true }, admin.access_token, prefix), 400, 'M_INVALID_PARAM');
          }
          for (const who of ['@nobody:test.local', gone.user_id]) {
            await refused(gone.user_id, async () => {
              expectMatrixError(await getState(kind, who, admin.access_token, prefix), 404, 'M_NOT_FOUND');
              expectMatrixError(await setState(kind, who, { [key]: true }, admin.access_token, prefix), 404, 'M_NOT_FOUND');
            });
          }
        }
      }
      expectMatrixError(await hs.request('PUT', `${SYNAPSE_SUSPEND}/${enc('@x:elsewhere.example')}`, { token: admin.access_token, body: { suspend: true } }), 400, 'M_INVALID_PARAM');
      expectMatrixError(await hs.request('PUT', `${SYNAPSE_SUSPEND}/${enc('@nobody:test.local')}`, { token: admin.access_token, body: { suspend: true } }), 404, 'M_NOT_FOUND');
    });

    it('403 M_FORBIDDEN for another admin (read or write) and for the admin\'s own account (write); an admin may read their own state', async () => {
      for (const prefix of PREFIXES) {
        for (const { kind, key } of KINDS) {
          await refused(otherAdmin.user_id, async () => {
            expectMatrixError(await getState(kind, otherAdmin.user_id, admin.access_token, prefix), 403, 'M_FORBIDDEN');
            expectMatrixError(await setState(kind, otherAdmin.user_id, { [key]: true }, admin.access_token, prefix), 403, 'M_FORBIDDEN');
          });
          await refused(admin.user_id, async () => {
            expectMatrixError(await setState(kind, admin.user_id, { [key]: true }, admin.access_token, prefix), 403, 'M_FORBIDDEN');
          });
          const own = await getState(kind, admin.user_id, admin.access_token, prefix);
          expect(own.status).toBe(200);
          expect(own.body).toEqual({ [key]: false });
        }
      }
      await refused(admin.user_id, async () => {
        const self = await hs.request('PUT', `${SYNAPSE_SUSPEND}/${enc(admin.user_id)}`, { token: admin.access_token, body: { suspend: true } });
        expectMatrixError(self, 403, 'M_FORBIDDEN');
      });
    });

    it('refuse bad bodies with 400, changing nothing', async () => {
      const u = await hs.register('ep_body');
      const long = 'x'.repeat(1001);
      for (const prefix of PREFIXES) {
        for (const { kind, key } of KINDS) {
          const cases: [unknown, string][] = [
            [{}, 'M_MISSING_PARAM'],
            [{ [key]: null }, 'M_MISSING_PARAM'],
            [{ [key]: 'true' }, 'M_BAD_JSON'],
            [{ [key]: 1 }, 'M_BAD_JSON'],
            [[], 'M_BAD_JSON'],
            [{ [key]: true, 'gatehouse.reason': 42 }, 'M_BAD_JSON'],
            [{ [key]: true, 'gatehouse.reason': 'a\u0000b' }, 'M_BAD_JSON'],
            [{ [key]: true, 'gatehouse.reason': long }, 'M_INVALID_PARAM'],
            [{ [key]: true, 'gatehouse.until': 'tomorrow' }, 'M_BAD_JSON'],
            [{ [key]: true, 'gatehouse.until': 1.5 }, 'M_BAD_JSON'],
            [{ [key]: true, 'gatehouse.until': Date.now() - 1000 }, 'M_INVALID_PARAM'],
            [{ [key]: true, 'gatehouse.until': 1e300 }, 'M_INVALID_PARAM'],
            [{ [key]: true, 'gatehouse.until': 2 ** 60 }, 'M_INVALID_PARAM'],
          ];
          for (const [body, errcode] of cases) {
            await refused(u.user_id, async () => {
              expectMatrixError(await setState(kind, u.user_id, body, admin.access_token, prefix), 400, errcode);
            });
          }
          // A body that is not JSON at all.
          await refused(u.user_id, async () => {
            const res = await hs.request('PUT', `${prefix}/${kind}/${enc(u.user_id)}`, { token: admin.access_token, rawBody: '{"locked": tru' });
            expectMatrixError(res, 400, 'M_NOT_JSON');
          });
        }
      }
      for (const body of [{}, { suspend: 'yes' }, { suspended: true }]) {
        await refused(u.user_id, async () => {
          const res = await hs.request('PUT', `${SYNAPSE_SUSPEND}/${enc(u.user_id)}`, { token: admin.access_token, body });
          expect(res.status).toBe(400);
        });
      }
    });

    it('the stable and unstable paths share one state; Synapse\'s endpoint answers in its own shape', async () => {
      const u = await hs.register('ep_paths');
      await suspend(u.user_id, { 'gatehouse.reason': 'see ticket 12' });
      expect((await getState('suspend', u.user_id, admin.access_token, UNSTABLE)).body).toEqual({ suspended: true, 'gatehouse.reason': 'see ticket 12' });
      const off = await hs.request('PUT', `${SYNAPSE_SUSPEND}/${enc(u.user_id)}`, { token: admin.access_token, body: { suspend: false } });
      expect(off.status).toBe(200);
      expect(off.body).toEqual({ [`user_${u.user_id}_suspended`]: false });
      expect((await getState('suspend', u.user_id)).body).toEqual({ suspended: false });
      const on = await hs.request('PUT', `${SYNAPSE_SUSPEND}/${enc(u.user_id)}`, { token: admin.access_token, body: { suspend: true } });
      expect(on.body).toEqual({ [`user_${u.user_id}_suspended`]: true });
      expect((await setState('lock', u.user_id, { locked: true }, admin.access_token, UNSTABLE)).body).toEqual({ locked: true });
      expect((await getState('lock', u.user_id)).body).toEqual({ locked: true });
      // Setting what already holds is fine (idempotent), and both restrictions may hold at once.
      expect((await setState('lock', u.user_id, { locked: true })).status).toBe(200);
      expect(await stateColumns(u.user_id)).toEqual([true, null, null, true, null, null]);
    });
  });

  describe('capabilities and versions', () => {
    it('advertise m.account_moderation (and its unstable name) to admins only', async () => {
      const u = await hs.register('cap_user');
      const mine = await hs.request('GET', `${V3}/capabilities`, { token: admin.access_token });
      expect(mine.status).toBe(200);
      expect(mine.body.capabilities['m.account_moderation']).toEqual({ suspend: true, lock: true });
      expect(mine.body.capabilities['uk.timedout.msc4323']).toEqual({ suspend: true, lock: true });
      const theirs = await hs.request('GET', `${V3}/capabilities`, { token: u.access_token });
      expect(theirs.status).toBe(200);
      expect(theirs.body.capabilities).not.toHaveProperty('m.account_moderation');
      expect(theirs.body.capabilities).not.toHaveProperty('uk.timedout.msc4323');
      expect(theirs.body.capabilities['m.change_password']).toEqual({ enabled: true });
      const versions = await hs.request('GET', '/_matrix/client/versions');
      expect(versions.body.unstable_features['uk.timedout.msc4323']).toBe(true);
    });
  });
});
