// Email addresses through Synapse's user admin API: GET shows `threepids`,
// PUT with `threepids` replaces them (canonicalised; another account's
// address refused), at creation too; the lookup endpoint
// /_synapse/admin/v1/threepid/{medium}/users/{address}. The addresses an
// admin sets sign in (login by email) like those a user added.

import { createHmac } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { countRows, expectMatrixError, expectNoChange } from '../support/assertions.js';
import { backends } from '../support/backends.js';
import { DEFAULT_PASSWORD, startInProcessServer as startServer, type TestServer } from '../support/server.js';

const USERS = '/_synapse/admin/v2/users';
const LOOKUP = '/_synapse/admin/v1/threepid';
const TABLES = ['users', 'user_threepids'];
const enc = encodeURIComponent;

/** An admin made by shared-secret registration; returns its access token. */
async function adminAccount(hs: TestServer, username: string): Promise<string> {
  const nonce = (await hs.request('GET', '/_synapse/admin/v1/register')).body.nonce as string;
  const mac = createHmac('sha1', 'test-shared-secret').update([nonce, username, DEFAULT_PASSWORD, 'admin'].join('\x00'), 'utf8').digest('hex');
  const res = await hs.request('POST', '/_synapse/admin/v1/register', { body: { nonce, username, password: DEFAULT_PASSWORD, admin: true, mac } });
  expect(res.status, res.text).toBe(200);
  return res.body.access_token;
}

describe.each(backends())('admin API: threepids (%s)', (backend) => {
  let hs: TestServer;
  let admin: string;
  let user: string;

  beforeAll(async () => {
    hs = await startServer(backend);
    admin = await adminAccount(hs, 'threepid_admin');
    user = (await hs.register('plain_user')).access_token;
  });
  afterAll(async () => {
    await hs?.stop();
  });

  const put = (id: string, body: unknown) => hs.request('PUT', `${USERS}/${enc(id)}`, { token: admin, body });
  const get = (id: string) => hs.request('GET', `${USERS}/${enc(id)}`, { token: admin });
  const addresses = async (id: string) => ((await get(id)).body.threepids as { address: string }[]).map((t) => t.address).sort();

  it('creates an account with addresses (canonical, without repeats), shows them, and they sign in', async () => {
    const id = '@adm_a:test.local';
    const before = Date.now();
    const res = await put(id, { password: DEFAULT_PASSWORD, threepids: [{ medium: 'email', address: ' Alice@Example.ORG ' }, { medium: 'email', address: 'alice@example.org' }, { medium: 'email', address: 'a2@bücher.example' }] });
    expect(res.status).toBe(201);
    expect(res.body.threepids).toHaveLength(2);
    for (const t of res.body.threepids) {
      expect(Object.keys(t).sort()).toEqual(['added_at', 'address', 'medium', 'validated_at']);
      expect(t.added_at).toBeGreaterThanOrEqual(before - 1000);
      expect(t.validated_at).toBe(t.added_at);
    }
    expect(await addresses(id)).toEqual(['a2@bücher.example', 'alice@example.org']);
    const login = await hs.request('POST', '/_matrix/client/v3/login', {
      body: { type: 'm.login.password', identifier: { type: 'm.id.thirdparty', medium: 'email', address: 'a2@xn--bcher-kva.example' }, password: DEFAULT_PASSWORD },
    });
    expect(login.status).toBe(200);
    expect(login.body.user_id).toBe(id);
  });

  it('PUT replaces the addresses: kept ones keep their times, missing ones go, [] removes all', async () => {
    const id = '@adm_b:test.local';
    expect((await put(id, { threepids: [{ medium: 'email', address: 'b1@example.org' }, { medium: 'email', address: 'b2@example.org' }] })).status).toBe(201);
    const kept = (await get(id)).body.threepids.find((t: { address: string }) => t.address === 'b1@example.org');
    await new Promise((r) => setTimeout(r, 20));
    const res = await put(id, { threepids: [{ medium: 'email', address: 'B1@example.org' }, { medium: 'email', address: 'b3@example.org' }] });
    expect(res.status).toBe(200);
    expect(await addresses(id)).toEqual(['b1@example.org', 'b3@example.org']);
    expect(res.body.threepids.find((t: { address: string }) => t.address === 'b1@example.org')).toEqual(kept);
    // Leaving the key out changes nothing; [] removes them all.
    expect((await put(id, { displayname: 'B' })).status).toBe(200);
    expect(await addresses(id)).toEqual(['b1@example.org', 'b3@example.org']);
    expect((await put(id, { threepids: [] })).status).toBe(200);
    expect(await addresses(id)).toEqual([]);
  });

  it('another account\'s address is 400 M_THREEPID_IN_USE (unlike Synapse, which moves it), changing nothing', async () => {
    expect((await put('@adm_c:test.local', { threepids: [{ medium: 'email', address: 'taken@example.org' }] })).status).toBe(201);
    await expectNoChange(hs, async () => {
      const change = await put('@adm_d:test.local', { displayname: 'D', threepids: [{ medium: 'email', address: 'TAKEN@example.org' }] });
      expectMatrixError(change, 400, 'M_THREEPID_IN_USE');
    }, TABLES);
    expect(await countRows(hs, 'users', { user_id: '@adm_d:test.local' })).toBe(0);
    expect((await put('@adm_d:test.local', {})).status).toBe(201);
    await expectNoChange(hs, async () => {
      const change = await put('@adm_d:test.local', { displayname: 'D2', threepids: [{ medium: 'email', address: 'd@example.org' }, { medium: 'email', address: 'taken@example.org' }] });
      expectMatrixError(change, 400, 'M_THREEPID_IN_USE');
    }, TABLES);
    expect((await get('@adm_d:test.local')).body).toMatchObject({ displayname: 'adm_d', threepids: [] });
    expect(await addresses('@adm_c:test.local')).toEqual(['taken@example.org']);
  });

  it('parallel PUTs giving one address to two accounts: exactly one wins', async () => {
    const ids = ['@adm_r1:test.local', '@adm_r2:test.local', '@adm_r3:test.local'];
    for (const id of ids) expect((await put(id, {})).status).toBe(201);
    const results = await Promise.all(ids.map((id) => put(id, { threepids: [{ medium: 'email', address: 'race@example.org' }] })));
    expect(results.map((r) => r.status).sort()).toEqual([200, 400, 400]);
    for (const r of results.filter((r) => r.status === 400)) expect(r.body.errcode).toBe('M_THREEPID_IN_USE');
    expect(await countRows(hs, 'user_threepids', { address: 'race@example.org' })).toBe(1);
  });

  it('refuses other media, malformed addresses and wrong types, changing nothing', async () => {
    const id = '@adm_e:test.local';
    expect((await put(id, { threepids: [{ medium: 'email', address: 'e@example.org' }] })).status).toBe(201);
    const cases: [unknown, string][] = [
      [{ threepids: [{ medium: 'msisdn', address: '441234567890' }] }, 'M_THREEPID_MEDIUM_NOT_SUPPORTED'],
      [{ threepids: [{ medium: 'email', address: 'no at sign' }] }, 'M_INVALID_PARAM'],
      [{ threepids: [{ medium: 'email', address: 'a@b@example.org' }] }, 'M_INVALID_PARAM'],
      [{ threepids: [{ medium: 'email', address: `${'x'.repeat(300)}@example.org` }] }, 'M_INVALID_PARAM'],
      [{ threepids: [{ medium: 'email', address: 5 }] }, 'M_BAD_JSON'],
      [{ threepids: { medium: 'email', address: 'e@example.org' } }, 'M_BAD_JSON'],
      [{ threepids: [{ address: 'e@example.org' }] }, 'M_MISSING_PARAM'],
    ];
    await expectNoChange(hs, async () => {
      for (const [body, errcode] of cases) expectMatrixError(await put(id, body), 400, errcode);
    }, TABLES);
    expect(await addresses(id)).toEqual(['e@example.org']);
  });

  it('deactivation through the admin API unbinds the addresses', async () => {
    const id = '@adm_f:test.local';
    expect((await put(id, { threepids: [{ medium: 'email', address: 'f@example.org' }] })).status).toBe(201);
    const res = await hs.request('POST', `/_synapse/admin/v1/deactivate/${enc(id)}`, { token: admin, body: {} });
    expect(res.status).toBe(200);
    expect((await get(id)).body.threepids).toEqual([]);
    expect((await put('@adm_g:test.local', { threepids: [{ medium: 'email', address: 'f@example.org' }] })).status).toBe(201);
  });

  it('GET /_synapse/admin/v1/threepid/{medium}/users/{address}: the user ID, canonicalising; 404 otherwise', async () => {
    expect((await put('@adm_h:test.local', { threepids: [{ medium: 'email', address: 'h@example.org' }] })).status).toBe(201);
    for (const address of ['h@example.org', 'H@Example.Org']) {
      const res = await hs.request('GET', `${LOOKUP}/email/users/${enc(address)}`, { token: admin });
      expect(res.status, address).toBe(200);
      expect(res.body).toEqual({ user_id: '@adm_h:test.local' });
    }
    for (const [medium, address] of [['email', 'nobody@example.org'], ['email', 'not an address'], ['msisdn', '441234567890'], ['email', 'x'.repeat(2000)]]) {
      expectMatrixError(await hs.request('GET', `${LOOKUP}/${medium}/users/${enc(address!)}`, { token: admin }), 404, 'M_NOT_FOUND');
    }
    // Admins only, even for an address bound to no one.
    expectMatrixError(await hs.request('GET', `${LOOKUP}/email/users/h%40example.org`, { token: user }), 403, 'M_FORBIDDEN');
    expectMatrixError(await hs.request('GET', `${LOOKUP}/email/users/nobody%40example.org`, { token: user }), 403, 'M_FORBIDDEN');
    expectMatrixError(await hs.request('GET', `${LOOKUP}/email/users/h%40example.org`), 401, 'M_MISSING_TOKEN');
  });
});
