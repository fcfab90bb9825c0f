// Password reset by email (spec: "Password management"; issue 14): POST
// /account/password without an access token, authenticated by
// m.login.email.identity with a validation session of
// /account/password/email/requestToken, end to end over a real SMTP listener.
// With an access token the route is the password change it was (a token,
// even an invalid one, never falls back to a reset).

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ACCOUNT_TABLES, countRows, expectMatrixError, expectNoChange } from '../support/assertions.js';
import { backends } from '../support/backends.js';
import { serverRoutes } from '../support/routes.js';
import { DEFAULT_PASSWORD, startServer, type TestServer } from '../support/server.js';
import { emailSection, type ReceivedMail, type SmtpListener, startSmtpListener } from '../support/smtp.js';
import { confirmLink } from '../support/email.js';

const V3 = '/_matrix/client/v3';
const PASSWORD = `${V3}/account/password`;
const RESET_TOKEN = `${V3}/account/password/email/requestToken`;
const EMAIL_STAGE = 'm.login.email.identity';
const NEW_PASSWORD = 'a brand new passphrase 42';
const TABLES = [...ACCOUNT_TABLES, 'uia_sessions', 'threepid_validation_sessions', 'user_threepids'];


describe.each(backends())('password reset by email (%s)', (backend) => {
  let hs: TestServer;
  let smtp: SmtpListener;
  let n = 0;
  const fresh = (what: string) => `${what}_${backend[0]}${++n}`;

  beforeAll(async () => {
    smtp = await startSmtpListener();
    hs = await startServer(backend, {
      email: emailSection(smtp, { app_name: 'Gatehouse Test' }),
      password_config: { policy: { enabled: true, minimum_length: 10 } },
    });
  });
  afterAll(async () => {
    await hs?.stop();
    await smtp?.close();
  });

  /** A user with three signed-in devices and `email` bound to the account. */
  async function userWithEmail(what: string) {
    const username = fresh(what);
    const email = `${username}@example.org`;
    const a = await hs.register(username);
    const b = await hs.login(username);
    const c = await hs.login(username);
    await hs.db()('user_threepids').insert({ user_id: a.user_id, medium: 'email', address: email, validated_at: Date.now(), added_at: Date.now() });
    return { username, userId: a.user_id, email, tokens: [a.access_token, b.access_token, c.access_token] };
  }

  /** Asks for the reset mail, follows its link; the validated creds. */
  async function validatedReset(email: string, clientSecret = `cs-${fresh('s')}`) {
    const res = await hs.request('POST', RESET_TOKEN, { body: { client_secret: clientSecret, email, send_attempt: 1 } });
    expect(res.status, res.text).toBe(200);
    await confirmLink(hs, smtp, await smtp.waitFor(email));
    return { sid: res.body.sid as string, client_secret: clientSecret };
  }

  const login = (username: string, password: string) =>
    hs.request('POST', `${V3}/login`, { body: { type: 'm.login.password', identifier: { type: 'm.id.user', user: username }, password } });
  const whoami = (token: string) => hs.request('GET', `${V3}/account/whoami`, { token });
  const passwordHash = async (userId: string) => (await hs.db()('users').where({ user_id: userId }).first()).password_hash as string;

  it('offers m.login.email.identity without a token, and resets the password of the account the address is bound to', async () => {
    const u = await userWithEmail('reset');
    const before = await passwordHash(u.userId);

    // An address bound to nobody: refused, and no mail goes out.
    const unknown = `nobody_${u.username}@example.org`;
    expectMatrixError(await hs.request('POST', RESET_TOKEN, { body: { client_secret: 'cs-unknown', email: unknown, send_attempt: 1 } }), 400, 'M_THREEPID_NOT_FOUND');

    // The client asks first with the new password: the challenge offers the email stage only.
    const first = await hs.request('POST', PASSWORD, { body: { new_password: NEW_PASSWORD } });
    expect(first.status, first.text).toBe(401);
    expect(first.body.flows).toEqual([{ stages: [EMAIL_STAGE] }]);
    const session = first.body.session as string;

    // Case and spaces do not matter: the address is canonicalised.
    const clientSecret = `cs-${u.username}`;
    const token = await hs.request('POST', RESET_TOKEN, { body: { client_secret: clientSecret, email: `  ${u.email.toUpperCase()} `, send_attempt: 1 } });
    expect(token.status, token.text).toBe(200);
    const mail = await smtp.waitFor(u.email);
    expect(mail.text).toContain('reset the password');
    const creds = { sid: token.body.sid as string, client_secret: clientSecret };

    // Not validated yet: the stage fails and nothing changes.
    const early = await hs.request('POST', PASSWORD, { body: { auth: { type: EMAIL_STAGE, threepid_creds: creds, session } } });
    expect(early.status).toBe(401);
    expect(early.body.errcode).toBe('M_UNAUTHORIZED');
    expect(early.body.completed).toEqual([]);
    expect(await passwordHash(u.userId)).toBe(before);

    await confirmLink(hs, smtp, mail);
    // The session remembers the new password: the completing request sends only auth.
    const done = await hs.request('POST', PASSWORD, { body: { auth: { type: EMAIL_STAGE, threepid_creds: creds, session } } });
    expect(done.status, done.text).toBe(200);
    expect(done.body).toEqual({});

    expectMatrixError(await login(u.username, DEFAULT_PASSWORD), 403, 'M_FORBIDDEN');
    const signedIn = await login(u.username, NEW_PASSWORD);
    expect(signedIn.status).toBe(200);
    // Every device was signed out (logout_devices defaults to true).
    for (const t of u.tokens) expectMatrixError(await whoami(t), 401, 'M_UNKNOWN_TOKEN');
    expect(await countRows(hs, 'devices', { user_id: u.userId })).toBe(1);
    expect(smtp.messages.filter((m) => m.to.includes(unknown))).toHaveLength(0);

    // The validation is spent.
    const row = await hs.db()('threepid_validation_sessions').where({ session_id: creds.sid }).first();
    expect(row.consumed_ts).not.toBeNull();

    // A repeat of the completed request answers {} again and changes nothing (not even with another password).
    await expectNoChange(hs, async () => {
      const repeat = await hs.request('POST', PASSWORD, { body: { auth: { type: EMAIL_STAGE, threepid_creds: creds, session } } });
      expect(repeat.status).toBe(200);
      expect(repeat.body).toEqual({});
      expectMatrixError(await hs.request('POST', PASSWORD, { body: { new_password: 'yet another passphrase', auth: { session } } }), 403, 'M_FORBIDDEN');
    }, TABLES);
    expect((await whoami(signedIn.body.access_token)).status).toBe(200);

    // A second reset with the same validation fails: one mail, one reset.
    const hash = await passwordHash(u.userId);
    const again = await hs.request('POST', PASSWORD, { body: { new_password: 'a third passphrase 99', auth: { type: EMAIL_STAGE, threepid_creds: creds } } });
    expect(again.status).toBe(401);
    expect(again.body.errcode).toBe('M_UNAUTHORIZED');
    expect(await passwordHash(u.userId)).toBe(hash);
  });

  it('with logout_devices: false the devices stay signed in, and the request may carry everything at once', async () => {
    const u = await userWithEmail('keep');
    const creds = await validatedReset(u.email);
    const res = await hs.request('POST', PASSWORD, {
      body: { new_password: NEW_PASSWORD, logout_devices: false, auth: { type: EMAIL_STAGE, threepid_creds: creds } },
    });
    expect(res.status, res.text).toBe(200);
    for (const t of u.tokens) expect((await whoami(t)).status).toBe(200);
    expect((await login(u.username, NEW_PASSWORD)).status).toBe(200);
  });

  it('accepts r0\'s threepidCreds and logout_devices remembered from the first request', async () => {
    const u = await userWithEmail('r0');
    const first = await hs.request('POST', PASSWORD, { body: { new_password: NEW_PASSWORD, logout_devices: false } });
    expect(first.status).toBe(401);
    const creds = await validatedReset(u.email);
    const res = await hs.request('POST', `/_matrix/client/r0/account/password`, {
      body: { auth: { type: EMAIL_STAGE, threepidCreds: creds, session: first.body.session } },
    });
    expect(res.status, res.text).toBe(200);
    for (const t of u.tokens) expect((await whoami(t)).status).toBe(200);
  });

  it('a validation made for registration cannot reset a password', async () => {
    const u = await userWithEmail('regpurpose');
    const spare = `spare_${u.username}@example.org`;
    const reg = await hs.request('POST', `${V3}/register/email/requestToken`, { body: { client_secret: 'cs-reg', email: spare, send_attempt: 1 } });
    expect(reg.status, reg.text).toBe(200);
    await confirmLink(hs, smtp, await smtp.waitFor(spare));
    // Bound now (as by an admin), so only the purpose stands in the way.
    await hs.db()('user_threepids').insert({ user_id: u.userId, medium: 'email', address: spare, validated_at: Date.now(), added_at: Date.now() });
    const before = await passwordHash(u.userId);
    const res = await hs.request('POST', PASSWORD, {
      body: { new_password: NEW_PASSWORD, auth: { type: EMAIL_STAGE, threepid_creds: { sid: reg.body.sid, client_secret: 'cs-reg' } } },
    });
    expect(res.status).toBe(401);
    expect(res.body.errcode).toBe('M_UNAUTHORIZED');
    expect(await passwordHash(u.userId)).toBe(before);
    for (const t of u.tokens) expect((await whoami(t)).status).toBe(200);
  });

  it('with a token it stays the password change; an invalid or malformed token is refused, never taken for a reset', async () => {
    const u = await userWithEmail('token');
    const creds = await validatedReset(u.email);
    const body = { new_password: NEW_PASSWORD, auth: { type: EMAIL_STAGE, threepid_creds: creds } };
    await expectNoChange(hs, async () => {
      expectMatrixError(await hs.request('POST', PASSWORD, { body, token: 'not_a_real_token' }), 401, 'M_UNKNOWN_TOKEN');
      expectMatrixError(await hs.request('POST', PASSWORD, { body, headers: { Authorization: 'Basic dXNlcjpwYXNz' } }), 401, 'M_MISSING_TOKEN');
      expectMatrixError(await hs.request('POST', `${PASSWORD}?access_token=`, { body }), 401, 'M_MISSING_TOKEN');
      expectMatrixError(await hs.request('POST', `${PASSWORD}?access_token=nope`, { body }), 401, 'M_UNKNOWN_TOKEN');
      // Signed in, the email stage is not a way to change one's password: only the password is.
      const signedIn = await hs.request('POST', PASSWORD, { body, token: u.tokens[0] });
      expect(signedIn.status).toBe(400);
      expect(signedIn.body.errcode).toBe('M_UNRECOGNIZED');
      const challenge = await hs.request('POST', PASSWORD, { body: { new_password: NEW_PASSWORD }, token: u.tokens[0] });
      expect(challenge.status).toBe(401);
      expect(challenge.body.flows).toEqual([{ stages: ['m.login.password'] }]);
      // A signed-in user's UIA session cannot be finished without the token.
      expectMatrixError(await hs.request('POST', PASSWORD, { body: { auth: { ...body.auth, session: challenge.body.session } } }), 403, 'M_FORBIDDEN');
    }, TABLES.filter((t) => t !== 'uia_sessions'));
    // Nor a reset's session with one.
    const reset = await hs.request('POST', PASSWORD, { body: { new_password: NEW_PASSWORD } });
    expect(reset.status).toBe(401);
    expectMatrixError(await hs.request('POST', PASSWORD, { body: { auth: { type: 'm.login.password', session: reset.body.session } }, token: u.tokens[0] }), 403, 'M_FORBIDDEN');
    // The validation is still good for the reset itself.
    expect((await hs.request('POST', PASSWORD, { body })).status).toBe(200);
  });

  it('checks the new password before UIA, and refuses malformed requests without changing anything', async () => {
    const u = await userWithEmail('weak');
    const creds = await validatedReset(u.email);
    await expectNoChange(hs, async () => {
      expectMatrixError(await hs.request('POST', PASSWORD, { body: { new_password: 'short' } }), 400, 'M_WEAK_PASSWORD');
      expectMatrixError(await hs.request('POST', PASSWORD, { body: { new_password: 'short', auth: { type: EMAIL_STAGE, threepid_creds: creds } } }), 400, 'M_WEAK_PASSWORD');
      expectMatrixError(await hs.request('POST', PASSWORD, { body: { auth: { type: EMAIL_STAGE, threepid_creds: creds } } }), 400, 'M_MISSING_PARAM');
      for (const bad of [{ new_password: 5 }, { new_password: NEW_PASSWORD, logout_devices: 'yes' }, { new_password: 'x'.repeat(100_000) }]) {
        const res = await hs.request('POST', PASSWORD, { body: { ...bad, auth: { type: EMAIL_STAGE, threepid_creds: creds } } });
        expect(res.status, JSON.stringify(bad).slice(0, 60)).toBe(400);
      }
      expectMatrixError(await hs.request('POST', PASSWORD, { rawBody: '{not json' }), 400, 'M_NOT_JSON');
    }, TABLES);
    // Malformed auth: refused (a UIA session may be left for the client to retry), nothing else changes.
    await expectNoChange(hs, async () => {
      for (const auth of [{ type: EMAIL_STAGE }, { type: EMAIL_STAGE, threepid_creds: 'x' }, { type: EMAIL_STAGE, threepid_creds: { sid: 1, client_secret: [] } }, { type: 'm.login.password', password: 'x' }]) {
        const res = await hs.request('POST', PASSWORD, { body: { new_password: NEW_PASSWORD, auth } });
        expect(res.status, JSON.stringify(auth)).toBeGreaterThanOrEqual(400);
        expect(res.status).toBeLessThan(500);
      }
    }, TABLES.filter((t) => t !== 'uia_sessions'));
    expect((await login(u.username, DEFAULT_PASSWORD)).status).toBe(200);
  });

  it('a deactivated account cannot be reset: its address is unbound, before or after the mail', async () => {
    // Validated first, deactivated after: the completing request finds nobody.
    const u = await userWithEmail('deact');
    const creds = await validatedReset(u.email);
    const deact = await hs.request('POST', `${V3}/account/deactivate`, {
      token: u.tokens[0],
      body: { auth: { type: 'm.login.password', identifier: { type: 'm.id.user', user: u.username }, password: DEFAULT_PASSWORD } },
    });
    expect(deact.status, deact.text).toBe(200);
    await expectNoChange(hs, async () => {
      expectMatrixError(await hs.request('POST', PASSWORD, { body: { new_password: NEW_PASSWORD, auth: { type: EMAIL_STAGE, threepid_creds: creds } } }), 400, 'M_THREEPID_NOT_FOUND');
      // And no new mail can be asked for.
      expectMatrixError(await hs.request('POST', RESET_TOKEN, { body: { client_secret: 'cs-deact', email: u.email, send_attempt: 1 } }), 400, 'M_THREEPID_NOT_FOUND');
    }, TABLES.filter((t) => t !== 'uia_sessions'));
    expect((await hs.db()('users').where({ user_id: u.userId }).first()).password_hash).toBeNull();
    expect((await hs.db()('threepid_validation_sessions').where({ session_id: creds.sid }).first()).consumed_ts).toBeNull();
  });

  it('a locked account cannot be reset (401 M_USER_LOCKED); once unlocked the same session completes', async () => {
    const u = await userWithEmail('locked');
    const creds = await validatedReset(u.email);
    await hs.db()('users').where({ user_id: u.userId }).update({ locked: true });
    const before = await passwordHash(u.userId);
    const first = await hs.request('POST', PASSWORD, { body: { new_password: NEW_PASSWORD } });
    expect(first.status).toBe(401);
    const session = first.body.session as string;
    const refused = await hs.request('POST', PASSWORD, { body: { auth: { type: EMAIL_STAGE, threepid_creds: creds, session } } });
    expectMatrixError(refused, 401, 'M_USER_LOCKED');
    expect(await passwordHash(u.userId)).toBe(before);
    expect(await countRows(hs, 'devices', { user_id: u.userId })).toBe(3);
    expect((await hs.db()('threepid_validation_sessions').where({ session_id: creds.sid }).first()).consumed_ts).toBeNull();

    await hs.db()('users').where({ user_id: u.userId }).update({ locked: false });
    const done = await hs.request('POST', PASSWORD, { body: { auth: { session } } });
    expect(done.status, done.text).toBe(200);
    expect((await login(u.username, NEW_PASSWORD)).status).toBe(200);
  });
});

describe('POST /account/password takes an optional access token', () => {
  it('is the one route declared optional in the route table, and still declares auth (so locked and suspended accounts are held to it)', async () => {
    const optional = (await serverRoutes()).filter((r) => r.auth !== null && !r.auth.admin && r.auth.optional === true);
    // (r0 paths are served by their v3 twins.)
    expect(optional.map((r) => `${r.method} ${r.path}`)).toEqual(['POST /_matrix/client/v3/account/password']);
    expect(optional[0]!.auth).toMatchObject({ admin: false, optional: true });
  });
});

describe.each(backends())('password reset without an email section (%s)', (backend) => {
  it('answers 401 M_MISSING_TOKEN, whatever the JSON body, and starts no UIA session', async () => {
    const hs = await startServer(backend);
    try {
      await expectNoChange(hs, async () => {
        expectMatrixError(await hs.request('POST', PASSWORD, { body: { new_password: NEW_PASSWORD } }), 401, 'M_MISSING_TOKEN');
        expectMatrixError(await hs.request('POST', PASSWORD, { body: { new_password: 5, logout_devices: 'x' } }), 401, 'M_MISSING_TOKEN');
        expectMatrixError(await hs.request('POST', PASSWORD, { body: { auth: { type: EMAIL_STAGE, threepid_creds: { sid: 'a', client_secret: 'b' } } } }), 401, 'M_MISSING_TOKEN');
      }, [...ACCOUNT_TABLES, 'uia_sessions']);
    } finally {
      await hs.stop();
    }
  });
});
