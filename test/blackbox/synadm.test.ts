// The real synadm (Debian's package, a Synapse admin CLI) against a spawned
// Gatehouse: its `user` commands (list, details, modify, password, whois,
// deactivate) and `regtok` commands (list, new, update, details, delete) must
// work as they do against Synapse. Without synadm on the PATH the suite shows
// as skipped, saying why (.ci/run installs it).

import { spawn } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { accessSync, constants, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends } from '../support/backends.js';
import { DEFAULT_PASSWORD, startServer, type TestServer } from '../support/server.js';

/** synadm on the PATH, or null. */
function findSynadm(): string | null {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    const candidate = join(dir, 'synadm');
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      /* not here */
    }
  }
  return null;
}

const SYNADM = findSynadm();
const describeWithSynadm = (name: string, fn: () => void) =>
  describe.skipIf(!SYNADM)(SYNADM ? name : `${name} (skipped: synadm is not installed; apt-get install synadm, as .ci/run does)`, fn);

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

const V3 = '/_matrix/client/v3';
const NEW_PW = 'another horse battery staple';

describeWithSynadm('synadm against Gatehouse', () => {
  describe.each(backends())('%s', (backend) => {
    let hs: TestServer;
    let home: string;
    let configFile: string;

    /** Runs synadm with its own HOME (it logs to ~/.local/share/synadm) and our config file. */
    const synadm = (args: string[]): Promise<Run> =>
      new Promise((resolve, reject) => {
        const child = spawn(SYNADM!, ['-c', configFile, ...args], { env: { ...process.env, HOME: home }, stdio: ['ignore', 'pipe', 'pipe'] });
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
        child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
        const timer = setTimeout(() => {
          child.kill('SIGKILL');
          reject(new Error(`synadm ${args.join(' ')} did not exit:\n${stdout}\n${stderr}`));
        }, 30_000);
        child.once('exit', (code) => {
          clearTimeout(timer);
          setImmediate(() => resolve({ code, stdout, stderr }));
        });
      });
    /** A batch command with JSON output: its last line, parsed (synadm prints notes and earlier answers before it). */
    const json = async (args: string[]): Promise<any> => {
      const r = await synadm(['--batch', '-o', 'json', ...args]);
      expect(r.code, `synadm ${args.join(' ')}:\n${r.stdout}\n${r.stderr}`).toBe(0);
      const lines = r.stdout.trim().split('\n');
      return JSON.parse(lines.at(-1)!);
    };
    const login = (name: string, password: string) =>
      hs.request('POST', `${V3}/login`, { body: { type: 'm.login.password', identifier: { type: 'm.id.user', user: name }, password } });

    beforeAll(async () => {
      hs = await startServer(backend);
      home = mkdtempSync(join(tmpdir(), 'gatehouse-synadm-'));
      configFile = join(home, 'synadm.yaml');
      // An admin through shared-secret registration, as an admin would make one.
      const nonce = (await hs.request('GET', '/_synapse/admin/v1/register')).body.nonce as string;
      const mac = createHmac('sha1', 'test-shared-secret').update([nonce, 'synadmin', DEFAULT_PASSWORD, 'admin'].join('\x00'), 'utf8').digest('hex');
      const reg = await hs.request('POST', '/_synapse/admin/v1/register', { body: { nonce, username: 'synadmin', password: DEFAULT_PASSWORD, admin: true, mac } });
      expect(reg.status).toBe(200);
      // synadm's own configurator, non-interactively; `homeserver` set, so localparts need no discovery.
      const config = await synadm([
        '--batch', 'config', '--user', 'synadmin', '--token', reg.body.access_token, '--base-url', hs.url, '--admin-path', '/_synapse/admin',
        '--matrix-path', '/_matrix', '--output', 'json', '--timeout', '10', '--server-discovery', 'well-known', '--homeserver', hs.serverName,
      ]);
      expect(config.code, config.stdout + config.stderr).toBe(0);
    });
    afterAll(async () => {
      await hs?.stop();
      if (home) rmSync(home, { recursive: true, force: true });
    });

    it('version: the server_version answer', async () => {
      expect(await json(['version'])).toEqual({ server_version: expect.stringMatching(/^Gatehouse \d/) });
    });

    it('user modify creates an account (then changes it), user details shows it, the password signs in', async () => {
      const created = await json(['user', 'modify', '@syn_ann:test.local', '--password', NEW_PW, '--display-name', 'Ann Syn']);
      expect(created).toMatchObject({ name: '@syn_ann:test.local', displayname: 'Ann Syn', admin: false, deactivated: false });
      expect((await login('syn_ann', NEW_PW)).status).toBe(200);
      // A localpart is completed with the configured homeserver name.
      const changed = await json(['user', 'modify', 'syn_ann', '--admin', '--avatar-url', 'mxc://test.local/ann']);
      expect(changed).toMatchObject({ name: '@syn_ann:test.local', admin: true, avatar_url: 'mxc://test.local/ann' });
      const details = await json(['user', 'details', '@syn_ann:test.local']);
      expect(details).toEqual(changed);
      expect(details.threepids).toEqual([]);
    });

    it('user modify --threepid sets the addresses (canonical), and user details shows them', async () => {
      const res = await json(['user', 'modify', '@syn_ann:test.local', '--display-name', 'Changed', '--threepid', 'email', 'Ann@Example.org']);
      expect(res).toMatchObject({ displayname: 'Changed', threepids: [{ medium: 'email', address: 'ann@example.org' }] });
      const details = await json(['user', 'details', '@syn_ann:test.local']);
      expect(details.threepids).toEqual([{ medium: 'email', address: 'ann@example.org', added_at: expect.any(Number), validated_at: expect.any(Number) }]);
      expect(await json(['user', 'modify', '@syn_ann:test.local', '--display-name', 'Ann Syn'])).toMatchObject({ displayname: 'Ann Syn' });
    });

    it('user list: JSON and the human table, with -d for deactivated accounts and -n to search', async () => {
      await json(['user', 'modify', '@syn_bob:test.local', '--password', NEW_PW]);
      const all = await json(['user', 'list']);
      expect(all.users.map((u: { name: string }) => u.name)).toEqual(expect.arrayContaining(['@synadmin:test.local', '@syn_ann:test.local', '@syn_bob:test.local']));
      expect(all.total).toBe(all.users.length);
      const search = await json(['user', 'list', '-n', 'syn_b']);
      expect(search.users.map((u: { name: string }) => u.name)).toEqual(['@syn_bob:test.local']);
      const paged = await json(['user', 'list', '--limit', '1']);
      expect(paged.users).toHaveLength(1);
      expect(paged.next_token).toBe('1');

      const human = await synadm(['--batch', '-o', 'human', 'user', 'list']);
      expect(human.code).toBe(0);
      expect(human.stdout).toContain(`Total users on homeserver (excluding deactivated): ${all.total}`);
      expect(human.stdout).toMatch(/name\s+displayname\s+avatar_url/);
      expect(human.stdout).toMatch(/@syn_ann:test\.local\s+Ann Syn/);
      expect(human.stdout).not.toContain('There are more users');
      const page = await synadm(['--batch', '-o', 'human', 'user', 'list', '--limit', '1']);
      expect(page.stdout).toContain("There are more users than shown, use '--from 1' to go to next page");
    });

    it('user password and user whois', async () => {
      const s = await login('syn_bob', NEW_PW);
      const res = await synadm(['--batch', '-o', 'human', 'user', 'password', '@syn_bob:test.local', '--password', DEFAULT_PASSWORD]);
      expect(res.stdout).toContain('Password reset successfully.');
      expect((await hs.request('GET', `${V3}/account/whoami`, { token: s.body.access_token })).status).toBe(401);
      const s2 = await login('syn_bob', DEFAULT_PASSWORD);
      expect(s2.status).toBe(200);
      // The sign-in above is the one session left.
      const whois = await json(['user', 'whois', '@syn_bob:test.local']);
      expect(whois).toEqual({ user_id: '@syn_bob:test.local', devices: { '': { sessions: [{ connections: [{ ip: '127.0.0.1', last_seen: expect.any(Number), user_agent: 'node' }] }] } } });
    });

    it('user deactivate (and --gdpr-erase): signed out, gone from the list but for -d', async () => {
      const s = await login('syn_bob', DEFAULT_PASSWORD);
      expect(await json(['user', 'deactivate', '@syn_bob:test.local'])).toEqual({ id_server_unbind_result: 'success' });
      expect((await hs.request('GET', `${V3}/account/whoami`, { token: s.body.access_token })).status).toBe(401);
      expect((await login('syn_bob', DEFAULT_PASSWORD)).status).toBe(403);
      expect((await json(['user', 'list'])).users.map((u: { name: string }) => u.name)).not.toContain('@syn_bob:test.local');
      expect((await json(['user', 'list', '-d'])).users.find((u: { name: string }) => u.name === '@syn_bob:test.local')).toMatchObject({ deactivated: true, erased: false });

      const human = await synadm(['--batch', '-o', 'human', 'user', 'deactivate', '--gdpr-erase', '@syn_ann:test.local']);
      expect(human.code).toBe(0);
      expect(human.stdout).toContain('User is member of 0 rooms.');
      expect(human.stdout).toContain('User successfully gdpr-erased.');
      expect(await json(['user', 'details', '@syn_ann:test.local'])).toMatchObject({ deactivated: true, erased: true, displayname: null, avatar_url: null });
    });

    it('regtok new, list, details, update, delete', async () => {
      const made = await json(['regtok', 'new', '--token', 'syn-token', '--uses-allowed', '2']);
      expect(made).toMatchObject({ token: 'syn-token', uses_allowed: 2, pending: 0, completed: 0, expiry_time: null });
      const random = await json(['regtok', 'new', '--length', '24']);
      expect(random.token).toMatch(/^[A-Za-z0-9._~-]{24}$/);

      const listed = await json(['regtok', 'list']);
      expect(listed.registration_tokens.map((t: { token: string }) => t.token)).toEqual(expect.arrayContaining(['syn-token', random.token]));
      expect((await json(['regtok', 'list', '--invalid'])).registration_tokens).toEqual([]);

      expect(await json(['regtok', 'details', 'syn-token'])).toMatchObject({ token: 'syn-token', uses_allowed: 2 });
      const expiry = Date.now() + 86_400_000;
      const updated = await json(['regtok', 'update', 'syn-token', '--uses-allowed', '5', '--expiry-ts', String(expiry)]);
      expect(updated).toMatchObject({ token: 'syn-token', uses_allowed: 5, expiry_time: expiry });
      expect(await json(['regtok', 'update', 'syn-token', '--uses-allowed', '-1', '--expiry-ts', '-1'])).toMatchObject({ uses_allowed: null, expiry_time: null });
      // The human view turns the expiry into a date.
      await json(['regtok', 'update', 'syn-token', '--expiry-ts', String(expiry)]);
      const human = await synadm(['--batch', '-o', 'human', 'regtok', 'details', 'syn-token', '--datetime']);
      expect(human.stdout).toMatch(/expiry_time\s+\d{4}-\d\d-\d\d/);

      const deleted = await synadm(['--batch', 'regtok', 'delete', 'syn-token']);
      expect(deleted.stdout).toBe('Registration token successfully deleted.\n');
      expect(await json(['regtok', 'details', 'syn-token'])).toMatchObject({ errcode: 'M_NOT_FOUND' });
    });
  });
});
