// matrix-js-sdk (v43) registering on a server that asks for a registration
// token, a verified email address and the terms (issue 14, "Tests"): through
// the SDK's own InteractiveAuth as Element drives it (it asks for the mail as
// soon as it has chosen a flow with the email stage, then polls once the
// person has followed the link), and through the bare calls
// (requestRegisterEmailToken, registerRequest); then the account signs in.

import * as sdk from 'matrix-js-sdk';
import { type Logger, logger as sdkLogger } from 'matrix-js-sdk/lib/logger.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { countRows } from '../support/assertions.js';
import { backends } from '../support/backends.js';
import { clickLink, linkParams } from '../support/email.js';
import { DEFAULT_PASSWORD, startServer, type TestServer } from '../support/server.js';
import { emailSection, type SmtpListener, startSmtpListener } from '../support/smtp.js';

(sdkLogger as unknown as { setLevel(level: string): void }).setLevel('silent');
const silent: Logger = { trace: () => {}, debug: () => {}, info: () => {}, warn: () => {}, error: () => {}, getChild: () => silent };

const TOKEN = 'm.login.registration_token';
const EMAIL = 'm.login.email.identity';
const TERMS = 'm.login.terms';

/** The MatrixError a promise rejects with. */
async function matrixError(p: Promise<unknown>): Promise<sdk.MatrixError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(sdk.MatrixError);
    return e as sdk.MatrixError;
  }
  throw new Error('expected the request to fail');
}

describe.each(backends())('matrix-js-sdk registration with a token, an email address and the terms (%s)', (backend) => {
  let hs: TestServer;
  let smtp: SmtpListener;
  /** Every response the SDK received: none may be a 5xx. */
  const seen: { method: string; url: string; status: number }[] = [];
  const recordingFetch: typeof globalThis.fetch = async (input, init) => {
    const res = await fetch(input, init);
    seen.push({ method: init?.method ?? 'GET', url: String(input), status: res.status });
    return res;
  };
  const anon = () => sdk.createClient({ baseUrl: hs.url, fetchFn: recordingFetch, logger: silent });
  let n = 0;
  const seedToken = async () => {
    const token = `sdk-${backend}-${++n}`;
    await hs.db()('registration_tokens').insert({ token, uses_allowed: 1, pending: 0, completed: 0, expiry_time: null, note: null, created_ts: Date.now() });
    return token;
  };
  const tokenRow = async (token: string) => {
    const row = await hs.db()('registration_tokens').where({ token }).first();
    return { pending: Number(row.pending), completed: Number(row.completed) };
  };

  beforeAll(async () => {
    smtp = await startSmtpListener();
    hs = await startServer(backend, {
      enable_registration_without_verification: false,
      registration_requires_token: true,
      registrations_require_3pid: ['email'],
      email: emailSection(smtp),
      terms: { policies: { tos: { version: '1.0', en: { name: 'Terms of Service', url: 'https://example.org/tos-1.0' } } } },
    });
  });
  afterAll(async () => {
    await hs?.stop();
    await smtp?.close();
    expect(seen.filter((r) => r.status >= 500)).toEqual([]);
  });

  it('offers one flow: token, email, terms', async () => {
    const err = await matrixError(anon().registerRequest({ username: 'flows_only', password: DEFAULT_PASSWORD }));
    expect(err.httpStatus).toBe(401);
    expect(err.data.flows).toEqual([{ stages: [TOKEN, EMAIL, TERMS] }]);
  });

  it('registers through InteractiveAuth: the SDK asks for the mail, the person follows the link, the SDK polls; then signs in', async () => {
    const token = await seedToken();
    const address = 'sdk.person@example.org';
    const client = anon();
    const stages: string[] = [];
    const sent: (sdk.AuthDict | null)[] = [];
    const requested: { email: string; attempt: number }[] = [];
    let linkFollowed = false;
    let ia: sdk.InteractiveAuth<sdk.RegisterResponse>;
    ia = new sdk.InteractiveAuth<sdk.RegisterResponse>({
      matrixClient: client,
      inputs: { emailAddress: address },
      doRequest: (auth) => {
        sent.push(auth);
        return client.registerRequest({ username: 'sdk_person', password: DEFAULT_PASSWORD, ...(auth ? { auth } : {}) });
      },
      requestEmailToken: (email, secret, attempt) => {
        requested.push({ email, attempt });
        return client.requestRegisterEmailToken(email, secret, attempt);
      },
      stateUpdated: (stage) => {
        stages.push(stage);
        // Answer outside the callback, as a UI would.
        if (stage === TOKEN) setTimeout(() => void ia.submitAuthDict({ type: TOKEN, token }), 0);
        else if (stage === EMAIL) {
          if (linkFollowed) return;
          linkFollowed = true;
          // "Check your email": the person opens the mail and presses the page's button; Element then polls.
          void (async () => {
            const mail = await smtp.waitFor(address);
            expect((await clickLink(hs, smtp, mail)).status).toBe(200);
            await ia.poll();
          })();
        } else if (stage === TERMS) setTimeout(() => void ia.submitAuthDict({ type: TERMS }), 0);
        else throw new Error(`unexpected stage ${stage}`);
      },
    });
    const result = await ia.attemptAuth();
    expect(result.user_id).toBe('@sdk_person:test.local');
    expect(typeof result.access_token).toBe('string');
    expect(ia.getChosenFlow()).toEqual({ stages: [TOKEN, EMAIL, TERMS] });
    expect(stages.filter((s, i) => s !== stages[i - 1])).toEqual([TOKEN, EMAIL, TERMS]);
    // One mail asked for, and one sent.
    expect(requested).toEqual([{ email: address, attempt: 1 }]);
    expect(smtp.messages.filter((m) => m.to.includes(address))).toHaveLength(1);
    const session = ia.getSessionId();
    expect(sent).toContainEqual({ type: EMAIL, threepid_creds: { sid: ia.getEmailSid(), client_secret: ia.getClientSecret() }, session });

    // The account has the address, the token counts one use, the terms are recorded.
    const bound = await hs.db()('user_threepids').where({ user_id: result.user_id });
    expect(bound.map((r: { medium: string; address: string }) => [r.medium, r.address])).toEqual([['email', address]]);
    expect(await tokenRow(token)).toEqual({ pending: 0, completed: 1 });
    expect(await countRows(hs, 'user_policy_acceptances', { user_id: result.user_id, policy_id: 'tos', version: '1.0' })).toBe(1);

    // And it signs in.
    const login = await anon().loginRequest({ type: 'm.login.password', identifier: { type: 'm.id.user', user: 'sdk_person' }, password: DEFAULT_PASSWORD });
    expect(login.user_id).toBe('@sdk_person:test.local');
    const signedIn = sdk.createClient({ baseUrl: hs.url, fetchFn: recordingFetch, logger: silent, accessToken: login.access_token, userId: login.user_id });
    expect((await signedIn.whoami()).user_id).toBe('@sdk_person:test.local');
  });

  it('registers with the bare calls, as a client without InteractiveAuth would, and sees the SDK errors of each step', async () => {
    const token = await seedToken();
    const address = 'bare.calls@example.org';
    const client = anon();
    const secret = client.generateClientSecret();
    const register = (auth?: sdk.AuthDict) => client.registerRequest({ username: 'sdk_bare', password: DEFAULT_PASSWORD, ...(auth ? { auth } : {}) });

    const flows = await matrixError(register());
    const session = flows.data.session as string;
    const { sid, submit_url } = await client.requestRegisterEmailToken(address, secret, 1);
    expect(submit_url).toBe('https://test.local/_gatehouse/client/email/submit_token');
    // The same attempt again: the same sid, no second mail.
    expect((await client.requestRegisterEmailToken(address, secret, 1)).sid).toBe(sid);

    const afterToken = await matrixError(register({ type: TOKEN, token, session }));
    expect(afterToken.data.completed).toEqual([TOKEN]);
    // Before the link is followed, the email stage fails with the 401 the SDK reads as "not yet".
    const early = await matrixError(register({ type: EMAIL, threepid_creds: { sid, client_secret: secret }, session }));
    expect(early.httpStatus).toBe(401);
    expect(early.data.completed).toEqual([TOKEN]);

    // The client submits the token itself, as one with a "paste the code" box would (submit_url).
    const mail = await smtp.waitFor(address);
    const res = await fetch(hs.url + new URL(submit_url!).pathname, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ sid, client_secret: secret, token: linkParams(smtp, mail).token }),
    });
    expect(await res.json()).toEqual({ success: true });

    const afterEmail = await matrixError(register({ type: EMAIL, threepid_creds: { sid, client_secret: secret }, session }));
    expect(afterEmail.data.completed).toEqual([TOKEN, EMAIL]);
    const done = await register({ type: TERMS, session });
    expect(done.user_id).toBe('@sdk_bare:test.local');
    expect(smtp.messages.filter((m) => m.to.includes(address))).toHaveLength(1);

    // The address is taken now: the SDK sees M_THREEPID_IN_USE.
    const taken = await matrixError(anon().requestRegisterEmailToken(address.toUpperCase(), client.generateClientSecret(), 1));
    expect({ status: taken.httpStatus, errcode: taken.errcode }).toEqual({ status: 400, errcode: 'M_THREEPID_IN_USE' });
    // A malformed address is M_INVALID_PARAM.
    const bad = await matrixError(anon().requestRegisterEmailToken('not-an-address', client.generateClientSecret(), 1));
    expect({ status: bad.httpStatus, errcode: bad.errcode }).toEqual({ status: 400, errcode: 'M_INVALID_PARAM' });

    const login = await anon().loginRequest({ type: 'm.login.password', identifier: { type: 'm.id.user', user: 'sdk_bare' }, password: DEFAULT_PASSWORD });
    expect(login.user_id).toBe('@sdk_bare:test.local');
  });
});
