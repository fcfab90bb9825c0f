// Password logins racing the writes that end what a password may do, on each
// backend. A login reads the account before its (slow) password check and
// re-checks it in one guarded write at sign-in; whatever the timing, a sign-in
// must not outlive a deactivation or a password change that raced it.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { countRows } from '../support/assertions.js';
import { backends } from '../support/backends.js';
import { DEFAULT_PASSWORD, type Response, startServer, type TestServer } from '../support/server.js';

const V3 = '/_matrix/client/v3';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.each(backends())('login races (%s)', (backend) => {
  let hs: TestServer;
  beforeAll(async () => {
    hs = await startServer(backend);
  });
  afterAll(async () => {
    await hs?.stop();
  });

  const login = (user: string, extra: Record<string, unknown> = {}) =>
    hs.request('POST', `${V3}/login`, { body: { type: 'm.login.password', identifier: { type: 'm.id.user', user }, password: DEFAULT_PASSWORD, ...extra } });
  const whoami = (token: string) => hs.request('GET', `${V3}/account/whoami`, { token });

  /** `n` logins started 15 ms apart (half on a named device), so that some are in their password check when `write` lands. */
  async function loginsAround(user: string, n: number, write: () => Promise<void>): Promise<Response[]> {
    const logins: Promise<Response>[] = [];
    let written: Promise<void> | null = null;
    for (let i = 0; i < n; i++) {
      logins.push(login(user, i % 2 === 0 ? { device_id: `RACE${i}` } : {}));
      if (i === Math.floor(n / 2)) written = write();
      await sleep(15);
    }
    await written;
    return Promise.all(logins);
  }

  /** Completes a password-UIA request in two steps: the challenge first (untimed), then `send` with the auth. */
  async function withPasswordAuth(user: string, token: string, path: string, body: Record<string, unknown>) {
    const challenge = await hs.request('POST', path, { token, body });
    expect(challenge.status, challenge.text).toBe(401);
    const auth = { type: 'm.login.password', identifier: { type: 'm.id.user', user }, password: DEFAULT_PASSWORD, session: challenge.body.session };
    return async () => {
      const res = await hs.request('POST', path, { token, body: { ...body, auth } });
      expect(res.status, res.text).toBe(200);
    };
  }

  it('logins racing a deactivation leave no device or token behind, and each either signs in or is told a wrong password', async () => {
    const u = await hs.register('race_deact');
    const deactivate = await withPasswordAuth('race_deact', u.access_token, `${V3}/account/deactivate`, {});
    const results = await loginsAround('race_deact', 12, deactivate);
    for (const r of results) {
      expect([200, 403], r.text).toContain(r.status);
      if (r.status === 403) expect(r.body.errcode).toBe('M_FORBIDDEN');
    }
    expect(!!(await hs.db()('users').where({ user_id: u.user_id }).first()).deactivated).toBe(true);
    expect(await countRows(hs, 'devices', { user_id: u.user_id })).toBe(0);
    expect(await countRows(hs, 'access_tokens', { user_id: u.user_id })).toBe(0);
    expect(await countRows(hs, 'refresh_tokens', { user_id: u.user_id })).toBe(0);
    for (const r of results.filter((x) => x.status === 200)) expect((await whoami(r.body.access_token)).status).toBe(401);
    // Afterwards the right password is a wrong one.
    expect((await login('race_deact')).status).toBe(403);
  });

  it('no login racing a password change (logout_devices) keeps a working token; the new password then signs in', async () => {
    const u = await hs.register('race_pw');
    const change = await withPasswordAuth('race_pw', u.access_token, `${V3}/account/password`, { new_password: 'a brand new password', logout_devices: true });
    const results = await loginsAround('race_pw', 12, change);
    for (const r of results) {
      expect([200, 403], r.text).toContain(r.status);
      if (r.status === 403) expect(r.body.errcode).toBe('M_FORBIDDEN');
    }
    // A sign-in before the change was ended by it; one after it was refused: none is left working.
    for (const r of results.filter((x) => x.status === 200)) expect((await whoami(r.body.access_token)).status).toBe(401);
    // Only the requester's own device survives the change.
    expect(await countRows(hs, 'access_tokens', { user_id: u.user_id })).toBe(1);
    expect((await whoami(u.access_token)).status).toBe(200);
    expect((await login('race_pw', { password: 'a brand new password' })).status).toBe(200);
    expect((await login('race_pw')).status).toBe(403);
  });
});
