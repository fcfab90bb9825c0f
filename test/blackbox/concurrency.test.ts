// Races: many requests at once against the real server, on each backend.
// What must hold is what the database decides (primary keys, row locks,
// single-use UIA sessions), not what one request happened to see.

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { backends } from '../support/backends.js';
import { DEFAULT_PASSWORD, type RequestOptions, type Response, startServer, type TestServer } from '../support/server.js';

const REGISTER = '/_matrix/client/v3/register';
const LOGIN = '/_matrix/client/v3/login';
const WHOAMI = '/_matrix/client/v3/account/whoami';
const REFRESH = '/_matrix/client/v3/refresh';
const PASSWORD = '/_matrix/client/v3/account/password';

describe.each(backends())('concurrency (%s)', (backend) => {
  let hs: TestServer;
  /** Every status the server answered in the current test: none may be a 5xx. */
  let statuses: { path: string; status: number; text: string }[] = [];

  const call = async <T = any>(method: string, path: string, opts?: RequestOptions): Promise<Response<T>> => {
    const res = await hs.request<T>(method, path, opts);
    statuses.push({ path, status: res.status, text: res.text });
    return res;
  };
  const count = async (table: string, where: Record<string, unknown> = {}) => {
    const [row] = await hs.db()(table).where(where).count<{ n: number | string }[]>({ n: '*' });
    return Number(row!.n);
  };
  const registerBody = (username: string, extra: Record<string, unknown> = {}) => ({
    username,
    password: DEFAULT_PASSWORD,
    auth: { type: 'm.login.dummy' },
    ...extra,
  });
  const loginBody = (user: string, extra: Record<string, unknown> = {}) => ({
    type: 'm.login.password',
    identifier: { type: 'm.id.user', user },
    password: DEFAULT_PASSWORD,
    ...extra,
  });
  const userId = (localpart: string) => `@${localpart}:${hs.serverName}`;
  const registerWithRefresh = async (username: string) => {
    const res = await call<{ user_id: string; access_token: string; device_id: string; refresh_token: string }>('POST', REGISTER, {
      body: registerBody(username, { refresh_token: true }),
    });
    expect(res.status, res.text).toBe(200);
    return res.body;
  };

  beforeAll(async () => {
    // Refreshable tokens live long enough for the test; the server's default is 5 minutes anyway.
    hs = await startServer(backend, { refreshable_access_token_lifetime: '10m' });
  });
  afterAll(async () => {
    await hs?.stop();
  });
  afterEach(() => {
    const errors = statuses.filter((s) => s.status >= 500);
    statuses = [];
    expect(errors).toEqual([]);
  });

  it('20 parallel registrations of one username create exactly one account', async () => {
    const name = 'race1';
    const results = await Promise.all(
      Array.from({ length: 20 }, () => call('POST', REGISTER, { body: registerBody(name) })),
    );
    const ok = results.filter((r) => r.status === 200);
    const rejected = results.filter((r) => r.status !== 200);
    expect(ok).toHaveLength(1);
    expect(ok[0]!.body.user_id).toBe(userId(name));
    expect(rejected).toHaveLength(19);
    for (const r of rejected) {
      expect(r.status).toBe(400);
      expect(r.body.errcode).toBe('M_USER_IN_USE');
    }

    // One account, one profile, one device, one access token: the losers left nothing behind.
    expect(await count('users', { localpart: name })).toBe(1);
    expect(await count('profiles', { user_id: userId(name) })).toBe(1);
    expect(await count('devices', { user_id: userId(name) })).toBe(1);
    expect(await count('access_tokens', { user_id: userId(name) })).toBe(1);
    const device = await hs.db()('devices').where({ user_id: userId(name) }).first();
    expect(device.device_id).toBe(ok[0]!.body.device_id);

    // The winner's token is the one that works.
    const who = await call('GET', WHOAMI, { token: ok[0]!.body.access_token });
    expect(who.status).toBe(200);
    expect(who.body.user_id).toBe(userId(name));
  });

  it('parallel registrations of different names all succeed with distinct user IDs', async () => {
    const before = await count('users');
    const names = Array.from({ length: 30 }, (_, i) => `many${i}`);
    const results = await Promise.all(names.map((n) => call('POST', REGISTER, { body: registerBody(n) })));
    for (const [i, r] of results.entries()) {
      expect(r.status, r.text).toBe(200);
      expect(r.body.user_id).toBe(userId(names[i]!));
    }
    expect(new Set(results.map((r) => r.body.user_id)).size).toBe(30);
    expect(new Set(results.map((r) => r.body.access_token)).size).toBe(30);
    expect(await count('users')).toBe(before + 30);

    // Every token belongs to its own user.
    const whos = await Promise.all(results.map((r) => call('GET', WHOAMI, { token: r.body.access_token })));
    for (const [i, w] of whos.entries()) {
      expect(w.status).toBe(200);
      expect(w.body).toEqual({ user_id: userId(names[i]!), device_id: results[i]!.body.device_id, is_guest: false });
    }
  });

  it('parallel registrations without a username get distinct generated IDs', async () => {
    const before = await count('users');
    const results = await Promise.all(
      Array.from({ length: 10 }, () => call('POST', REGISTER, { body: { password: DEFAULT_PASSWORD, auth: { type: 'm.login.dummy' } } })),
    );
    for (const r of results) expect(r.status, r.text).toBe(200);
    expect(new Set(results.map((r) => r.body.user_id)).size).toBe(10);
    expect(await count('users')).toBe(before + 10);
  });

  it('parallel logins of one user give distinct devices and tokens that all work', async () => {
    const name = 'para-login';
    const reg = await hs.register(name);
    const results = await Promise.all(Array.from({ length: 15 }, () => call('POST', LOGIN, { body: loginBody(name) })));
    for (const r of results) {
      expect(r.status, r.text).toBe(200);
      expect(r.body.user_id).toBe(userId(name));
    }
    const devices = results.map((r) => r.body.device_id as string);
    const tokens = results.map((r) => r.body.access_token as string);
    expect(new Set(devices).size).toBe(15);
    expect(new Set(tokens).size).toBe(15);
    expect(devices).not.toContain(reg.device_id);

    expect(await count('devices', { user_id: userId(name) })).toBe(16);
    expect(await count('access_tokens', { user_id: userId(name) })).toBe(16);

    const whos = await Promise.all(tokens.map((t) => call('GET', WHOAMI, { token: t })));
    for (const [i, w] of whos.entries()) {
      expect(w.status).toBe(200);
      expect(w.body.device_id).toBe(devices[i]);
    }
  });

  it('parallel logins onto one named device leave one device with one working token', async () => {
    const name = 'para-samedev';
    await hs.register(name);
    const results = await Promise.all(
      Array.from({ length: 10 }, () => call('POST', LOGIN, { body: loginBody(name, { device_id: 'SHARED' }) })),
    );
    for (const r of results) {
      expect(r.status, r.text).toBe(200);
      expect(r.body.device_id).toBe('SHARED');
    }
    // Signing in again on a device ends its earlier tokens: whatever the interleaving,
    // the device exists once and the survivors are its tokens only.
    expect(await count('devices', { user_id: userId(name), device_id: 'SHARED' })).toBe(1);
    const live = await count('access_tokens', { user_id: userId(name), device_id: 'SHARED' });
    expect(live).toBeGreaterThanOrEqual(1);
    const whos = await Promise.all(results.map((r) => call('GET', WHOAMI, { token: r.body.access_token })));
    const working = whos.filter((w) => w.status === 200);
    expect(working.length).toBe(live);
    for (const w of working) expect(w.body.device_id).toBe('SHARED');
    for (const w of whos.filter((x) => x.status !== 200)) {
      expect(w.status).toBe(401);
      expect(w.body.errcode).toBe('M_UNKNOWN_TOKEN');
    }
  });

  it('parallel refreshes with one refresh token leave exactly one usable successor pair', async () => {
    const name = 'para-refresh';
    const reg = await registerWithRefresh(name);
    expect(typeof reg.refresh_token).toBe('string');
    const rt0 = reg.refresh_token;
    const device = { user_id: userId(name), device_id: reg.device_id };

    const N = 10;
    const results = await Promise.all(Array.from({ length: N }, () => call('POST', REFRESH, { body: { refresh_token: rt0 } })));
    // Every refresh is answered (the old token stays valid until a successor is used)...
    for (const r of results) {
      expect(r.status, r.text).toBe(200);
      expect(typeof r.body.access_token).toBe('string');
      expect(typeof r.body.refresh_token).toBe('string');
    }
    expect(new Set(results.map((r) => r.body.access_token)).size).toBe(N);
    expect(new Set(results.map((r) => r.body.refresh_token)).size).toBe(N);

    // ...but each refresh replaced the previous unused successor, so exactly one pair survives:
    // rt0 plus one successor refresh token, and the original plus one successor access token.
    expect(await count('refresh_tokens', device)).toBe(2);
    expect(await count('access_tokens', device)).toBe(2);
    const rt0Row = await hs.db()('refresh_tokens').where(device).whereNotNull('next_token_id').first();
    expect(rt0Row).toBeDefined();

    // Exactly one of the handed-out access tokens works.
    const whos = [];
    for (const r of results) whos.push(await call('GET', WHOAMI, { token: r.body.access_token }));
    const working = whos.map((w, i) => ({ w, i })).filter(({ w }) => w.status === 200);
    expect(working).toHaveLength(1);
    for (const w of whos.filter((x) => x.status !== 200)) {
      expect(w.status).toBe(401);
      expect(w.body.errcode).toBe('M_UNKNOWN_TOKEN');
    }
    const survivor = results[working[0]!.i]!.body;
    expect(Number(rt0Row.next_token_id)).toBeGreaterThan(0);

    // Using the survivor retired rt0 and the original access token.
    const again = await call('POST', REFRESH, { body: { refresh_token: rt0 } });
    expect(again.status).toBe(401);
    expect(again.body.errcode).toBe('M_UNKNOWN_TOKEN');
    const old = await call('GET', WHOAMI, { token: reg.access_token });
    expect(old.status).toBe(401);
    expect(old.body.errcode).toBe('M_UNKNOWN_TOKEN');

    // The losers' refresh tokens are dead; the survivor's works.
    for (const r of results) {
      if (r.body.refresh_token === survivor.refresh_token) continue;
      const dead = await call('POST', REFRESH, { body: { refresh_token: r.body.refresh_token } });
      expect(dead.status).toBe(401);
      expect(dead.body.errcode).toBe('M_UNKNOWN_TOKEN');
    }
    const next = await call('POST', REFRESH, { body: { refresh_token: survivor.refresh_token } });
    expect(next.status).toBe(200);
    const who = await call('GET', WHOAMI, { token: next.body.access_token });
    expect(who.status).toBe(200);
    expect(who.body.device_id).toBe(reg.device_id);
  });

  it('parallel first uses of a refreshed access token retire the old refresh token once', async () => {
    const name = 'para-firstuse';
    const reg = await registerWithRefresh(name);
    const device = { user_id: userId(name), device_id: reg.device_id };
    const r1 = await call('POST', REFRESH, { body: { refresh_token: reg.refresh_token } });
    expect(r1.status).toBe(200);
    const whos = await Promise.all(Array.from({ length: 20 }, () => call('GET', WHOAMI, { token: r1.body.access_token })));
    for (const w of whos) {
      expect(w.status, w.text).toBe(200);
      expect(w.body.device_id).toBe(reg.device_id);
    }
    expect(await count('refresh_tokens', device)).toBe(1);
    expect(await count('access_tokens', device)).toBe(1);
    const stale = await call('POST', REFRESH, { body: { refresh_token: reg.refresh_token } });
    expect(stale.status).toBe(401);
    expect(stale.body.errcode).toBe('M_UNKNOWN_TOKEN');
  });

  it('a UIA session completed by parallel password changes changes the password once, to the one it remembers', async () => {
    const name = 'para-uia';
    const reg = await hs.register(name);
    const other = await hs.login(name);
    const body = { new_password: 'first new password', logout_devices: false };
    const challenge = await call('POST', PASSWORD, { token: reg.access_token, body });
    expect(challenge.status).toBe(401);
    const session = challenge.body.session as string;
    expect(typeof session).toBe('string');
    const hashBefore = (await hs.db()('users').where({ user_id: userId(name) }).first()).password_hash;

    // Ten requests finish the same session: even ones repeat the remembered password, odd ones ask for another.
    const N = 10;
    const auth = { type: 'm.login.password', identifier: { type: 'm.id.user', user: name }, password: DEFAULT_PASSWORD, session };
    const asked = (i: number) => (i % 2 === 0 ? 'first new password' : `new password ${i}`);
    const results = await Promise.all(
      Array.from({ length: N }, (_, i) =>
        call('POST', PASSWORD, { token: reg.access_token, body: { new_password: asked(i), logout_devices: false, auth } }),
      ),
    );
    for (const [i, r] of results.entries()) {
      if (i % 2 === 1) {
        // Another password than the session's: refused whatever the timing.
        expect(r.status, r.text).toBe(403);
        expect(r.body.errcode).toBe('M_FORBIDDEN');
      } else if (r.status !== 200) {
        // Lost the race to complete (403), or checked the old password after the winner replaced it (401).
        expect([401, 403], r.text).toContain(r.status);
        expect(r.body.errcode).toBe('M_FORBIDDEN');
      } else expect(r.body).toEqual({});
    }
    expect(results.filter((r) => r.status === 200).length).toBeGreaterThanOrEqual(1);

    // The password is the remembered one; no other.
    const hashAfter = (await hs.db()('users').where({ user_id: userId(name) }).first()).password_hash;
    expect(hashAfter).not.toBe(hashBefore);
    expect((await call('POST', LOGIN, { body: loginBody(name, { password: 'first new password' }) })).status).toBe(200);
    const bad = await call('POST', LOGIN, { body: loginBody(name, { password: 'new password 1' }) });
    expect(bad.status).toBe(403);
    expect(bad.body.errcode).toBe('M_FORBIDDEN');
    // logout_devices was false: the other device still works.
    expect((await call('GET', WHOAMI, { token: other.access_token })).status).toBe(200);
    // The spent session cannot authorise anything else.
    const reuse = await call('POST', PASSWORD, { token: reg.access_token, body: { new_password: 'another', logout_devices: false, auth } });
    expect(reuse.status).toBe(403);
    expect((await hs.db()('users').where({ user_id: userId(name) }).first()).password_hash).toBe(hashAfter);
  });

  it('a registration UIA session completed by parallel requests registers one account; repeats sign in to it', async () => {
    const name = 'para-uiareg';
    const before = await count('users');
    const probe = await call('POST', REGISTER, { body: { username: name, password: DEFAULT_PASSWORD } });
    expect(probe.status).toBe(401);
    const session = probe.body.session as string;
    expect(probe.body.flows).toEqual([{ stages: ['m.login.dummy'] }]);

    // The session remembers the username it was opened with: other names are refused...
    const others = await Promise.all(
      ['para-uiareg-b', 'para-uiareg-c'].map((u) =>
        call('POST', REGISTER, { body: { username: u, password: DEFAULT_PASSWORD, auth: { type: 'm.login.dummy', session } } }),
      ),
    );
    for (const r of others) {
      expect(r.status).toBe(403);
      expect(r.body.errcode).toBe('M_FORBIDDEN');
    }
    expect(await count('users')).toBe(before);

    // ...and parallel completions with the remembered name register exactly once.
    const results = await Promise.all(
      Array.from({ length: 8 }, () =>
        call('POST', REGISTER, { body: { username: name, password: DEFAULT_PASSWORD, auth: { type: 'm.login.dummy', session } } }),
      ),
    );
    const ok = results.filter((r) => r.status === 200);
    expect(ok.length).toBeGreaterThanOrEqual(1);
    for (const r of ok) {
      // The creator, or a repeat answered with the same user and a login of its own.
      expect(r.body.user_id).toBe(userId(name));
      expect((await call('GET', WHOAMI, { token: r.body.access_token })).body.user_id).toBe(userId(name));
    }
    for (const r of results.filter((x) => x.status !== 200)) {
      // Lost the race: the name was taken before this one saw the session completed, or the completion itself.
      expect(r.status === 400 || r.status === 403).toBe(true);
      expect(['M_USER_IN_USE', 'M_FORBIDDEN']).toContain(r.body.errcode);
    }
    expect(await count('users')).toBe(before + 1);
    expect(await count('devices', { user_id: userId(name) })).toBe(ok.length);
  });

  it('a session opened by an empty probe takes exactly one of several parallel usernames', async () => {
    const before = await count('users');
    // Element Web and Nheko first send `POST /register {}` to learn the flows.
    const probe = await call('POST', REGISTER, { body: {} });
    expect(probe.status).toBe(401);
    const session = probe.body.session as string;
    const names = Array.from({ length: 6 }, (_, i) => `para-probe${i}`);
    const results = await Promise.all(
      names.map((u) =>
        call('POST', REGISTER, { body: { username: u, password: DEFAULT_PASSWORD, auth: { type: 'm.login.dummy', session } } }),
      ),
    );
    const ok = results.map((r, i) => ({ r, i })).filter(({ r }) => r.status === 200);
    expect(ok).toHaveLength(1);
    expect(ok[0]!.r.body.user_id).toBe(userId(names[ok[0]!.i]!));
    for (const r of results.filter((x) => x.status !== 200)) {
      // A loser finds the session holding another name.
      expect(r.status, r.text).toBe(403);
      expect(r.body.errcode).toBe('M_FORBIDDEN');
    }
    expect(await count('users')).toBe(before + 1);
    for (const [i, u] of names.entries()) expect(await count('users', { localpart: u })).toBe(i === ok[0]!.i ? 1 : 0);
  });

  it('answers a burst of 200 parallel whoami requests correctly', async () => {
    const sessions = await Promise.all(['burst-a', 'burst-b', 'burst-c', 'burst-d'].map((n) => hs.register(n)));
    const results = await Promise.all(
      Array.from({ length: 200 }, (_, i) => {
        const s = sessions[i % sessions.length]!;
        return call('GET', WHOAMI, { token: s.access_token }).then((r) => ({ r, s }));
      }),
    );
    for (const { r, s } of results) {
      expect(r.status, r.text).toBe(200);
      expect(r.body).toEqual({ user_id: s.user_id, device_id: s.device_id, is_guest: false });
    }
  });
});
