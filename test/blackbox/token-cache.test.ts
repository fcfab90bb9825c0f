// The access-token cache (issue 15), black-box, in one process: every write
// that ends or changes what a token may do is seen by the very next request,
// although the token was just served from the cache (the cache's max age is
// an hour here, so only invalidation can explain a refusal); and a write the
// server cannot hear of (SQL behind its back) is seen within the max age.
// Several processes on one PostgreSQL: token-cache-multiprocess.test.ts.

import { createHmac } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectMatrixError } from '../support/assertions.js';
import { backends } from '../support/backends.js';
import { DEFAULT_PASSWORD, startServer, type TestServer } from '../support/server.js';

const V3 = '/_matrix/client/v3';
const ADMIN = '/_synapse/admin';
const enc = encodeURIComponent;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Session {
  user_id: string;
  access_token: string;
  device_id: string;
  refresh_token?: string;
}

/** Shared-secret registration: the only way to make an admin. */
async function sharedSecretAccount(hs: TestServer, username: string, admin: boolean): Promise<Session> {
  const nonce = (await hs.request('GET', `${ADMIN}/v1/register`)).body.nonce as string;
  const mac = createHmac('sha1', 'test-shared-secret')
    .update([nonce, username, DEFAULT_PASSWORD, admin ? 'admin' : 'notadmin'].join('\x00'), 'utf8')
    .digest('hex');
  const res = await hs.request('POST', `${ADMIN}/v1/register`, { body: { nonce, username, password: DEFAULT_PASSWORD, admin, mac } });
  expect(res.status).toBe(200);
  return res.body as Session;
}

const whoami = (hs: TestServer, token: string) => hs.request('GET', `${V3}/account/whoami`, { token });

/** Serves the token twice, so that the second (at least) comes from the cache. */
async function warm(hs: TestServer, token: string): Promise<void> {
  for (let i = 0; i < 2; i++) expect((await whoami(hs, token)).status).toBe(200);
}

const passwordAuth = (userId: string) => ({ type: 'm.login.password', identifier: { type: 'm.id.user', user: userId }, password: DEFAULT_PASSWORD });

/** A request behind user-interactive auth, with the password stage completed in the first round. */
async function withPassword(hs: TestServer, method: string, path: string, token: string, userId: string, body: Record<string, unknown> = {}) {
  const first = await hs.request(method, path, { token, body });
  expect(first.status).toBe(401);
  return hs.request(method, path, { token, body: { ...body, auth: { ...passwordAuth(userId), session: first.body.session } } });
}

describe.each(backends())('access-token cache, one process (%s)', (backend) => {
  let hs: TestServer;
  let admin: Session;
  let n = 0;
  /** A fresh account, signed in; a second device when asked. */
  const account = async (devices = 1): Promise<Session[]> => {
    const name = `tc_${backend}_${++n}`;
    const first = (await hs.register(name)) as Session;
    const more: Session[] = [];
    for (let i = 1; i < devices; i++) more.push((await hs.login(name)) as Session);
    return [first, ...more];
  };

  beforeAll(async () => {
    hs = await startServer(backend, {
      caches: { access_token_max_age: '1h' },
      refreshable_access_token_lifetime: '1h',
      allow_guest_access: true,
    });
    admin = await sharedSecretAccount(hs, `tc_admin_${backend}`, true);
  });
  afterAll(async () => {
    await hs?.stop();
  });

  // Each row: make the change through the API right after the token was served from the cache;
  // the next request with that token must see it.
  const REVOKED: { name: string; change: (a: Session[]) => Promise<{ status: number }>; devices?: number }[] = [
    { name: 'logout', change: ([a]) => hs.request('POST', `${V3}/logout`, { token: a!.access_token }) },
    { name: 'logout/all from another device', devices: 2, change: ([, b]) => hs.request('POST', `${V3}/logout/all`, { token: b!.access_token }) },
    {
      name: 'password change (other devices signed out)',
      devices: 2,
      change: ([, b]) => withPassword(hs, 'POST', `${V3}/account/password`, b!.access_token, b!.user_id, { new_password: 'a new long password 1' }),
    },
    {
      name: 'device deletion from another device',
      devices: 2,
      change: ([a, b]) => withPassword(hs, 'DELETE', `${V3}/devices/${enc(a!.device_id)}`, b!.access_token, b!.user_id),
    },
    {
      name: 'delete_devices from another device',
      devices: 2,
      change: ([a, b]) => withPassword(hs, 'POST', `${V3}/delete_devices`, b!.access_token, b!.user_id, { devices: [a!.device_id] }),
    },
    { name: 'deactivation', change: ([a]) => withPassword(hs, 'POST', `${V3}/account/deactivate`, a!.access_token, a!.user_id) },
    {
      name: 'sign-in again on the same device ID',
      change: ([a]) => hs.request('POST', `${V3}/login`, { body: { ...passwordAuth(a!.user_id), device_id: a!.device_id } }),
    },
    {
      name: 'admin reset_password with logout_devices',
      change: ([a]) =>
        hs.request('POST', `${ADMIN}/v1/reset_password/${enc(a!.user_id)}`, { token: admin.access_token, body: { new_password: 'another long password', logout_devices: true } }),
    },
    { name: 'admin device deletion', change: ([a]) => hs.request('DELETE', `${ADMIN}/v2/users/${enc(a!.user_id)}/devices/${enc(a!.device_id)}`, { token: admin.access_token }) },
    { name: 'admin deactivation', change: ([a]) => hs.request('POST', `${ADMIN}/v1/deactivate/${enc(a!.user_id)}`, { token: admin.access_token, body: {} }) },
    { name: 'admin v2 PUT deactivated', change: ([a]) => hs.request('PUT', `${ADMIN}/v2/users/${enc(a!.user_id)}`, { token: admin.access_token, body: { deactivated: true } }) },
    {
      name: 'admin v2 PUT password (logout_devices defaults to true)',
      change: ([a]) => hs.request('PUT', `${ADMIN}/v2/users/${enc(a!.user_id)}`, { token: admin.access_token, body: { password: 'yet another long password' } }),
    },
  ];

  it.each(REVOKED)('$name: the cached token is refused at once (401 M_UNKNOWN_TOKEN)', async ({ change, devices }) => {
    const sessions = await account(devices ?? 1);
    await warm(hs, sessions[0]!.access_token);
    expect((await change(sessions)).status).toBe(200);
    expectMatrixError(await whoami(hs, sessions[0]!.access_token), 401, 'M_UNKNOWN_TOKEN');
    // The other device of a device deletion keeps working.
    if (devices === 2) expect((await whoami(hs, sessions[1]!.access_token)).status).toBeLessThan(402);
  });

  const CHANGED: { name: string; change: (a: Session) => Promise<{ status: number }>; check: (a: Session) => Promise<void> }[] = [
    {
      name: 'lock (MSC4323): 401 M_USER_LOCKED',
      change: (a) => hs.request('PUT', `/_matrix/client/v1/admin/lock/${enc(a.user_id)}`, { token: admin.access_token, body: { locked: true } }),
      check: async (a) => expectMatrixError(await whoami(hs, a.access_token), 401, 'M_USER_LOCKED'),
    },
    {
      name: 'admin v2 PUT locked: 401 M_USER_LOCKED',
      change: (a) => hs.request('PUT', `${ADMIN}/v2/users/${enc(a.user_id)}`, { token: admin.access_token, body: { locked: true } }),
      check: async (a) => expectMatrixError(await whoami(hs, a.access_token), 401, 'M_USER_LOCKED'),
    },
    {
      name: 'suspension (Synapse admin API): writes are 403 M_USER_SUSPENDED',
      change: (a) => hs.request('PUT', `${ADMIN}/v1/suspend/${enc(a.user_id)}`, { token: admin.access_token, body: { suspend: true } }),
      check: async (a) => {
        const res = await hs.request('PUT', `${V3}/profile/${enc(a.user_id)}/displayname`, { token: a.access_token, body: { displayname: 'x' } });
        expectMatrixError(res, 403, 'M_USER_SUSPENDED');
      },
    },
    {
      name: 'approval withdrawn (admin v2 PUT approved: false): 403 M_USER_AWAITING_APPROVAL',
      change: (a) => hs.request('PUT', `${ADMIN}/v2/users/${enc(a.user_id)}`, { token: admin.access_token, body: { approved: false } }),
      check: async (a) => expectMatrixError(await whoami(hs, a.access_token), 403, 'M_USER_AWAITING_APPROVAL'),
    },
  ];

  it.each(CHANGED)('$name, at once', async ({ change, check }) => {
    const [a] = await account();
    await warm(hs, a!.access_token);
    // Warm the write route too: it authenticates through the same cache.
    expect((await hs.request('PUT', `${V3}/profile/${enc(a!.user_id)}/displayname`, { token: a!.access_token, body: { displayname: 'y' } })).status).toBe(200);
    expect((await change(a!)).status).toBe(200);
    await check(a!);
  });

  it('unlock and unsuspend are seen at once too', async () => {
    const [a] = await account();
    const lock = (locked: boolean) => hs.request('PUT', `/_matrix/client/v1/admin/lock/${enc(a!.user_id)}`, { token: admin.access_token, body: { locked } });
    expect((await lock(true)).status).toBe(200);
    for (let i = 0; i < 2; i++) expectMatrixError(await whoami(hs, a!.access_token), 401, 'M_USER_LOCKED');
    expect((await lock(false)).status).toBe(200);
    expect((await whoami(hs, a!.access_token)).status).toBe(200);

    const suspend = (s: boolean) => hs.request('PUT', `${ADMIN}/v1/suspend/${enc(a!.user_id)}`, { token: admin.access_token, body: { suspend: s } });
    const write = () => hs.request('PUT', `${V3}/profile/${enc(a!.user_id)}/displayname`, { token: a!.access_token, body: { displayname: 'z' } });
    expect((await suspend(true)).status).toBe(200);
    expectMatrixError(await write(), 403, 'M_USER_SUSPENDED');
    expect((await suspend(false)).status).toBe(200);
    expect((await write()).status).toBe(200);
  });

  it('the admin flag taken away (v1 PUT admin, and v2 PUT admin): admin routes refuse the cached token at once', async () => {
    for (const how of ['v1', 'v2'] as const) {
      const other = await sharedSecretAccount(hs, `tc_admin_${backend}_${how}`, true);
      const list = () => hs.request('GET', `${ADMIN}/v2/users`, { token: other.access_token });
      for (let i = 0; i < 2; i++) expect((await list()).status).toBe(200);
      const res =
        how === 'v1'
          ? await hs.request('PUT', `${ADMIN}/v1/users/${enc(other.user_id)}/admin`, { token: admin.access_token, body: { admin: false } })
          : await hs.request('PUT', `${ADMIN}/v2/users/${enc(other.user_id)}`, { token: admin.access_token, body: { admin: false } });
      expect(res.status).toBe(200);
      expectMatrixError(await list(), 403, 'M_FORBIDDEN');
    }
  });

  it('refresh rotation: once the new access token is used, the old one is refused at once', async () => {
    const name = `tc_refresh_${backend}`;
    await hs.register(name);
    const first = (await hs.login(name, DEFAULT_PASSWORD, { refresh_token: true })) as Session;
    expect(first.refresh_token).toBeDefined();
    await warm(hs, first.access_token);
    const refreshed = await hs.request('POST', `${V3}/refresh`, { body: { refresh_token: first.refresh_token } });
    expect(refreshed.status).toBe(200);
    // Until the new pair is used, the old token still works (spec: /refresh).
    expect((await whoami(hs, first.access_token)).status).toBe(200);
    await warm(hs, refreshed.body.access_token);
    expectMatrixError(await whoami(hs, first.access_token), 401, 'M_UNKNOWN_TOKEN');
    // A second refresh with the old refresh token replaces nothing any more.
    expectMatrixError(await hs.request('POST', `${V3}/refresh`, { body: { refresh_token: first.refresh_token } }), 401, 'M_UNKNOWN_TOKEN');
  });

  it('a guest upgraded to a full account: its cached token says is_guest false at once', async () => {
    const guest = await hs.request('POST', `${V3}/register?kind=guest`, { body: {} });
    expect(guest.status).toBe(200);
    const token = guest.body.access_token as string;
    for (let i = 0; i < 2; i++) expect((await whoami(hs, token)).body.is_guest).toBe(true);
    const localpart = (guest.body.user_id as string).slice(1).split(':')[0];
    const upgrade = await hs.request('POST', `${V3}/register`, {
      body: { username: localpart, password: DEFAULT_PASSWORD, guest_access_token: token, auth: { type: 'm.login.dummy' } },
    });
    expect(upgrade.status).toBe(200);
    const after = await whoami(hs, token);
    expect(after.status).toBe(200);
    expect(after.body.is_guest).toBe(false);
  });

  it('an unknown token is never cached: a token is refused, whatever was asked before', async () => {
    for (let i = 0; i < 3; i++) expectMatrixError(await whoami(hs, 'syt_not_a_token'), 401, 'M_UNKNOWN_TOKEN');
    // Wrong types and huge values change nothing and answer 401.
    expectMatrixError(await whoami(hs, 'x'.repeat(10_000)), 401, 'M_UNKNOWN_TOKEN');
  });
});

describe.each(backends())('access-token cache, writes it cannot hear of (%s)', (backend) => {
  let hs: TestServer;
  beforeAll(async () => {
    hs = await startServer(backend, { caches: { access_token_max_age: '1500ms' } });
  });
  afterAll(async () => {
    await hs?.stop();
  });

  it('SQL behind the server\'s back is seen within the max age (and not before: the token was cached)', async () => {
    const a = (await hs.register(`tc_sql_${backend}`)) as Session;
    await warm(hs, a.access_token);
    const changedAt = Date.now();
    await hs.db()('users').where({ user_id: a.user_id }).update({ locked: true });
    // Served from the cache: the server cannot know yet.
    expect((await whoami(hs, a.access_token)).status).toBe(200);
    let refusedAt = 0;
    while (Date.now() - changedAt < 5_000) {
      const res = await whoami(hs, a.access_token);
      if (res.status === 401) {
        expectMatrixError(res, 401, 'M_USER_LOCKED');
        refusedAt = Date.now();
        break;
      }
      await sleep(50);
    }
    expect(refusedAt).toBeGreaterThan(0);
    // Within the max age of the entry (read before the change), plus a request's time.
    expect(refusedAt - changedAt).toBeLessThan(1500 + 500);
  });
});

describe.each(backends())('access-token cache turned off (%s)', (backend) => {
  let hs: TestServer;
  beforeAll(async () => {
    hs = await startServer(backend, { caches: { access_token_max_entries: 0 } });
  });
  afterAll(async () => {
    await hs?.stop();
  });

  it('with access_token_max_entries: 0 every request reads the database', async () => {
    const a = (await hs.register(`tc_off_${backend}`)) as Session;
    await warm(hs, a.access_token);
    await hs.db()('users').where({ user_id: a.user_id }).update({ locked: true });
    expectMatrixError(await whoami(hs, a.access_token), 401, 'M_USER_LOCKED');
  });
});
