// `gatehouse register-user` (shared-secret registration against a running
// server, as register_new_matrix_user) and `gatehouse users` (accounts waiting
// for approval), spawned as an admin runs them, on both backends.

import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { countRows } from '../support/assertions.js';
import { backends } from '../support/backends.js';
import { DEFAULT_PASSWORD, startServer, type TestServer } from '../support/server.js';
import { runGatehouse } from '../support/cli.js';

const C = '/_matrix/client/v3';


const run = (args: string[], stdin = '') => runGatehouse(args, { stdin });

const loginBody = (user: string, password = DEFAULT_PASSWORD) => ({ type: 'm.login.password', identifier: { type: 'm.id.user', user }, password });

describe.each(backends())('gatehouse register-user (%s)', (backend) => {
  let hs: TestServer;
  let config: string;
  beforeAll(async () => {
    hs = await startServer(backend);
    config = join(hs.dataDir, 'homeserver.yaml');
  });
  afterAll(async () => {
    await hs?.stop();
  });

  it('creates an ordinary user with the config\'s secret, down-casing the name as the server does', async () => {
    const r = await run(['register-user', '-c', config, '-u', 'CliCarol', '-p', DEFAULT_PASSWORD, '--no-admin', hs.url]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('Success! @clicarol:test.local\n');
    const user = await hs.db()('users').where({ user_id: '@clicarol:test.local' }).first();
    expect(!!user.is_admin).toBe(false);
    expect((await hs.request('POST', `${C}/login`, { body: loginBody('clicarol') })).status).toBe(200);
  });

  it('makes an admin with --admin, reading the password from standard input with --password-stdin', async () => {
    const r = await run(['register-user', '-c', config, '-u', 'cli_admin', '--password-stdin', '--admin', hs.url], `${DEFAULT_PASSWORD}\n`);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('Success! @cli_admin:test.local (server admin)\n');
    expect(!!(await hs.db()('users').where({ user_id: '@cli_admin:test.local' }).first()).is_admin).toBe(true);
    expect((await hs.request('POST', `${C}/login`, { body: loginBody('cli_admin') })).status).toBe(200);
  });

  it('takes the secret from -k and a user type, without any config', async () => {
    const r = await run(['register-user', '-k', 'test-shared-secret', '-u', 'cli_bot', '-p', DEFAULT_PASSWORD, '-t', 'bot', hs.url]);
    expect(r.code, r.stderr).toBe(0);
    expect(await countRows(hs, 'users', { user_id: '@cli_bot:test.local' })).toBe(1);
  });

  it('exits 1 with the server\'s error, creating nothing: wrong secret, taken name, bad type, no password without a terminal', async () => {
    const users = await countRows(hs, 'users');
    for (const [args, message] of [
      [['-k', 'not-the-secret', '-u', 'cli_x', '-p', DEFAULT_PASSWORD, hs.url], '403 M_FORBIDDEN'],
      [['-c', config, '-u', 'clicarol', '-p', DEFAULT_PASSWORD, hs.url], '400 M_USER_IN_USE'],
      [['-c', config, '-u', 'cli_y', '-p', DEFAULT_PASSWORD, '-t', 'robot', hs.url], '--user-type must be support or bot'],
      [['-c', config, '-u', 'cli_z', hs.url], 'no terminal to ask on'],
      [['-c', config, '-u', 'cli_z', '-p', 'x', '--password-stdin', hs.url], 'not both'],
      [['-k', 'test-shared-secret', '-u', 'cli_w', '-p', DEFAULT_PASSWORD, 'http://127.0.0.1:1'], 'cannot reach'],
      [['-k', 'test-shared-secret', '-u', 'cli_w', '-p', DEFAULT_PASSWORD, 'not a url'], 'is not a URL'],
    ] as [string[], string][]) {
      const r = await run(['register-user', ...args]);
      expect({ args, code: r.code }).toEqual({ args, code: 1 });
      expect(r.stderr).toContain(message);
    }
    expect(await countRows(hs, 'users')).toBe(users);
  });

  it('gatehouse register-user --help explains it', async () => {
    const r = await run(['register-user', '--help']);
    expect(r.code).toBe(0);
    for (const word of ['--user', '--password-stdin', '--admin', '--shared-secret', 'register_new_matrix_user']) expect(r.stdout).toContain(word);
  });
});

describe.each(backends())('gatehouse users (%s)', (backend) => {
  let hs: TestServer;
  let config: string;
  beforeAll(async () => {
    hs = await startServer(backend, { registration_requires_approval: true });
    config = join(hs.dataDir, 'homeserver.yaml');
  });
  afterAll(async () => {
    await hs?.stop();
  });

  const registerWaiting = async (name: string) => {
    const res = await hs.request('POST', `${C}/register`, { body: { username: name, password: DEFAULT_PASSWORD, auth: { type: 'm.login.dummy' } } });
    expect(res.body.errcode).toBe('M_USER_AWAITING_APPROVAL');
  };

  it('lists the accounts waiting, approves them (they can sign in), and withdraws approval', async () => {
    expect((await run(['users', 'pending', '-c', config])).stdout).toBe('No accounts are waiting for approval.\n');
    await registerWaiting('wait_a');
    await registerWaiting('wait_b');
    const pending = await run(['users', 'pending', '-c', config]);
    expect(pending.code).toBe(0);
    expect(pending.stdout).toMatch(/^USER ID\s+REGISTERED\n@wait_a:test\.local\s+\d{4}-\d{2}-\d{2}T[\d:]+Z\n@wait_b:test\.local\s+/);
    const json = JSON.parse((await run(['users', 'pending', '--json', '-c', config])).stdout);
    expect(json.users.map((u: { user_id: string }) => u.user_id)).toEqual(['@wait_a:test.local', '@wait_b:test.local']);

    const approve = await run(['users', 'approve', '@wait_a:test.local', '-c', config]);
    expect(approve.code, approve.stderr).toBe(0);
    expect(approve.stdout).toBe('@wait_a:test.local: approved\n');
    const login = await hs.request('POST', `${C}/login`, { body: loginBody('wait_a') });
    expect(login.status, login.text).toBe(200);
    expect(JSON.parse((await run(['users', 'pending', '--json', '-c', config])).stdout).users).toEqual([
      { user_id: '@wait_b:test.local', created_ts: expect.any(Number) },
    ]);

    expect((await run(['users', 'unapprove', '@wait_a:test.local', '-c', config])).stdout).toBe('@wait_a:test.local: waiting for approval\n');
    const who = await hs.request('GET', `${C}/account/whoami`, { token: login.body.access_token });
    expect(who.body.errcode).toBe('M_USER_AWAITING_APPROVAL');
  });

  it('changes nothing when any ID is wrong, and exits 1 naming it', async () => {
    await registerWaiting('wait_c');
    for (const [ids, message] of [
      [['@wait_c:test.local', '@nobody:test.local'], 'No such user @nobody:test.local'],
      [['@wait_c:test.local', '@wait_c:elsewhere.org'], 'is not a user ID of test.local'],
      [['wait_c'], 'is not a user ID'],
    ] as [string[], string][]) {
      const r = await run(['users', 'approve', ...ids, '-c', config]);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(message);
    }
    expect(!!(await hs.db()('users').where({ user_id: '@wait_c:test.local' }).first()).approved).toBe(false);
    for (const args of [['users'], ['users', 'approve', '-c', config], ['users', 'pending', 'x', '-c', config]]) expect((await run(args)).code).toBe(1);
  });
});
