// Registration with a verified email address, end to end over real SMTP: the
// requestToken endpoint sends a mail to a listener on loopback, the test
// follows the link in it (a page with a button: opening it validates nothing),
// and m.login.email.identity then registers the account with the address bound.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectMatrixError, countRows } from '../support/assertions.js';
import { backends } from '../support/backends.js';
import { startInProcessServer as startServer, DEFAULT_PASSWORD, type TestServer } from '../support/server.js';
import { clickLink, linkParams, localPath } from '../support/email.js';
import { emailSection, type SmtpListener, startSmtpListener } from '../support/smtp.js';

const REQUEST_TOKEN = '/_matrix/client/v3/register/email/requestToken';
const REGISTER = '/_matrix/client/v3/register';

let counter = 0;
/** A fresh client secret and address per test. */
const fresh = () => {
  counter++;
  return { client_secret: `secret-${counter}-${Date.now()}`, email: `person${counter}@example.org` };
};

describe.each(backends())('registration with a verified email address (%s)', (backend) => {
  let hs: TestServer;
  let smtp: SmtpListener;

  beforeAll(async () => {
    smtp = await startSmtpListener();
    hs = await startServer(backend, {
      enable_registration_without_verification: false,
      registrations_require_3pid: ['email'],
      email: emailSection(smtp, { app_name: 'Gatehouse Test' }),
    });
  });
  afterAll(async () => {
    await hs?.stop();
    await smtp?.close();
  });

  it('offers m.login.email.identity as the required flow', async () => {
    const res = await hs.request('POST', REGISTER, { body: {} });
    expect(res.status).toBe(401);
    expect(res.body.flows).toEqual([{ stages: ['m.login.email.identity'] }]);
  });

  it('sends a mail with a link, and registers the account with the address bound once it is followed', async () => {
    const { client_secret, email } = fresh();
    const res = await hs.request('POST', REQUEST_TOKEN, { body: { client_secret, email, send_attempt: 1 } });
    expect(res.status).toBe(200);
    expect(res.body.sid).toMatch(/^[A-Za-z0-9]+$/);
    expect(res.body.submit_url).toBe('https://test.local/_gatehouse/client/email/submit_token');
    const mail = await smtp.waitFor(email);
    expect(mail.subject.length).toBeGreaterThan(0);
    expect(linkParams(smtp, mail)).toMatchObject({ sid: res.body.sid, client_secret });
    expect(mail.text).toContain(linkParams(smtp, mail).token);

    const creds = { sid: res.body.sid, client_secret };
    // Not validated yet: the stage fails, and the 401 says why.
    const early = await hs.request('POST', REGISTER, {
      body: { username: `mailer${counter}`, password: DEFAULT_PASSWORD, auth: { type: 'm.login.email.identity', threepid_creds: creds } },
    });
    expect(early.status).toBe(401);
    expect(early.body.errcode).toBe('M_UNAUTHORIZED');
    expect(early.body.completed).toEqual([]);

    // Opening the link (as a mail scanner does) validates nothing.
    const page = await fetch(hs.url + localPath(smtp.linkIn(mail)));
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('<button');
    const row = await hs.db()('threepid_validation_sessions').where({ session_id: res.body.sid }).first();
    expect(row.validated_ts).toBeNull();

    const validated = await clickLink(hs, smtp, mail);
    expect(validated.status).toBe(200);
    expect(await validated.text()).toContain('confirmed');

    const reg = await hs.request('POST', REGISTER, {
      body: { username: `mailer${counter}`, password: DEFAULT_PASSWORD, auth: { type: 'm.login.email.identity', threepid_creds: creds, session: early.body.session } },
    });
    expect(reg.status).toBe(200);
    expect(reg.body.user_id).toBe(`@mailer${counter}:test.local`);
    const bound = await hs.db()('user_threepids').where({ user_id: reg.body.user_id });
    expect(bound.map((r: { medium: string; address: string }) => [r.medium, r.address])).toEqual([['email', email]]);

    // The address is taken now: a new registration cannot even ask for a mail.
    const again = await hs.request('POST', REQUEST_TOKEN, { body: { client_secret: 'another-secret', email: email.toUpperCase(), send_attempt: 1 } });
    expectMatrixError(again, 400, 'M_THREEPID_IN_USE');
    // And the validation is spent: it cannot register a second account.
    const reuse = await hs.request('POST', REGISTER, {
      body: { username: `second${counter}`, password: DEFAULT_PASSWORD, auth: { type: 'm.login.email.identity', threepid_creds: creds } },
    });
    expect(reuse.status).toBe(401);
    expect(reuse.body.errcode).toBe('M_UNAUTHORIZED');
  });

  it('answers a repeated send_attempt with the same sid and no second mail; a higher one sends again', async () => {
    const { client_secret, email } = fresh();
    const first = await hs.request('POST', REQUEST_TOKEN, { body: { client_secret, email, send_attempt: 1 } });
    expect(first.status).toBe(200);
    await smtp.waitFor(email);
    const repeat = await hs.request('POST', REQUEST_TOKEN, { body: { client_secret, email, send_attempt: 1 } });
    expect(repeat.body.sid).toBe(first.body.sid);
    const lower = await hs.request('POST', REQUEST_TOKEN, { body: { client_secret, email, send_attempt: 0 } });
    expect(lower.body.sid).toBe(first.body.sid);
    // Parallel repeats of a new attempt send exactly one mail.
    const parallel = await Promise.all(
      Array.from({ length: 5 }, () => hs.request('POST', REQUEST_TOKEN, { body: { client_secret, email, send_attempt: 2 } })),
    );
    expect(new Set(parallel.map((r) => r.body.sid))).toEqual(new Set([first.body.sid]));
    const second = await smtp.waitFor(email);
    await new Promise((r) => setTimeout(r, 300));
    expect(smtp.messages.filter((m) => m.to.includes(email))).toHaveLength(2);
    // Either mail's link validates the one session.
    expect((await clickLink(hs, smtp, second)).status).toBe(200);
  });

  it('canonicalises the address: trimmed and lower-cased', async () => {
    const { client_secret } = fresh();
    const res = await hs.request('POST', REQUEST_TOKEN, { body: { client_secret, email: `  Mixed.Case${counter}@Example.ORG `, send_attempt: 1 } });
    expect(res.status).toBe(200);
    const mail = await smtp.waitFor(`mixed.case${counter}@example.org`);
    expect(mail.to).toEqual([`mixed.case${counter}@example.org`]);
  });

  it('refuses malformed requests with M_INVALID_PARAM / M_MISSING_PARAM, recording nothing', async () => {
    const before = await countRows(hs, 'threepid_validation_sessions');
    const { client_secret, email } = fresh();
    const cases: [Record<string, unknown>, number, string][] = [
      [{ client_secret: 'has space', email, send_attempt: 1 }, 400, 'M_INVALID_PARAM'],
      [{ client_secret: '', email, send_attempt: 1 }, 400, 'M_INVALID_PARAM'],
      [{ client_secret: 'x'.repeat(256), email, send_attempt: 1 }, 400, 'M_INVALID_PARAM'],
      [{ client_secret, email: 'not-an-address', send_attempt: 1 }, 400, 'M_INVALID_PARAM'],
      [{ client_secret, email: 'a@b@c', send_attempt: 1 }, 400, 'M_INVALID_PARAM'],
      [{ client_secret, email, send_attempt: '1' }, 400, 'M_INVALID_PARAM'],
      [{ client_secret, email, send_attempt: 1.5 }, 400, 'M_INVALID_PARAM'],
      [{ client_secret, email, send_attempt: -1 }, 400, 'M_INVALID_PARAM'],
      [{ client_secret, email, send_attempt: 1, next_link: 'javascript:alert(1)' }, 400, 'M_INVALID_PARAM'],
      [{ client_secret, email, send_attempt: 1, next_link: 'file:///etc/passwd' }, 400, 'M_INVALID_PARAM'],
      [{ client_secret, email, send_attempt: 1, next_link: 'not a url' }, 400, 'M_INVALID_PARAM'],
      [{ email, send_attempt: 1 }, 400, 'M_MISSING_PARAM'],
      [{ client_secret, send_attempt: 1 }, 400, 'M_MISSING_PARAM'],
      [{ client_secret, email }, 400, 'M_MISSING_PARAM'],
      [{ client_secret: 5, email, send_attempt: 1 }, 400, 'M_BAD_JSON'],
    ];
    for (const [body, status, errcode] of cases) expectMatrixError(await hs.request('POST', REQUEST_TOKEN, { body }), status, errcode);
    expect(await countRows(hs, 'threepid_validation_sessions')).toBe(before);
    await new Promise((r) => setTimeout(r, 200));
    expect(smtp.messages.filter((m) => m.to.includes(email))).toHaveLength(0);
  });

  it('answers phone-number endpoints with M_THREEPID_MEDIUM_NOT_SUPPORTED', async () => {
    for (const path of ['/register', '/account/3pid', '/account/password']) {
      const res = await hs.request('POST', `/_matrix/client/v3${path}/msisdn/requestToken`, {
        body: { client_secret: 'abc', country: 'GB', phone_number: '07700900000', send_attempt: 1 },
      });
      expectMatrixError(res, 400, 'M_THREEPID_MEDIUM_NOT_SUPPORTED');
    }
  });

  it('submit_url: validates with the right token; wrong, cross-session and malformed submissions are refused', async () => {
    const a = fresh();
    const b = fresh();
    const ra = await hs.request('POST', REQUEST_TOKEN, { body: { ...a, send_attempt: 1 } });
    const rb = await hs.request('POST', REQUEST_TOKEN, { body: { ...b, send_attempt: 1 } });
    const ta = linkParams(smtp, await smtp.waitFor(a.email)).token;
    const tb = linkParams(smtp, await smtp.waitFor(b.email)).token;
    const submit = (body: Record<string, unknown>) => hs.request('POST', '/_gatehouse/client/email/submit_token', { body });

    expectMatrixError(await submit({ sid: ra.body.sid, client_secret: a.client_secret, token: 'wrong' }), 400, 'M_TOKEN_INCORRECT');
    // B's token cannot validate A's session (another address), nor with B's secret.
    expectMatrixError(await submit({ sid: ra.body.sid, client_secret: a.client_secret, token: tb }), 400, 'M_TOKEN_INCORRECT');
    expectMatrixError(await submit({ sid: ra.body.sid, client_secret: b.client_secret, token: tb }), 400, 'M_INVALID_PARAM');
    expectMatrixError(await submit({ sid: 'no such sid', client_secret: a.client_secret, token: ta }), 400, 'M_INVALID_PARAM');
    expectMatrixError(await submit({ sid: ra.body.sid, client_secret: 'bad secret', token: ta }), 400, 'M_INVALID_PARAM');
    expectMatrixError(await submit({ sid: ra.body.sid, client_secret: a.client_secret }), 400, 'M_MISSING_PARAM');
    const rows = await hs.db()('threepid_validation_sessions').whereIn('session_id', [ra.body.sid, rb.body.sid]);
    expect(rows.every((r: { validated_ts: unknown }) => r.validated_ts === null)).toBe(true);

    const ok = await submit({ sid: ra.body.sid, client_secret: a.client_secret, token: ta });
    expect(ok.status).toBe(200);
    expect(ok.body).toEqual({ success: true });
    // Again: the same answer.
    expect((await submit({ sid: ra.body.sid, client_secret: a.client_secret, token: ta })).body).toEqual({ success: true });
    // B stays unvalidated.
    const rowB = await hs.db()('threepid_validation_sessions').where({ session_id: rb.body.sid }).first();
    expect(rowB.validated_ts).toBeNull();
  });

  it('takes a bounded number of wrong tokens, then refuses even the right one until a new mail', async () => {
    const { client_secret, email } = fresh();
    const res = await hs.request('POST', REQUEST_TOKEN, { body: { client_secret, email, send_attempt: 1 } });
    const token = linkParams(smtp, await smtp.waitFor(email)).token;
    const submit = (t: string) => hs.request('POST', '/_gatehouse/client/email/submit_token', { body: { sid: res.body.sid, client_secret, token: t } });
    for (let i = 0; i < 5; i++) expectMatrixError(await submit(`wrong-${i}`), 400, 'M_TOKEN_INCORRECT');
    expectMatrixError(await submit(token), 400, 'M_SESSION_EXPIRED');
    // A new mail gives a new token, and a fresh count.
    await hs.request('POST', REQUEST_TOKEN, { body: { client_secret, email, send_attempt: 2 } });
    const token2 = linkParams(smtp, await smtp.waitFor(email)).token;
    expect((await submit(token2)).body).toEqual({ success: true });
  });

  it('redirects to next_link after validation when the request gave one', async () => {
    const { client_secret, email } = fresh();
    await hs.request('POST', REQUEST_TOKEN, { body: { client_secret, email, send_attempt: 1, next_link: 'element://vector/webapp/#/done' } });
    const res = await clickLink(hs, smtp, await smtp.waitFor(email));
    expect(res.status).toBe(302);
    expect(res.headers.get('location')).toBe('element://vector/webapp/#/done');
  });

  it('the validation page shows an error page for a wrong token, and is not framed', async () => {
    const { client_secret, email } = fresh();
    const res = await hs.request('POST', REQUEST_TOKEN, { body: { client_secret, email, send_attempt: 1 } });
    await smtp.waitFor(email);
    const page = await fetch(hs.url + '/_gatehouse/client/email/validate', {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ sid: res.body.sid, client_secret, token: 'wrong' }).toString(),
    });
    expect(page.status).toBe(400);
    expect(page.headers.get('content-type')).toContain('text/html');
    expect(page.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
    // A cross-site form post is refused outright.
    const cross = await fetch(hs.url + '/_gatehouse/client/email/validate', {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded', 'Sec-Fetch-Site': 'cross-site' },
      body: new URLSearchParams({ sid: res.body.sid, client_secret, token: 'x' }).toString(),
    });
    expect(cross.status).toBe(403);
  });
});

describe.each(backends())('email validation edge cases (%s)', (backend) => {
  it('a mail server that cannot be reached gives 502 and records nothing', async () => {
    const smtp = await startSmtpListener();
    const port = smtp.port;
    await smtp.close();
    const hs = await startServer(backend, { email: emailSection({ ...smtp, port } as SmtpListener) });
    try {
      const res = await hs.request('POST', REQUEST_TOKEN, { body: { client_secret: 'abc', email: 'down@example.org', send_attempt: 1 } });
      expectMatrixError(res, 502, 'M_UNKNOWN');
      expect(await countRows(hs, 'threepid_validation_sessions')).toBe(0);
      expect(await countRows(hs, 'threepid_validation_tokens')).toBe(0);
      expect(hs.logs()).not.toContain('down@example.org');
    } finally {
      await hs.stop();
    }
  });

  it('a mail server that refuses the mail gives 502; a retry with the same attempt sends once it accepts', async () => {
    const smtp = await startSmtpListener();
    const hs = await startServer(backend, { email: emailSection(smtp) });
    try {
      smtp.setRejecting(true);
      const body = { client_secret: 'abc', email: 'refused@example.org', send_attempt: 1 };
      expectMatrixError(await hs.request('POST', REQUEST_TOKEN, { body }), 502, 'M_UNKNOWN');
      smtp.setRejecting(false);
      const res = await hs.request('POST', REQUEST_TOKEN, { body });
      expect(res.status).toBe(200);
      await smtp.waitFor('refused@example.org');
    } finally {
      await hs.stop();
      await smtp.close();
    }
  });

  it('an expired token is M_SESSION_EXPIRED', async () => {
    const smtp = await startSmtpListener();
    const hs = await startServer(backend, { email: emailSection(smtp, { validation_token_lifetime: '1s' }) });
    try {
      const res = await hs.request('POST', REQUEST_TOKEN, { body: { client_secret: 'abc', email: 'slow@example.org', send_attempt: 1 } });
      const token = linkParams(smtp, await smtp.waitFor('slow@example.org')).token;
      await new Promise((r) => setTimeout(r, 1200));
      const submit = await hs.request('POST', '/_gatehouse/client/email/submit_token', { body: { sid: res.body.sid, client_secret: 'abc', token } });
      expectMatrixError(submit, 400, 'M_SESSION_EXPIRED');
    } finally {
      await hs.stop();
      await smtp.close();
    }
  });

  it('without an email section every requestToken is M_THREEPID_MEDIUM_NOT_SUPPORTED, and registration offers no email flow', async () => {
    const hs = await startServer(backend);
    try {
      for (const path of ['/register', '/account/3pid', '/account/password']) {
        const res = await hs.request('POST', `/_matrix/client/v3${path}/email/requestToken`, { body: { client_secret: 'abc', email: 'x@example.org', send_attempt: 1 } });
        expectMatrixError(res, 400, 'M_THREEPID_MEDIUM_NOT_SUPPORTED');
      }
      const flows = await hs.request('POST', REGISTER, { body: {} });
      expect(JSON.stringify(flows.body.flows)).not.toContain('email');
    } finally {
      await hs.stop();
    }
  });

  it('with email configured but not required, registration offers email as a flow of its own', async () => {
    const smtp = await startSmtpListener();
    const hs = await startServer(backend, { email: emailSection(smtp) });
    try {
      const res = await hs.request('POST', REGISTER, { body: {} });
      expect(res.body.flows).toEqual([{ stages: ['m.login.dummy'] }, { stages: ['m.login.email.identity'] }]);
    } finally {
      await hs.stop();
      await smtp.close();
    }
  });
});
