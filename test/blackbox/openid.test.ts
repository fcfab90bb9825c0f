// OpenID tokens, black-box: request_token and the federation userinfo lookup.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { countRows, expectMatrixError, expectNoChange } from '../support/assertions.js';
import { backends } from '../support/backends.js';
import { startServer, type TestServer } from '../support/server.js';

const V3 = '/_matrix/client/v3';
const request = (userId: string) => `${V3}/user/${encodeURIComponent(userId)}/openid/request_token`;
const USERINFO = '/_matrix/federation/v1/openid/userinfo';

describe.each(backends())('OpenID (%s)', (backend) => {
  let hs: TestServer;
  beforeAll(async () => {
    hs = await startServer(backend);
  });
  afterAll(async () => {
    await hs?.stop();
  });

  it('issues a token that tells who the user is, stored only as a hash', async () => {
    const u = await hs.register('oi_user');
    const res = await hs.request('POST', request(u.user_id), { token: u.access_token, body: {} });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ access_token: expect.any(String), token_type: 'Bearer', matrix_server_name: 'test.local', expires_in: 3600 });
    expect(await countRows(hs, 'openid_tokens', { token_hash: res.body.access_token })).toBe(0);
    const info = await hs.request('GET', `${USERINFO}?access_token=${encodeURIComponent(res.body.access_token)}`);
    expect(info.status).toBe(200);
    expect(info.body).toEqual({ sub: u.user_id });
    // The user's access token is not an OpenID token.
    expectMatrixError(await hs.request('GET', `${USERINFO}?access_token=${u.access_token}`), 401, 'M_UNKNOWN_TOKEN');
    expectMatrixError(await hs.request('GET', USERINFO), 401, 'M_UNKNOWN_TOKEN');
    expectMatrixError(await hs.request('GET', `${USERINFO}?access_token=nope`), 401, 'M_UNKNOWN_TOKEN');
  });

  it('expired tokens and deactivated users say nothing', async () => {
    const u = await hs.register('oi_expire');
    const res = await hs.request('POST', request(u.user_id), { token: u.access_token, body: {} });
    await hs.db()('openid_tokens').update({ expires_ts: Date.now() - 1 });
    expectMatrixError(await hs.request('GET', `${USERINFO}?access_token=${res.body.access_token}`), 401, 'M_UNKNOWN_TOKEN');
    const again = await hs.request('POST', request(u.user_id), { token: u.access_token, body: {} });
    await hs.db()('users').where({ user_id: u.user_id }).update({ deactivated: true });
    expectMatrixError(await hs.request('GET', `${USERINFO}?access_token=${again.body.access_token}`), 401, 'M_UNKNOWN_TOKEN');
  });

  it('refuses another user, no token, or a body that is not an object, issuing nothing', async () => {
    const u = await hs.register('oi_refuse');
    await expectNoChange(
      hs,
      async () => {
        expectMatrixError(await hs.request('POST', request('@someone:test.local'), { token: u.access_token, body: {} }), 403, 'M_FORBIDDEN');
        expectMatrixError(await hs.request('POST', request(u.user_id), { body: {} }), 401, 'M_MISSING_TOKEN');
        expectMatrixError(await hs.request('POST', request(u.user_id), { token: u.access_token, body: [] }), 400, 'M_BAD_JSON');
      },
      ['openid_tokens'],
    );
  });
});
