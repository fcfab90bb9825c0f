// The fallback page of m.login.email.identity (spec: Client-Server API,
// "Fallback"), for a client that cannot do the stage: the page asks for the
// address, has the validation mail sent (for registration or password reset,
// by the UIA session's operation), and once the link is followed its Continue
// runs the stage for the session; the client then finishes with only
// {auth: {session}}. Driven with plain HTTP form posts, over a real SMTP listener.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { countRows, expectNoChange } from '../support/assertions.js';
import { backends } from '../support/backends.js';
import { DEFAULT_PASSWORD, type Response, startInProcessServer as startServer, type TestServer } from '../support/server.js';
import { emailSection, type ReceivedMail, type SmtpListener, startSmtpListener } from '../support/smtp.js';
import { confirmLink } from '../support/email.js';

const V3 = '/_matrix/client/v3';
const STAGE = 'm.login.email.identity';
const FORM = { 'Content-Type': 'application/x-www-form-urlencoded' };
const NEW_PASSWORD = 'a brand new passphrase 42';

const pagePath = (session: string) => `${V3}/auth/${STAGE}/fallback/web?session=${encodeURIComponent(session)}`;

const postForm = (hs: TestServer, path: string, fields: Record<string, string>, headers: Record<string, string> = {}) =>
  hs.request('POST', path, { rawBody: new URLSearchParams(fields).toString(), headers: { ...FORM, ...headers } });

/** An HTML page with this status and the pages' headers. */
function expectPage(res: Response, status: number): void {
  expect(res.status, res.text).toBe(status);
  expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8');
  expect(res.headers.get('content-security-policy')).toMatch(/^default-src 'none'/);
  expect(res.headers.get('cache-control')).toBe('no-store');
}

/** The value of the page's (first) hidden or text field `name`. */
function field(html: string, name: string): string | null {
  const m = new RegExp(`name="${name}" value="([^"]*)"`).exec(html);
  return m ? m[1]! : null;
}

/** The text of the page's alert (the error message), or null. */
function alertOf(html: string): string | null {
  const m = /role="alert"[^>]*>([\s\S]*?)<\/p>/.exec(html);
  return m ? m[1]!.replace(/<[^>]+>/g, '').trim() : null;
}

const isSuccess = (html: string) => html.includes('window.onAuthDone');


describe.each(backends())('the m.login.email.identity fallback page (%s)', (backend) => {
  let hs: TestServer;
  let smtp: SmtpListener;
  let n = 0;
  const fresh = (what: string) => `${what}_${backend[0]}${++n}`;

  beforeAll(async () => {
    smtp = await startSmtpListener();
    hs = await startServer(backend, {
      enable_registration_without_verification: false,
      registrations_require_3pid: ['email'],
      email: emailSection(smtp),
    });
  });
  afterAll(async () => {
    await hs?.stop();
    await smtp?.close();
  });

  /** The GET of the page: its session's form, with the client secret the page made. */
  async function openPage(session: string) {
    const page = await hs.request('GET', pagePath(session));
    expectPage(page, 200);
    const clientSecret = field(page.text, 'client_secret');
    expect(clientSecret).toMatch(/^[A-Za-z0-9]{32}$/);
    return { page, clientSecret: clientSecret! };
  }

  /** Starts a registration as a client does: the 401's session. */
  async function startRegistration(username: string): Promise<string> {
    const res = await hs.request('POST', `${V3}/register`, { body: { username, password: DEFAULT_PASSWORD } });
    expect(res.status, res.text).toBe(401);
    expect(res.body.flows).toEqual([{ stages: [STAGE] }]);
    return res.body.session as string;
  }

  it('registration: the address, the mail, the link, Continue; then the client registers with only the session', async () => {
    const username = fresh('fbreg');
    const email = `${username}@example.org`;
    const session = await startRegistration(username);
    const { page, clientSecret } = await openPage(session);
    expect(page.text).toContain('Creating an account');
    expect(page.text).toContain('name="email"');
    // Each opening of the page has its own client secret.
    expect((await openPage(session)).clientSecret).not.toBe(clientSecret);

    const sent = await postForm(hs, pagePath(session), { session, step: 'send', email: `  ${email.toUpperCase()}`, client_secret: clientSecret, send_attempt: '1' });
    expectPage(sent, 200);
    expect(sent.text).toContain('Check your email');
    const sid = field(sent.text, 'sid');
    expect(sid).toMatch(/^[A-Za-z0-9]+$/);
    const mail = await smtp.waitFor(email);
    expect(new URL(smtp.linkIn(mail)).searchParams.get('sid')).toBe(sid);
    const row = await hs.db()('threepid_validation_sessions').where({ session_id: sid }).first();
    expect(row).toMatchObject({ purpose: 'registration', address: email, client_secret: clientSecret });

    // Continue before the link is followed: the same step again, with what to do.
    const early = await postForm(hs, pagePath(session), { session, step: 'continue', sid: sid!, client_secret: clientSecret, email, send_attempt: '1' });
    expectPage(early, 400);
    expect(alertOf(early.text)).toContain('not confirmed yet');
    expect(field(early.text, 'sid')).toBe(sid);
    expect(await countRows(hs, 'users', { localpart: username })).toBe(0);

    await confirmLink(hs, smtp, mail);
    const done = await postForm(hs, pagePath(session), { session, step: 'continue', sid: sid!, client_secret: clientSecret, email, send_attempt: '1' });
    expectPage(done, 200);
    expect(isSuccess(done.text)).toBe(true);
    // The page now says done.
    expect(isSuccess((await hs.request('GET', pagePath(session))).text)).toBe(true);

    const reg = await hs.request('POST', `${V3}/register`, { body: { auth: { session } } });
    expect(reg.status, reg.text).toBe(200);
    expect(reg.body.user_id).toBe(`@${username}:test.local`);
    const bound = await hs.db()('user_threepids').where({ user_id: reg.body.user_id });
    expect(bound.map((r: { address: string }) => r.address)).toEqual([email]);
  });

  it('shows refusals on the page (address in use, malformed, empty) and sends nothing for them', async () => {
    const taken = fresh('taken');
    const session = await startRegistration(taken);
    const { clientSecret } = await openPage(session);
    const takenEmail = `${taken}@example.org`;
    await registerWithEmail(fresh('owner'), takenEmail);
    const mailsBefore = smtp.messages.length;

    await expectNoChange(hs, async () => {
      const cases: [Record<string, string>, number, string][] = [
        [{ email: takenEmail.toUpperCase() }, 400, 'already in use'],
        [{ email: 'not an address' }, 400, 'not a valid email address'],
        [{ email: '   ' }, 400, 'Enter your email address'],
        [{ email: `ok_${taken}@example.org`, send_attempt: 'many' }, 200, ''],
      ];
      for (const [fields, status, message] of cases) {
        const res = await postForm(hs, pagePath(session), { session, step: 'send', client_secret: clientSecret, send_attempt: '1', ...fields });
        expectPage(res, status);
        if (status !== 200) {
          expect(alertOf(res.text)).toContain(message);
          // The form again, keeping the page's client secret and what was typed.
          expect(field(res.text, 'client_secret')).toBe(clientSecret);
          expect(res.text).toContain('name="email"');
        }
      }
    }, ['users', 'user_threepids', 'uia_sessions']);
    await new Promise((r) => setTimeout(r, 200));
    // Only the valid address's mail went out.
    expect(smtp.messages.slice(mailsBefore).map((m) => m.to)).toEqual([[`ok_${taken}@example.org`]]);

    // A client secret tampered with is refused, and the form comes back with a fresh one.
    const tampered = await postForm(hs, pagePath(session), { session, step: 'send', client_secret: 'bad secret!', email: `t_${taken}@example.org`, send_attempt: '1' });
    expectPage(tampered, 400);
    expect(field(tampered.text, 'client_secret')).toMatch(/^[A-Za-z0-9]{32}$/);
    // A sid that is not the page's (or is garbage) does not pass.
    for (const sid of ['nope', 'x'.repeat(300), '']) {
      const res = await postForm(hs, pagePath(session), { session, step: 'continue', sid, client_secret: clientSecret });
      expectPage(res, 400);
      expect(alertOf(res.text)).not.toBeNull();
    }
    // A garbage email is escaped, never markup.
    const xss = await postForm(hs, pagePath(session), { session, step: 'send', client_secret: clientSecret, email: '"><script>alert(1)</script>', send_attempt: '1' });
    expectPage(xss, 400);
    expect(xss.text).not.toContain('<script>alert(1)');
  });

  it('sends the mail again only for a higher send_attempt ("Send it again")', async () => {
    const username = fresh('again');
    const email = `${username}@example.org`;
    const session = await startRegistration(username);
    const { clientSecret } = await openPage(session);
    const send = (attempt: string) => postForm(hs, pagePath(session), { session, step: 'send', email, client_secret: clientSecret, send_attempt: attempt });
    const first = await send('1');
    expectPage(first, 200);
    await smtp.waitFor(email);
    // The "send again" form carries the next attempt.
    expect([...first.text.matchAll(/name="send_attempt" value="(\d+)"/g)].map((m) => m[1])).toEqual(['1', '2']);
    expectPage(await send('1'), 200);
    await new Promise((r) => setTimeout(r, 200));
    expect(smtp.messages.filter((m) => m.to.includes(email))).toHaveLength(1);
    const again = await send('2');
    expectPage(again, 200);
    expect(field(again.text, 'sid')).toBe(field(first.text, 'sid'));
    await new Promise((r) => setTimeout(r, 300));
    expect(smtp.messages.filter((m) => m.to.includes(email))).toHaveLength(2);
  });

  it('password reset: the page sends the reset mail for the session, and the client then resets with only the session', async () => {
    const username = fresh('fbreset');
    const email = `${username}@example.org`;
    const reg = await registerWithEmail(username, email);
    const first = await hs.request('POST', `${V3}/account/password`, { body: { new_password: NEW_PASSWORD } });
    expect(first.status).toBe(401);
    expect(first.body.flows).toEqual([{ stages: [STAGE] }]);
    const session = first.body.session as string;
    const { page, clientSecret } = await openPage(session);
    expect(page.text).toContain('reset the password');

    // An address bound to nobody is refused on the page.
    const unknown = await postForm(hs, pagePath(session), { session, step: 'send', email: `nobody_${email}`, client_secret: clientSecret, send_attempt: '1' });
    expectPage(unknown, 400);
    expect(alertOf(unknown.text)).toContain('not registered');

    const sent = await postForm(hs, pagePath(session), { session, step: 'send', email, client_secret: clientSecret, send_attempt: '1' });
    expectPage(sent, 200);
    const sid = field(sent.text, 'sid')!;
    expect((await hs.db()('threepid_validation_sessions').where({ session_id: sid }).first()).purpose).toBe('password_reset');
    await confirmLink(hs, smtp, await smtp.waitFor(email));
    const done = await postForm(hs, pagePath(session), { session, step: 'continue', sid, client_secret: clientSecret });
    expectPage(done, 200);
    expect(isSuccess(done.text)).toBe(true);

    const reset = await hs.request('POST', `${V3}/account/password`, { body: { auth: { session } } });
    expect(reset.status, reset.text).toBe(200);
    const login = (password: string) =>
      hs.request('POST', `${V3}/login`, { body: { type: 'm.login.password', identifier: { type: 'm.id.user', user: username }, password } });
    expect((await login(NEW_PASSWORD)).status).toBe(200);
    expect((await login(DEFAULT_PASSWORD)).status).toBe(403);
    expect((await hs.request('GET', `${V3}/account/whoami`, { token: reg.access_token })).status).toBe(401);
  });

  it('a validation the page made for registration cannot pass a reset session', async () => {
    const username = fresh('cross');
    const email = `${username}@example.org`;
    await registerWithEmail(username, email);
    // A registration session's page validates a registration mail for a new address...
    const regSession = await startRegistration(fresh('crossreg'));
    const { clientSecret } = await openPage(regSession);
    const other = `other_${email}`;
    const sent = await postForm(hs, pagePath(regSession), { session: regSession, step: 'send', email: other, client_secret: clientSecret, send_attempt: '1' });
    expectPage(sent, 200);
    const sid = field(sent.text, 'sid')!;
    await confirmLink(hs, smtp, await smtp.waitFor(other));
    // ...which a reset session's page does not take, even once the address is bound.
    await hs.db()('user_threepids').insert({ user_id: `@${username}:test.local`, medium: 'email', address: other, validated_at: 1, added_at: 1 });
    const first = await hs.request('POST', `${V3}/account/password`, { body: { new_password: NEW_PASSWORD } });
    const res = await postForm(hs, pagePath(first.body.session), { session: first.body.session, step: 'continue', sid, client_secret: clientSecret });
    expectPage(res, 400);
    expect(isSuccess(res.text)).toBe(false);
    expect((await hs.request('POST', `${V3}/account/password`, { body: { auth: { session: first.body.session } } })).status).toBe(401);
  });

  it('has no page for a signed-in password change, nor for unknown sessions', async () => {
    const username = fresh('signedin');
    const reg = await registerWithEmail(username, `${username}@example.org`);
    const change = await hs.request('POST', `${V3}/account/password`, { body: { new_password: NEW_PASSWORD }, token: reg.access_token });
    expect(change.status).toBe(401);
    const page = await hs.request('GET', pagePath(change.body.session));
    expectPage(page, 400);
    expect(alertOf(page.text)).toBe('This session has no m.login.email.identity stage');
    const post = await postForm(hs, pagePath(change.body.session), { session: change.body.session, step: 'send', email: `${username}@example.org`, client_secret: 'abc', send_attempt: '1' });
    expectPage(post, 400);
    expect(smtp.messages.filter((m) => m.to.includes(`${username}@example.org`))).toHaveLength(1);
    expectPage(await hs.request('GET', pagePath('NoSuchSession')), 400);
    expectPage(await hs.request('GET', `${V3}/auth/${STAGE}/fallback/web`), 400);
  });

  /** Registers `username` with `email` bound, through the API as a client with the stage does. */
  async function registerWithEmail(username: string, email: string) {
    const clientSecret = `cs-${username}`;
    const tok = await hs.request('POST', `${V3}/register/email/requestToken`, { body: { client_secret: clientSecret, email, send_attempt: 1 } });
    expect(tok.status, tok.text).toBe(200);
    await confirmLink(hs, smtp, await smtp.waitFor(email));
    const res = await hs.request('POST', `${V3}/register`, {
      body: { username, password: DEFAULT_PASSWORD, auth: { type: STAGE, threepid_creds: { sid: tok.body.sid, client_secret: clientSecret } } },
    });
    expect(res.status, res.text).toBe(200);
    return res.body as { user_id: string; access_token: string };
  }
});

describe.each(backends())('without email, no email page (%s)', (backend) => {
  it('a registration session has no m.login.email.identity stage to show', async () => {
    const hs = await startServer(backend);
    try {
      const res = await hs.request('POST', `${V3}/register`, { body: { username: 'noemail', password: DEFAULT_PASSWORD } });
      expect(res.status).toBe(401);
      const page = await hs.request('GET', pagePath(res.body.session));
      expectPage(page, 400);
      expect(alertOf(page.text)).toBe('This session has no m.login.email.identity stage');
    } finally {
      await hs.stop();
    }
  });
});
