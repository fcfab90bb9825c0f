// Every route the server answers, walked: a locked account (MSC3939) gets 401
// M_USER_LOCKED with soft_logout on each one that takes an access token, except
// the sign-out routes, which work; a suspended account (MSC3823) gets 403
// M_USER_SUSPENDED on exactly the routes that declare themselves
// suspension-covered, and nowhere else. The route list comes from the router
// itself, so a route added later is walked too: one that takes a token is held
// to these rules without anyone listing it, and one that takes none must be
// listed in PUBLIC below (reviewed) or this suite fails.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RouteInfo } from '../../src/app.js';
import { expectMatrixError } from '../support/assertions.js';
import { backends } from '../support/backends.js';
import { serverRoutes } from '../support/routes.js';
import { DEFAULT_PASSWORD, startServer, type TestServer } from '../support/server.js';

/** The routes that take no access token, and what stands in for one. */
const PUBLIC = new Map<string, string>([
  ['GET /_matrix/client/versions', 'discovery'],
  ['GET /.well-known/matrix/client', 'discovery'],
  ['GET /.well-known/matrix/server', 'discovery'],
  ['GET /.well-known/matrix/support', 'discovery'],
  ['GET /_matrix/key/v2/server', 'federation keys'],
  ['GET /_matrix/client/v3/login', 'login flows'],
  ['POST /_matrix/client/v3/login', 'the password (a locked account is told so once it verifies)'],
  ['POST /_matrix/client/v3/refresh', 'the refresh token'],
  ['POST /_matrix/client/v1/refresh', 'the refresh token'],
  ['POST /_matrix/client/v3/register', 'UIA (a guest_access_token is checked by authenticate)'],
  ['GET /_matrix/client/v3/register/available', 'none'],
  ['GET /_matrix/client/v1/register/m.login.registration_token/validity', 'none (rate-limited)'],
  ['GET /_matrix/client/unstable/org.matrix.msc3231/register/org.matrix.msc3231.login.registration_token/validity', 'none (rate-limited)'],
  ['GET /_matrix/client/v3/password_policy', 'none'],
  ['GET /_matrix/client/unstable/password_policy', 'none'],
  ['GET /_synapse/admin/v1/register', 'the shared secret'],
  ['POST /_synapse/admin/v1/register', 'the shared secret'],
  ['GET /_gatehouse/terms/:policyId/:version/:lang', 'public documents'],
  ['GET /_matrix/consent', 'public documents'],
  ['GET /_matrix/client/v3/auth/:stage/fallback/web', 'the UIA session'],
  ['POST /_matrix/client/v3/auth/:stage/fallback/web', 'the UIA session'],
  ['GET /_gatehouse/invite/:token', 'the registration token'],
  ['POST /_gatehouse/invite/:token', 'the registration token'],
  ['POST /_matrix/client/v3/register/email/requestToken', 'none (rate-limited; a mail to the address)'],
  ['POST /_matrix/client/v3/account/3pid/email/requestToken', 'none (rate-limited; a mail to the address)'],
  ['POST /_matrix/client/v3/account/password/email/requestToken', 'none (rate-limited; a mail to the address)'],
  ['POST /_matrix/client/v3/register/msisdn/requestToken', 'none (not supported)'],
  ['POST /_matrix/client/v3/account/3pid/msisdn/requestToken', 'none (not supported)'],
  ['POST /_matrix/client/v3/account/password/msisdn/requestToken', 'none (not supported)'],
  ['POST /_gatehouse/client/email/submit_token', 'the validation token'],
  ['GET /_gatehouse/client/email/validate', 'the validation token'],
  ['POST /_gatehouse/client/email/validate', 'the validation token'],
  // Public reads (as Synapse) unless require_auth_for_profile_requests, which makes them requireAuth routes;
  // with limit_profile_requests_to_users_who_share_rooms a sent token is checked by authenticate.
  ['GET /_synapse/admin/v1/server_version', 'none (as Synapse)'],
  // Federation API: the OpenID token is the credential (widgets and Element Call ask with it).
  ['GET /_matrix/federation/v1/openid/userinfo', 'the OpenID token'],
  ['GET /_matrix/client/v3/profile/:userId', 'none (see require_auth_for_profile_requests)'],
  ['GET /_matrix/client/v3/profile/:userId/:keyName', 'none (see require_auth_for_profile_requests)'],
]);

/** MSC3939: the only routes a locked account may still use. */
const SIGN_OUT = ['POST /_matrix/client/v3/logout', 'POST /_matrix/client/v3/logout/all'];

const keyOf = (r: RouteInfo) => `${r.method} ${r.path}`;

/** Whether the route declares itself a write a suspended account may not make. */
const suspensionCovered = (r: RouteInfo) =>
  r.auth !== null && (r.auth.admin ? r.method !== 'GET' : r.auth.forbidWhenSuspended === true);

describe.each(backends())('every route against account state (%s)', (backend) => {
  let hs: TestServer;
  let routes: RouteInfo[];
  let locked: { user_id: string; access_token: string; device_id: string };
  let lockedAdmin: { user_id: string; access_token: string; device_id: string };
  let suspendedAdmin: { user_id: string; access_token: string; device_id: string };
  let admin: { user_id: string; access_token: string; device_id: string };
  /** Two more sessions of the locked account, made before the lock, for the sign-out routes. */
  let signOutSessions: { access_token: string }[];

  /** An admin account, through shared-secret registration, signed in (by login, so that its device can be addressed). */
  const makeAdmin = async (username: string) => {
    const { createHmac } = await import('node:crypto');
    const nonce = (await hs.request('GET', '/_synapse/admin/v1/register')).body.nonce as string;
    const mac = createHmac('sha1', 'test-shared-secret').update([nonce, username, DEFAULT_PASSWORD, 'admin'].join('\x00'), 'utf8').digest('hex');
    const res = await hs.request('POST', '/_synapse/admin/v1/register', { body: { nonce, username, password: DEFAULT_PASSWORD, admin: true, mac } });
    expect(res.status).toBe(200);
    return res.body as { user_id: string; access_token: string; device_id: string };
  };

  beforeAll(async () => {
    routes = await serverRoutes();
    hs = await startServer(backend);
    admin = await makeAdmin('lr_admin');
    lockedAdmin = await makeAdmin('lr_locked_admin');
    suspendedAdmin = await makeAdmin('lr_suspended_admin');
    locked = await hs.register('lr_locked');
    signOutSessions = [await hs.login('lr_locked'), await hs.login('lr_locked')];
    const put = await hs.request('PUT', `/_matrix/client/v1/admin/lock/${encodeURIComponent(locked.user_id)}`, {
      token: admin.access_token,
      body: { locked: true },
    });
    expect(put.status).toBe(200);
    // The spec's endpoints refuse to touch admins: these two are set in the database.
    await hs.db()('users').where({ user_id: lockedAdmin.user_id }).update({ locked: true });
    await hs.db()('users').where({ user_id: suspendedAdmin.user_id }).update({ suspended: true });
  });
  afterAll(async () => {
    await hs?.stop();
  });

  /** The route's path with each parameter filled in: the caller's own user ID and device, "x" for the rest. */
  const pathFor = (r: RouteInfo, who: { user_id: string; device_id: string }) =>
    r.path.replace(/:(\w+)/g, (_m, name: string) =>
      encodeURIComponent(name === 'userId' ? who.user_id : name === 'deviceId' ? who.device_id : 'x'),
    );
  const call = (r: RouteInfo, who: { user_id: string; access_token: string; device_id: string }, method = r.method) =>
    hs.request(method, pathFor(r, who), { token: who.access_token, body: method === 'GET' || method === 'HEAD' ? undefined : {} });

  it('the route table is the whole server: every public and sign-out route named here exists, and every other route declares its auth', () => {
    expect(routes.length).toBeGreaterThan(40);
    const keys = new Set(routes.map(keyOf));
    for (const k of [...PUBLIC.keys(), ...SIGN_OUT]) expect(keys.has(k), `${k} is listed here but not served`).toBe(true);
    for (const r of routes) {
      const listed = PUBLIC.has(keyOf(r));
      // A public route declares no auth; every other route does (requireAuth or requireAdmin).
      expect({ route: keyOf(r), declared: r.auth !== null }).toEqual({ route: keyOf(r), declared: !listed });
    }
    for (const k of SIGN_OUT) expect(routes.find((r) => keyOf(r) === k)!.auth).toMatchObject({ signOut: true });
    // Only the sign-out routes are sign-out routes.
    expect(routes.filter((r) => r.auth && !r.auth.admin && r.auth.signOut).map(keyOf).sort()).toEqual([...SIGN_OUT].sort());
    expect(keys).toContain('PUT /_matrix/client/v1/admin/lock/:userId');
  });

  it('a locked account, admin or not, gets 401 M_USER_LOCKED with soft_logout: true on every authenticated route but sign-out', async () => {
    let checked = 0;
    for (const r of routes) {
      if (PUBLIC.has(keyOf(r)) || SIGN_OUT.includes(keyOf(r))) continue;
      for (const who of [locked, lockedAdmin]) {
        const res = await call(r, who);
        expect({ route: keyOf(r), status: res.status, errcode: res.body?.errcode, soft_logout: res.body?.soft_logout }).toEqual({
          route: keyOf(r),
          status: 401,
          errcode: 'M_USER_LOCKED',
          soft_logout: true,
        });
        if (r.method === 'GET') expect({ route: `HEAD ${r.path}`, status: (await call(r, who, 'HEAD')).status }).toEqual({ route: `HEAD ${r.path}`, status: 401 });
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(30);
  });

  it('public routes ignore the locked account\'s token (they never answer M_USER_LOCKED)', async () => {
    for (const r of routes.filter((x) => PUBLIC.has(keyOf(x)))) {
      const res = await call(r, locked);
      expect({ route: keyOf(r), errcode: res.body?.errcode }).not.toEqual({ route: keyOf(r), errcode: 'M_USER_LOCKED' });
    }
  });

  it('a suspended admin gets 403 M_USER_SUSPENDED on exactly the routes declared suspension-covered', async () => {
    const covered = routes.filter(suspensionCovered);
    expect(covered.length).toBeGreaterThan(0);
    for (const r of routes) {
      if (PUBLIC.has(keyOf(r)) || SIGN_OUT.includes(keyOf(r))) continue;
      const res = await call(r, suspendedAdmin);
      const suspended = res.status === 403 && res.body?.errcode === 'M_USER_SUSPENDED';
      expect({ route: keyOf(r), suspended }).toEqual({ route: keyOf(r), suspended: suspensionCovered(r) });
      if (suspended) expect(res.body).not.toHaveProperty('soft_logout');
    }
    // Still signed in and able to read.
    expect((await hs.request('GET', '/_matrix/client/v3/account/whoami', { token: suspendedAdmin.access_token })).status).toBe(200);
  });

  it('the sign-out routes work for a locked account, and end its tokens as usual', async () => {
    const [a, b] = signOutSessions;
    const whoami = (token: string) => hs.request('GET', '/_matrix/client/v3/account/whoami', { token });
    expectMatrixError(await whoami(a!.access_token), 401, 'M_USER_LOCKED');
    expect((await hs.request('POST', '/_matrix/client/v3/logout', { token: a!.access_token })).status).toBe(200);
    expectMatrixError(await whoami(a!.access_token), 401, 'M_UNKNOWN_TOKEN');
    expectMatrixError(await whoami(b!.access_token), 401, 'M_USER_LOCKED');
    expect((await hs.request('POST', '/_matrix/client/v3/logout/all', { token: b!.access_token })).status).toBe(200);
    for (const t of [b!, locked]) expectMatrixError(await whoami(t.access_token), 401, 'M_UNKNOWN_TOKEN');
  });
});
