// UIA fallback pages (spec: Client-Server API, "Fallback") for the
// registration token: GET shows a form for a real session, POST runs the
// stage for it; a failure re-renders the form with a clear message, success
// runs the spec's script (window.onAuthDone, or "authDone" posted to the
// opener), and the client then registers with only {auth: {session}}. Plain
// HTTP for statuses, headers, escaping and refusals; Debian's Chromium for
// what a person does.

import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ACCOUNT_TABLES, expectNoChange } from '../support/assertions.js';
import { backends } from '../support/backends.js';
import { describeWithBrowser, launchBrowser } from '../support/browser.js';
import { DEFAULT_PASSWORD, type Response, startServer, type TestServer } from '../support/server.js';
import { seedToken, tokenUses } from '../support/registration-tokens.js';

const C = '/_matrix/client/v3';
const TOKEN_STAGE = 'm.login.registration_token';
const UNSTABLE_TOKEN_STAGE = 'org.matrix.msc3231.login.registration_token';
const TABLES = [...ACCOUNT_TABLES, 'registration_token_reservations', 'registration_token_uses', 'uia_sessions'];
const CONFIG = { registration_requires_token: true, enable_registration_without_verification: false, max_request_body_size: '16K' };
const FORM = { 'Content-Type': 'application/x-www-form-urlencoded' };

/** Starts a registration the way a client does: the 401 answer's session. */
async function startRegistration(hs: TestServer, username: string): Promise<string> {
  const res = await hs.request('POST', `${C}/register`, { body: { username, password: DEFAULT_PASSWORD } });
  expect(res.status, res.text).toBe(401);
  expect(res.body.flows).toEqual([{ stages: [TOKEN_STAGE] }]);
  return res.body.session as string;
}

const fallbackPath = (session: string, stage = TOKEN_STAGE, prefix = C) =>
  `${prefix}/auth/${stage}/fallback/web?session=${encodeURIComponent(session)}`;

const postForm = (hs: TestServer, path: string, fields: Record<string, string>, headers: Record<string, string> = {}) =>
  hs.request('POST', path, { rawBody: new URLSearchParams(fields).toString(), headers: { ...FORM, ...headers } });

/** An HTML answer with this status, sent with the pages' headers. */
function expectPage(res: Response, status: number): void {
  expect(res.status, res.text).toBe(status);
  expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8');
  expect(res.text.startsWith('<!DOCTYPE html>')).toBe(true);
  expect(res.headers.get('content-security-policy')).toMatch(/^default-src 'none'; script-src 'nonce-[A-Za-z0-9+/=]+'; style-src 'nonce-/);
  expect(res.headers.get('x-content-type-options')).toBe('nosniff');
  expect(res.headers.get('referrer-policy')).toBe('no-referrer');
  expect(res.headers.get('cache-control')).toBe('no-store');
}

/** The text of the page's alert (the error message), or null. */
function alertOf(html: string): string | null {
  const m = /role="alert"[^>]*>([\s\S]*?)<\/p>/.exec(html);
  return m ? m[1]!.replace(/<[^>]+>/g, '').trim() : null;
}

describe.each(backends())('fallback pages over HTTP (%s)', (backend) => {
  let hs: TestServer;
  let n = 0;
  const fresh = (what: string) => `${what}${backend[0]}${++n}`;

  beforeAll(async () => {
    hs = await startServer(backend, CONFIG);
  });
  afterAll(async () => {
    await hs?.stop();
  });

  it('GET shows the token form for a real session (v3, r0, and MSC3231\'s unstable name), with a nonce CSP and nothing from outside', async () => {
    const session = await startRegistration(hs, fresh('fb_get'));
    for (const path of [fallbackPath(session), fallbackPath(session, TOKEN_STAGE, '/_matrix/client/r0'), fallbackPath(session, UNSTABLE_TOKEN_STAGE)]) {
      const res = await hs.request('GET', path);
      expectPage(res, 200);
      expect(res.text).toContain('<label for="token">Registration token</label>');
      expect(res.text).toContain(`<input type="hidden" name="session" value="${session}">`);
      expect(res.text).toContain('<form method="post">');
      expect(alertOf(res.text)).toBeNull();
      // Only the page's own style, carrying this answer's nonce; no scripts, no outside files.
      const nonce = /'nonce-([^']+)'/.exec(res.headers.get('content-security-policy')!)![1]!;
      expect(res.text).toContain(`<style nonce="${nonce}">`);
      expect(res.text).not.toMatch(/<script|<link|\ssrc=|@import|url\(/);
    }
    // A new nonce each time.
    const [a, b] = await Promise.all([hs.request('GET', fallbackPath(session)), hs.request('GET', fallbackPath(session))]);
    expect(a.headers.get('content-security-policy')).not.toBe(b.headers.get('content-security-policy'));
  });

  it('a wrong token re-renders the form with a clear message and reserves nothing; an empty one asks for the token', async () => {
    const token = fresh('fb-wrong-');
    await seedToken(hs, token);
    const session = await startRegistration(hs, fresh('fb_wrong'));
    await expectNoChange(hs, async () => {
      const wrong = await postForm(hs, fallbackPath(session), { session, token: `${token}x` });
      expectPage(wrong, 400);
      expect(alertOf(wrong.text)).toMatch(/^Error: That token is not valid\./);
      expect(wrong.text).toContain(`value="${token}x"`);
      expect(wrong.text).toContain('aria-invalid="true" aria-describedby="error"');
      const empty = await postForm(hs, fallbackPath(session), { session, token: '  ' });
      expectPage(empty, 400);
      expect(alertOf(empty.text)).toBe('Error: Enter the registration token you were given.');
      const missing = await postForm(hs, fallbackPath(session), { session });
      expectPage(missing, 400);
      expect(alertOf(missing.text)).toBe('Error: Enter the registration token you were given.');
    }, TABLES);
    expect(await tokenUses(hs, token)).toEqual({ pending: 0, completed: 0 });
  });

  it('the right token passes the stage (a reload shows it done); the client then registers with only {auth: {session}}', async () => {
    const token = fresh('fb-right-');
    await seedToken(hs, token);
    const username = fresh('fb_right');
    const session = await startRegistration(hs, username);
    // Pasted with spaces around it, as people do.
    const ok = await postForm(hs, fallbackPath(session), { session, token: ` ${token}\n` });
    expectPage(ok, 200);
    expect(ok.text).toContain('window.onAuthDone();');
    expect(ok.text).toContain('window.opener.postMessage("authDone", "*");');
    const nonce = /'nonce-([^']+)'/.exec(ok.headers.get('content-security-policy')!)![1]!;
    expect(ok.text).toContain(`<script nonce="${nonce}">`);
    expect(await tokenUses(hs, token)).toEqual({ pending: 1, completed: 0 });
    expect(await hs.db()('users').where({ localpart: username }).first()).toBeUndefined();

    const again = await hs.request('GET', fallbackPath(session));
    expectPage(again, 200);
    expect(again.text).toContain('window.onAuthDone();');

    const done = await hs.request('POST', `${C}/register`, { body: { auth: { session } } });
    expect(done.status, done.text).toBe(200);
    expect(done.body.user_id).toBe(`@${username}:${hs.serverName}`);
    expect(await tokenUses(hs, token)).toEqual({ pending: 0, completed: 1 });
    await hs.login(username);
    // The session is spent: its page is gone.
    const after = await hs.request('GET', fallbackPath(session));
    expectPage(after, 400);
    expect(alertOf(after.text)).toBe('Unknown or expired UIA session');
  });

  it('takes the session from the form alone (as Synapse\'s templates post it); two different sessions are refused', async () => {
    const token = fresh('fb-form-');
    await seedToken(hs, token);
    const session = await startRegistration(hs, fresh('fb_form'));
    const other = await startRegistration(hs, fresh('fb_other'));
    await expectNoChange(hs, async () => {
      const twice = await postForm(hs, fallbackPath(session), { session: other, token });
      expectPage(twice, 400);
      expect(alertOf(twice.text)).toBe('The session is given more than once');
      const none = await postForm(hs, `${C}/auth/${TOKEN_STAGE}/fallback/web`, { token });
      expectPage(none, 400);
      expect(alertOf(none.text)).toBe('No session supplied');
    }, TABLES);
    const ok = await postForm(hs, `/_matrix/client/r0/auth/${TOKEN_STAGE}/fallback/web`, { session, token });
    expectPage(ok, 200);
    expect(await tokenUses(hs, token)).toEqual({ pending: 1, completed: 0 });
  });

  it('unknown, missing and spent sessions, unknown stages, and stages the session does not have are HTML error pages', async () => {
    const session = await startRegistration(hs, fresh('fb_err'));
    const user = await (async () => {
      // A session of another operation (deleting a device), from a user registered with a token.
      const token = fresh('fb-err-');
      await seedToken(hs, token);
      const name = fresh('fb_dev');
      const s = await startRegistration(hs, name);
      const r = await hs.request('POST', `${C}/register`, { body: { auth: { type: TOKEN_STAGE, token, session: s } } });
      expect(r.status, r.text).toBe(200);
      return r.body as { access_token: string; device_id: string };
    })();
    const del = await hs.request('DELETE', `${C}/devices/${user.device_id}`, { token: user.access_token, body: {} });
    expect(del.status).toBe(401);
    const cases: [string, number, string][] = [
      [fallbackPath('NoSuchSession123'), 400, 'Unknown or expired UIA session'],
      [fallbackPath('<script>'), 400, 'Unknown or expired UIA session'],
      [`${C}/auth/${TOKEN_STAGE}/fallback/web`, 400, 'No session supplied'],
      [`${C}/auth/${TOKEN_STAGE}/fallback/web?session=`, 400, 'No session supplied'],
      [fallbackPath(session, 'm.login.dummy'), 404, 'No fallback page for the stage m.login.dummy'],
      [fallbackPath(session, 'm.login.password'), 404, 'No fallback page for the stage m.login.password'],
      [fallbackPath(session, '__proto__'), 404, 'No fallback page for the stage __proto__'],
      [fallbackPath(session, 'm.login.terms'), 400, 'This session has no m.login.terms stage'],
      [fallbackPath(del.body.session), 400, `This session has no ${TOKEN_STAGE} stage`],
    ];
    await expectNoChange(hs, async () => {
      for (const [path, status, message] of cases) {
        const get = await hs.request('GET', path);
        expectPage(get, status);
        expect({ path, alert: alertOf(get.text) }).toEqual({ path, alert: message });
        const post = await postForm(hs, path, { token: 'x' });
        expectPage(post, status);
      }
    }, TABLES);
    // Other methods are the API's usual 405.
    const put = await hs.request('PUT', fallbackPath(session), { body: {} });
    expect(put.status).toBe(405);
    expect(put.body.errcode).toBe('M_UNRECOGNIZED');
  });

  it('what was typed comes back escaped', async () => {
    const session = await startRegistration(hs, fresh('fb_esc'));
    const typed = '"><script>alert(1)</script><img src=x onerror=alert(2)>';
    const res = await postForm(hs, fallbackPath(session), { session, token: typed });
    expectPage(res, 400);
    expect(res.text).not.toContain('<script>alert(1)');
    expect(res.text).not.toContain('<img');
    expect(res.text).toContain('value="&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;"');
  });

  it('refuses forms it cannot read, and posts from another site, changing nothing', async () => {
    const token = fresh('fb-bad-');
    await seedToken(hs, token);
    const session = await startRegistration(hs, fresh('fb_bad'));
    const path = fallbackPath(session);
    const send = (body: string | Uint8Array<ArrayBuffer>, headers: Record<string, string>) =>
      fetch(hs.url + path, { method: 'POST', headers, body }).then(async (r) => ({ status: r.status, type: r.headers.get('content-type'), text: await r.text() }));
    const form = `session=${session}&token=${token}`;
    await expectNoChange(hs, async () => {
      const cases: [string, Promise<{ status: number; type: string | null; text: string }>, number, RegExp][] = [
        ['JSON', send(JSON.stringify({ session, token }), { 'Content-Type': 'application/json' }), 415, /x-www-form-urlencoded/],
        ['no Content-Type', send(Uint8Array.from(new TextEncoder().encode(form)), {}), 415, /x-www-form-urlencoded/],
        ['another charset', send(form, { 'Content-Type': 'application/x-www-form-urlencoded; charset=iso-8859-1' }), 415, /UTF-8/],
        ['bytes that are not UTF-8', send(Uint8Array.from([...new TextEncoder().encode(`${form}&x=`), 0xff]), FORM), 400, /not UTF-8/],
        ['an escape that is not UTF-8', send(`${form}&x=%81`, FORM), 400, /percent-encoded UTF-8/],
        ['a NUL', send(`session=${session}&token=${token}%00`, FORM), 400, /NUL/],
        ['over the size limit', send(`${form}&x=${'a'.repeat(20_000)}`, FORM), 413, /too large/],
        ['from another site', send(form, { ...FORM, 'Sec-Fetch-Site': 'cross-site' }), 403, /its own page/],
        ['from a sibling site', send(form, { ...FORM, 'Sec-Fetch-Site': 'same-site' }), 403, /its own page/],
      ];
      for (const [label, pending, status, message] of cases) {
        const res = await pending;
        expect({ label, status: res.status, type: res.type }).toEqual({ label, status, type: 'text/html; charset=utf-8' });
        expect(alertOf(res.text)).toMatch(message);
      }
    }, TABLES);
    expect(await tokenUses(hs, token)).toEqual({ pending: 0, completed: 0 });
    // The same form from the page itself passes.
    expect((await send(form, { ...FORM, 'Sec-Fetch-Site': 'same-origin' })).status).toBe(200);
    expect(await tokenUses(hs, token)).toEqual({ pending: 1, completed: 0 });
  });
});

describeWithBrowser('fallback pages in Chromium', () => {
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

    it('a wrong token shows the message, the right one calls window.onAuthDone; registration then completes with only the session', async () => {
      const token = `browser-${backend}`;
      await seedToken(hs, token);
      const session = await startRegistration(hs, `fb_browser_${backend}`);
      const context = await browser.newContext();
      try {
        const page = await context.newPage();
        let authDone = 0;
        // What an embedded browser does: a global onAuthDone the page calls when the stage is done.
        await page.exposeFunction('onAuthDone', () => {
          authDone++;
        });
        // Chromium logs what a Content-Security-Policy refuses (an inline script or style without the nonce).
        const refused: string[] = [];
        page.on('console', (m) => {
          if (/Content Security Policy/i.test(m.text())) refused.push(m.text());
        });
        await page.goto(hs.url + fallbackPath(session));
        expect(await page.title()).toBe(`Registration token · ${hs.serverName}`);
        await page.getByLabel('Registration token').fill('not-the-token');
        await page.getByRole('button', { name: 'Continue' }).click();
        await expect.poll(() => page.getByRole('alert').textContent()).toMatch(/That token is not valid/);
        expect(await page.getByLabel('Registration token').inputValue()).toBe('not-the-token');
        expect(authDone).toBe(0);
        expect(await tokenUses(hs, token)).toEqual({ pending: 0, completed: 0 });

        await page.getByLabel('Registration token').fill(token);
        await page.getByRole('button', { name: 'Continue' }).click();
        await expect.poll(() => authDone).toBe(1);
        expect(await page.getByRole('heading', { level: 1 }).textContent()).toBe('Done');
        // The page's own style and script ran under its CSP.
        expect(refused).toEqual([]);
        expect(await page.evaluate(() => getComputedStyle(document.querySelector('main')!).maxWidth)).not.toBe('none');
      } finally {
        await context.close();
      }
      const done = await hs.request('POST', `${C}/register`, { body: { auth: { session } } });
      expect(done.status, done.text).toBe(200);
      expect(done.body.user_id).toBe(`@fb_browser_${backend}:${hs.serverName}`);
      expect(await tokenUses(hs, token)).toEqual({ pending: 0, completed: 1 });
      await hs.login(`fb_browser_${backend}`);
    });

    it('opened from a web client, the page posts "authDone" to its opener', async () => {
      const token = `opener-${backend}`;
      await seedToken(hs, token);
      const session = await startRegistration(hs, `fb_opener_${backend}`);
      const context = await browser.newContext();
      try {
        // The "client": any page of another origin; it opens the fallback page as a popup and listens.
        const client = await context.newPage();
        await client.goto('about:blank');
        await client.evaluate(() => {
          (window as unknown as { received: unknown[] }).received = [];
          window.addEventListener('message', (e) => (window as unknown as { received: unknown[] }).received.push(e.data));
        });
        const [popup] = await Promise.all([context.waitForEvent('page'), client.evaluate((url) => void window.open(url), hs.url + fallbackPath(session))]);
        await popup.waitForLoadState();
        await popup.getByLabel('Registration token').fill(token);
        await popup.getByRole('button', { name: 'Continue' }).click();
        await expect.poll(() => client.evaluate(() => (window as unknown as { received: unknown[] }).received)).toEqual(['authDone']);
      } finally {
        await context.close();
      }
      const done = await hs.request('POST', `${C}/register`, { body: { auth: { session } } });
      expect(done.status, done.text).toBe(200);
    });
  });
});
