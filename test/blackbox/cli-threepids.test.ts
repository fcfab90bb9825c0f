// `gatehouse users create|modify --email/--remove-email` and `users show`
// with addresses, spawned against the config of a running server: the
// addresses are the admin API's (canonical, one account each), the server
// sees them at once (login by email), and a refused command changes nothing.

import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends } from '../support/backends.js';
import { runGatehouse } from '../support/cli.js';
import { DEFAULT_PASSWORD, startServer, type TestServer } from '../support/server.js';

const V3 = '/_matrix/client/v3';

describe.each(backends())('gatehouse users: email addresses (%s)', (backend) => {
  let hs: TestServer;
  let config: string;
  beforeAll(async () => {
    hs = await startServer(backend);
    config = join(hs.dataDir, 'homeserver.yaml');
  });
  afterAll(async () => {
    await hs?.stop();
  });

  const users = (args: string[], stdin = '') => runGatehouse(['users', ...args, '-c', config], { stdin });
  const ok = async (args: string[], stdin = '') => {
    const r = await users(args, stdin);
    expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(0);
    expect(r.stderr).toBe('');
    return r.stdout;
  };
  const refused = async (args: string[], message: string) => {
    const r = await users(args);
    expect({ args, code: r.code }).toEqual({ args, code: 1 });
    expect(r.stderr).toContain(message);
    expect(r.stdout).toBe('');
  };
  const addressesOf = async (id: string) =>
    ((await hs.db()('user_threepids').where({ user_id: id }).orderBy('address')) as { address: string }[]).map((r) => r.address);
  const loginByEmail = (address: string) =>
    hs.request('POST', `${V3}/login`, {
      body: { type: 'm.login.password', identifier: { type: 'm.id.thirdparty', medium: 'email', address }, password: DEFAULT_PASSWORD },
    });

  it('create --email (repeatable) binds the addresses, canonical; the account signs in with one', async () => {
    const out = await ok(['create', '@cli_mail:test.local', '--password-stdin', '--email', 'Mail@Example.org', '--email', 'second@example.org'], `${DEFAULT_PASSWORD}\n`);
    expect(out).toBe('created @cli_mail:test.local\n');
    expect(await addressesOf('@cli_mail:test.local')).toEqual(['mail@example.org', 'second@example.org']);
    const login = await loginByEmail('MAIL@example.org');
    expect(login.status).toBe(200);
    expect(login.body.user_id).toBe('@cli_mail:test.local');
  });

  it('show lists the addresses (text and JSON)', async () => {
    const text = await ok(['show', '@cli_mail:test.local']);
    expect(text).toMatch(/^email: {6}mail@example\.org$/m);
    expect(text).toMatch(/^email: {6}second@example\.org$/m);
    const json = JSON.parse(await ok(['show', '@cli_mail:test.local', '--json']));
    expect(json.threepids.map((t: { address: string }) => t.address).sort()).toEqual(['mail@example.org', 'second@example.org']);
  });

  it('modify --email adds, --remove-email removes (in any case), the others stay', async () => {
    const id = '@cli_mail:test.local';
    await ok(['modify', id, '--email', 'third@example.org']);
    expect(await addressesOf(id)).toEqual(['mail@example.org', 'second@example.org', 'third@example.org']);
    const out = await ok(['modify', id, '--remove-email', 'SECOND@example.org', '--email', 'fourth@example.org']);
    expect(out).toContain('fourth@example.org');
    expect(await addressesOf(id)).toEqual(['fourth@example.org', 'mail@example.org', 'third@example.org']);
    // Removing one it does not have changes nothing and is no error (as the user's own delete).
    await ok(['modify', id, '--remove-email', 'never@example.org']);
    expect(await addressesOf(id)).toEqual(['fourth@example.org', 'mail@example.org', 'third@example.org']);
    expect((await loginByEmail('second@example.org')).status).toBe(403);
  });

  it('refuses another account\'s address, a malformed one, and --remove-email at create; nothing changes', async () => {
    await ok(['create', '@cli_other:test.local']);
    const before = await hs.db()('user_threepids').orderBy('address');
    await refused(['modify', '@cli_other:test.local', '--email', 'Mail@example.org'], 'already in use');
    await refused(['modify', '@cli_other:test.local', '--email', 'not-an-address'], 'not a valid email address');
    await refused(['create', '@cli_new:test.local', '--email', 'mail@example.org'], 'already in use');
    await refused(['create', '@cli_new:test.local', '--remove-email', 'mail@example.org'], '--remove-email does not apply here');
    expect(await hs.db()('user_threepids').orderBy('address')).toEqual(before);
    expect(await hs.db()('users').where({ user_id: '@cli_new:test.local' })).toEqual([]);
  });

  it('deactivate unbinds the addresses', async () => {
    await ok(['create', '@cli_gone:test.local', '--email', 'gone@example.org']);
    await ok(['deactivate', '@cli_gone:test.local']);
    expect(await addressesOf('@cli_gone:test.local')).toEqual([]);
    await ok(['modify', '@cli_other:test.local', '--email', 'gone@example.org']);
    expect(await addressesOf('@cli_other:test.local')).toEqual(['gone@example.org']);
  });
});
