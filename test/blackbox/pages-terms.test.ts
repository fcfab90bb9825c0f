// The HTML pages against the real terms stage: the m.login.terms fallback page
// lists the configured policies and records nothing until the box is ticked;
// the invite page registers through the token and terms stages and tells an
// account that waits for the admin's approval so.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { countRows } from '../support/assertions.js';
import { backends } from '../support/backends.js';
import { DEFAULT_PASSWORD, startServer, type TestServer } from '../support/server.js';

const C = '/_matrix/client/v3';
const FORM = { 'Content-Type': 'application/x-www-form-urlencoded' };
const BASE = 'https://matrix.example.org/';

const CONFIG = {
  public_baseurl: BASE,
  registration_requires_token: true,
  registration_requires_approval: true,
  terms: {
    policies: {
      tos: { version: '1.2', en: { name: 'Terms <of> Service', url: 'https://example.org/tos-1.2.html' } },
      privacy: { version: '7', en: { name: 'Privacy Policy', url: 'https://example.org/privacy-7.html' } },
    },
  },
};

const form = (fields: Record<string, string>) => new URLSearchParams(fields).toString();

describe.each(backends())('pages with the terms stage (%s)', (backend) => {
  let hs: TestServer;
  beforeAll(async () => {
    hs = await startServer(backend, CONFIG);
    await hs.db()('registration_tokens').insert([
      { token: 'terms-page-token', uses_allowed: 5, pending: 0, completed: 0, expiry_time: null, note: null, created_ts: Date.now() },
    ]);
  });
  afterAll(async () => {
    await hs?.stop();
  });

  const accepted = async (userId: string) =>
    (await hs.db()('user_policy_acceptances').where({ user_id: userId }).orderBy('policy_id')).map((r: { policy_id: string; version: string }) => [
      r.policy_id,
      r.version,
    ]);

  it('the m.login.terms fallback page lists the policies (escaped), needs the box, then lets the client finish with only the session', async () => {
    const open = await hs.request('POST', `${C}/register`, {
      body: { username: 'fb_terms', password: DEFAULT_PASSWORD, auth: { type: 'm.login.registration_token', token: 'terms-page-token' } },
    });
    expect(open.status, open.text).toBe(401);
    expect(open.body.flows).toEqual([{ stages: ['m.login.registration_token', 'm.login.terms'] }]);
    expect(open.body.completed).toEqual(['m.login.registration_token']);
    const session = open.body.session as string;
    const path = `${C}/auth/m.login.terms/fallback/web?session=${session}`;

    const page = await hs.request('GET', path);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    expect(page.text).toContain('Terms &lt;of&gt; Service');
    expect(page.text).not.toContain('Terms <of> Service');
    expect(page.text).toContain('href="https://example.org/tos-1.2.html"');
    expect(page.text).toContain('Privacy Policy');

    // Without the box ticked: the form again, and the stage not passed.
    const refused = await hs.request('POST', path, { rawBody: form({ session }), headers: FORM });
    expect(refused.status).toBe(400);
    expect(JSON.parse((await hs.db()('uia_sessions').where({ session_id: session }).first()).completed)).toEqual(['m.login.registration_token']);

    const ok = await hs.request('POST', path, { rawBody: form({ session, accept_terms: 'on' }), headers: FORM });
    expect(ok.status, ok.text).toBe(200);
    expect(ok.text).toContain('authDone');

    // The client finishes with only the session; the account waits for approval, with its acceptances recorded.
    const done = await hs.request('POST', `${C}/register`, { body: { auth: { session } } });
    expect(done.body.errcode).toBe('M_USER_AWAITING_APPROVAL');
    expect(await accepted('@fb_terms:test.local')).toEqual([
      ['privacy', '7'],
      ['tos', '1.2'],
    ]);
  });

  it('the invite page asks for the terms and says the new account waits for approval', async () => {
    const path = '/_gatehouse/invite/terms-page-token';
    const page = await hs.request('GET', path);
    expect(page.status).toBe(200);
    expect(page.text).toContain('Terms &lt;of&gt; Service');
    const users = await countRows(hs, 'users');

    const noTerms = await hs.request('POST', path, {
      rawBody: form({ username: 'inv_terms', password: DEFAULT_PASSWORD, password_again: DEFAULT_PASSWORD }),
      headers: FORM,
    });
    expect(noTerms.status).toBe(400);
    expect(await countRows(hs, 'users')).toBe(users);

    const res = await hs.request('POST', path, {
      rawBody: form({ username: 'inv_terms', password: DEFAULT_PASSWORD, password_again: DEFAULT_PASSWORD, accept_terms: 'on' }),
      headers: FORM,
    });
    expect(res.status, res.text).toBe(200);
    expect(res.text).toContain('waits for approval');
    expect(res.text).toContain('@inv_terms:test.local');
    expect(await accepted('@inv_terms:test.local')).toEqual([
      ['privacy', '7'],
      ['tos', '1.2'],
    ]);
    expect(!!(await hs.db()('users').where({ user_id: '@inv_terms:test.local' }).first()).approved).toBe(false);
    const login = await hs.request('POST', `${C}/login`, {
      body: { type: 'm.login.password', identifier: { type: 'm.id.user', user: 'inv_terms' }, password: DEFAULT_PASSWORD },
    });
    expect(login.body.errcode).toBe('M_USER_AWAITING_APPROVAL');
  });
});
