// Signing in with an email address bound to the account (spec: POST /login,
// identifier m.id.thirdparty, and the legacy top-level medium/address): the
// address canonicalised, then the same password check, answers and limits as
// by user ID. Addresses are bound directly in the database here (the add
// flow itself is threepid-management.test.ts's).

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectMatrixError, expectNoChange } from '../support/assertions.js';
import { backends } from '../support/backends.js';
import { DEFAULT_PASSWORD, startInProcessServer as startServer, type TestServer } from '../support/server.js';

const C = '/_matrix/client/v3';
let counter = 0;
const unique = (prefix: string) => `${prefix}${++counter}x${Date.now() % 100000}`;

const byEmail = (address: unknown, password: unknown = DEFAULT_PASSWORD, medium: unknown = 'email') => ({
  type: 'm.login.password',
  identifier: { type: 'm.id.thirdparty', medium, address },
  password,
});

describe.each(backends())('login by email address (%s)', (backend) => {
  let hs: TestServer;
  beforeAll(async () => {
    hs = await startServer(backend);
  });
  afterAll(async () => {
    await hs?.stop();
  });

  const login = (body: Record<string, unknown>) => hs.request('POST', `${C}/login`, { body });
  /** A user with `address` bound (canonical form). */
  async function userWithEmail(prefix: string) {
    const name = unique(prefix);
    const u = await hs.register(name);
    const address = `${name}@example.org`;
    await hs.db()('user_threepids').insert({ user_id: u.user_id, medium: 'email', address, validated_at: 1, added_at: 2 });
    return { ...u, address };
  }

  it('signs in with identifier m.id.thirdparty, in any case and with spaces around', async () => {
    const u = await userWithEmail('login');
    for (const address of [u.address, u.address.toUpperCase(), `  ${u.address.replace('example.org', 'EXAMPLE.org')}\t`]) {
      const res = await login(byEmail(address));
      expect(res.status, address).toBe(200);
      expect(res.body.user_id).toBe(u.user_id);
      expect(typeof res.body.access_token).toBe('string');
      // The token works.
      const who = await hs.request('GET', `${C}/account/whoami`, { token: res.body.access_token });
      expect(who.body.user_id).toBe(u.user_id);
    }
  });

  it('signs in with the legacy top-level medium and address', async () => {
    const u = await userWithEmail('legacy');
    const res = await login({ type: 'm.login.password', medium: 'email', address: u.address.toUpperCase(), password: DEFAULT_PASSWORD });
    expect(res.status).toBe(200);
    expect(res.body.user_id).toBe(u.user_id);
    // As Synapse: medium/address win over a legacy `user` naming someone else.
    const other = await hs.register(unique('legacyother'));
    const both = await login({ type: 'm.login.password', user: other.user_id, medium: 'email', address: u.address, password: DEFAULT_PASSWORD });
    expect(both.body.user_id).toBe(u.user_id);
  });

  it('a wrong password, an unknown address, another medium and a phone number are all 403 M_FORBIDDEN, creating nothing', async () => {
    const u = await userWithEmail('wrong');
    await expectNoChange(hs, async () => {
      expectMatrixError(await login(byEmail(u.address, 'wrong password')), 403, 'M_FORBIDDEN');
      expectMatrixError(await login(byEmail(`nobody-${u.address}`)), 403, 'M_FORBIDDEN');
      expectMatrixError(await login(byEmail('441234567890', DEFAULT_PASSWORD, 'msisdn')), 403, 'M_FORBIDDEN');
      expectMatrixError(await login(byEmail(u.address, DEFAULT_PASSWORD, 'carrier-pigeon')), 403, 'M_FORBIDDEN');
      const phone = await login({ type: 'm.login.password', identifier: { type: 'm.id.phone', country: 'GB', phone: '1234567890' }, password: DEFAULT_PASSWORD });
      expectMatrixError(phone, 403, 'M_FORBIDDEN');
    });
    // The same message as a wrong user name: nothing tells which part was wrong.
    const unknown = await login(byEmail(`nobody-${u.address}`));
    const wrongUser = await login({ type: 'm.login.password', identifier: { type: 'm.id.user', user: unique('nobody') }, password: DEFAULT_PASSWORD });
    expect(unknown.body.error).toBe(wrongUser.body.error);
  });

  it('malformed third-party identifiers are 400', async () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ type: 'm.id.thirdparty', address: 'a@example.org' }, 'M_MISSING_PARAM'],
      [{ type: 'm.id.thirdparty', medium: 'email' }, 'M_MISSING_PARAM'],
      [{ type: 'm.id.thirdparty', medium: 'email', address: 42 }, 'M_BAD_JSON'],
      [{ type: 'm.id.thirdparty', medium: ['email'], address: 'a@example.org' }, 'M_BAD_JSON'],
      [{ type: 'm.id.thirdparty', medium: 'email', address: 'a\u0000@example.org' }, 'M_BAD_JSON'],
      [{ type: 'm.id.thirdparty', medium: 'email', address: 'not an address' }, 'M_INVALID_PARAM'],
      [{ type: 'm.id.thirdparty', medium: 'email', address: `${'a'.repeat(5000)}@example.org` }, 'M_INVALID_PARAM'],
      [{ type: 'm.id.phone', country: 'GB' }, 'M_MISSING_PARAM'],
      [{ type: 'm.id.phone', phone: '123' }, 'M_MISSING_PARAM'],
      [{ type: 'm.id.unknown', user: 'x' }, 'M_UNKNOWN'],
    ];
    await expectNoChange(hs, async () => {
      for (const [identifier, errcode] of cases) expectMatrixError(await login({ type: 'm.login.password', identifier, password: DEFAULT_PASSWORD }), 400, errcode);
      expectMatrixError(await login({ type: 'm.login.password', medium: 'email', address: 7, password: DEFAULT_PASSWORD }), 400, 'M_BAD_JSON');
      expectMatrixError(await login({ type: 'm.login.password', identifier: { type: 'm.id.thirdparty', medium: 'email', address: 'a@example.org' } }), 400, 'M_MISSING_PARAM');
    });
  });

  it('after the address is deleted, or the account deactivated, the address signs in no one', async () => {
    const u = await userWithEmail('gone');
    expect((await login(byEmail(u.address))).status).toBe(200);
    const del = await hs.request('POST', `${C}/account/3pid/delete`, { token: u.access_token, body: { medium: 'email', address: u.address } });
    expect(del.status).toBe(200);
    expectMatrixError(await login(byEmail(u.address)), 403, 'M_FORBIDDEN');

    const d = await userWithEmail('deact');
    const deact = await hs.request('POST', `${C}/account/deactivate`, {
      token: d.access_token,
      body: { auth: { type: 'm.login.password', identifier: { type: 'm.id.user', user: d.user_id }, password: DEFAULT_PASSWORD } },
    });
    expect(deact.status).toBe(200);
    const res = await login(byEmail(d.address));
    expectMatrixError(res, 403, 'M_FORBIDDEN');
  });
});

describe.each(backends())('login by email address: timing (%s)', (backend) => {
  let hs: TestServer;
  beforeAll(async () => {
    // Hashing slow enough (tens of milliseconds) to stand out from the HTTP round trip.
    hs = await startServer(backend, { argon2: { memory_cost: 65536, time_cost: 3, parallelism: 1 } });
  });
  afterAll(async () => {
    await hs?.stop();
  });

  it('an unknown address takes about as long as a wrong password (the dummy hash is checked)', async () => {
    const name = unique('timing');
    const reg = await hs.register(name);
    const u = { ...reg, address: `${name}@example.org` };
    await hs.db()('user_threepids').insert({ user_id: u.user_id, medium: 'email', address: u.address, validated_at: 1, added_at: 2 });
    const time = async (body: Record<string, unknown>) => {
      const t = performance.now();
      expect((await hs.request('POST', `${C}/login`, { body })).status).toBe(403);
      return performance.now() - t;
    };
    // Warm up, then compare medians.
    await time(byEmail(u.address, 'wrong'));
    const known: number[] = [];
    const unknown: number[] = [];
    for (let i = 0; i < 7; i++) {
      known.push(await time(byEmail(u.address, 'wrong')));
      unknown.push(await time(byEmail(`nobody${i}-${u.address}`)));
    }
    const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    // Generous bounds (shared machines): with this server's slow hashing, an answer that skipped
    // the hash would take a small fraction of one that checked it.
    expect(median(known)).toBeGreaterThan(40);
    expect(median(unknown)).toBeGreaterThan(median(known) * 0.5);
  });

});

describe.each(backends())('login by email address: rate limits (%s)', (backend) => {
  let hs: TestServer;
  beforeAll(async () => {
    hs = await startServer(backend, {
      rc_login: { address: { per_second: 1000, burst_count: 1000 }, account: { per_second: 1000, burst_count: 1000 }, failed_attempts: { per_second: 0.001, burst_count: 3 } },
    });
  });
  afterAll(async () => {
    await hs?.stop();
  });

  it('failed attempts by email count against the account, as by user ID; an unknown address is limited on itself', async () => {
    const name = unique('limit');
    const u = await hs.register(name);
    const address = `${name}@example.org`;
    await hs.db()('user_threepids').insert({ user_id: u.user_id, medium: 'email', address, validated_at: 1, added_at: 2 });
    const wrong = (identifier: Record<string, unknown>) => hs.request('POST', `${C}/login`, { body: { type: 'm.login.password', identifier, password: 'wrong' } });
    expect((await wrong({ type: 'm.id.thirdparty', medium: 'email', address })).status).toBe(403);
    expect((await wrong({ type: 'm.id.user', user: name })).status).toBe(403);
    expect((await wrong({ type: 'm.id.thirdparty', medium: 'email', address: address.toUpperCase() })).status).toBe(403);
    // The account's three failures are spent, whichever way it was named.
    expectMatrixError(await wrong({ type: 'm.id.user', user: name }), 429, 'M_LIMIT_EXCEEDED');
    expectMatrixError(await wrong({ type: 'm.id.thirdparty', medium: 'email', address }), 429, 'M_LIMIT_EXCEEDED');

    const nobody = `nobody-${address}`;
    for (let i = 0; i < 3; i++) expect((await wrong({ type: 'm.id.thirdparty', medium: 'email', address: nobody })).status).toBe(403);
    expectMatrixError(await wrong({ type: 'm.id.thirdparty', medium: 'email', address: nobody.toUpperCase() }), 429, 'M_LIMIT_EXCEEDED');
  });
});
