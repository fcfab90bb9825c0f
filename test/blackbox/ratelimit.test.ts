// Rate limits (rc_login.address, rc_login.account, rc_login.failed_attempts,
// rc_registration), black-box with small limits. On PostgreSQL, two server
// processes on one database share their buckets.
//
// The limits drain slowly (one action per 100 s), so nothing refills while a
// test runs, even on a loaded machine: what is refused is refused because of
// the burst, not timing.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { countRows, expectMatrixError, expectNoChange } from '../support/assertions.js';
import { backends, describeOnPostgres } from '../support/backends.js';
import { DEFAULT_PASSWORD, startServer, type Response, type TestServer } from '../support/server.js';

const V3 = '/_matrix/client/v3';
const OPEN = { per_second: 100000, burst_count: 100000 };
const TIGHT = { per_second: 0.01, burst_count: 2 };

/** A 429 M_LIMIT_EXCEEDED with the wait in the body (ms) and in Retry-After (whole seconds). */
function expectLimited(res: Response): void {
  expect({ status: res.status, errcode: res.body?.errcode }).toEqual({ status: 429, errcode: 'M_LIMIT_EXCEEDED' });
  const ms = res.body.retry_after_ms;
  expect(Number.isInteger(ms)).toBe(true);
  expect(ms).toBeGreaterThan(0);
  // 1 / 0.01 per second: at most 100 s until one more action fits.
  expect(ms).toBeLessThanOrEqual(100_000);
  const header = res.headers.get('retry-after');
  expect(header).toMatch(/^\d+$/);
  expect(Number(header)).toBeGreaterThanOrEqual(1);
  expect(Number(header)).toBe(Math.ceil(ms / 1000));
}

function passwordLogin(hs: TestServer, user: string, password = DEFAULT_PASSWORD, headers: Record<string, string> = {}) {
  return hs.request('POST', `${V3}/login`, { body: { type: 'm.login.password', identifier: { type: 'm.id.user', user }, password }, headers });
}

describe.each(backends())('rc_login.address (%s)', (backend) => {
  let hs: TestServer;
  beforeAll(async () => {
    hs = await startServer(backend, { rc_login: { address: TIGHT, account: OPEN, failed_attempts: OPEN } });
    await hs.register('ada');
    await hs.register('bea');
  });
  afterAll(async () => {
    await hs?.stop();
  });

  it('refuses the third login from one address, whoever it is for, failed ones counted', async () => {
    expect((await passwordLogin(hs, 'ada')).status).toBe(200);
    // A failed login counts too.
    expect((await passwordLogin(hs, 'bea', 'wrong password')).status).toBe(403);
    await expectNoChange(hs, async () => {
      expectLimited(await passwordLogin(hs, 'ada'));
      expectLimited(await passwordLogin(hs, 'bea'));
      // Before the password is even looked at.
      expectLimited(await passwordLogin(hs, 'nobody', 'wrong'));
    });
  });

  it('leaves registration and authenticated requests alone', async () => {
    const reg = await hs.register('cat');
    const who = await hs.request('GET', `${V3}/account/whoami`, { token: reg.access_token });
    expect(who.status).toBe(200);
  });
});

describe.each(backends())('rc_login.account (%s)', (backend) => {
  let hs: TestServer;
  beforeAll(async () => {
    hs = await startServer(backend, { rc_login: { address: OPEN, account: TIGHT, failed_attempts: OPEN } });
    await hs.register('eve');
    await hs.register('fay');
  });
  afterAll(async () => {
    await hs?.stop();
  });

  it('refuses the third login to one account, however it is named, and no other', async () => {
    expect((await passwordLogin(hs, 'eve')).status).toBe(200);
    expect((await passwordLogin(hs, '@eve:test.local')).status).toBe(200);
    await expectNoChange(hs, async () => {
      expectLimited(await passwordLogin(hs, 'eve'));
      expectLimited(await passwordLogin(hs, '@eve:test.local'));
      // The lookup is case-insensitive, so the limit must be too.
      expectLimited(await passwordLogin(hs, 'EVE'));
      expectLimited(await passwordLogin(hs, '@Eve:test.local'));
    });
    // Another account from the same address is not affected.
    expect((await passwordLogin(hs, 'fay')).status).toBe(200);
  });
});

describe.each(backends())('rc_login.failed_attempts (%s)', (backend) => {
  let hs: TestServer;
  beforeAll(async () => {
    hs = await startServer(backend, { rc_login: { address: OPEN, account: OPEN, failed_attempts: TIGHT } });
    await hs.register('gus');
    await hs.register('hal');
  });
  afterAll(async () => {
    await hs?.stop();
  });

  it('after two wrong passwords refuses even the right one, however the account is named', async () => {
    // Successful logins do not count.
    expect((await passwordLogin(hs, 'gus')).status).toBe(200);
    expect((await passwordLogin(hs, 'gus')).status).toBe(200);
    expect((await passwordLogin(hs, 'gus')).status).toBe(200);
    expect((await passwordLogin(hs, 'gus', 'wrong one')).status).toBe(403);
    expect((await passwordLogin(hs, 'gus', 'wrong two')).status).toBe(403);
    await expectNoChange(hs, async () => {
      expectLimited(await passwordLogin(hs, 'gus'));
      expectLimited(await passwordLogin(hs, '@gus:test.local'));
      // Changing the case of the name must not buy fresh attempts.
      expectLimited(await passwordLogin(hs, 'GUS'));
      expectLimited(await passwordLogin(hs, 'Gus', 'wrong three'));
    });
    expect((await passwordLogin(hs, 'hal')).status).toBe(200);
  });

  it('counts wrong passwords in user-interactive auth against the same account', async () => {
    const hal = await hs.login('hal');
    for (const password of ['wrong one', 'wrong two']) {
      const res = await hs.request('POST', `${V3}/account/deactivate`, {
        token: hal.access_token,
        body: { auth: { type: 'm.login.password', identifier: { type: 'm.id.user', user: 'hal' }, password } },
      });
      expect(res.status).toBe(401);
    }
    await expectNoChange(hs, async () => {
      expectLimited(await passwordLogin(hs, 'hal'));
    });
    const row = await hs.db()('users').where({ user_id: '@hal:test.local' }).first();
    expect(!!row.deactivated).toBe(false);
  });
});

describe.each(backends())('rc_registration (%s)', (backend) => {
  let hs: TestServer;
  beforeAll(async () => {
    hs = await startServer(backend, { rc_registration: TIGHT });
  });
  afterAll(async () => {
    await hs?.stop();
  });

  it('counts only registrations that create an account, and refuses the third', async () => {
    // Probes, refused names and missing passwords create nothing and are not counted.
    for (let i = 0; i < 4; i++) expect((await hs.request('POST', `${V3}/register`, { body: {} })).status).toBe(401);
    const bad = await hs.request('POST', `${V3}/register`, { body: { username: 'Bad Name', password: DEFAULT_PASSWORD, auth: { type: 'm.login.dummy' } } });
    expect(bad.status).toBe(400);
    const noPassword = await hs.request('POST', `${V3}/register`, { body: { username: 'nopw', auth: { type: 'm.login.dummy' } } });
    expect(noPassword.status).toBe(400);

    await hs.register('reg1');
    await hs.register('reg2');
    await expectNoChange(hs, async () => {
      const third = await hs.request('POST', `${V3}/register`, {
        body: { username: 'reg3', password: DEFAULT_PASSWORD, auth: { type: 'm.login.dummy' } },
      });
      expectLimited(third);
    });
    expect(await countRows(hs, 'users', { localpart: 'reg3' })).toBe(0);
  });

  it('does not limit logins', async () => {
    for (let i = 0; i < 3; i++) expect((await passwordLogin(hs, 'reg1')).status).toBe(200);
  });
});

// PostgreSQL only: without GATEHOUSE_TEST_PG it shows as skipped.
describeOnPostgres('rate limits shared by two processes on one PostgreSQL database', () => {
  let a: TestServer;
  let b: TestServer;
  // Behind a (pretend) reverse proxy, so each test can come from its own address.
  const config = {
    listeners: [{ port: 0, bind_addresses: ['127.0.0.1'], type: 'http', x_forwarded: true }],
    rc_login: { address: TIGHT, account: OPEN, failed_attempts: TIGHT },
    rc_registration: TIGHT,
  };
  const from = (ip: string) => ({ 'X-Forwarded-For': ip });
  beforeAll(async () => {
    a = await startServer('postgres', config);
    b = await startServer('postgres', config, { shareDatabaseWith: a });
    await a.register('shared');
    await a.register('ivy');
  });
  afterAll(async () => {
    // b first: a owns (and drops) the database.
    await b?.stop();
    await a?.stop();
  });

  it('are two processes on one database', async () => {
    expect(a.url).not.toBe(b.url);
    const login = await passwordLogin(a, 'shared', DEFAULT_PASSWORD, from('10.0.0.1'));
    // b knows a's account and token.
    const who = await b.request('GET', `${V3}/account/whoami`, { token: login.body.access_token });
    expect(who.body.user_id).toBe('@shared:test.local');
  });

  it('refuses on B the login burst spent on A (rc_login.address)', async () => {
    expect((await passwordLogin(a, 'shared', DEFAULT_PASSWORD, from('10.0.0.2'))).status).toBe(200);
    expect((await passwordLogin(a, 'shared', DEFAULT_PASSWORD, from('10.0.0.2'))).status).toBe(200);
    await expectNoChange(b, async () => {
      expectLimited(await passwordLogin(b, 'shared', DEFAULT_PASSWORD, from('10.0.0.2')));
    });
    expectLimited(await passwordLogin(a, 'shared', DEFAULT_PASSWORD, from('10.0.0.2')));
    // Another address is not limited, on either process.
    expect((await passwordLogin(b, 'shared', DEFAULT_PASSWORD, from('10.0.0.3'))).status).toBe(200);
    const rows = await a.db()('rate_limits').where('key', 'like', 'rc_login.address:10.0.0.2');
    expect(rows).toHaveLength(1);
  });

  it('refuses on both the right password after wrong ones on each (rc_login.failed_attempts)', async () => {
    expect((await passwordLogin(a, 'ivy', 'wrong', from('10.0.1.1'))).status).toBe(403);
    expect((await passwordLogin(b, 'ivy', 'wrong', from('10.0.1.2'))).status).toBe(403);
    await expectNoChange(a, async () => {
      expectLimited(await passwordLogin(a, 'ivy', DEFAULT_PASSWORD, from('10.0.1.3')));
      expectLimited(await passwordLogin(b, 'ivy', DEFAULT_PASSWORD, from('10.0.1.4')));
    });
  });

  it('refuses on B the registration burst spent on A (rc_registration)', async () => {
    const ip = from('10.0.2.1');
    const body = (username: string) => ({ username, password: DEFAULT_PASSWORD, auth: { type: 'm.login.dummy' } });
    expect((await a.request('POST', `${V3}/register`, { body: body('reg1'), headers: ip })).status).toBe(200);
    expect((await a.request('POST', `${V3}/register`, { body: body('reg2'), headers: ip })).status).toBe(200);
    await expectNoChange(b, async () => {
      expectLimited(await b.request('POST', `${V3}/register`, { body: body('reg3'), headers: ip }));
    });
  });
});
