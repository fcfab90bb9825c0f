// `gatehouse users list|show|create|modify|reset-password|deactivate|lock|
// unlock|suspend|unsuspend`, spawned as an admin runs them against the config
// of a running server: the server sees each change at once, the rules are the
// admin API's, and a refused command exits 1 changing nothing.

import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectMatrixError } from '../support/assertions.js';
import { backends } from '../support/backends.js';
import { DEFAULT_PASSWORD, startServer, type TestServer } from '../support/server.js';
import { runGatehouse } from '../support/cli.js';

const V3 = '/_matrix/client/v3';
const NEW_PW = 'another horse battery staple';


const run = (args: string[], stdin = '') => runGatehouse(args, { stdin });

describe.each(backends())('gatehouse users: accounts (%s)', (backend) => {
  let hs: TestServer;
  let config: string;
  beforeAll(async () => {
    hs = await startServer(backend);
    config = join(hs.dataDir, 'homeserver.yaml');
  });
  afterAll(async () => {
    await hs?.stop();
  });

  const users = (args: string[], stdin = '') => run(['users', ...args, '-c', config], stdin);
  const ok = async (args: string[], stdin = '') => {
    const r = await users(args, stdin);
    expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(0);
    expect(r.stderr).toBe('');
    return r.stdout;
  };
  const refused = async (args: string[], message: string, stdin = '') => {
    const r = await users(args, stdin);
    expect({ args, code: r.code }).toEqual({ args, code: 1 });
    expect(r.stderr).toContain(message);
    expect(r.stdout).toBe('');
  };
  const userRow = (id: string) => hs.db()('users').where({ user_id: id }).first();
  const whoami = (token: string) => hs.request('GET', `${V3}/account/whoami`, { token });
  const login = (name: string, password = DEFAULT_PASSWORD) =>
    hs.request('POST', `${V3}/login`, { body: { type: 'm.login.password', identifier: { type: 'm.id.user', user: name }, password } });
  /** The rows of the account tables, to show a refused command changed nothing. */
  const snapshot = async () => ({
    users: await hs.db()('users').orderBy('user_id'),
    profiles: await hs.db()('profiles').orderBy('user_id'),
    devices: (await hs.db()('devices').orderBy(['user_id', 'device_id'])).map((d: Record<string, unknown>) => d.device_id),
    tokens: (await hs.db()('access_tokens').orderBy('id')).map((t: Record<string, unknown>) => t.id),
  });

  it('create: with a password from standard input the account signs in; without one it cannot; the display name defaults to the localpart', async () => {
    expect(await ok(['create', '@cli_ann:test.local', '--password-stdin', '--displayname', 'Ann A'], `${NEW_PW}\n`)).toBe('created @cli_ann:test.local\n');
    expect((await login('cli_ann', NEW_PW)).status).toBe(200);
    expect((await hs.db()('profiles').where({ user_id: '@cli_ann:test.local' }).first()).displayname).toBe('Ann A');

    expect(await ok(['create', '@cli_bot:test.local', '--admin', '--user-type', 'bot'])).toBe('created @cli_bot:test.local (server admin), without a password\n');
    const bot = await userRow('@cli_bot:test.local');
    expect(bot).toMatchObject({ password_hash: null, user_type: 'bot' });
    expect(!!bot.is_admin).toBe(true);
    expect((await hs.db()('profiles').where({ user_id: '@cli_bot:test.local' }).first()).displayname).toBe('cli_bot');

    const json = JSON.parse(await ok(['create', '@cli_json:test.local', '--json']));
    expect(json).toMatchObject({ name: '@cli_json:test.local', displayname: 'cli_json', admin: false, deactivated: false, threepids: [] });
  });

  it('create refuses an existing account (never changing it), bad names, bad options; nothing changes', async () => {
    const before = await snapshot();
    await refused(['create', '@cli_ann:test.local', '--admin'], 'exists already');
    await refused(['create', '@Cli_Caps:test.local'], 'User ID can only contain');
    await refused(['create', '@cli_x:elsewhere.org'], 'Can only look up local users');
    await refused(['create', 'cli_x'], 'Invalid user ID');
    await refused(['create', '@cli_x:test.local', '--user-type', 'robot'], '--user-type must be bot or support');
    await refused(['create', '@cli_x:test.local', '--password-stdin'], 'no password on standard input', '');
    await refused(['create', '@cli_x:test.local', '--erase'], '--erase does not apply here');
    await refused(['create'], 'give one USER_ID');
    expect(await snapshot()).toEqual(before);
  });

  it('list: a table (locked accounts shown with their state), filters, order, --json as the API', async () => {
    await ok(['create', '@cli_lst_b:test.local', '--displayname', 'Bee']);
    await ok(['create', '@cli_lst_a:test.local', '--displayname', 'Ay', '--admin']);
    await ok(['lock', '@cli_lst_b:test.local']);
    const table = await ok(['list', '--name', 'cli_lst']);
    const lines = table.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^USER ID\s+DISPLAY NAME\s+ADMIN\s+TYPE\s+STATE\s+CREATED\s+LAST SEEN$/);
    expect(lines.slice(1).map((l) => l.split(/\s+/)[0])).toEqual(['@cli_lst_a:test.local', '@cli_lst_b:test.local']);
    expect(lines[1]).toMatch(/^@cli_lst_a:test\.local\s+Ay\s+admin\s+active\s+\d{4}-\d\d-\d\dT[\d:]+Z\s+never$/);
    expect(lines[2]).toMatch(/^@cli_lst_b:test\.local\s+Bee\s+locked\s+/);

    expect((await ok(['list', '--name', 'cli_lst', '--order-by', 'creation_ts', '--reverse'])).split('\n').slice(1, 3).map((l) => l.split(/\s+/)[0])).toEqual([
      '@cli_lst_a:test.local',
      '@cli_lst_b:test.local',
    ]);
    expect((await ok(['list', '--name', 'cli_lst', '--admins'])).split('\n').slice(1).filter(Boolean)).toHaveLength(1);
    expect(await ok(['list', '--name', 'no-such-account'])).toBe('no accounts\n');

    const json = JSON.parse(await ok(['list', '--name', 'cli_lst', '--json']));
    expect(json.total).toBe(2);
    expect(json.users.map((u: { name: string }) => u.name)).toEqual(['@cli_lst_a:test.local', '@cli_lst_b:test.local']);
    expect(json.users[1]).toMatchObject({ locked: true, displayname: 'Bee' });
    await refused(['list', '--order-by', 'password'], '--order-by must be one of');
    await refused(['list', 'extra'], 'unexpected argument');
  });

  it('show: profile, state with the reason and end time, devices; --json is the API\'s details', async () => {
    const u = await hs.register('cli_show');
    await hs.request('PUT', `${V3}/devices/${u.device_id}`, { token: u.access_token, body: { display_name: 'Phone' } });
    await ok(['lock', '@cli_show:test.local', '--reason', 'spam', '--until', '2099-01-01']);
    const out = await ok(['show', '@cli_show:test.local']);
    expect(out).toContain('user:       @cli_show:test.local\n');
    expect(out).toContain('name:       cli_show\n');
    expect(out).toContain('admin:      no\n');
    expect(out).toContain('state:      locked\n');
    expect(out).toContain('lock:       locked until 2099-01-01T00:00:00Z: spam\n');
    expect(out).toMatch(new RegExp(`\\nDEVICE\\s+NAME\\s+LAST SEEN\\s+ADDRESS\\n${u.device_id}\\s+Phone\\s+\\S+\\s+127\\.0\\.0\\.1\\n`));
    // The admin API's answer, from an admin.
    await hs.db()('users').where({ user_id: '@cli_ann:test.local' }).update({ is_admin: true });
    const token = (await hs.login('cli_ann', NEW_PW)).access_token;
    const api = await hs.request('GET', `/_synapse/admin/v2/users/${encodeURIComponent('@cli_show:test.local')}`, { token });
    const json = JSON.parse(await ok(['show', '@cli_show:test.local', '--json']));
    expect(json).toEqual(api.body);
    expect(json).toMatchObject({ name: '@cli_show:test.local', locked: true, displayname: 'cli_show' });
    await refused(['show', '@nobody:test.local'], 'User not found');
    await refused(['show', '@a:test.local', '@b:test.local'], 'give one USER_ID');
  });

  it('modify: display name, avatar, admin, user type; refuses unknown accounts (never creating them) and contradictions', async () => {
    await ok(['create', '@cli_mod:test.local']);
    const out = await ok(['modify', '@cli_mod:test.local', '--displayname', 'Modded', '--avatar-url', 'mxc://test.local/m', '--admin', '--user-type', 'support']);
    expect(out).toContain('name:       Modded\n');
    expect(out).toContain('admin:      yes\n');
    expect(out).toContain('type:       support\n');
    expect(await hs.db()('profiles').where({ user_id: '@cli_mod:test.local' }).first()).toMatchObject({ displayname: 'Modded', avatar_url: 'mxc://test.local/m' });
    await ok(['modify', '@cli_mod:test.local', '--no-displayname', '--no-avatar', '--no-admin', '--no-user-type']);
    expect(await hs.db()('profiles').where({ user_id: '@cli_mod:test.local' }).first()).toMatchObject({ displayname: null, avatar_url: null });
    expect(await userRow('@cli_mod:test.local')).toMatchObject({ user_type: null });
    expect(!!(await userRow('@cli_mod:test.local')).is_admin).toBe(false);

    const before = await snapshot();
    await refused(['modify', '@nobody:test.local', '--displayname', 'x'], 'No such user @nobody:test.local');
    await refused(['modify', '@cli_mod:test.local'], 'nothing to change');
    await refused(['modify', '@cli_mod:test.local', '--admin', '--no-admin'], 'give --admin or --no-admin, not both');
    await refused(['modify', '@cli_mod:test.local', '--avatar-url', 'https://example.org/a.png'], 'avatar_url must be an mxc:// URI');
    await refused(['modify', '@cli_mod:test.local', '--displayname', 'd'.repeat(300)], 'displayname must be at most 256 characters');
    expect(await snapshot()).toEqual(before);
  });

  it('reset-password: from standard input; every session ends unless --keep-sessions', async () => {
    const u = await hs.register('cli_pw');
    expect(await ok(['reset-password', '@cli_pw:test.local', '--password-stdin'], `${NEW_PW}\n`)).toBe('@cli_pw:test.local: password set; every session has ended\n');
    expectMatrixError(await whoami(u.access_token), 401, 'M_UNKNOWN_TOKEN');
    const s = await login('cli_pw', NEW_PW);
    expect(s.status).toBe(200);
    expect(await ok(['reset-password', '@cli_pw:test.local', '--password-stdin', '--keep-sessions'], `${DEFAULT_PASSWORD}\n`)).toBe('@cli_pw:test.local: password set\n');
    expect((await whoami(s.body.access_token)).status).toBe(200);
    expect((await login('cli_pw')).status).toBe(200);

    const before = await snapshot();
    await refused(['reset-password', '@cli_pw:test.local'], '--password-stdin');
    await refused(['reset-password', '@cli_pw:test.local', '--password-stdin'], 'no password on standard input', '\n');
    await refused(['reset-password', '@nobody:test.local', '--password-stdin'], 'No such user', `${NEW_PW}\n`);
    await refused(['reset-password', '@cli_pw:test.local', '--password-stdin'], 'at most 512', `${'x'.repeat(600)}\n`);
    expect(await snapshot()).toEqual(before);
  });

  it('deactivate: sessions end at once on the running server, the name stays taken; --erase clears the profile; --activate brings it back', async () => {
    const a = await hs.register('cli_deact');
    expect(await ok(['deactivate', '@cli_deact:test.local'])).toBe('@cli_deact:test.local: deactivated\n');
    expectMatrixError(await whoami(a.access_token), 401, 'M_UNKNOWN_TOKEN');
    expectMatrixError(await login('cli_deact'), 403, 'M_FORBIDDEN');
    const row = await userRow('@cli_deact:test.local');
    expect(!!row.deactivated).toBe(true);
    expect(!!row.erased).toBe(false);
    expect((await hs.db()('profiles').where({ user_id: '@cli_deact:test.local' }).first()).displayname).toBe('cli_deact');
    expect(await ok(['list', '--name', 'cli_deact'])).toBe('no accounts\n');
    expect(await ok(['list', '--name', 'cli_deact', '--deactivated'])).toMatch(/@cli_deact:test\.local\s+cli_deact\s+deactivated\s/);

    expect(await ok(['deactivate', '@cli_deact:test.local', '--erase'])).toBe('@cli_deact:test.local: deactivated and erased\n');
    expect((await hs.db()('profiles').where({ user_id: '@cli_deact:test.local' }).first()).displayname).toBeNull();
    expect(await ok(['show', '@cli_deact:test.local'])).toContain('state:      deactivated (erased)\n');

    await ok(['modify', '@cli_deact:test.local', '--activate']);
    await ok(['reset-password', '@cli_deact:test.local', '--password-stdin'], `${NEW_PW}\n`);
    expect((await login('cli_deact', NEW_PW)).status).toBe(200);
    await refused(['deactivate', '@nobody:test.local'], 'User not found');
  });

  it('lock and suspend, with a reason and an end time, and lifting them; bad times are refused', async () => {
    await hs.register('cli_state');
    const until = Date.now() + 7 * 86_400_000;
    expect(await ok(['lock', '@cli_state:test.local', '--reason', 'abuse', '--until', '7d'])).toMatch(/^@cli_state:test\.local: locked until \d{4}-\d\d-\d\dT[\d:]+Z: abuse\n$/);
    const locked = await userRow('@cli_state:test.local');
    expect(!!locked.locked).toBe(true);
    expect(locked.lock_reason).toBe('abuse');
    expect(Math.abs(Number(locked.locked_until) - until)).toBeLessThan(60_000);
    expect(await ok(['unlock', '@cli_state:test.local'])).toBe('@cli_state:test.local: not locked\n');
    expect(!!(await userRow('@cli_state:test.local')).locked).toBe(false);

    expect(await ok(['suspend', '@cli_state:test.local'])).toBe('@cli_state:test.local: suspended\n');
    expect(!!(await userRow('@cli_state:test.local')).suspended).toBe(true);
    const json = JSON.parse(await ok(['unsuspend', '@cli_state:test.local', '--json']));
    expect(json).toEqual({
      user_id: '@cli_state:test.local',
      locked: { active: false, reason: null, until: null },
      suspended: { active: false, reason: null, until: null },
    });

    const before = await snapshot();
    await refused(['lock', '@cli_state:test.local', '--until', 'next week'], '--until: "next week" is not a date');
    await refused(['lock', '@cli_state:test.local', '--until', '2001-01-01'], 'until must be a time in the future');
    await refused(['unlock', '@cli_state:test.local', '--reason', 'x'], '--reason does not apply here');
    await refused(['suspend', '@nobody:test.local'], 'No such user');
    expect(await snapshot()).toEqual(before);
  });

  it('--help lists every command; an unknown command exits 1', async () => {
    const help = await run(['users', '--help']);
    expect(help.code).toBe(0);
    for (const word of ['list', 'show', 'create', 'modify', 'reset-password', 'deactivate', 'lock', 'unlock', 'suspend', 'unsuspend', 'pending', 'approve', 'unapprove', '--json'])
      expect(help.stdout).toContain(word);
    const main = await run(['--help']);
    expect(main.stdout).toMatch(/users\s+Manage accounts/);
    const r = await users(['frobnicate']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('unknown command "frobnicate"');
  });
});
