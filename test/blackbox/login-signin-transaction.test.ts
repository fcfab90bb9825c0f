// The password sign-in's transaction (on SQLite a prepared one on the writer
// connection, on PostgreSQL knex's), seen from outside: parallel sign-ins on
// one device ID leave one device and one working token pair, a sign-in on a
// device ID ends its earlier (cached) token at once, and sign-ins running
// alongside other writes all complete without interleaving with them.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { countRows, expectMatrixError } from '../support/assertions.js';
import { backends } from '../support/backends.js';
import { DEFAULT_PASSWORD, startServer, type TestServer } from '../support/server.js';

const V3 = '/_matrix/client/v3';

describe.each(backends())('password sign-in transaction (%s)', (backend) => {
  let hs: TestServer;
  beforeAll(async () => {
    hs = await startServer(backend, { refreshable_access_token_lifetime: '1h', session_lifetime: '2h' });
  });
  afterAll(async () => {
    await hs?.stop();
  });

  const login = (user: string, extra: Record<string, unknown> = {}) =>
    hs.request('POST', `${V3}/login`, { body: { type: 'm.login.password', identifier: { type: 'm.id.user', user }, password: DEFAULT_PASSWORD, ...extra } });
  const whoami = (token: string) => hs.request('GET', `${V3}/account/whoami`, { token });

  it('parallel sign-ins on one device ID: all answer 200, one device and one token pair remain, and only its access token works', async () => {
    const u = await hs.register('same_dev');
    const results = await Promise.all(Array.from({ length: 8 }, () => login('same_dev', { device_id: 'SAMEDEV', refresh_token: true })));
    for (const r of results) {
      expect(r.status, r.text).toBe(200);
      expect(r.body.device_id).toBe('SAMEDEV');
      expect(typeof r.body.refresh_token).toBe('string');
      // session_lifetime (2 h) caps nothing here: the refreshable lifetime (1 h) is shorter.
      expect(r.body.expires_in_ms).toBe(3_600_000);
    }
    expect(await countRows(hs, 'devices', { user_id: u.user_id, device_id: 'SAMEDEV' })).toBe(1);
    expect(await countRows(hs, 'access_tokens', { user_id: u.user_id, device_id: 'SAMEDEV' })).toBe(1);
    expect(await countRows(hs, 'refresh_tokens', { user_id: u.user_id, device_id: 'SAMEDEV' })).toBe(1);
    const working = [];
    for (const r of results) if ((await whoami(r.body.access_token)).status === 200) working.push(r);
    expect(working).toHaveLength(1);
    // The surviving pair's refresh token refreshes; the others' are gone.
    const refreshed = await Promise.all(results.map((r) => hs.request('POST', `${V3}/refresh`, { body: { refresh_token: r.body.refresh_token } })));
    expect(refreshed.filter((r) => r.status === 200)).toHaveLength(1);
    expect(refreshed[results.indexOf(working[0]!)]!.status).toBe(200);
    // The registration's device is untouched.
    expect((await whoami(u.access_token)).status).toBe(200);
  });

  it('a sign-in on a device ID ends the earlier token of that device at once, though it was just used (cached)', async () => {
    await hs.register('recached');
    const first = await login('recached', { device_id: 'CACHEDEV' });
    expect(first.status, first.text).toBe(200);
    for (let i = 0; i < 3; i++) expect((await whoami(first.body.access_token)).status).toBe(200);
    const second = await login('recached', { device_id: 'CACHEDEV' });
    expect(second.status, second.text).toBe(200);
    expectMatrixError(await whoami(first.body.access_token), 401, 'M_UNKNOWN_TOKEN');
    expect((await whoami(second.body.access_token)).body.device_id).toBe('CACHEDEV');
  });

  it('sign-ins alongside other writes (registrations, device renames) all complete, and each of their tokens works', async () => {
    const u = await hs.register('busy_writer');
    const renames = Array.from({ length: 10 }, (_, i) =>
      hs.request('PUT', `${V3}/devices/${encodeURIComponent(u.device_id)}`, { token: u.access_token, body: { display_name: `name ${i}` } }),
    );
    const registrations = Array.from({ length: 3 }, (_, i) => hs.request('POST', `${V3}/register`, { body: { username: `busy_reg${i}`, password: DEFAULT_PASSWORD, auth: { type: 'm.login.dummy' } } }));
    const logins = Array.from({ length: 6 }, (_, i) => login('busy_writer', i % 2 ? { device_id: `BUSY${i}` } : {}));
    const [renamed, registered, signedIn] = await Promise.all([Promise.all(renames), Promise.all(registrations), Promise.all(logins)]);
    for (const r of [...renamed, ...registered, ...signedIn]) expect(r.status, r.text).toBe(200);
    for (const r of signedIn) expect((await whoami(r.body.access_token)).body).toEqual({ user_id: u.user_id, device_id: r.body.device_id, is_guest: false });
    // The registration's device and one per sign-in.
    expect(await countRows(hs, 'devices', { user_id: u.user_id })).toBe(7);
    expect(await countRows(hs, 'access_tokens', { user_id: u.user_id })).toBe(7);
  });
});
