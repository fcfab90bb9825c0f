// User-interactive auth through HTTP, on the endpoints that use it for
// re-authentication (m.login.password): sessions are bound to one operation,
// one user and one request body; failures leave everything as it was.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends, describeOnPostgres } from '../support/backends.js';
import { expectMatrixError } from '../support/assertions.js';
import { DEFAULT_PASSWORD, startServer, type TestServer } from '../support/server.js';

const V3 = '/_matrix/client/v3';
const PASSWORD_FLOWS = [{ stages: ['m.login.password'] }];

describe.each(backends())('UIA over HTTP (%s)', (backend) => {
  let hs: TestServer;
  beforeAll(async () => {
    hs = await startServer(backend);
  });
  afterAll(async () => {
    await hs?.stop();
  });

  const password = (user: string, session?: string, pw = DEFAULT_PASSWORD) => ({
    type: 'm.login.password',
    identifier: { type: 'm.id.user', user },
    password: pw,
    ...(session === undefined ? {} : { session }),
  });
  const deviceIds = async (userId: string) =>
    (await hs.db()('devices').where({ user_id: userId }).orderBy('device_id')).map((d: { device_id: string }) => d.device_id);
  const tokenCount = async (userId: string) =>
    Number((await hs.db()('access_tokens').where({ user_id: userId }).count<{ n: number }[]>({ n: '*' }).first())?.n);
  const sessionRow = (session: string) => hs.db()('uia_sessions').where({ session_id: session }).first();

  /** A user with three devices: the returned token's and two more. */
  async function userWithDevices(name: string) {
    const reg = await hs.register(name);
    const b = await hs.login(name);
    const c = await hs.login(name);
    return { userId: reg.user_id, token: reg.access_token, main: reg.device_id, b, c };
  }

  async function begin(path: string, token: string, body: Record<string, unknown>, method = 'POST'): Promise<string> {
    const res = await hs.request(method, V3 + path, { token, body });
    expect(res.status).toBe(401);
    expect(res.body.flows).toEqual(PASSWORD_FLOWS);
    expect(typeof res.body.session).toBe('string');
    return res.body.session;
  }

  it('refuses to let a session begun for /account/deactivate authorise /delete_devices (403)', async () => {
    const u = await userWithDevices('uia_op');
    const s = await begin('/account/deactivate', u.token, {});
    const res = await hs.request('POST', `${V3}/delete_devices`, {
      token: u.token,
      body: { devices: [u.b.device_id], auth: password('uia_op', s) },
    });
    expect(res.status).toBe(403);
    expect(res.body.errcode).toBe('M_FORBIDDEN');
    // Nothing changed: the device and the account are as they were, the session still belongs to deactivate.
    expect(await deviceIds(u.userId)).toEqual([u.main, u.b.device_id, u.c.device_id].sort());
    expect((await hs.request('GET', `${V3}/account/whoami`, { token: u.b.access_token })).status).toBe(200);
    expect(!!(await hs.db()('users').where({ user_id: u.userId }).first()).deactivated).toBe(false);
    const row = await sessionRow(s);
    expect(row.operation).toBe('POST /account/deactivate');
    expect(JSON.parse(row.completed)).toEqual([]);

    // Nor DELETE /devices/{id}: each device path is its own operation.
    const d = await begin(`/devices/${u.b.device_id}`, u.token, {}, 'DELETE');
    const other = await hs.request('DELETE', `${V3}/devices/${u.c.device_id}`, { token: u.token, body: { auth: password('uia_op', d) } });
    expect(other.status).toBe(403);
    expect(other.body.errcode).toBe('M_FORBIDDEN');
    expect(await deviceIds(u.userId)).toHaveLength(3);
  });

  it('refuses a session begun by one user when another user continues it (403)', async () => {
    const a = await hs.register('uia_owner');
    const m = await hs.register('uia_thief');
    const thiefSecond = await hs.login('uia_thief');
    const s = await begin('/delete_devices', a.access_token, { devices: [thiefSecond.device_id] });
    const res = await hs.request('POST', `${V3}/delete_devices`, {
      token: m.access_token,
      body: { devices: [thiefSecond.device_id], auth: password('uia_thief', s) },
    });
    expect(res.status).toBe(403);
    expect(res.body.errcode).toBe('M_FORBIDDEN');
    expect(await deviceIds(m.user_id)).toEqual([m.device_id, thiefSecond.device_id].sort());
  });

  it('binds a session to the request body: delete_devices [A] then [A,B] is 403, then [A] goes through', async () => {
    const u = await userWithDevices('uia_bind');
    const s = await begin('/delete_devices', u.token, { devices: [u.b.device_id] });
    const widened = await hs.request('POST', `${V3}/delete_devices`, {
      token: u.token,
      body: { devices: [u.b.device_id, u.c.device_id], auth: password('uia_bind', s) },
    });
    expect(widened.status).toBe(403);
    expect(widened.body.errcode).toBe('M_FORBIDDEN');
    expect(await deviceIds(u.userId)).toEqual([u.main, u.b.device_id, u.c.device_id].sort());
    expect((await hs.request('GET', `${V3}/account/whoami`, { token: u.c.access_token })).status).toBe(200);

    // The refused request did not spend the session: the original body completes it.
    const ok = await hs.request('POST', `${V3}/delete_devices`, {
      token: u.token,
      body: { devices: [u.b.device_id], auth: password('uia_bind', s) },
    });
    expect(ok.status).toBe(200);
    expect(await deviceIds(u.userId)).toEqual([u.main, u.c.device_id].sort());
    // The session is spent: it records the completion until it expires.
    expect(JSON.parse((await sessionRow(s)).result)).toEqual({ value: {} });
  });

  it('binds /account/password to logout_devices (the new password itself is not part of the binding)', async () => {
    const u = await userWithDevices('uia_pwbind');
    const before = (await hs.db()('users').where({ user_id: u.userId }).first()).password_hash;
    const s = await begin('/account/password', u.token, { new_password: 'first new password', logout_devices: false });
    const res = await hs.request('POST', `${V3}/account/password`, {
      token: u.token,
      body: { new_password: 'first new password', logout_devices: true, auth: password('uia_pwbind', s) },
    });
    expect(res.status).toBe(403);
    expect(res.body.errcode).toBe('M_FORBIDDEN');
    expect((await hs.db()('users').where({ user_id: u.userId }).first()).password_hash).toBe(before);
    expect(await deviceIds(u.userId)).toHaveLength(3);
  });

  it('answers a wrong password with 401 M_FORBIDDEN plus the flows and the same session, changing nothing', async () => {
    const u = await userWithDevices('uia_wrongpw');
    const s = await begin('/delete_devices', u.token, { devices: [u.b.device_id] });
    const res = await hs.request('POST', `${V3}/delete_devices`, {
      token: u.token,
      body: { devices: [u.b.device_id], auth: password('uia_wrongpw', s, 'not the password') },
    });
    expect(res.status).toBe(401);
    expect(res.body.errcode).toBe('M_FORBIDDEN');
    expect(typeof res.body.error).toBe('string');
    expect(res.body.flows).toEqual(PASSWORD_FLOWS);
    expect(res.body.session).toBe(s);
    expect(res.body.completed).toEqual([]);
    expect(await deviceIds(u.userId)).toHaveLength(3);
    expect((await hs.request('GET', `${V3}/account/whoami`, { token: u.b.access_token })).status).toBe(200);
    expect(JSON.parse((await sessionRow(s)).completed)).toEqual([]);

    // Without a session, a wrong password opens one and still fails.
    const fresh = await hs.request('DELETE', `${V3}/devices/${u.c.device_id}`, {
      token: u.token,
      body: { auth: password('uia_wrongpw', undefined, 'also wrong') },
    });
    expect(fresh.status).toBe(401);
    expect(fresh.body.errcode).toBe('M_FORBIDDEN');
    expect(fresh.body.flows).toEqual(PASSWORD_FLOWS);
    expect(typeof fresh.body.session).toBe('string');
    expect(await deviceIds(u.userId)).toHaveLength(3);
  });

  it('refuses an identifier naming another user with a plain 403, even with that user\'s correct password', async () => {
    const u = await userWithDevices('uia_ident');
    await hs.register('uia_other');
    for (const auth of [
      password('uia_other'),
      password('@uia_other:test.local'),
      { type: 'm.login.password', user: 'uia_other', password: DEFAULT_PASSWORD },
    ]) {
      const res = await hs.request('POST', `${V3}/delete_devices`, { token: u.token, body: { devices: [u.b.device_id], auth } });
      // Not a failed stage to retry (no 401 challenge): the request itself is refused.
      expect(res.status, JSON.stringify(auth)).toBe(403);
      expect(res.body.errcode).toBe('M_FORBIDDEN');
      expect(res.body.flows).toBeUndefined();
    }
    expect(await deviceIds(u.userId)).toHaveLength(3);
    expect((await hs.request('GET', `${V3}/account/whoami`, { token: u.b.access_token })).status).toBe(200);
  });

  it('completes the password stage without a session in one request (full user ID, legacy user field, or no identifier)', async () => {
    const u = await userWithDevices('uia_onego');
    const d = await hs.login('uia_onego');
    const cases: [string, Record<string, unknown>][] = [
      [u.b.device_id, password('uia_onego')],
      [u.c.device_id, { type: 'm.login.password', user: '@uia_onego:test.local', password: DEFAULT_PASSWORD }],
      [d.device_id, { type: 'm.login.password', password: DEFAULT_PASSWORD }],
    ];
    for (const [device, auth] of cases) {
      const res = await hs.request('DELETE', `${V3}/devices/${device}`, { token: u.token, body: { auth } });
      expect(res.status, JSON.stringify(auth)).toBe(200);
      expect(res.body).toEqual({});
      expect(await deviceIds(u.userId)).not.toContain(device);
    }
    expect(await deviceIds(u.userId)).toEqual([u.main]);
    // Each request's session is completed (kept until it expires, for a repeat of the request).
    const rows = await hs.db()('uia_sessions').where({ user_id: u.userId });
    expect(rows).toHaveLength(3);
    for (const row of rows) expect(JSON.parse(row.result)).toEqual({ value: {} });
  });

  it('refuses an auth type the flows do not offer with 400 M_UNRECOGNIZED (m.login.dummy included)', async () => {
    const u = await userWithDevices('uia_badtype');
    const s = await begin('/delete_devices', u.token, { devices: [u.b.device_id] });
    for (const auth of [
      { type: 'm.login.bogus', session: s },
      { type: 'm.login.dummy', session: s },
      { type: 'm.login.dummy' },
      { type: 'm.login.registration_token', token: 'x' },
    ]) {
      const res = await hs.request('POST', `${V3}/delete_devices`, { token: u.token, body: { devices: [u.b.device_id], auth } });
      expect(res.status, JSON.stringify(auth)).toBe(400);
      expect(res.body.errcode).toBe('M_UNRECOGNIZED');
    }
    expect(await deviceIds(u.userId)).toHaveLength(3);
    expect(JSON.parse((await sessionRow(s)).completed)).toEqual([]);
  });

  it('refuses malformed auth: not an object, session or type of the wrong type, password not a string', async () => {
    const u = await userWithDevices('uia_badauth');
    for (const auth of ['m.login.password', 7, ['m.login.password'], { type: 1 }, { session: 12 }, { type: 'm.login.password', password: 12345 }]) {
      const res = await hs.request('POST', `${V3}/delete_devices`, { token: u.token, body: { devices: [u.b.device_id], auth } });
      expect(res.status, JSON.stringify(auth)).toBe(400);
      expect(res.body.errcode).toBe('M_BAD_JSON');
    }
    expect(await deviceIds(u.userId)).toHaveLength(3);
  });

  it('refuses an unknown session with 400; a used session answers a repeat of its request and authorises nothing else', async () => {
    const u = await userWithDevices('uia_used');
    const unknown = await hs.request('POST', `${V3}/delete_devices`, {
      token: u.token,
      body: { devices: [u.b.device_id], auth: password('uia_used', 'no-such-session') },
    });
    expect(unknown.status).toBe(400);
    expect(unknown.body.errcode).toBe('M_UNKNOWN');
    expect(await deviceIds(u.userId)).toHaveLength(3);

    const s = await begin('/delete_devices', u.token, { devices: [u.b.device_id] });
    const ok = await hs.request('POST', `${V3}/delete_devices`, { token: u.token, body: { devices: [u.b.device_id], auth: password('uia_used', s) } });
    expect(ok.status).toBe(200);
    expect(await deviceIds(u.userId)).toEqual([u.main, u.c.device_id].sort());
    // A repeat (lost response) is answered as the first request was, and does nothing again.
    const replay = await hs.request('POST', `${V3}/delete_devices`, { token: u.token, body: { devices: [u.b.device_id], auth: password('uia_used', s) } });
    expect(replay.status).toBe(200);
    expect(replay.body).toEqual({});
    const bare = await hs.request('POST', `${V3}/delete_devices`, { token: u.token, body: { auth: { session: s } } });
    expect(bare.status).toBe(200);
    // But the spent session cannot authorise another device, nor another operation.
    const other = await hs.request('POST', `${V3}/delete_devices`, { token: u.token, body: { devices: [u.c.device_id], auth: password('uia_used', s) } });
    expectMatrixError(other, 403, 'M_FORBIDDEN');
    const otherOp = await hs.request('DELETE', `${V3}/devices/${u.c.device_id}`, { token: u.token, body: { auth: password('uia_used', s) } });
    expectMatrixError(otherOp, 403, 'M_FORBIDDEN');
    expect(await deviceIds(u.userId)).toEqual([u.main, u.c.device_id].sort());
  });

  it('completes a session once when parallel requests race on it; the others lose (403) or are answered as repeats (200)', async () => {
    const u = await userWithDevices('uia_race');
    const s = await begin('/delete_devices', u.token, { devices: [u.b.device_id] });
    const send = () =>
      hs.request('POST', `${V3}/delete_devices`, { token: u.token, body: { devices: [u.b.device_id], auth: password('uia_race', s) } });
    const results = await Promise.all([send(), send(), send()]);
    expect(results.filter((r) => r.status === 200).length).toBeGreaterThanOrEqual(1);
    for (const r of results.filter((x) => x.status !== 200)) {
      // Lost the race to complete the session (its operation ran in the winner's request).
      expect(r.status, r.text).toBe(403);
      expect(r.body.errcode).toBe('M_FORBIDDEN');
    }
    // The session records one completion.
    expect(JSON.parse((await hs.db()('uia_sessions').where({ session_id: s }).first()).result)).toEqual({ value: {} });
    expect(await deviceIds(u.userId)).toEqual([u.main, u.c.device_id].sort());
    expect(await tokenCount(u.userId)).toBe(2);
  });
});

// PostgreSQL only: without GATEHOUSE_TEST_PG it shows as skipped.
describeOnPostgres('UIA across server processes (postgres)', () => {
  let first: TestServer;
  let second: TestServer;
  beforeAll(async () => {
    first = await startServer('postgres');
    second = await startServer('postgres', {}, { shareDatabaseWith: first });
  });
  afterAll(async () => {
    // The first server owns (and drops) the database: stop the second first.
    await second?.stop();
    await first?.stop();
  });

  it('continues on one process a session begun on another', async () => {
    const reg = await first.register('uia_multi');
    const b = await second.login('uia_multi');
    const c = await first.login('uia_multi');
    const begun = await first.request('POST', `${V3}/delete_devices`, { token: reg.access_token, body: { devices: [b.device_id] } });
    expect(begun.status).toBe(401);
    const s = begun.body.session as string;

    // A wrong password on the second process is seen by it as this session's failure.
    const wrong = await second.request('POST', `${V3}/delete_devices`, {
      token: reg.access_token,
      body: { devices: [b.device_id], auth: { type: 'm.login.password', identifier: { type: 'm.id.user', user: 'uia_multi' }, password: 'wrong', session: s } },
    });
    expect(wrong.status).toBe(401);
    expect(wrong.body.session).toBe(s);
    expect(wrong.body.errcode).toBe('M_FORBIDDEN');
    // The parameters remembered on the first process hold on the second.
    const widened = await second.request('POST', `${V3}/delete_devices`, {
      token: reg.access_token,
      body: { devices: [b.device_id, c.device_id], auth: { type: 'm.login.password', password: DEFAULT_PASSWORD, session: s } },
    });
    expect(widened.status).toBe(403);

    const done = await second.request('POST', `${V3}/delete_devices`, {
      token: reg.access_token,
      body: { devices: [b.device_id], auth: { type: 'm.login.password', identifier: { type: 'm.id.user', user: 'uia_multi' }, password: DEFAULT_PASSWORD, session: s } },
    });
    expect(done.status).toBe(200);
    const left = (await first.db()('devices').where({ user_id: reg.user_id })).map((d: { device_id: string }) => d.device_id).sort();
    expect(left).toEqual([reg.device_id, c.device_id].sort());
    // The token of the deleted device is dead on both processes.
    for (const hs of [first, second]) {
      const who = await hs.request('GET', `${V3}/account/whoami`, { token: b.access_token });
      expect(who.status).toBe(401);
      expect(who.body.errcode).toBe('M_UNKNOWN_TOKEN');
    }
    // And the first process knows the session is spent: a repeat is answered, another device is refused.
    const replay = await first.request('POST', `${V3}/delete_devices`, {
      token: reg.access_token,
      body: { devices: [b.device_id], auth: { type: 'm.login.password', password: DEFAULT_PASSWORD, session: s } },
    });
    expect(replay.status).toBe(200);
    const reuse = await first.request('POST', `${V3}/delete_devices`, {
      token: reg.access_token,
      body: { devices: [c.device_id], auth: { type: 'm.login.password', password: DEFAULT_PASSWORD, session: s } },
    });
    expect(reuse.status).toBe(403);
    expect(await first.db()('devices').where({ user_id: reg.user_id, device_id: c.device_id }).first()).toBeDefined();
  });
});
