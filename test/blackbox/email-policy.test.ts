// The registration policy end to end (issue 14, "Registration policy"): ma1sd's
// email domain lists (register.policy.threepid.email.domain, its documentation's
// table as the test case) and Synapse's allowed_local_3pids hold at
// requestToken for registration and for adding an address: a denied address
// gets 403 M_THREEPID_DENIED, no mail and no session. A password reset
// concerns an address already bound, so the policy does not apply to it.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { countRows, expectMatrixError, expectNoChange } from '../support/assertions.js';
import { backends } from '../support/backends.js';
import { clickLink } from '../support/email.js';
import { startInProcessServer as startServer, type TestServer } from '../support/server.js';
import { emailSection, type SmtpListener, startSmtpListener } from '../support/smtp.js';

const C = '/_matrix/client/v3';
const REGISTRATION = `${C}/register/email/requestToken`;
const ADD = `${C}/account/3pid/email/requestToken`;
const RESET = `${C}/account/password/email/requestToken`;
const VALIDATION_TABLES = ['threepid_validation_sessions', 'threepid_validation_tokens', 'user_threepids'];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * ma1sd's example (docs/features/registration.md): one pattern of each kind, each
 * on its own domain, so the three rows of its table hold side by side.
 */
const POLICY = {
  register: {
    policy: {
      threepid: {
        email: {
          domain: {
            whitelist: ['*example.org', '.example.net', 'example.com'],
            blacklist: ['*blocked.example.org'],
          },
        },
      },
    },
  },
  // Synapse's allowed_local_3pids, on top: plain ASCII local parts only.
  allowed_local_3pids: [{ medium: 'email', pattern: '^[a-z0-9._+-]+@' }],
};

/** [address, allowed, why]. */
const TABLE: [string, boolean, string][] = [
  // ma1sd's table.
  ['alice@example.org', true, '*example.org matches example.org'],
  ['alice@sub.example.org', true, '*example.org matches sub.example.org'],
  ['alice@example.net', false, '.example.net does not match example.net'],
  ['alice@sub.example.net', true, '.example.net matches sub.example.net'],
  ['alice@example.com', true, 'example.com matches example.com'],
  ['alice@sub.example.com', false, 'example.com does not match sub.example.com'],
  // Label boundaries, case, other domains.
  ['alice@deep.sub.example.org', true, '*example.org matches any depth'],
  ['alice@notexample.org', false, '*example.org is not a suffix match'],
  ['alice@example.org.evil.test', false, 'a whitelisted domain inside another'],
  ['Alice@EXAMPLE.COM', true, 'compared in canonical form'],
  ['alice@elsewhere.test', false, 'not on the whitelist'],
  // The blacklist, inside the whitelist.
  ['alice@blocked.example.org', false, 'blacklisted'],
  ['alice@x.blocked.example.org', false, 'blacklisted sub-domain'],
  // allowed_local_3pids.
  ['ålice@example.org', false, 'allowed_local_3pids refuses the local part'],
  ['a+tag@example.org', true, 'allowed_local_3pids allows it'],
];

describe.each(backends())('registration policy at requestToken (%s)', (backend) => {
  let hs: TestServer;
  let smtp: SmtpListener;
  let n = 0;
  const ask = (endpoint: string, email: string) => hs.request('POST', endpoint, { body: { client_secret: `policy-${++n}`, email, send_attempt: 1 } });
  const mailsTo = (address: string) => smtp.messages.filter((m) => m.to.includes(address)).length;

  beforeAll(async () => {
    smtp = await startSmtpListener();
    hs = await startServer(backend, { ...POLICY, email: emailSection(smtp) });
  });
  afterAll(async () => {
    await hs?.stop();
    await smtp?.close();
  });

  it.each(TABLE)('%s: allowed %s (%s), for registration and for adding an address', async (address, allowed) => {
    const canonical = address.toLowerCase();
    for (const endpoint of [REGISTRATION, ADD]) {
      if (allowed) {
        const res = await ask(endpoint, address);
        expect(res.status, res.text).toBe(200);
        const mail = await smtp.waitFor(canonical);
        expect(mail.to).toEqual([canonical]);
      } else {
        await expectNoChange(
          hs,
          async () => {
            expectMatrixError(await ask(endpoint, address), 403, 'M_THREEPID_DENIED');
          },
          VALIDATION_TABLES,
        );
      }
    }
    if (!allowed) {
      await sleep(200);
      expect(mailsTo(canonical)).toBe(0);
      expect(await countRows(hs, 'threepid_validation_sessions', { address: canonical })).toBe(0);
    }
  });

  it('a validated allowed address registers; the mail of a denied one was never sent, so it cannot', async () => {
    const client_secret = 'policy-register';
    const res = await hs.request('POST', REGISTRATION, { body: { client_secret, email: 'bob@sub.example.org', send_attempt: 1 } });
    expect((await clickLink(hs, smtp, await smtp.waitFor('bob@sub.example.org'))).status).toBe(200);
    const reg = await hs.request('POST', `${C}/register`, {
      body: { username: 'policy_bob', password: 'a long password 1', auth: { type: 'm.login.email.identity', threepid_creds: { sid: res.body.sid, client_secret } } },
    });
    expect(reg.status, reg.text).toBe(200);
    expect(await countRows(hs, 'user_threepids', { user_id: reg.body.user_id, address: 'bob@sub.example.org' })).toBe(1);
  });

  it('does not hold a password reset to the policy: a bound address the policy now denies still gets its mail', async () => {
    // Bound before the policy was tightened (or by an admin): written directly, the setup not the subject.
    const { user_id } = await hs.register('policy_old');
    const now = Date.now();
    await hs.db()('user_threepids').insert({ user_id, medium: 'email', address: 'old@elsewhere.test', validated_at: now, added_at: now });
    const res = await ask(RESET, 'old@elsewhere.test');
    expect(res.status, res.text).toBe(200);
    await smtp.waitFor('old@elsewhere.test');
    // A denied address bound to no one is unknown to the reset endpoint, not denied.
    expectMatrixError(await ask(RESET, 'nobody@elsewhere.test'), 400, 'M_THREEPID_NOT_FOUND');
  });

  it('answers M_THREEPID_DENIED with request_token_inhibit_3pid_errors too (the policy is no secret, as Synapse)', async () => {
    const other = await startServer(backend, { ...POLICY, request_token_inhibit_3pid_errors: true, email: emailSection(smtp) });
    try {
      const res = await other.request('POST', REGISTRATION, { body: { client_secret: 'x', email: 'carol@elsewhere.test', send_attempt: 1 } });
      expectMatrixError(res, 403, 'M_THREEPID_DENIED');
      expect(await countRows(other, 'threepid_validation_sessions')).toBe(0);
    } finally {
      await other.stop();
    }
  });
});
