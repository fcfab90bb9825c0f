// Signing in another device from an existing session (MSC3882, spec v1.7):
// POST /login/get_token (behind UIA unless configured otherwise, one a minute
// per user) gives a short-lived login token; POST /login with m.login.token
// spends it once. Off by default (login_via_existing_session.enabled).

import { createHash } from 'node:crypto';
import * as sdk from 'matrix-js-sdk';
import { logger as sdkLogger } from 'matrix-js-sdk/lib/logger.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ACCOUNT_TABLES, countRows, expectMatrixError, expectNoChange } from '../support/assertions.js';
import { backends } from '../support/backends.js';
import { DEFAULT_PASSWORD, startInProcessServer as startServer, type TestServer } from '../support/server.js';

(sdkLogger as unknown as { setLevel(level: string): void }).setLevel('silent');

const V3 = '/_matrix/client/v3';
const GET_TOKEN = '/_matrix/client/v1/login/get_token';
const UNSTABLE_GET_TOKEN = '/_matrix/client/unstable/org.matrix.msc3882/login/token';
const TABLES = [...ACCOUNT_TABLES, 'login_tokens', 'uia_sessions'];

const sha256 = (s: string) => createHash('sha256').update(s, 'utf8').digest('hex');
const pwAuth = (user: string, session?: string, password = DEFAULT_PASSWORD) => ({
  type: 'm.login.password',
  identifier: { type: 'm.id.user', user },
  password,
  ...(session === undefined ? {} : { session }),
});

/** A 429 M_LIMIT_EXCEEDED with the wait in the body and in Retry-After. */
function expectLimited(res: { status: number; body: any; headers: Headers }) {
  expectMatrixError(res, 429, 'M_LIMIT_EXCEEDED');
  expect(res.body.retry_after_ms).toBeGreaterThan(0);
  expect(res.body.retry_after_ms).toBeLessThanOrEqual(60_000);
  expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0);
}

describe.each(backends())('login tokens, off by default (%s)', (backend) => {
  let hs: TestServer;
  beforeAll(async () => {
    hs = await startServer(backend);
  });
  afterAll(async () => {
    await hs?.stop();
  });

  it('serves no get_token endpoint (404 M_UNRECOGNIZED, as Synapse), offers no m.login.token and says so in the capability', async () => {
    const me = await hs.register('lt_off');
    await expectNoChange(
      hs,
      async () => {
        for (const path of [GET_TOKEN, UNSTABLE_GET_TOKEN]) {
          const res = await hs.request('POST', path, { token: me.access_token, body: { auth: pwAuth('lt_off') } });
          expectMatrixError(res, 404, 'M_UNRECOGNIZED');
        }
        const login = await hs.request('POST', `${V3}/login`, { body: { type: 'm.login.token', token: 'ghl_whatever' } });
        expectMatrixError(login, 400, 'M_UNKNOWN');
      },
      TABLES,
    );
    const flows = await hs.request('GET', `${V3}/login`);
    expect(flows.body).toEqual({ flows: [{ type: 'm.login.password' }] });
    const caps = await hs.request('GET', `${V3}/capabilities`, { token: me.access_token });
    expect(caps.body.capabilities['m.get_login_token']).toEqual({ enabled: false });
  });
});

describe.each(backends())('login tokens with re-authentication (%s)', (backend) => {
  let hs: TestServer;
  beforeAll(async () => {
    hs = await startServer(backend, { login_via_existing_session: { enabled: true }, allow_guest_access: true });
  });
  afterAll(async () => {
    await hs?.stop();
  });

  const getToken = (token: string, body: unknown = {}, path = GET_TOKEN) => hs.request('POST', path, { token, body });
  const tokenLogin = (token: unknown, extra: Record<string, unknown> = {}) =>
    hs.request('POST', `${V3}/login`, { body: { type: 'm.login.token', token, ...extra } });
  const whoami = (token: string) => hs.request('GET', `${V3}/account/whoami`, { token });

  /** The two rounds of UIA: the 401 and then the password. Returns the 200 body. */
  async function mint(localpart: string, accessToken: string, path = GET_TOKEN): Promise<{ login_token: string; expires_in_ms: number; expires_in: number }> {
    const challenge = await getToken(accessToken, {}, path);
    expect(challenge.status).toBe(401);
    const res = await getToken(accessToken, { auth: pwAuth(localpart, challenge.body.session) }, path);
    expect(res.status, res.text).toBe(200);
    return res.body;
  }

  it('GET /login offers m.login.token with get_login_token, beside the password', async () => {
    const res = await hs.request('GET', `${V3}/login`);
    expect(res.status).toBe(200);
    expect(res.body.flows).toEqual([{ type: 'm.login.password' }, { type: 'm.login.token', get_login_token: true }]);
  });

  it('the capability is on for users, off for guests (who are refused the endpoint)', async () => {
    const me = await hs.register('lt_caps');
    const caps = await hs.request('GET', `${V3}/capabilities`, { token: me.access_token });
    expect(caps.body.capabilities['m.get_login_token']).toEqual({ enabled: true });
    const guest = await hs.request('POST', `${V3}/register?kind=guest`, { body: {} });
    expect(guest.status).toBe(200);
    const guestCaps = await hs.request('GET', `${V3}/capabilities`, { token: guest.body.access_token });
    expect(guestCaps.body.capabilities['m.get_login_token']).toEqual({ enabled: false });
    await expectNoChange(
      hs,
      async () => expectMatrixError(await getToken(guest.body.access_token), 403, 'M_GUEST_ACCESS_FORBIDDEN'),
      TABLES,
    );
  });

  it('needs an access token', async () => {
    await expectNoChange(
      hs,
      async () => {
        expectMatrixError(await hs.request('POST', GET_TOKEN, { body: {} }), 401, 'M_MISSING_TOKEN');
        expectMatrixError(await getToken('gha_notatoken'), 401, 'M_UNKNOWN_TOKEN');
      },
      TABLES,
    );
  });

  it('asks for the password (UIA), then gives a token stored only as its hash; it signs in another device once', async () => {
    const me = await hs.register('lt_once');
    const challenge = await getToken(me.access_token);
    expect(challenge.status).toBe(401);
    expect(challenge.body.flows).toEqual([{ stages: ['m.login.password'] }]);
    expect(typeof challenge.body.session).toBe('string');
    expect(await countRows(hs, 'login_tokens')).toBe(0);

    // A wrong password is a failed stage: no token.
    const wrong = await getToken(me.access_token, { auth: pwAuth('lt_once', challenge.body.session, 'wrong password') });
    expect(wrong.status).toBe(401);
    expect(wrong.body.errcode).toBe('M_FORBIDDEN');
    expect(await countRows(hs, 'login_tokens')).toBe(0);

    const res = await getToken(me.access_token, { auth: pwAuth('lt_once', challenge.body.session) });
    expect(res.status).toBe(200);
    expect(Object.keys(res.body).sort()).toEqual(['expires_in', 'expires_in_ms', 'login_token']);
    expect(res.body.login_token).toMatch(/^ghl_[A-Za-z0-9]{40}$/);
    // Synapse's default token_timeout: 5 minutes.
    expect(res.body.expires_in_ms).toBe(300_000);
    expect(res.body.expires_in).toBe(300);
    const rows = await hs.db()('login_tokens').select();
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ token_hash: sha256(res.body.login_token), user_id: me.user_id, device_id: me.device_id });
    expect(JSON.stringify(rows)).not.toContain(res.body.login_token);
    expect(Number(rows[0].expires_ts) - Number(rows[0].created_ts)).toBe(300_000);

    const signedIn = await tokenLogin(res.body.login_token, { initial_device_display_name: 'New phone', refresh_token: true });
    expect(signedIn.status, signedIn.text).toBe(200);
    expect(signedIn.body.user_id).toBe(me.user_id);
    expect(signedIn.body.device_id).not.toBe(me.device_id);
    expect(typeof signedIn.body.refresh_token).toBe('string');
    expect((await whoami(signedIn.body.access_token)).body).toEqual({ user_id: me.user_id, device_id: signedIn.body.device_id, is_guest: false });
    const device = await hs.db()('devices').where({ user_id: me.user_id, device_id: signedIn.body.device_id }).first();
    expect(device.display_name).toBe('New phone');
    expect(await countRows(hs, 'login_tokens')).toBe(0);

    // Used: 403 M_FORBIDDEN (spec), and nothing more happens.
    await expectNoChange(hs, async () => expectMatrixError(await tokenLogin(res.body.login_token), 403, 'M_FORBIDDEN'), TABLES);
    // The session that asked for it is untouched.
    expect((await whoami(me.access_token)).status).toBe(200);
  });

  it('signs in on the device ID asked for', async () => {
    const me = await hs.register('lt_device');
    const { login_token } = await mint('lt_device', me.access_token);
    const res = await tokenLogin(login_token, { device_id: 'NEWDEVICE' });
    expect(res.status).toBe(200);
    expect(res.body.device_id).toBe('NEWDEVICE');
    expect((await whoami(res.body.access_token)).body.device_id).toBe('NEWDEVICE');
  });

  it('re-prompts every time: a repeat of the request that got a token gets a new session, not a second token', async () => {
    const me = await hs.register('lt_repeat');
    const challenge = await getToken(me.access_token);
    const body = { auth: pwAuth('lt_repeat', challenge.body.session) };
    expect((await getToken(me.access_token, body)).status).toBe(200);
    await expectNoChange(
      hs,
      async () => {
        for (const again of [body, { auth: { session: challenge.body.session } }]) {
          const res = await getToken(me.access_token, again);
          expect(res.status).toBe(401);
          expect(res.body.session).not.toBe(challenge.body.session);
          expect(res.body.completed).toEqual([]);
          expect(res.body.login_token).toBeUndefined();
        }
      },
      ACCOUNT_TABLES.concat('login_tokens'),
    );
    expect(await countRows(hs, 'login_tokens', { user_id: me.user_id })).toBe(1);
  });

  it('is rate limited to one token a minute per user, after UIA; the session survives the 429 for a retry', async () => {
    const me = await hs.register('lt_limit');
    await mint('lt_limit', me.access_token);
    const challenge = await getToken(me.access_token);
    expect(challenge.status).toBe(401);
    await expectNoChange(
      hs,
      async () => {
        expectLimited(await getToken(me.access_token, { auth: pwAuth('lt_limit', challenge.body.session) }));
        // The password stage stays passed: the retry needs only the session (and is limited again).
        expectLimited(await getToken(me.access_token, { auth: { session: challenge.body.session } }));
      },
      ACCOUNT_TABLES.concat('login_tokens'),
    );
    // Another user is not held back by it.
    const other = await hs.register('lt_limit_other');
    await mint('lt_limit_other', other.access_token);
  });

  it('serves MSC3882\'s unstable path as well', async () => {
    const me = await hs.register('lt_unstable');
    const body = await mint('lt_unstable', me.access_token, UNSTABLE_GET_TOKEN);
    expect(body.expires_in_ms).toBe(300_000);
    expect((await tokenLogin(body.login_token)).status).toBe(200);
  });

  it('refuses malformed requests with 400, and unknown tokens with 403 M_FORBIDDEN, changing nothing', async () => {
    const me = await hs.register('lt_bad');
    await mint('lt_bad', me.access_token);
    await expectNoChange(
      hs,
      async () => {
        expectMatrixError(await hs.request('POST', `${V3}/login`, { body: { type: 'm.login.token' } }), 400, 'M_MISSING_PARAM');
        for (const token of [42, true, ['ghl_x'], { t: 1 }, 'x'.repeat(256), 'ghl_\u0000']) expectMatrixError(await tokenLogin(token), 400, 'M_BAD_JSON');
        for (const token of ['', 'ghl_nosuchtoken', `ghl_${'A'.repeat(40)}`, 'x'.repeat(255)]) expectMatrixError(await tokenLogin(token), 403, 'M_FORBIDDEN');
        // A token given for the password type, or a password for the token type, does not count.
        expectMatrixError(await tokenLogin(undefined, { password: DEFAULT_PASSWORD, identifier: { type: 'm.id.user', user: 'lt_bad' } }), 400, 'M_MISSING_PARAM');
        // Malformed fields of the sign-in itself.
        expectMatrixError(await tokenLogin('ghl_nosuchtoken', { device_id: '' }), 400, 'M_INVALID_PARAM');
        expectMatrixError(await tokenLogin('ghl_nosuchtoken', { refresh_token: 'yes' }), 400, 'M_BAD_JSON');
        // get_token's own input.
        expectMatrixError(await getToken(me.access_token, { auth: 'password' }), 400, 'M_BAD_JSON');
        expectMatrixError(await hs.request('POST', GET_TOKEN, { token: me.access_token, rawBody: '[]' }), 400, 'M_BAD_JSON');
      },
      TABLES,
    );
  });

  it('refuses a malformed field without spending a good token', async () => {
    const me = await hs.register('lt_keep');
    const { login_token } = await mint('lt_keep', me.access_token);
    await expectNoChange(
      hs,
      async () => {
        expectMatrixError(await tokenLogin(login_token, { device_id: '..' }), 400, 'M_INVALID_PARAM');
        expectMatrixError(await tokenLogin(login_token, { initial_device_display_name: 'n'.repeat(101) }), 400, 'M_TOO_LARGE');
      },
      TABLES,
    );
    expect((await tokenLogin(login_token)).status).toBe(200);
  });

  it('lets exactly one of several parallel uses of a token sign in', async () => {
    const me = await hs.register('lt_race');
    const { login_token } = await mint('lt_race', me.access_token);
    const devicesBefore = await countRows(hs, 'devices', { user_id: me.user_id });
    const results = await Promise.all(Array.from({ length: 8 }, () => tokenLogin(login_token)));
    expect(results.map((r) => r.status).sort()).toEqual([200, 403, 403, 403, 403, 403, 403, 403]);
    for (const r of results.filter((r) => r.status === 403)) expect(r.body.errcode).toBe('M_FORBIDDEN');
    expect(await countRows(hs, 'devices', { user_id: me.user_id })).toBe(devicesBefore + 1);
  });

  it('a token dies with the session that asked for it (logout)', async () => {
    const me = await hs.register('lt_logout');
    const asker = await hs.login('lt_logout');
    const { login_token } = await mint('lt_logout', asker.access_token);
    expect((await hs.request('POST', `${V3}/logout`, { token: asker.access_token, body: {} })).status).toBe(200);
    expect(await countRows(hs, 'login_tokens', { user_id: me.user_id })).toBe(0);
    await expectNoChange(hs, async () => expectMatrixError(await tokenLogin(login_token), 403, 'M_FORBIDDEN'), TABLES);
  });

  it('a token dies when a password change signs the other devices out, and with a deactivated account', async () => {
    const me = await hs.register('lt_pwchange');
    const asker = await hs.login('lt_pwchange');
    const { login_token } = await mint('lt_pwchange', asker.access_token);
    const change = await hs.request('POST', `${V3}/account/password`, {
      token: me.access_token,
      body: { new_password: 'a new password entirely', auth: pwAuth('lt_pwchange') },
    });
    expect(change.status, change.text).toBe(200);
    expectMatrixError(await tokenLogin(login_token), 403, 'M_FORBIDDEN');

    const gone = await hs.register('lt_deact');
    const second = await mint('lt_deact', gone.access_token);
    const deact = await hs.request('POST', `${V3}/account/deactivate`, { token: gone.access_token, body: { auth: pwAuth('lt_deact') } });
    expect(deact.status, deact.text).toBe(200);
    expectMatrixError(await tokenLogin(second.login_token), 403, 'M_FORBIDDEN');
  });

  it('checks the account as password login does, and a refused sign-in does not spend the token', async () => {
    const me = await hs.register('lt_state');
    const { login_token } = await mint('lt_state', me.access_token);
    const users = () => hs.db()('users').where({ user_id: me.user_id });

    await users().update({ approved: false });
    await expectNoChange(hs, async () => expectMatrixError(await tokenLogin(login_token), 403, 'M_USER_AWAITING_APPROVAL'), TABLES);
    await users().update({ approved: true, deactivated: true });
    await expectNoChange(hs, async () => expectMatrixError(await tokenLogin(login_token), 403, 'M_USER_DEACTIVATED'), TABLES);
    await users().update({ deactivated: false });

    const res = await tokenLogin(login_token);
    expect(res.status).toBe(200);
    expect(res.body.user_id).toBe(me.user_id);
  });

  it('works with matrix-js-sdk: requestLoginToken through UIA, then loginRequest with m.login.token', async () => {
    const me = await hs.register('lt_sdk');
    const client = sdk.createClient({ baseUrl: hs.url, accessToken: me.access_token, userId: me.user_id, deviceId: me.device_id });
    const caps = await client.getCapabilities();
    expect(caps['m.get_login_token']).toEqual({ enabled: true });
    let session: string | undefined;
    try {
      await client.requestLoginToken();
      throw new Error('expected a UIA challenge');
    } catch (e) {
      expect(e).toBeInstanceOf(sdk.MatrixError);
      expect((e as sdk.MatrixError).httpStatus).toBe(401);
      session = ((e as sdk.MatrixError).data as { session?: string }).session;
    }
    const got = await client.requestLoginToken(pwAuth('lt_sdk', session) as sdk.AuthDict);
    expect(typeof got.login_token).toBe('string');
    expect(got.expires_in_ms).toBe(300_000);

    const fresh = sdk.createClient({ baseUrl: hs.url });
    const flows = await fresh.loginFlows();
    expect(flows.flows).toContainEqual({ type: 'm.login.token', get_login_token: true });
    const signedIn = await fresh.loginRequest({ type: 'm.login.token', token: got.login_token });
    expect(signedIn.user_id).toBe(me.user_id);
    expect(signedIn.access_token).toBeTruthy();
  });
});

describe.each(backends())('login tokens without re-authentication, short-lived (%s)', (backend) => {
  let hs: TestServer;
  beforeAll(async () => {
    hs = await startServer(backend, {
      login_via_existing_session: { enabled: true, require_ui_auth: false, token_timeout: '1500ms' },
      // Sweeps run every half session lifetime (at most a minute): often, here.
      ui_auth: { session_lifetime: '1s' },
    });
  });
  afterAll(async () => {
    await hs?.stop();
  });

  const getToken = (token: string) => hs.request('POST', GET_TOKEN, { token, body: {} });
  const tokenLogin = (token: string) => hs.request('POST', `${V3}/login`, { body: { type: 'm.login.token', token } });

  it('gives a token at once, which expires after token_timeout (403 M_FORBIDDEN) and is swept', async () => {
    const me = await hs.register('lt_expire');
    const res = await getToken(me.access_token);
    expect(res.status).toBe(200);
    expect(res.body.expires_in_ms).toBe(1500);
    expect(res.body.expires_in).toBe(1);
    expect(await countRows(hs, 'uia_sessions', { operation: 'POST /login/get_token' })).toBe(0);
    await new Promise((r) => setTimeout(r, 1700));
    await expectNoChange(hs, async () => expectMatrixError(await tokenLogin(res.body.login_token), 403, 'M_FORBIDDEN'));
    // The sweep deletes it (every 500 ms here).
    const deadline = Date.now() + 5000;
    while ((await countRows(hs, 'login_tokens')) > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(await countRows(hs, 'login_tokens')).toBe(0);
  });

  it('signs in with a token used in time', async () => {
    const me = await hs.register('lt_intime');
    const res = await getToken(me.access_token);
    const login = await tokenLogin(res.body.login_token);
    expect(login.status).toBe(200);
    expect(login.body.user_id).toBe(me.user_id);
  });

  it('is still rate limited to one a minute', async () => {
    const me = await hs.register('lt_nouia_limit');
    expect((await getToken(me.access_token)).status).toBe(200);
    await expectNoChange(hs, async () => expectLimited(await getToken(me.access_token)), TABLES);
  });
});

describe.each(backends())('login tokens with password authentication off (%s)', (backend) => {
  let hs: TestServer;
  beforeAll(async () => {
    hs = await startServer(backend, { login_via_existing_session: { enabled: true }, password_config: { enabled: false } });
  });
  afterAll(async () => {
    await hs?.stop();
  });

  it('offers only m.login.token; re-authentication is impossible, so the capability is off and get_token is 400', async () => {
    const me = await hs.register('lt_nopw');
    expect((await hs.request('GET', `${V3}/login`)).body).toEqual({ flows: [{ type: 'm.login.token', get_login_token: true }] });
    const caps = await hs.request('GET', `${V3}/capabilities`, { token: me.access_token });
    expect(caps.body.capabilities['m.get_login_token']).toEqual({ enabled: false });
    await expectNoChange(
      hs,
      async () => expectMatrixError(await hs.request('POST', GET_TOKEN, { token: me.access_token, body: {} }), 400, 'M_UNKNOWN'),
      TABLES,
    );
  });
});
