// The thinnest end-to-end path: versions, register, login, whoami, on each backend.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends } from '../support/backends.js';
import { startServer, type TestServer } from '../support/server.js';

describe.each(backends())('smoke (%s)', (backend) => {
  let hs: TestServer;
  beforeAll(async () => {
    hs = await startServer(backend);
  });
  afterAll(async () => {
    await hs?.stop();
  });

  it('lists spec versions', async () => {
    const res = await hs.request('GET', '/_matrix/client/versions');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/json');
    expect(res.body.versions).toContain('v1.5');
  });

  it('registers, logs in and answers whoami', async () => {
    const reg = await hs.register('alice');
    expect(reg.user_id).toBe('@alice:test.local');
    const login = await hs.login('alice');
    expect(login.access_token).not.toBe(reg.access_token);
    const who = await hs.request('GET', '/_matrix/client/v3/account/whoami', { token: login.access_token });
    expect(who.status).toBe(200);
    expect(who.body).toEqual({ user_id: '@alice:test.local', device_id: login.device_id, is_guest: false });
  });
});
