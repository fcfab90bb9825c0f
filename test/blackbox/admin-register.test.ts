// Synapse's shared-secret registration (/_synapse/admin/v1/register), as
// register_new_matrix_user and synadm use it, black-box. Every refusal is
// checked to have created nothing.

import { createHmac } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { countRows, expectMatrixError, expectNoChange } from '../support/assertions.js';
import { backends } from '../support/backends.js';
import { DEFAULT_PASSWORD, startServer, type TestServer } from '../support/server.js';

const PATH = '/_synapse/admin/v1/register';
const SECRET = 'test-shared-secret';

/** The mac register_new_matrix_user computes. */
function mac(nonce: string, username: string, password: string, admin: boolean, userType?: string, secret = SECRET): string {
  const parts = [nonce, username, password, admin ? 'admin' : 'notadmin'];
  if (userType !== undefined) parts.push(userType);
  return createHmac('sha1', secret).update(parts.join('\x00'), 'utf8').digest('hex');
}

describe.each(backends())('shared-secret registration (%s)', (backend) => {
  let hs: TestServer;
  beforeAll(async () => {
    hs = await startServer(backend);
  });
  afterAll(async () => {
    await hs?.stop();
  });

  const nonce = async (): Promise<string> => {
    const res = await hs.request('GET', PATH);
    expect(res.status).toBe(200);
    return res.body.nonce;
  };
  const post = (body: unknown) => hs.request('POST', PATH, { body });

  it('hands out a fresh nonce each time, stored for any process to check', async () => {
    const a = await nonce();
    const b = await nonce();
    expect(typeof a).toBe('string');
    expect(a.length).toBeGreaterThanOrEqual(16);
    expect(a).not.toBe(b);
    expect(await countRows(hs, 'registration_nonces', { nonce: a })).toBe(1);
  });

  it('registers an admin: is_admin stored, the token works', async () => {
    const n = await nonce();
    const res = await post({ nonce: n, username: 'root', password: DEFAULT_PASSWORD, admin: true, mac: mac(n, 'root', DEFAULT_PASSWORD, true) });
    expect(res.status).toBe(200);
    expect(res.body.user_id).toBe('@root:test.local');
    expect(res.body.home_server).toBe('test.local');
    expect(typeof res.body.access_token).toBe('string');
    expect(typeof res.body.device_id).toBe('string');
    const row = await hs.db()('users').where({ user_id: '@root:test.local' }).first();
    expect(!!row.is_admin).toBe(true);
    expect(!!row.is_guest).toBe(false);
    const who = await hs.request('GET', '/_matrix/client/v3/account/whoami', { token: res.body.access_token });
    expect(who.body).toEqual({ user_id: '@root:test.local', device_id: res.body.device_id, is_guest: false });
    // The password works for logging in, and the nonce is spent.
    expect((await hs.login('root')).user_id).toBe('@root:test.local');
    expect(await countRows(hs, 'registration_nonces', { nonce: n })).toBe(0);
  });

  it('registers a non-admin, with a display name, accepting an upper-case mac', async () => {
    const n = await nonce();
    const res = await post({
      nonce: n,
      username: 'plain',
      password: DEFAULT_PASSWORD,
      admin: false,
      displayname: 'Plain Jane',
      mac: mac(n, 'plain', DEFAULT_PASSWORD, false).toUpperCase(),
    });
    expect(res.status).toBe(200);
    const row = await hs.db()('users').where({ user_id: '@plain:test.local' }).first();
    expect(!!row.is_admin).toBe(false);
    const profile = await hs.db()('profiles').where({ user_id: '@plain:test.local' }).first();
    expect(profile.displayname).toBe('Plain Jane');
  });

  it('treats a missing admin flag as notadmin', async () => {
    const n = await nonce();
    const res = await post({ nonce: n, username: 'noflag', password: DEFAULT_PASSWORD, mac: mac(n, 'noflag', DEFAULT_PASSWORD, false) });
    expect(res.status).toBe(200);
    const row = await hs.db()('users').where({ user_id: '@noflag:test.local' }).first();
    expect(!!row.is_admin).toBe(false);
  });

  it('includes user_type in the mac when given', async () => {
    const n = await nonce();
    const res = await post({
      nonce: n,
      username: 'typed',
      password: DEFAULT_PASSWORD,
      admin: false,
      user_type: 'bot',
      mac: mac(n, 'typed', DEFAULT_PASSWORD, false, 'bot'),
    });
    expect(res.status).toBe(200);
    // A mac made without the user_type does not match.
    const n2 = await nonce();
    await expectNoChange(hs, async () => {
      const bad = await post({ nonce: n2, username: 'typed2', password: DEFAULT_PASSWORD, admin: false, user_type: 'bot', mac: mac(n2, 'typed2', DEFAULT_PASSWORD, false) });
      expectMatrixError(bad, 403, 'M_FORBIDDEN');
    });
  });

  describe('refusals', () => {
    it.each([
      ['another secret', (n: string) => mac(n, 'mallory', DEFAULT_PASSWORD, true, undefined, 'not-the-secret')],
      ['the admin flag flipped', (n: string) => mac(n, 'mallory', DEFAULT_PASSWORD, false)],
      ['another username', (n: string) => mac(n, 'someoneelse', DEFAULT_PASSWORD, true)],
      ['another password', (n: string) => mac(n, 'mallory', 'other password', true)],
      ['garbage', () => 'zz'],
      ['nothing', () => ''],
    ])('refuses a mac made with %s with 403 M_FORBIDDEN, and spends the nonce', async (_why, makeMac) => {
      const n = await nonce();
      await expectNoChange(hs, async () => {
        const res = await post({ nonce: n, username: 'mallory', password: DEFAULT_PASSWORD, admin: true, mac: makeMac(n) });
        expectMatrixError(res, 403, 'M_FORBIDDEN');
      });
      // As Synapse: a nonce is good for one attempt, right or wrong.
      expect(await countRows(hs, 'registration_nonces', { nonce: n })).toBe(0);
      await expectNoChange(hs, async () => {
        const retry = await post({ nonce: n, username: 'mallory', password: DEFAULT_PASSWORD, admin: true, mac: mac(n, 'mallory', DEFAULT_PASSWORD, true) });
        expect(retry.status).toBe(400);
      });
    });

    it('refuses a reused nonce with 400', async () => {
      const n = await nonce();
      const ok = await post({ nonce: n, username: 'once', password: DEFAULT_PASSWORD, admin: false, mac: mac(n, 'once', DEFAULT_PASSWORD, false) });
      expect(ok.status).toBe(200);
      await expectNoChange(hs, async () => {
        const again = await post({ nonce: n, username: 'twice', password: DEFAULT_PASSWORD, admin: false, mac: mac(n, 'twice', DEFAULT_PASSWORD, false) });
        expectMatrixError(again, 400, 'M_UNKNOWN');
      });
    });

    it('refuses an unknown nonce with 400', async () => {
      await expectNoChange(hs, async () => {
        const res = await post({ nonce: 'made-up', username: 'forger', password: DEFAULT_PASSWORD, admin: true, mac: mac('made-up', 'forger', DEFAULT_PASSWORD, true) });
        expectMatrixError(res, 400, 'M_UNKNOWN');
      });
    });

    it('refuses an expired nonce with 400', async () => {
      await hs.db()('registration_nonces').insert({ nonce: 'expired-nonce', expires_ts: Date.now() - 1000 });
      await expectNoChange(hs, async () => {
        const res = await post({
          nonce: 'expired-nonce',
          username: 'latecomer',
          password: DEFAULT_PASSWORD,
          admin: false,
          mac: mac('expired-nonce', 'latecomer', DEFAULT_PASSWORD, false),
        });
        expectMatrixError(res, 400, 'M_UNKNOWN');
      });
    });

    it.each(['nonce', 'username', 'password', 'mac'])('refuses a request without %s with 400 M_MISSING_PARAM', async (field) => {
      const n = await nonce();
      const body: Record<string, unknown> = { nonce: n, username: 'partial', password: DEFAULT_PASSWORD, admin: false, mac: mac(n, 'partial', DEFAULT_PASSWORD, false) };
      delete body[field];
      await expectNoChange(hs, async () => {
        expectMatrixError(await post(body), 400, 'M_MISSING_PARAM');
      });
    });

    it.each([
      ['username is a number', { username: 5 }],
      ['password is a number', { password: 12345678 }],
      ['admin is a string', { admin: 'true' }],
      ['mac is an object', { mac: { hex: 'x' } }],
      ['displayname is a number', { displayname: 3 }],
      ['password is over 512 characters', { password: 'p'.repeat(513) }],
    ])('refuses a body where %s with 400 M_BAD_JSON', async (_why, patch) => {
      const n = await nonce();
      const body = { nonce: n, username: 'wrongtype', password: DEFAULT_PASSWORD, admin: false, mac: mac(n, 'wrongtype', DEFAULT_PASSWORD, false), ...patch };
      await expectNoChange(hs, async () => {
        expectMatrixError(await post(body), 400, 'M_BAD_JSON');
      });
    });

    it('refuses a taken username with 400 M_USER_IN_USE', async () => {
      await hs.register('occupied');
      const n = await nonce();
      await expectNoChange(hs, async () => {
        const res = await post({ nonce: n, username: 'occupied', password: 'new password', admin: true, mac: mac(n, 'occupied', 'new password', true) });
        expectMatrixError(res, 400, 'M_USER_IN_USE');
      });
      // The existing account keeps its password and stays a normal user.
      const row = await hs.db()('users').where({ user_id: '@occupied:test.local' }).first();
      expect(!!row.is_admin).toBe(false);
      expect((await hs.login('occupied')).user_id).toBe('@occupied:test.local');
    });

    it("refuses a deactivated user's name with 400 M_USER_IN_USE", async () => {
      const reg = await hs.register('retired');
      const deactivate = await hs.request('POST', '/_matrix/client/v3/account/deactivate', {
        token: reg.access_token,
        body: { auth: { type: 'm.login.password', identifier: { type: 'm.id.user', user: 'retired' }, password: DEFAULT_PASSWORD } },
      });
      expect(deactivate.status).toBe(200);
      const n = await nonce();
      await expectNoChange(hs, async () => {
        const res = await post({ nonce: n, username: 'retired', password: DEFAULT_PASSWORD, admin: true, mac: mac(n, 'retired', DEFAULT_PASSWORD, true) });
        expectMatrixError(res, 400, 'M_USER_IN_USE');
      });
    });

    it.each([
      ['a leading underscore', '_hidden'],
      ['only digits', '31337'],
    ])('refuses a username with %s with 400 M_INVALID_USERNAME', async (_why, username) => {
      const n = await nonce();
      await expectNoChange(hs, async () => {
        const res = await post({ nonce: n, username, password: DEFAULT_PASSWORD, admin: false, mac: mac(n, username, DEFAULT_PASSWORD, false) });
        expectMatrixError(res, 400, 'M_INVALID_USERNAME');
      });
    });
  });
});

describe.each(backends())('shared-secret registration not configured (%s)', (backend) => {
  let hs: TestServer;
  beforeAll(async () => {
    hs = await startServer(backend, { registration_shared_secret: null });
  });
  afterAll(async () => {
    await hs?.stop();
  });

  it('refuses GET with 400 and stores no nonce', async () => {
    const res = await hs.request('GET', PATH);
    expect(res.status).toBe(400);
    expect(typeof res.body.errcode).toBe('string');
    expect(res.body.nonce).toBeUndefined();
    expect(await countRows(hs, 'registration_nonces')).toBe(0);
  });

  it('refuses POST with 400, whatever the mac', async () => {
    await hs.db()('registration_nonces').insert({ nonce: 'planted', expires_ts: Date.now() + 60_000 });
    await expectNoChange(hs, async () => {
      // Not even a mac made with an empty or guessed secret gets through.
      for (const secret of ['', SECRET]) {
        const res = await hs.request('POST', PATH, {
          body: { nonce: 'planted', username: 'sneaky', password: DEFAULT_PASSWORD, admin: true, mac: mac('planted', 'sneaky', DEFAULT_PASSWORD, true, undefined, secret) },
        });
        expect(res.status).toBe(400);
      }
    });
  });
});
