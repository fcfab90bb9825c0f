// Abuse limits of the three requestToken endpoints (issue 14, "Abuse
// limits"): rc_3pid_validation per client address and per email address, and
// request_token_inhibit_3pid_errors, with which an address that has (or, for
// a password reset, has not) an account gets the same answer, in the same
// time, as any other, and no mail.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { countRows, expectMatrixError, expectNoChange } from '../support/assertions.js';
import { backends } from '../support/backends.js';
import { linkParams, slowSmtp, type SlowSmtp } from '../support/email.js';
import { DEFAULT_PASSWORD, startServer, type Response, type TestServer } from '../support/server.js';
import { emailSection, type SmtpListener, startSmtpListener } from '../support/smtp.js';

const C = '/_matrix/client/v3';
const ENDPOINTS = {
  registration: `${C}/register/email/requestToken`,
  add_threepid: `${C}/account/3pid/email/requestToken`,
  password_reset: `${C}/account/password/email/requestToken`,
} as const;
const SUBMIT = '/_gatehouse/client/email/submit_token';
const VALIDATION_TABLES = ['threepid_validation_sessions', 'threepid_validation_tokens'];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let n = 0;
const secret = () => `s${++n}x${Date.now()}`;

/** Binds `address` to a new account, as registration with it would have (rows written directly: the setup, not the subject). */
async function bindAddress(hs: TestServer, localpart: string, address: string): Promise<string> {
  const { user_id } = await hs.register(localpart);
  const now = Date.now();
  await hs.db()('user_threepids').insert({ user_id, medium: 'email', address, validated_at: now, added_at: now });
  return user_id;
}

const mailsTo = (smtp: SmtpListener, address: string) => smtp.messages.filter((m) => m.to.includes(address)).length;

function expectLimited(res: Response): void {
  expectMatrixError(res, 429, 'M_LIMIT_EXCEEDED');
  expect(res.body.retry_after_ms).toBeGreaterThan(0);
  // MSC4041: whole seconds, at least one.
  expect(res.headers.get('retry-after')).toMatch(/^[1-9]\d*$/);
}

describe.each(backends())('rc_3pid_validation (%s)', (backend) => {
  let hs: TestServer;
  let smtp: SmtpListener;
  const from = (ip: string) => ({ 'X-Forwarded-For': ip });
  const ask = (endpoint: string, email: string, ip: string, client_secret = secret()) =>
    hs.request('POST', endpoint, { body: { client_secret, email, send_attempt: 1 }, headers: from(ip) });

  beforeAll(async () => {
    smtp = await startSmtpListener();
    hs = await startServer(backend, {
      // Behind a (pretend) reverse proxy, so each request can come from its own address.
      listeners: [{ port: 0, bind_addresses: ['127.0.0.1'], type: 'http', x_forwarded: true }],
      rc_3pid_validation: { per_second: 0.001, burst_count: 3 },
      email: emailSection(smtp),
    });
    await bindAddress(hs, 'rc_owner', 'owner@example.org');
  });
  afterAll(async () => {
    await hs?.stop();
    await smtp?.close();
  });

  it('limits one client address: the fourth request is 429 with retry_after_ms and Retry-After, and sends and records nothing', async () => {
    for (let i = 1; i <= 3; i++) expect((await ask(ENDPOINTS.registration, `ip-a${i}@example.org`, '10.9.0.1')).status).toBe(200);
    await expectNoChange(
      hs,
      async () => {
        expectLimited(await ask(ENDPOINTS.registration, 'ip-a4@example.org', '10.9.0.1'));
      },
      VALIDATION_TABLES,
    );
    expect(await countRows(hs, 'threepid_validation_sessions', { address: 'ip-a4@example.org' })).toBe(0);
    // Another client is not held by that limit.
    expect((await ask(ENDPOINTS.registration, 'ip-a5@example.org', '10.9.0.2')).status).toBe(200);
    await smtp.waitFor('ip-a5@example.org');
    await sleep(300);
    expect(mailsTo(smtp, 'ip-a4@example.org')).toBe(0);
    expect([1, 2, 3].map((i) => mailsTo(smtp, `ip-a${i}@example.org`))).toEqual([1, 1, 1]);
  });

  it('holds a flood for one address from many client addresses by the address limit', async () => {
    const target = 'flooded@example.org';
    const answers = await Promise.all(Array.from({ length: 12 }, (_, i) => ask(ENDPOINTS.registration, target, `10.9.1.${i + 1}`)));
    const statuses = answers.map((r) => r.status).sort();
    expect(statuses).toEqual([...Array(3).fill(200), ...Array(9).fill(429)]);
    for (const r of answers.filter((a) => a.status === 429)) expectLimited(r);
    // Three sessions and three mails at most, whatever the number of clients.
    expect(await countRows(hs, 'threepid_validation_sessions', { address: target })).toBe(3);
    await sleep(500);
    expect(mailsTo(smtp, target)).toBe(3);
    // A canonically equal spelling is the same address, and so held too.
    expectLimited(await ask(ENDPOINTS.registration, ' FLOODED@Example.ORG', '10.9.1.99'));
    // Another address is not.
    expect((await ask(ENDPOINTS.registration, 'not-flooded@example.org', '10.9.1.100')).status).toBe(200);
  });

  it('counts the three endpoints together, per address and per client', async () => {
    // One address, three endpoints, three clients: its burst is spent.
    const shared = 'shared-limit@example.org';
    expect((await ask(ENDPOINTS.registration, shared, '10.9.2.1')).status).toBe(200);
    expect((await ask(ENDPOINTS.add_threepid, shared, '10.9.2.2')).status).toBe(200);
    // Unknown to the reset endpoint, but counted all the same (as Synapse: the limit comes before the lookup).
    expectMatrixError(await ask(ENDPOINTS.password_reset, shared, '10.9.2.3'), 400, 'M_THREEPID_NOT_FOUND');
    await expectNoChange(
      hs,
      async () => {
        for (const [i, endpoint] of Object.values(ENDPOINTS).entries()) expectLimited(await ask(endpoint, shared, `10.9.2.${10 + i}`));
      },
      VALIDATION_TABLES,
    );
    // One client, three endpoints.
    const ip = '10.9.3.1';
    expect((await ask(ENDPOINTS.password_reset, 'owner@example.org', ip)).status).toBe(200);
    await smtp.waitFor('owner@example.org');
    expect((await ask(ENDPOINTS.add_threepid, 'client-b@example.org', ip)).status).toBe(200);
    expect((await ask(ENDPOINTS.registration, 'client-c@example.org', ip)).status).toBe(200);
    await expectNoChange(
      hs,
      async () => {
        for (const endpoint of Object.values(ENDPOINTS)) expectLimited(await ask(endpoint, 'client-d@example.org', ip));
        // The limit answers before the address is looked up: an address in use is 429 too, not M_THREEPID_IN_USE.
        expectLimited(await ask(ENDPOINTS.registration, 'owner@example.org', ip));
      },
      VALIDATION_TABLES,
    );
    await sleep(300);
    expect(mailsTo(smtp, 'client-d@example.org')).toBe(0);
    expect(mailsTo(smtp, 'owner@example.org')).toBe(1);
  });

  it('refuses a malformed request before counting it', async () => {
    const ip = '10.9.4.1';
    for (let i = 0; i < 5; i++) expectMatrixError(await ask(ENDPOINTS.registration, 'not an address', ip), 400, 'M_INVALID_PARAM');
    expect((await ask(ENDPOINTS.registration, 'after-bad@example.org', ip)).status).toBe(200);
  });
});

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return (s[(s.length - 1) >> 1]! + s[s.length >> 1]!) / 2;
};

describe.each(backends())('request_token_inhibit_3pid_errors (%s)', (backend) => {
  let hs: TestServer;
  let smtp: SmtpListener;
  let slow: SlowSmtp;
  /** Each answer of the mail server comes this much later: a request that waits for its mail takes several times this. */
  const SMTP_DELAY_MS = 300;
  const TAKEN = 'taken@example.org';
  /** Addresses that must never receive a mail. */
  const decoys = new Set<string>();
  const ask = (endpoint: string, email: string, client_secret = secret(), send_attempt = 1) =>
    hs.request('POST', endpoint, { body: { client_secret, email, send_attempt } });

  beforeAll(async () => {
    smtp = await startSmtpListener();
    slow = await slowSmtp(smtp, SMTP_DELAY_MS);
    hs = await startServer(backend, {
      request_token_inhibit_3pid_errors: true,
      email: emailSection(slow.smtp),
    });
    await bindAddress(hs, 'inhibit_owner', TAKEN);
  });
  afterAll(async () => {
    await hs?.stop();
    await slow?.close();
    await smtp?.close();
  });

  it.each([
    ['registration', TAKEN, 'in use'],
    ['add_threepid', TAKEN, 'in use'],
    ['password_reset', 'nobody-here@example.org', 'not bound'],
  ] as const)('%s: an address %s gets a 200 {sid, submit_url}; a repeat the same sid', async (purpose, address, _why) => {
    // TAKEN gets a real mail later (a password reset); checked on its own at the end.
    if (address !== TAKEN) decoys.add(address);
    const client_secret = secret();
    const first = await ask(ENDPOINTS[purpose], address, client_secret);
    expect(first.status).toBe(200);
    expect(Object.keys(first.body).sort()).toEqual(['sid', 'submit_url']);
    expect(first.body.sid).toMatch(/^[A-Za-z0-9]+$/);
    expect(first.body.submit_url).toBe('https://test.local/_gatehouse/client/email/submit_token');
    expect((await ask(ENDPOINTS[purpose], address, client_secret)).body).toEqual(first.body);
    expect((await ask(ENDPOINTS[purpose], address.toUpperCase(), client_secret, 2)).body).toEqual(first.body);
    // Another client secret, another sid, as for any address.
    const other = await ask(ENDPOINTS[purpose], address);
    expect(other.status).toBe(200);
    expect(other.body.sid).not.toBe(first.body.sid);
  });

  it("a decoy's sid never validates, whatever the token, and authorises nothing", async () => {
    const client_secret = secret();
    const { sid } = (await ask(ENDPOINTS.registration, TAKEN, client_secret)).body;
    for (const token of ['0', 'a'.repeat(32), sid]) {
      expectMatrixError(await hs.request('POST', SUBMIT, { body: { sid, client_secret, token } }), 400, 'M_TOKEN_INCORRECT');
    }
    // The validation page's form refuses it the same way.
    const page = await fetch(`${hs.url}/_gatehouse/client/email/validate`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ sid, client_secret, token: 'a'.repeat(32) }).toString(),
    });
    expect(page.status).toBe(400);
    const row = await hs.db()('threepid_validation_sessions').where({ session_id: sid }).first();
    expect(row.validated_ts).toBeNull();
    // Registration with it fails the stage and creates nothing.
    await expectNoChange(hs, async () => {
      const reg = await hs.request('POST', `${C}/register`, {
        body: { username: 'decoy_user', password: DEFAULT_PASSWORD, auth: { type: 'm.login.email.identity', threepid_creds: { sid, client_secret } } },
      });
      expect(reg.status).toBe(401);
      expect(reg.body.completed).toEqual([]);
    });
    // Nor does it reset the owner's password.
    const reset = await hs.request('POST', `${C}/account/password`, {
      body: { new_password: 'another password 123', auth: { type: 'm.login.email.identity', threepid_creds: { sid, client_secret } } },
    });
    expect(reset.status).not.toBe(200);
    expect((await hs.request('POST', `${C}/login`, { body: { type: 'm.login.password', identifier: { type: 'm.id.user', user: 'inhibit_owner' }, password: DEFAULT_PASSWORD } })).status).toBe(200);
  });

  it('a real request answers before its mail is sent, and sends one mail however often it is repeated', async () => {
    const address = 'real-one@example.org';
    const client_secret = secret();
    const started = Date.now();
    const res = await ask(ENDPOINTS.registration, address, client_secret);
    const took = Date.now() - started;
    expect(res.status).toBe(200);
    // The mail server answers each step SMTP_DELAY_MS late: the answer did not wait for it.
    expect(took).toBeLessThan(SMTP_DELAY_MS);
    expect(mailsTo(smtp, address)).toBe(0);
    for (let i = 0; i < 3; i++) expect((await ask(ENDPOINTS.registration, address, client_secret)).body.sid).toBe(res.body.sid);
    const mail = await smtp.waitFor(address, 10_000);
    expect(linkParams(smtp, mail)).toMatchObject({ sid: res.body.sid, client_secret });
    await sleep(4 * SMTP_DELAY_MS);
    expect(mailsTo(smtp, address)).toBe(1);
    // The real session validates.
    const submit = await hs.request('POST', SUBMIT, { body: { sid: res.body.sid, client_secret, token: linkParams(smtp, mail).token } });
    expect(submit.body).toEqual({ success: true });
  });

  it('a password reset for a bound address sends its mail; one for an unbound address none', async () => {
    const real = await ask(ENDPOINTS.password_reset, TAKEN);
    expect(real.status).toBe(200);
    const mail = await smtp.waitFor(TAKEN, 10_000);
    expect(linkParams(smtp, mail).sid).toBe(real.body.sid);
  });

  it('answers an address in use and a free one in the same time (the free one does not wait for the mail server)', async () => {
    const ROUNDS = 30;
    const real: number[] = [];
    const decoy: number[] = [];
    const timed = async (email: string) => {
      const t = performance.now();
      const res = await ask(ENDPOINTS.registration, email);
      const ms = performance.now() - t;
      expect(res.status).toBe(200);
      return ms;
    };
    // Warm up both paths first (the first request of a kind compiles and connects).
    await timed(TAKEN);
    await timed('warm-up@example.org');
    for (let i = 0; i < ROUNDS; i++) {
      decoy.push(await timed(TAKEN));
      real.push(await timed(`timing-${i}@example.org`));
    }
    const [mr, md] = [median(real), median(decoy)];
    // A path that waited for the mail server would be slower by several SMTP_DELAY_MS (greeting, EHLO, MAIL, RCPT, DATA...).
    expect(Math.abs(mr - md), `median real ${mr.toFixed(1)} ms, decoy ${md.toFixed(1)} ms`).toBeLessThan(SMTP_DELAY_MS / 2);
    expect(mr).toBeLessThan(SMTP_DELAY_MS);
    // Room for a path that waits (about 2 s a request), so that it fails on the medians, not on the time-out.
  }, 180_000);

  it('sent no mail to a decoy address, ever', async () => {
    await sleep(6 * SMTP_DELAY_MS);
    for (const address of decoys) expect(mailsTo(smtp, address), address).toBe(0);
    // TAKEN had one mail: the password reset's, nothing for the registrations or additions.
    expect(mailsTo(smtp, TAKEN)).toBe(1);
  });

  it('a decoy whose address is freed becomes a live session at the next send_attempt', async () => {
    const FREED = 'freed@example.org';
    await bindAddress(hs, 'freed_owner', FREED);
    const client_secret = secret();
    const first = await ask(ENDPOINTS.registration, FREED, client_secret);
    expect(first.status).toBe(200);
    await sleep(4 * SMTP_DELAY_MS);
    expect(mailsTo(smtp, FREED)).toBe(0);
    // The owner lets the address go (as deactivation does).
    await hs.db()('user_threepids').where({ address: FREED }).delete();
    const again = await ask(ENDPOINTS.registration, FREED, client_secret, 2);
    expect(again.body.sid).toBe(first.body.sid);
    const mail = await smtp.waitFor(FREED, 10_000);
    const submit = await hs.request('POST', SUBMIT, { body: { sid: first.body.sid, client_secret, token: linkParams(smtp, mail).token } });
    expect(submit.body).toEqual({ success: true });
  });
});

describe.each(backends())('request_token_inhibit_3pid_errors with a failing mail server (%s)', (backend) => {
  it('answers 200, logs the failure without the address, and leaves nothing recorded', async () => {
    const smtp = await startSmtpListener();
    const hs = await startServer(backend, { request_token_inhibit_3pid_errors: true, email: emailSection(smtp) });
    try {
      smtp.setRejecting(true);
      const body = { client_secret: 'abc', email: 'bounced@example.org', send_attempt: 1 };
      const res = await hs.request('POST', ENDPOINTS.registration, { body });
      expect(res.status).toBe(200);
      for (let i = 0; i < 50 && !hs.logs().includes('validation mail could not be sent'); i++) await sleep(100);
      expect(hs.logs()).toContain('validation mail could not be sent');
      expect(hs.logs()).not.toContain('bounced@example.org');
      // The undo runs after the log line: give it a moment.
      for (let i = 0; i < 20 && (await countRows(hs, 'threepid_validation_sessions')) > 0; i++) await sleep(100);
      expect(await countRows(hs, 'threepid_validation_sessions')).toBe(0);
      expect(await countRows(hs, 'threepid_validation_tokens')).toBe(0);
      // Once the mail server accepts again, the same request sends.
      smtp.setRejecting(false);
      expect((await hs.request('POST', ENDPOINTS.registration, { body })).status).toBe(200);
      await smtp.waitFor('bounced@example.org');
    } finally {
      await hs.stop();
      await smtp.close();
    }
  });
});
