// Pushers, black-box: set, list, update, delete, append, validation, and the
// pushers going with their session (password change, logout, deactivation).

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { countRows, expectMatrixError, expectNoChange } from '../support/assertions.js';
import { backends } from '../support/backends.js';
import { DEFAULT_PASSWORD, startServer, type TestServer } from '../support/server.js';

const V3 = '/_matrix/client/v3';
const URL_OK = 'https://push.example.org/_matrix/push/v1/notify';

const pusher = (pushkey: string, extra: Record<string, unknown> = {}) => ({
  kind: 'http',
  app_id: 'org.example.app',
  pushkey,
  app_display_name: 'Example',
  device_display_name: 'Phone',
  lang: 'en',
  data: { url: URL_OK, format: 'event_id_only', custom: 1 },
  ...extra,
});

describe.each(backends())('pushers (%s)', (backend) => {
  let hs: TestServer;
  beforeAll(async () => {
    hs = await startServer(backend);
  });
  afterAll(async () => {
    await hs?.stop();
  });
  const set = (token: string, body: unknown) => hs.request('POST', `${V3}/pushers/set`, { token, body });
  const list = async (token: string) => (await hs.request('GET', `${V3}/pushers`, { token })).body.pushers;
  const login = async (user: string) =>
    (await hs.request('POST', `${V3}/login`, { body: { type: 'm.login.password', identifier: { type: 'm.id.user', user }, password: DEFAULT_PASSWORD } })).body;

  it('sets, lists, updates and deletes pushers', async () => {
    const u = await hs.register('pu_basic');
    expect(await list(u.access_token)).toEqual([]);
    expect((await set(u.access_token, pusher('key1', { profile_tag: 'tag' }))).status).toBe(200);
    expect(await list(u.access_token)).toEqual([
      {
        kind: 'http',
        app_id: 'org.example.app',
        pushkey: 'key1',
        app_display_name: 'Example',
        device_display_name: 'Phone',
        profile_tag: 'tag',
        lang: 'en',
        data: { url: URL_OK, format: 'event_id_only', custom: 1 },
      },
    ]);
    // Same app_id + pushkey updates it.
    expect((await set(u.access_token, pusher('key1', { lang: 'fr' }))).status).toBe(200);
    const one = await list(u.access_token);
    expect(one).toHaveLength(1);
    expect(one[0].lang).toBe('fr');
    expect(one[0].profile_tag).toBeUndefined();
    // kind: null deletes (and deleting one that does not exist is fine).
    expect((await set(u.access_token, { kind: null, app_id: 'org.example.app', pushkey: 'key1' })).status).toBe(200);
    expect(await list(u.access_token)).toEqual([]);
    expect((await set(u.access_token, { kind: null, app_id: 'org.example.app', pushkey: 'key1' })).status).toBe(200);
  });

  it('without append, the same app and pushkey stop pushing for other users', async () => {
    const a = await hs.register('pu_append_a');
    const b = await hs.register('pu_append_b');
    expect((await set(a.access_token, pusher('shared'))).status).toBe(200);
    expect((await set(b.access_token, pusher('shared', { append: true }))).status).toBe(200);
    expect(await list(a.access_token)).toHaveLength(1);
    expect(await list(b.access_token)).toHaveLength(1);
    expect((await set(b.access_token, pusher('shared'))).status).toBe(200);
    expect(await list(a.access_token)).toEqual([]);
    expect(await list(b.access_token)).toHaveLength(1);
  });

  it('refuses bad pushers, changing nothing', async () => {
    const u = await hs.register('pu_bad');
    await expectNoChange(
      hs,
      async () => {
        const cases: [unknown, string][] = [
          [{ app_id: 'a', pushkey: 'k' }, 'M_MISSING_PARAM'],
          [{ kind: null, pushkey: 'k' }, 'M_MISSING_PARAM'],
          [pusher('k', { app_id: 'x'.repeat(65) }), 'M_BAD_JSON'],
          [pusher('k'.repeat(513)), 'M_BAD_JSON'],
          [pusher('é'.repeat(300)), 'M_BAD_JSON'],
          [pusher('k', { kind: 'email' }), 'M_INVALID_PARAM'],
          [pusher('k', { kind: 'carrier-pigeon' }), 'M_INVALID_PARAM'],
          [pusher('k', { kind: 5 }), 'M_BAD_JSON'],
          [pusher('k', { lang: undefined }), 'M_MISSING_PARAM'],
          [pusher('k', { data: undefined }), 'M_MISSING_PARAM'],
          [pusher('k', { data: [] }), 'M_BAD_JSON'],
          [pusher('k', { data: {} }), 'M_MISSING_PARAM'],
          [pusher('k', { data: { url: 'not a url' } }), 'M_INVALID_PARAM'],
          [pusher('k', { data: { url: 'http://push.example.org/_matrix/push/v1/notify' } }), 'M_INVALID_PARAM'],
          [pusher('k', { data: { url: 'https://push.example.org/other' } }), 'M_INVALID_PARAM'],
          [pusher('k', { data: { url: URL_OK, format: 'full' } }), 'M_INVALID_PARAM'],
          [pusher('k', { append: 'yes' }), 'M_BAD_JSON'],
          [pusher('k', { device_display_name: 'a\u0000b' }), 'M_BAD_JSON'],
          [[], 'M_BAD_JSON'],
        ];
        for (const [body, errcode] of cases) expectMatrixError(await set(u.access_token, body), 400, errcode);
      },
      ['pushers'],
    );
    expect(await list(u.access_token)).toEqual([]);
  });

  it('a password change removes the pushers of the other sessions; deactivation removes all', async () => {
    const u = await hs.register('pu_sessions');
    const other = await login('pu_sessions');
    expect((await set(u.access_token, pusher('mine'))).status).toBe(200);
    expect((await set(other.access_token, pusher('theirs'))).status).toBe(200);
    expect(await countRows(hs, 'pushers', { user_id: u.user_id })).toBe(2);
    const auth = { type: 'm.login.password', identifier: { type: 'm.id.user', user: 'pu_sessions' }, password: DEFAULT_PASSWORD };
    const pw = await hs.request('POST', `${V3}/account/password`, { token: u.access_token, body: { new_password: 'a-New-passw0rd-for-pushers', auth } });
    expect(pw.status).toBe(200);
    expect((await list(u.access_token)).map((p: { pushkey: string }) => p.pushkey)).toEqual(['mine']);
    // Logging out removes the session's pushers.
    const third = (
      await hs.request('POST', `${V3}/login`, {
        body: { type: 'm.login.password', identifier: { type: 'm.id.user', user: 'pu_sessions' }, password: 'a-New-passw0rd-for-pushers' },
      })
    ).body;
    expect((await set(third.access_token, pusher('third'))).status).toBe(200);
    expect((await hs.request('POST', `${V3}/logout`, { token: third.access_token })).status).toBe(200);
    expect(await countRows(hs, 'pushers', { user_id: u.user_id })).toBe(1);
    const deactivate = await hs.request('POST', `${V3}/account/deactivate`, {
      token: u.access_token,
      body: { auth: { ...auth, password: 'a-New-passw0rd-for-pushers' } },
    });
    expect(deactivate.status).toBe(200);
    expect(await countRows(hs, 'pushers', { user_id: u.user_id })).toBe(0);
  });
});
