// Registration policies beyond tokens: accounts that wait for an admin's
// approval (MSC3866), inhibit_user_in_use_error, guests upgrading to full
// accounts (guest_access_token), and the password policy endpoint (MSC2000).

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ACCOUNT_TABLES, countRows, expectMatrixError, expectNoChange } from '../support/assertions.js';
import { backends } from '../support/backends.js';
import { DEFAULT_PASSWORD, startServer, type TestServer } from '../support/server.js';

const C = '/_matrix/client/v3';
const loginBody = (user: string, password = DEFAULT_PASSWORD) => ({
  type: 'm.login.password',
  identifier: { type: 'm.id.user', user },
  password,
});
const dummyRegistration = (username: string, extra: Record<string, unknown> = {}) => ({
  username,
  password: DEFAULT_PASSWORD,
  auth: { type: 'm.login.dummy' },
  ...extra,
});

function expectAwaitingApproval(res: { status: number; body: any }): void {
  expectMatrixError(res, 403, 'M_USER_AWAITING_APPROVAL');
  expect(res.body.approval_notice_medium).toBe('org.matrix.msc3866.none');
}

describe.each(backends())('accounts awaiting approval (%s)', (backend) => {
  let hs: TestServer;
  let synapseStyle: TestServer;
  beforeAll(async () => {
    [hs, synapseStyle] = await Promise.all([
      startServer(backend, { registration_requires_approval: true }),
      startServer(backend, { experimental_features: { msc3866: { enabled: true, require_approval_for_new_accounts: true } } }),
    ]);
  });
  afterAll(async () => {
    await hs?.stop();
    await synapseStyle?.stop();
  });

  const approved = async (server: TestServer, userId: string) => !!(await server.db()('users').where({ user_id: userId }).first()).approved;

  it('registration makes the account but answers 403 M_USER_AWAITING_APPROVAL, signing nobody in', async () => {
    for (const server of [hs, synapseStyle]) {
      const devices = await countRows(server, 'devices');
      const res = await server.request('POST', `${C}/register`, { body: dummyRegistration('waiting_one') });
      expectAwaitingApproval(res);
      expect(await countRows(server, 'users', { localpart: 'waiting_one' })).toBe(1);
      expect(await approved(server, '@waiting_one:test.local')).toBe(false);
      expect(await countRows(server, 'devices')).toBe(devices);
      expect(await countRows(server, 'access_tokens', { user_id: '@waiting_one:test.local' })).toBe(0);
    }
  });

  it('login is 403 M_USER_AWAITING_APPROVAL only with the right password, and works once approved', async () => {
    await hs.request('POST', `${C}/register`, { body: dummyRegistration('waiting_two') });
    await expectNoChange(hs, async () => {
      // A wrong password tells nothing about the account.
      expectMatrixError(await hs.request('POST', `${C}/login`, { body: loginBody('waiting_two', 'wrong password') }), 403, 'M_FORBIDDEN');
      expectAwaitingApproval(await hs.request('POST', `${C}/login`, { body: loginBody('waiting_two') }));
    });
    await hs.db()('users').where({ user_id: '@waiting_two:test.local' }).update({ approved: true });
    const res = await hs.request('POST', `${C}/login`, { body: loginBody('waiting_two') });
    expect(res.status, res.text).toBe(200);
    expect((await hs.request('GET', `${C}/account/whoami`, { token: res.body.access_token })).status).toBe(200);
  });

  it('an account whose approval is withdrawn is refused on every request, but may sign out', async () => {
    await hs.request('POST', `${C}/register`, { body: dummyRegistration('waiting_three') });
    await hs.db()('users').where({ user_id: '@waiting_three:test.local' }).update({ approved: true });
    const session = (await hs.request('POST', `${C}/login`, { body: loginBody('waiting_three') })).body;
    await hs.db()('users').where({ user_id: '@waiting_three:test.local' }).update({ approved: false });
    for (const [method, path] of [
      ['GET', '/account/whoami'],
      ['GET', '/devices'],
      ['GET', '/capabilities'],
    ] as const) {
      expectAwaitingApproval(await hs.request(method, `${C}${path}`, { token: session.access_token }));
    }
    expect((await hs.request('POST', `${C}/logout`, { token: session.access_token })).status).toBe(200);
    expect(await countRows(hs, 'access_tokens', { user_id: '@waiting_three:test.local' })).toBe(0);
  });

  it('a repeat of the registration request stays 403 until the account is approved, then signs in', async () => {
    const open = await hs.request('POST', `${C}/register`, { body: { username: 'waiting_four', password: DEFAULT_PASSWORD } });
    const session = open.body.session as string;
    expectAwaitingApproval(await hs.request('POST', `${C}/register`, { body: { auth: { type: 'm.login.dummy', session } } }));
    expectAwaitingApproval(await hs.request('POST', `${C}/register`, { body: { auth: { type: 'm.login.dummy', session } } }));
    await hs.db()('users').where({ user_id: '@waiting_four:test.local' }).update({ approved: true });
    const res = await hs.request('POST', `${C}/register`, { body: { auth: { type: 'm.login.dummy', session } } });
    expect(res.status, res.text).toBe(200);
    expect(res.body.user_id).toBe('@waiting_four:test.local');
  });

  it('accounts made by the admin (shared-secret registration) need no approval', async () => {
    const { createHmac } = await import('node:crypto');
    const { nonce } = (await hs.request('GET', '/_synapse/admin/v1/register')).body;
    const mac = createHmac('sha1', 'test-shared-secret').update([nonce, 'admin_made', DEFAULT_PASSWORD, 'notadmin'].join('\x00')).digest('hex');
    const res = await hs.request('POST', '/_synapse/admin/v1/register', { body: { nonce, username: 'admin_made', password: DEFAULT_PASSWORD, mac } });
    expect(res.status, res.text).toBe(200);
    expect((await hs.request('GET', `${C}/account/whoami`, { token: res.body.access_token })).status).toBe(200);
  });
});

describe.each(backends())('inhibit_user_in_use_error (%s)', (backend) => {
  let hs: TestServer;
  beforeAll(async () => {
    hs = await startServer(backend, { inhibit_user_in_use_error: true });
  });
  afterAll(async () => {
    await hs?.stop();
  });

  it('/register/available says a taken name is available; the clash shows only after UIA', async () => {
    await hs.register('taken_name');
    expect((await hs.request('GET', `${C}/register/available?username=taken_name`)).body).toEqual({ available: true });
    // Malformed names are still refused.
    expectMatrixError(await hs.request('GET', `${C}/register/available?username=_bad`), 400, 'M_INVALID_USERNAME');
    await expectNoChange(hs, async () => {
      // Without auth: the UIA challenge, not the clash.
      const first = await hs.request('POST', `${C}/register`, { body: { username: 'taken_name', password: DEFAULT_PASSWORD } });
      expect(first.status).toBe(401);
      expect(first.body.flows).toEqual([{ stages: ['m.login.dummy'] }]);
      // With the stage done: now the clash.
      expectMatrixError(await hs.request('POST', `${C}/register`, { body: dummyRegistration('taken_name') }), 400, 'M_USER_IN_USE');
    }, ACCOUNT_TABLES);
  });
});

describe.each(backends())('guests upgrading to full accounts (%s)', (backend) => {
  let hs: TestServer;
  beforeAll(async () => {
    hs = await startServer(backend, { allow_guest_access: true });
  });
  afterAll(async () => {
    await hs?.stop();
  });

  const guest = async () => {
    const res = await hs.request('POST', `${C}/register?kind=guest`, { body: {} });
    expect(res.status).toBe(200);
    return res.body as { user_id: string; access_token: string; device_id: string };
  };
  const localpartOf = (userId: string) => userId.slice(1, userId.indexOf(':'));

  it('keeps the guest user ID, sets the password, and signs in as a full user', async () => {
    const g = await guest();
    const users = await countRows(hs, 'users');
    const res = await hs.request('POST', `${C}/register`, {
      body: { username: localpartOf(g.user_id), password: DEFAULT_PASSWORD, guest_access_token: g.access_token, auth: { type: 'm.login.dummy' } },
    });
    expect(res.status, res.text).toBe(200);
    expect(res.body.user_id).toBe(g.user_id);
    expect(await countRows(hs, 'users')).toBe(users);
    const who = await hs.request('GET', `${C}/account/whoami`, { token: res.body.access_token });
    expect(who.body).toMatchObject({ user_id: g.user_id, is_guest: false });
    // The password works, and the account can now do what guests cannot.
    const login = await hs.request('POST', `${C}/login`, { body: loginBody(g.user_id) });
    expect(login.status, login.text).toBe(200);
  });

  it('takes the guest\'s name when no username is given', async () => {
    const g = await guest();
    const res = await hs.request('POST', `${C}/register`, {
      body: { password: DEFAULT_PASSWORD, guest_access_token: g.access_token, auth: { type: 'm.login.dummy' } },
    });
    expect(res.status, res.text).toBe(200);
    expect(res.body.user_id).toBe(g.user_id);
  });

  it('refuses another name (403), a full account\'s token (403) and an unknown token (401), changing nothing', async () => {
    const g = await guest();
    const full = await hs.register('not_a_guest');
    await expectNoChange(hs, async () => {
      const otherName = await hs.request('POST', `${C}/register`, {
        body: { username: 'someone_else', password: DEFAULT_PASSWORD, guest_access_token: g.access_token, auth: { type: 'm.login.dummy' } },
      });
      expectMatrixError(otherName, 403, 'M_FORBIDDEN');
      const fullToken = await hs.request('POST', `${C}/register`, {
        body: { password: DEFAULT_PASSWORD, guest_access_token: full.access_token, auth: { type: 'm.login.dummy' } },
      });
      expectMatrixError(fullToken, 403, 'M_FORBIDDEN');
      const unknown = await hs.request('POST', `${C}/register`, {
        body: { password: DEFAULT_PASSWORD, guest_access_token: 'syt_nope', auth: { type: 'm.login.dummy' } },
      });
      expectMatrixError(unknown, 401, 'M_UNKNOWN_TOKEN');
    }, [...ACCOUNT_TABLES, 'uia_sessions']);
    expect((await hs.db()('users').where({ user_id: g.user_id }).first()).is_guest).toBeTruthy();
  });

  it('upgrades a guest once: a second upgrade with the same (now full) token is 403', async () => {
    const g = await guest();
    const body = { password: DEFAULT_PASSWORD, guest_access_token: g.access_token, auth: { type: 'm.login.dummy' } };
    expect((await hs.request('POST', `${C}/register`, { body })).status).toBe(200);
    expectMatrixError(await hs.request('POST', `${C}/register`, { body }), 403, 'M_FORBIDDEN');
  });
});

describe.each(backends())('GET /password_policy (%s)', (backend) => {
  let strict: TestServer;
  let open: TestServer;
  beforeAll(async () => {
    [strict, open] = await Promise.all([
      startServer(backend, {
        password_config: { policy: { enabled: true, minimum_length: 12, require_digit: true, require_symbol: false, require_lowercase: true, require_uppercase: false } },
      }),
      startServer(backend),
    ]);
  });
  afterAll(async () => {
    await strict?.stop();
    await open?.stop();
  });

  it('describes password_config.policy with m.-prefixed keys, on v3, r0 and the unstable path', async () => {
    for (const path of [`${C}/password_policy`, '/_matrix/client/r0/password_policy', '/_matrix/client/unstable/password_policy']) {
      const res = await strict.request('GET', path);
      expect(res.status).toBe(200);
      expect(res.body).toEqual({
        'm.minimum_length': 12,
        'm.require_digit': true,
        'm.require_symbol': false,
        'm.require_lowercase': true,
        'm.require_uppercase': false,
      });
    }
  });

  it('is {} when no policy is enforced', async () => {
    expect((await open.request('GET', `${C}/password_policy`)).body).toEqual({});
  });
});
