// Registration tokens (MSC3231): the m.login.registration_token stage, its
// exact counting (pending through sessions, completed with the account, given
// back on expiry), the validity endpoint, and the race Synapse loses: many
// parallel registrations on a one-use token create exactly one account.

import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ACCOUNT_TABLES, countRows, expectMatrixError, expectNoChange } from '../support/assertions.js';
import { backends, describeOnPostgres } from '../support/backends.js';
import { DEFAULT_PASSWORD, startServer, type Response, type TestServer } from '../support/server.js';
import { seedToken, tokenUses } from '../support/registration-tokens.js';

const C = '/_matrix/client/v3';
const VALIDITY = '/_matrix/client/v1/register/m.login.registration_token/validity';
const UNSTABLE_VALIDITY = '/_matrix/client/unstable/org.matrix.msc3231/register/org.matrix.msc3231.login.registration_token/validity';
const TOKEN_STAGE = 'm.login.registration_token';
const TABLES = [...ACCOUNT_TABLES, 'registration_token_reservations', 'registration_token_uses'];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const register = (hs: TestServer, body: Record<string, unknown>) => hs.request('POST', `${C}/register`, { body });
const withToken = (token: unknown, extra: Record<string, unknown> = {}) => ({ type: TOKEN_STAGE, token, ...extra });

/** A 401 UIA answer with the token flow and this error code. */
function expectStageError(res: Response, errcode: string): void {
  expect(res.status, res.text).toBe(401);
  expect(res.body.flows).toEqual([{ stages: [TOKEN_STAGE] }]);
  expect(res.body.errcode).toBe(errcode);
  expect(typeof res.body.session).toBe('string');
}

const TOKEN_CONFIG = { registration_requires_token: true, enable_registration_without_verification: false };

describe.each(backends())('registration tokens (%s)', (backend) => {
  let hs: TestServer;
  let n = 0;
  /** A fresh token name per test. */
  const fresh = () => `tok-${backend}-${++n}`;
  beforeAll(async () => {
    hs = await startServer(backend, TOKEN_CONFIG);
  });
  afterAll(async () => {
    await hs?.stop();
  });

  it('puts m.login.registration_token in the only flow (no dummy stage)', async () => {
    const res = await register(hs, {});
    expect(res.status).toBe(401);
    expect(res.body.flows).toEqual([{ stages: [TOKEN_STAGE] }]);
    // The dummy stage alone no longer registers.
    await expectNoChange(hs, async () => {
      const dummy = await register(hs, { username: 'tk_dummy', password: DEFAULT_PASSWORD, auth: { type: 'm.login.dummy' } });
      expectMatrixError(dummy, 400, 'M_UNRECOGNIZED');
    });
  });

  it('registers with a valid token in one request, counting one completed use and recording who', async () => {
    const t = fresh();
    await seedToken(hs, t, { uses_allowed: 2 });
    const res = await register(hs, { username: 'tk_one', password: DEFAULT_PASSWORD, auth: withToken(t) });
    expect(res.status, res.text).toBe(200);
    expect(res.body.user_id).toBe('@tk_one:test.local');
    expect(await tokenUses(hs, t)).toEqual({ pending: 0, completed: 1 });
    const uses = await hs.db()('registration_token_uses').where({ token: t });
    expect(uses.map((u: { user_id: string }) => u.user_id)).toEqual(['@tk_one:test.local']);
    expect(await countRows(hs, 'registration_token_reservations')).toBe(0);
  });

  it('accepts the unstable auth type org.matrix.msc3231.login.registration_token', async () => {
    const t = fresh();
    await seedToken(hs, t);
    const res = await register(hs, {
      username: 'tk_unstable',
      password: DEFAULT_PASSWORD,
      auth: { type: 'org.matrix.msc3231.login.registration_token', token: t },
    });
    expect(res.status, res.text).toBe(200);
    expect(await tokenUses(hs, t)).toEqual({ pending: 0, completed: 1 });
  });

  it.each([
    ['no token', undefined, 'M_MISSING_PARAM'],
    ['a null token', null, 'M_MISSING_PARAM'],
    ['a number', 42, 'M_INVALID_PARAM'],
    ['an array', ['x'], 'M_INVALID_PARAM'],
    ['an unknown token', 'no-such-token', 'M_UNAUTHORIZED'],
    ['a token of 65 characters', 'a'.repeat(65), 'M_UNAUTHORIZED'],
    ['a token with a space', 'a b', 'M_UNAUTHORIZED'],
    ['an empty token', '', 'M_UNAUTHORIZED'],
  ])('answers %s with 401 %s in the flows body, reserving nothing', async (_why, token, errcode) => {
    const t = fresh();
    await seedToken(hs, t);
    await expectNoChange(hs, async () => {
      const auth = token === undefined ? { type: TOKEN_STAGE } : withToken(token);
      expectStageError(await register(hs, { username: 'tk_bad', password: DEFAULT_PASSWORD, auth }), errcode);
    }, TABLES);
    expect(await tokenUses(hs, t)).toEqual({ pending: 0, completed: 0 });
  });

  it.each([
    ['expired', { expiry_time: Date.now() - 1 }],
    ['used up', { uses_allowed: 2, completed: 2 }],
    ['used up by pending uses', { uses_allowed: 1, pending: 1 }],
    ['of zero uses (used up, never unlimited)', { uses_allowed: 0 }],
  ])('refuses a token that is %s with 401 M_UNAUTHORIZED, counting nothing', async (_why, spec) => {
    const t = fresh();
    await seedToken(hs, t, spec);
    const before = await tokenUses(hs, t);
    await expectNoChange(hs, async () => {
      expectStageError(await register(hs, { username: 'tk_spent', password: DEFAULT_PASSWORD, auth: withToken(t) }), 'M_UNAUTHORIZED');
    }, TABLES);
    expect(await tokenUses(hs, t)).toEqual(before);
    expect((await hs.request('GET', `${VALIDITY}?token=${t}`)).body).toEqual({ valid: false });
  });

  it('an unlimited token (uses_allowed null) registers again and again', async () => {
    const t = fresh();
    await seedToken(hs, t, { uses_allowed: null });
    for (const name of ['tk_unl1', 'tk_unl2', 'tk_unl3']) {
      expect((await register(hs, { username: name, password: DEFAULT_PASSWORD, auth: withToken(t) })).status).toBe(200);
    }
    expect(await tokenUses(hs, t)).toEqual({ pending: 0, completed: 3 });
  });

  it('holds one pending use per session: repeating the stage takes no more, another token is 401 M_INVALID_PARAM', async () => {
    const t = fresh();
    const other = fresh();
    await seedToken(hs, t, { uses_allowed: 3 });
    await seedToken(hs, other, { uses_allowed: 3 });
    // The stage passes, but there is no password yet: the session holds the use.
    const first = await register(hs, { username: 'tk_pending', auth: withToken(t) });
    expectMatrixError(first, 400, 'M_MISSING_PARAM');
    const session = (await hs.db()('registration_token_reservations').where({ token: t }).first()).session_id as string;
    expect(await tokenUses(hs, t)).toEqual({ pending: 1, completed: 0 });
    expect((await register(hs, { username: 'tk_pending', auth: withToken(t, { session }) })).status).toBe(400);
    expect(await tokenUses(hs, t)).toEqual({ pending: 1, completed: 0 });

    expectStageError(await register(hs, { username: 'tk_pending', auth: withToken(other, { session }) }), 'M_INVALID_PARAM');
    expect(await tokenUses(hs, other)).toEqual({ pending: 0, completed: 0 });

    // Completing (with only the session: the stage is done) turns the pending use into a completed one.
    const done = await register(hs, { password: DEFAULT_PASSWORD, auth: { session } });
    expect(done.status, done.text).toBe(200);
    expect(done.body.user_id).toBe('@tk_pending:test.local');
    expect(await tokenUses(hs, t)).toEqual({ pending: 0, completed: 1 });
    // A repeat of the final request (lost response) counts nothing more.
    const repeat = await register(hs, { password: DEFAULT_PASSWORD, auth: { session } });
    expect(repeat.status).toBe(200);
    expect(await tokenUses(hs, t)).toEqual({ pending: 0, completed: 1 });
  });

  it('a token deleted mid-session fails that session cleanly: no account, and the token is gone', async () => {
    const t = fresh();
    await seedToken(hs, t);
    expectMatrixError(await register(hs, { username: 'tk_deleted', auth: withToken(t) }), 400, 'M_MISSING_PARAM');
    const session = (await hs.db()('registration_token_reservations').where({ token: t }).first()).session_id as string;
    await hs.db()('registration_tokens').where({ token: t }).delete();
    await expectNoChange(hs, async () => {
      const res = await register(hs, { password: DEFAULT_PASSWORD, auth: { session } });
      expectMatrixError(res, 401, 'M_UNAUTHORIZED');
    }, TABLES);
    expect(await countRows(hs, 'users', { localpart: 'tk_deleted' })).toBe(0);
  });

  describe('GET /register/m.login.registration_token/validity', () => {
    it('says whether a token could register now, reserving nothing, on the stable and unstable paths', async () => {
      const t = fresh();
      await seedToken(hs, t, { uses_allowed: 1 });
      for (const path of [VALIDITY, UNSTABLE_VALIDITY]) {
        const res = await hs.request('GET', `${path}?token=${t}`);
        expect(res.status).toBe(200);
        expect(res.body).toEqual({ valid: true });
        expect((await hs.request('GET', `${path}?token=nope-${t}`)).body).toEqual({ valid: false });
      }
      expect(await tokenUses(hs, t)).toEqual({ pending: 0, completed: 0 });
    });

    it('answers 400 M_MISSING_PARAM without a token and 400 M_INVALID_PARAM for one outside the grammar', async () => {
      expectMatrixError(await hs.request('GET', VALIDITY), 400, 'M_MISSING_PARAM');
      for (const bad of ['', 'a%20b', 'a'.repeat(65), 'x&token=y', '%E2%9C%93'])
        expectMatrixError(await hs.request('GET', `${VALIDITY}?token=${bad}`), 400, 'M_INVALID_PARAM');
    });
  });
});

describe.each(backends())('registration token uses come back when their session expires (%s)', (backend) => {
  let hs: TestServer;
  beforeAll(async () => {
    hs = await startServer(backend, { ...TOKEN_CONFIG, ui_auth: { session_lifetime: '1s' } });
  });
  afterAll(async () => {
    await hs?.stop();
  });

  it('an abandoned session gives its use back; the one-use token then registers someone else', async () => {
    await seedToken(hs, 'tk-expiring', { uses_allowed: 1 });
    expectMatrixError(await register(hs, { username: 'tk_gaveup', auth: withToken('tk-expiring') }), 400, 'M_MISSING_PARAM');
    expect(await tokenUses(hs, 'tk-expiring')).toEqual({ pending: 1, completed: 0 });
    // Held: nobody else can have it meanwhile.
    expectStageError(await register(hs, { username: 'tk_other', password: DEFAULT_PASSWORD, auth: withToken('tk-expiring') }), 'M_UNAUTHORIZED');
    const session = (await hs.db()('registration_token_reservations').first()).session_id as string;

    // The session expires (1s) and the sweep (twice per lifetime) gives the use back.
    for (let i = 0; i < 40 && (await tokenUses(hs, 'tk-expiring'))!.pending !== 0; i++) await sleep(100);
    expect(await tokenUses(hs, 'tk-expiring')).toEqual({ pending: 0, completed: 0 });
    expect(await countRows(hs, 'registration_token_reservations')).toBe(0);
    expectMatrixError(await register(hs, { password: DEFAULT_PASSWORD, auth: { session } }), 400, 'M_UNKNOWN');

    const res = await register(hs, { username: 'tk_other', password: DEFAULT_PASSWORD, auth: withToken('tk-expiring') });
    expect(res.status, res.text).toBe(200);
    expect(await tokenUses(hs, 'tk-expiring')).toEqual({ pending: 0, completed: 1 });
  });
});

describe.each(backends())('registration token validity: disabled registration and rate limit (%s)', (backend) => {
  let closed: TestServer;
  let limited: TestServer;
  beforeAll(async () => {
    [closed, limited] = await Promise.all([
      startServer(backend, { enable_registration: false }),
      startServer(backend, { ...TOKEN_CONFIG, rc_registration_token_validity: { per_second: 0.001, burst_count: 2 } }),
    ]);
  });
  afterAll(async () => {
    await closed?.stop();
    await limited?.stop();
  });

  it('is 403 M_FORBIDDEN when registration is disabled', async () => {
    expectMatrixError(await closed.request('GET', `${VALIDITY}?token=abc`), 403, 'M_FORBIDDEN');
  });

  it('is limited per address by rc_registration_token_validity (429 M_LIMIT_EXCEEDED with Retry-After)', async () => {
    for (let i = 0; i < 2; i++) expect((await limited.request('GET', `${VALIDITY}?token=guess${i}`)).status).toBe(200);
    const res = await limited.request('GET', `${VALIDITY}?token=guess3`);
    expectMatrixError(res, 429, 'M_LIMIT_EXCEEDED');
    expect(res.body.retry_after_ms).toBeGreaterThan(0);
    expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0);
    // Counted before the parameters are looked at: malformed guesses are limited too.
    expectMatrixError(await limited.request('GET', VALIDITY), 429, 'M_LIMIT_EXCEEDED');
  });
});

/** Starts `count` registrations at once, each in its own UIA session, all with `token`. */
async function race(servers: TestServer[], token: string, count: number, prefix: string): Promise<Response[]> {
  return Promise.all(
    Array.from({ length: count }, (_, i) =>
      register(servers[i % servers.length]!, { username: `${prefix}${i}`, password: DEFAULT_PASSWORD, auth: withToken(token) }),
    ),
  );
}

function tallyRace(results: Response[]): number {
  for (const r of results.filter((x) => x.status !== 200)) {
    // Every loser is told the token is no good (used up by the winners' pending uses).
    expect(r.status, r.text).toBe(401);
    expect(r.body.errcode).toBe('M_UNAUTHORIZED');
  }
  return results.filter((r) => r.status === 200).length;
}

describe.each(backends())('50 parallel registrations on one token (%s)', (backend) => {
  let hs: TestServer;
  beforeAll(async () => {
    hs = await startServer(backend, TOKEN_CONFIG);
  });
  afterAll(async () => {
    await hs?.stop();
  });

  it.each([
    [1, 'race1_'],
    [3, 'race3_'],
  ])('a %i-use token creates exactly that many accounts', async (uses, prefix) => {
    const token = `race-${uses}-${backend}`;
    await seedToken(hs, token, { uses_allowed: uses });
    const before = await countRows(hs, 'users');
    const results = await race([hs], token, 50, prefix);
    expect(tallyRace(results)).toBe(uses);
    expect(await countRows(hs, 'users')).toBe(before + uses);
    expect(await tokenUses(hs, token)).toEqual({ pending: 0, completed: uses });
    expect(await countRows(hs, 'registration_token_uses', { token })).toBe(uses);
  });
});

// PostgreSQL only: without GATEHOUSE_TEST_PG it shows as skipped.
describeOnPostgres('50 parallel registrations on one token, two server processes on one PostgreSQL', () => {
  let a: TestServer;
  let b: TestServer;
  beforeAll(async () => {
    a = await startServer('postgres', TOKEN_CONFIG);
    b = await startServer('postgres', TOKEN_CONFIG, { shareDatabaseWith: a });
  });
  afterAll(async () => {
    await b?.stop();
    await a?.stop();
  });
  beforeEach(async () => {
    await a.db()('registration_token_uses').delete();
  });

  it.each([
    [1, 'mp_race1_'],
    [3, 'mp_race3_'],
  ])('a %i-use token creates exactly that many accounts', async (uses, prefix) => {
    const token = `mp-race-${uses}`;
    await seedToken(a, token, { uses_allowed: uses });
    const before = await countRows(a, 'users');
    const results = await race([a, b], token, 50, prefix);
    expect(tallyRace(results)).toBe(uses);
    expect(await countRows(a, 'users')).toBe(before + uses);
    expect(await tokenUses(a, token)).toEqual({ pending: 0, completed: uses });
  });
});
