// The invite page (/_gatehouse/invite/{token}): a registration token as a
// link. It says what the link is worth, and registers through the same UIA
// flow as a client (token counted, username and password rules, rate limits),
// then tells the person how to sign in from Element and Nheko. It needs no
// JavaScript. Plain HTTP for statuses, escaping and refusals; Chromium with
// JavaScript off for a person's way through it.

import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ACCOUNT_TABLES, countRows, expectNoChange } from '../support/assertions.js';
import { backends } from '../support/backends.js';
import { describeWithBrowser, launchBrowser } from '../support/browser.js';
import { DEFAULT_PASSWORD, type Response, startInProcessServer as startServer, type TestServer } from '../support/server.js';
import { seedToken, tokenUses } from '../support/registration-tokens.js';

const TABLES = [...ACCOUNT_TABLES, 'registration_token_reservations', 'registration_token_uses', 'uia_sessions'];
const FORM = { 'Content-Type': 'application/x-www-form-urlencoded' };
const BASEURL = 'https://matrix.example.test/';
const CONFIG = {
  registration_requires_token: true,
  enable_registration_without_verification: false,
  public_baseurl: BASEURL,
  password_config: { policy: { enabled: true, minimum_length: 12, require_lowercase: true } },
};

const invitePath = (token: string) => `/_gatehouse/invite/${encodeURIComponent(token)}`;

const postForm = (hs: TestServer, path: string, fields: Record<string, string>, headers: Record<string, string> = {}) =>
  hs.request('POST', path, { rawBody: new URLSearchParams(fields).toString(), headers: { ...FORM, ...headers } });

/** An HTML answer with this status, with the pages' headers. */
function expectPage(res: Response, status: number): void {
  expect(res.status, res.text).toBe(status);
  expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8');
  expect(res.headers.get('content-security-policy')).toMatch(/^default-src 'none'; script-src 'nonce-[^']+'; style-src 'nonce-[^']+'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'$/);
  expect(res.headers.get('referrer-policy')).toBe('no-referrer');
  expect(res.headers.get('cache-control')).toBe('no-store');
}

function alertOf(html: string): string | null {
  const m = /role="alert"[^>]*>([\s\S]*?)<\/p>/.exec(html);
  return m ? m[1]!.replace(/<[^>]+>/g, '').trim() : null;
}

const hasForm = (html: string) => html.includes('<form method="post">');

describe.each(backends())('invite page over HTTP (%s)', (backend) => {
  let hs: TestServer;
  let n = 0;
  const fresh = (what: string) => `${what}${backend[0]}${++n}`;
  const fields = (username: string, extra: Record<string, string> = {}) => ({
    username,
    password: DEFAULT_PASSWORD,
    password_again: DEFAULT_PASSWORD,
    ...extra,
  });

  beforeAll(async () => {
    hs = await startServer(backend, CONFIG);
  });
  afterAll(async () => {
    await hs?.stop();
  });

  it('a valid link shows the form: username, password twice and the password rules, with no script at all', async () => {
    const token = fresh('inv-ok-');
    await seedToken(hs, token);
    const res = await hs.request('GET', invitePath(token));
    expectPage(res, 200);
    expect(hasForm(res.text)).toBe(true);
    for (const input of ['id="username" name="username" value=""', 'id="password" name="password"', 'id="password_again" name="password_again"'])
      expect(res.text).toContain(input);
    expect(res.text).toContain('<label for="password_again">Password again</label>');
    expect(res.text).toContain('It needs at least 12 characters, a lower-case letter.');
    expect(res.text).toContain('minlength="12"');
    expect(res.text).toContain(`:${hs.serverName}`);
    // No terms are configured, so no terms box.
    expect(res.text).not.toContain('accept_terms');
    expect(res.text).not.toMatch(/<script|<link|\ssrc=/);
    expect(alertOf(res.text)).toBeNull();
    // Looking reserves nothing.
    expect(await tokenUses(hs, token)).toEqual({ pending: 0, completed: 0 });
  });

  it('unknown, malformed, expired and used-up links say so, without a form', async () => {
    const expired = fresh('inv-exp-');
    const usedUp = fresh('inv-used-');
    await seedToken(hs, expired, { expiry_time: Date.now() - 1000 });
    await seedToken(hs, usedUp, { uses_allowed: 2, completed: 2 });
    const cases: [string, number, RegExp][] = [
      ['no-such-token', 404, /not valid/],
      ['<script>alert(1)</script>', 404, /not valid/],
      ['x'.repeat(65), 404, /not valid/],
      [expired, 410, /has expired/],
      [usedUp, 410, /used already/],
    ];
    for (const [token, status, message] of cases) {
      const res = await hs.request('GET', invitePath(token));
      expectPage(res, status);
      expect({ token, alert: alertOf(res.text) }).toEqual({ token, alert: expect.stringMatching(message) });
      expect(hasForm(res.text)).toBe(false);
      expect(res.text).not.toContain('<script>alert');
    }
  });

  it('errors re-render the form with the message and the username kept (escaped), never the password, and change nothing', async () => {
    const token = fresh('inv-err-');
    await seedToken(hs, token);
    const taken = fresh('inv_taken');
    const other = fresh('inv-taken-');
    await seedToken(hs, other);
    expectPage(await postForm(hs, invitePath(other), fields(taken)), 200);
    const cases: [string, Record<string, string>, RegExp, string][] = [
      ['passwords differ', fields('inv_differ', { password_again: `${DEFAULT_PASSWORD}!` }), /The two passwords are not the same/, 'inv_differ'],
      ['weak password', fields('inv_weak', { password: 'short', password_again: 'short' }), /at least 12 characters/, 'inv_weak'],
      ['policy', fields('inv_policy', { password: 'ALL UPPER CASE 123', password_again: 'ALL UPPER CASE 123' }), /lowercase/, 'inv_policy'],
      ['no username', fields(''), /Choose a username/, ''],
      ['no password', fields('inv_nopw', { password: '', password_again: '' }), /Choose a password/, 'inv_nopw'],
      ['invalid username', fields('<script>alert(1)</script>'), /User ID can only contain/, '&lt;script&gt;alert(1)&lt;/script&gt;'],
      ['numeric username', fields('12345'), /reserved for guest users/, '12345'],
      ['username in use', fields(taken.toUpperCase()), /already taken/, taken.toUpperCase()],
    ];
    await expectNoChange(hs, async () => {
      for (const [label, form, message, kept] of cases) {
        const res = await postForm(hs, invitePath(token), form);
        expectPage(res, 400);
        expect({ label, alert: alertOf(res.text) }).toEqual({ label, alert: expect.stringMatching(message) });
        expect(hasForm(res.text)).toBe(true);
        expect(res.text).toContain(`name="username" value="${kept}"`);
        expect(res.text).not.toContain(form.password || '\u0000');
        expect(res.text).not.toContain('<script>alert');
      }
    }, TABLES);
    expect(await tokenUses(hs, token)).toEqual({ pending: 0, completed: 0 });
  });

  it('registers through the token flow: one use counted, no device signed in; the page says how to sign in; the person then logs in', async () => {
    const token = fresh('inv-reg-');
    await seedToken(hs, token);
    const username = fresh('inv_reg');
    const devices = await countRows(hs, 'devices');
    // Upper case is folded, as at /register.
    const res = await postForm(hs, invitePath(token), fields(username.toUpperCase()));
    expectPage(res, 200);
    const userId = `@${username}:${hs.serverName}`;
    expect(res.text).toContain(`<dt>Matrix ID</dt><dd><code>${userId}</code></dd>`);
    expect(res.text).toContain(`<dt>Server address</dt><dd><code>${BASEURL}</code></dd>`);
    expect(res.text).toContain('<h2>Element</h2>');
    expect(res.text).toContain('<h2>Nheko</h2>');
    expect(res.text).not.toContain(DEFAULT_PASSWORD);
    expect(await tokenUses(hs, token)).toEqual({ pending: 0, completed: 1 });
    expect(await hs.db()('registration_token_uses').where({ token }).select('user_id')).toEqual([{ user_id: userId }]);
    // inhibit_login: the page made no device and no token.
    expect(await countRows(hs, 'devices')).toBe(devices);
    const login = await hs.login(username);
    expect(login.user_id).toBe(userId);
    // The token is a secret: the request log names the page, not the token.
    expect(hs.logs()).toContain('"path":"/_gatehouse/invite/<token>"');
    expect(hs.logs()).not.toContain(token);

    // The one use is spent: the link now says so, to GET and to POST alike.
    const again = await hs.request('GET', invitePath(token));
    expectPage(again, 410);
    await expectNoChange(hs, async () => {
      const post = await postForm(hs, invitePath(token), fields(fresh('inv_late')));
      expectPage(post, 410);
      expect(alertOf(post.text)).toMatch(/used already/);
    }, TABLES.filter((t) => t !== 'uia_sessions'));
  });

  it('an unlimited token registers several people, each counted', async () => {
    const token = fresh('inv-many-');
    await seedToken(hs, token, { uses_allowed: null });
    for (const name of [fresh('inv_many'), fresh('inv_many')]) expectPage(await postForm(hs, invitePath(token), fields(name)), 200);
    expect(await tokenUses(hs, token)).toEqual({ pending: 0, completed: 2 });
  });

  it('refuses posts from another site and forms it cannot read, changing nothing', async () => {
    const token = fresh('inv-csrf-');
    await seedToken(hs, token);
    await expectNoChange(hs, async () => {
      const cross = await postForm(hs, invitePath(token), fields(fresh('inv_cross')), { 'Sec-Fetch-Site': 'cross-site' });
      expectPage(cross, 403);
      expect(alertOf(cross.text)).toMatch(/its own page/);
      const json = await hs.request('POST', invitePath(token), { body: fields(fresh('inv_json')) });
      expectPage(json, 415);
      const bad = await hs.request('POST', invitePath(token), { rawBody: 'username=a%FFb&password=x', headers: FORM });
      expectPage(bad, 400);
    }, TABLES);
    expect(await tokenUses(hs, token)).toEqual({ pending: 0, completed: 0 });
  });
});

describe('invite page: servers it cannot register on, and its rate limit', () => {
  it('says so when registration is closed, or takes no token; the page counts against rc_registration_token_validity', async () => {
    const open = await startServer('sqlite', { rc_registration_token_validity: { per_second: 0.001, burst_count: 1 } });
    const closed = await startServer('sqlite', { enable_registration: false, registration_requires_token: true });
    try {
      await seedToken(open, 'tok');
      await seedToken(closed, 'tok');
      const unsupported = await open.request('GET', invitePath('tok'));
      expectPage(unsupported, 403);
      expect(alertOf(unsupported.text)).toMatch(/cannot be created through an invitation link/);
      // Open registration (the dummy flow) would not count the token: the page does not register.
      await expectNoChange(open, async () => {
        const post = await postForm(open, invitePath('tok'), { username: 'inv_open', password: DEFAULT_PASSWORD, password_again: DEFAULT_PASSWORD });
        expectPage(post, 403);
        expect(hasForm(post.text)).toBe(false);
      }, TABLES);
      const limited = await open.request('GET', invitePath('tok'));
      expectPage(limited, 429);
      expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(alertOf(limited.text)).toBe('Too many requests');

      const shut = await closed.request('GET', invitePath('tok'));
      expectPage(shut, 403);
      expect(alertOf(shut.text)).toMatch(/does not take new accounts/);
      await expectNoChange(closed, async () => {
        const post = await postForm(closed, invitePath('tok'), { username: 'inv_closed', password: DEFAULT_PASSWORD, password_again: DEFAULT_PASSWORD });
        expectPage(post, 403);
      }, TABLES);
    } finally {
      await open.stop();
      await closed.stop();
    }
  });
});

describeWithBrowser('invite page in Chromium with JavaScript off', () => {
  let browser: Browser;
  beforeAll(async () => {
    browser = await launchBrowser();
  });
  afterAll(async () => {
    await browser?.close();
  });

  describe.each(backends())('%s', (backend) => {
    let hs: TestServer;
    beforeAll(async () => {
      hs = await startServer(backend, CONFIG);
    });
    afterAll(async () => {
      await hs?.stop();
    });

    it('a wrong link says so; a mistake keeps the username; then the account is made and signs in over HTTP', async () => {
      const token = `browser-invite-${backend}`;
      await seedToken(hs, token);
      const context = await browser.newContext({ javaScriptEnabled: false });
      try {
        const page = await context.newPage();
        await page.goto(hs.url + invitePath(`${token}-wrong`));
        expect(await page.getByRole('alert').textContent()).toMatch(/This invitation link is not valid/);
        expect(await page.locator('form').count()).toBe(0);

        await page.goto(hs.url + invitePath(token));
        expect(await page.getByRole('heading', { level: 1 }).textContent()).toBe(`Join ${hs.serverName}`);
        await page.getByLabel('Username').fill(`inv_browser_${backend}`);
        await page.getByLabel('Password', { exact: true }).fill(DEFAULT_PASSWORD);
        await page.getByLabel('Password again').fill(`${DEFAULT_PASSWORD} typo`);
        await page.getByRole('button', { name: 'Create account' }).click();
        await page.waitForLoadState();
        expect(await page.getByRole('alert').textContent()).toMatch(/The two passwords are not the same/);
        expect(await page.getByLabel('Username').inputValue()).toBe(`inv_browser_${backend}`);
        expect(await page.getByLabel('Password', { exact: true }).inputValue()).toBe('');
        expect(await tokenUses(hs, token)).toEqual({ pending: 0, completed: 0 });

        await page.getByLabel('Password', { exact: true }).fill(DEFAULT_PASSWORD);
        await page.getByLabel('Password again').fill(DEFAULT_PASSWORD);
        await page.getByRole('button', { name: 'Create account' }).click();
        await page.waitForLoadState();
        expect(await page.getByRole('heading', { level: 1 }).textContent()).toBe('Your account is ready');
        expect(await page.locator('dd').first().textContent()).toBe(`@inv_browser_${backend}:${hs.serverName}`);
      } finally {
        await context.close();
      }
      expect(await tokenUses(hs, token)).toEqual({ pending: 0, completed: 1 });
      const login = await hs.login(`inv_browser_${backend}`);
      expect(login.user_id).toBe(`@inv_browser_${backend}:${hs.serverName}`);
    });
  });
});
