// `gatehouse tokens ...` as an admin runs it: the compiled dist/src/main.js,
// spawned on the config of a running server, so that what the command writes
// is what the server uses (and the other way round), on both backends.

import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { countRows } from '../support/assertions.js';
import { backends } from '../support/backends.js';
import { DEFAULT_PASSWORD, startServer, type TestServer } from '../support/server.js';
import { runGatehouse } from '../support/cli.js';

const DAY = 86_400_000;


const run = (args: string[]) => runGatehouse(args);

describe('gatehouse tokens: help and arguments', () => {
  it('gatehouse --help names the command; tokens --help explains it', async () => {
    expect((await run(['--help'])).stdout).toContain('tokens');
    const help = await run(['tokens', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^Usage: gatehouse tokens <command>/);
    for (const word of ['list', 'new', 'show', 'update', 'delete', '--valid', '--invalid', '--uses', '--unlimited', '--expires', '--never', '--note', '--json'])
      expect(help.stdout).toContain(word);
  });

  it('exits 1 with a message for a missing or unknown command and for options that do not apply', async () => {
    for (const [args, message] of [
      [['tokens'], 'which command'],
      [['tokens', 'frobnicate'], 'unknown command "frobnicate"'],
      [['tokens', 'list', '--frobnicate'], '--frobnicate'],
      [['tokens', 'list', '--uses', '3'], '--uses does not apply'],
      [['tokens', 'delete', 'a', '--note', 'x'], '--note does not apply'],
      [['tokens', 'show'], 'give one TOKEN'],
      [['tokens', 'show', 'a', 'b'], 'give one TOKEN'],
      [['tokens', 'list', 'extra'], 'unexpected argument "extra"'],
      [['tokens', 'list', '--valid', '--invalid'], 'not both'],
      [['tokens', 'new', '--token', 'a', '--length', '4'], 'not both'],
      [['tokens', 'new', '--uses', '1.5'], '--uses: "1.5" is not a non-negative integer'],
      [['tokens', 'new', '--uses=-1'], '--uses: "-1" is not a non-negative integer'],
      [['tokens', 'new', '--length', 'many'], '--length'],
      [['tokens', 'new', '--expires', 'next tuesday'], '--expires: "next tuesday" is not a date'],
      [['tokens', 'update', 'a'], 'nothing to change'],
      [['tokens', 'update', 'a', '--uses', '2', '--unlimited'], 'not both'],
      [['tokens', 'update', 'a', '--expires', '7d', '--never'], 'not both'],
    ] as [string[], string][]) {
      const r = await run(args);
      expect({ args, code: r.code }).toEqual({ args, code: 1 });
      expect(r.stderr).toContain(message);
      expect(r.stdout).toBe('');
    }
  });

  it('refuses a database that does not exist (without creating it) or is not migrated', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gatehouse-cli-tokens-'));
    try {
      const config = join(dir, 'homeserver.yaml');
      writeFileSync(config, stringify({ server_name: 'example.org', database: { name: 'sqlite3', args: { database: 'absent.db' } } }));
      const missing = await run(['tokens', 'list', '-c', config]);
      expect(missing.code).toBe(1);
      expect(missing.stderr).toContain('does not exist');
      expect(missing.stderr).toContain('gatehouse migrate');
      expect(existsSync(join(dir, 'absent.db'))).toBe(false);

      // An empty database file: no schema yet.
      writeFileSync(join(dir, 'absent.db'), '');
      const empty = await run(['tokens', 'list', '-c', config]);
      expect(empty.code).toBe(1);
      expect(empty.stderr).toContain('not up to date');

      writeFileSync(config, stringify({ server_name: 'example.org', database: { name: 'sqlite3', args: { database: ':memory:' } } }));
      const memory = await run(['tokens', 'list', '-c', config]);
      expect(memory.code).toBe(1);
      expect(memory.stderr).toContain('in memory');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe.each(backends())('gatehouse tokens on a running server\'s database (%s)', (backend) => {
  let hs: TestServer;
  let config: string;
  const tokens = (...args: string[]) => run(['tokens', ...args, '-c', config]);
  const json = async (...args: string[]) => {
    const r = await tokens(...args, '--json');
    expect({ args, code: r.code, stderr: r.stderr }).toEqual({ args, code: 0, stderr: '' });
    return JSON.parse(r.stdout);
  };
  /** Runs a command that must fail; checks its message and that no token table changed. */
  const fails = async (message: string, ...args: string[]) => {
    const tables = ['registration_tokens', 'registration_token_uses'];
    const before = await Promise.all(tables.map((t) => hs.db()(t).select('*').orderBy(t === 'registration_tokens' ? 'token' : 'id')));
    const r = await tokens(...args);
    expect({ args, code: r.code }).toEqual({ args, code: 1 });
    expect(r.stderr).toContain(message);
    expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
    expect(r.stdout).toBe('');
    const after = await Promise.all(tables.map((t) => hs.db()(t).select('*').orderBy(t === 'registration_tokens' ? 'token' : 'id')));
    expect(after).toEqual(before);
  };
  const registerWith = (username: string, token: string) =>
    hs.request('POST', '/_matrix/client/v3/register', { body: { username, password: DEFAULT_PASSWORD, auth: { type: 'm.login.registration_token', token } } });

  beforeAll(async () => {
    hs = await startServer(backend, { registration_requires_token: true });
    config = join(hs.dataDir, 'homeserver.yaml');
  });
  afterAll(async () => {
    await hs?.stop();
  });

  it('new: 16 random characters by default, printed for people or as the admin API\'s JSON', async () => {
    const r = await tokens('new');
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    const token = /^token:\s+(\S+)$/m.exec(r.stdout)![1]!;
    expect(token).toMatch(/^[A-Za-z0-9._~-]{16}$/);
    expect(r.stdout).toMatch(/^state:\s+valid$/m);
    expect(r.stdout).toMatch(/^allowed:\s+unlimited$/m);
    expect(r.stdout).toMatch(/^expires:\s+never$/m);
    expect(await countRows(hs, 'registration_tokens', { token })).toBe(1);

    const created = await json('new', '--length', '30');
    expect(Object.keys(created).sort()).toEqual(['completed', 'expiry_time', 'note', 'pending', 'token', 'uses_allowed']);
    expect(created.token).toHaveLength(30);
  });

  it('new with a token, uses, expiry (a date, a time from now, or milliseconds) and a note', async () => {
    const t = await json('new', '--token', 'cli-alice', '--uses', '3', '--expires', '2099-01-01', '--note', 'for Alice');
    expect(t).toEqual({ token: 'cli-alice', uses_allowed: 3, pending: 0, completed: 0, expiry_time: Date.UTC(2099, 0, 1), note: 'for Alice' });
    const zoned = await json('new', '--token', 'cli-zoned', '--expires', '2099-06-01T12:30:00+02:00');
    expect(zoned.expiry_time).toBe(Date.UTC(2099, 5, 1, 10, 30));
    const before = Date.now();
    const week = await json('new', '--token', 'cli-week', '--expires', '7d');
    expect(week.expiry_time).toBeGreaterThanOrEqual(before + 7 * DAY);
    expect(week.expiry_time).toBeLessThanOrEqual(Date.now() + 7 * DAY);
    const ms = Date.now() + DAY;
    expect((await json('new', '--token', 'cli-ms', '--expires', String(ms))).expiry_time).toBe(ms);
    // The server sees it at once (the validity endpoint reads the same table).
    const validity = await hs.request('GET', '/_matrix/client/v1/register/m.login.registration_token/validity?token=cli-alice');
    expect(validity.body).toEqual({ valid: true });
  });

  it('new refuses what the admin API refuses, with its message, creating nothing', async () => {
    await fails('token must be', 'new', '--token', 'not a token');
    await fails('token must be', 'new', '--token', 'x'.repeat(65));
    await fails('Token already exists: cli-alice', 'new', '--token', 'cli-alice');
    await fails('length must be', 'new', '--length', '0');
    await fails('length must be', 'new', '--length', '65');
    await fails('uses_allowed must be', 'new', '--uses', String(2 ** 31));
    await fails('expiry_time must not be in the past', 'new', '--expires', '2000-01-01');
    await fails('expiry_time must not be in the past', 'new', '--expires', '1000');
    await fails('note must be at most 1000', 'new', '--note', 'x'.repeat(1001));
  });

  it('show lists the accounts registered with the token, and when', async () => {
    await json('new', '--token', 'cli-audit', '--uses', '2', '--note', 'for the Browns');
    const t0 = Date.now();
    expect((await registerWith('brown_a', 'cli-audit')).status).toBe(200);
    expect((await registerWith('brown_b', 'cli-audit')).status).toBe(200);
    const t1 = Date.now();

    const shown = await json('show', 'cli-audit');
    expect(shown).toMatchObject({ token: 'cli-audit', uses_allowed: 2, completed: 2, pending: 0, note: 'for the Browns' });
    expect(shown.registrations.map((r: { user_id: string }) => r.user_id)).toEqual(['@brown_a:test.local', '@brown_b:test.local']);
    for (const r of shown.registrations) {
      expect(r.registered_at).toBeGreaterThanOrEqual(t0);
      expect(r.registered_at).toBeLessThanOrEqual(t1);
    }

    const table = await tokens('show', 'cli-audit');
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/^state:\s+used up$/m);
    expect(table.stdout).toMatch(/^used:\s+2$/m);
    expect(table.stdout).toMatch(/^note:\s+for the Browns$/m);
    expect(table.stdout).toMatch(/^REGISTERED\s+USER$/m);
    const when = new Date(shown.registrations[0].registered_at).toISOString().replace(/\.\d{3}Z$/, 'Z');
    expect(table.stdout).toContain(`${when}  @brown_a:test.local`);
    expect(table.stdout).toContain('@brown_b:test.local');

    const unused = await tokens('show', 'cli-ms');
    expect(unused.stdout).toContain('no accounts registered with this token');
  });

  it('show of an unknown token (or one no token can be) exits 1', async () => {
    await fails('No such registration token: nope', 'show', 'nope');
    await fails('No such registration token', 'show', 'not a token');
  });

  it('a token that starts with "-" is named after "--"', async () => {
    await json('new', '--token=-dash');
    // Everything after "--" is a TOKEN, so the options go before it.
    const shown = await run(['tokens', 'show', '--json', '-c', config, '--', '-dash']);
    expect(shown.code).toBe(0);
    expect(JSON.parse(shown.stdout).token).toBe('-dash');
    expect((await run(['tokens', 'delete', '-c', config, '--', '-dash'])).stdout).toBe('deleted -dash\n');
  });

  it('list: a table of every token with its state, or --json; --valid and --invalid filter', async () => {
    await hs.db()('registration_tokens').insert({ token: 'cli-expired', uses_allowed: null, pending: 0, completed: 0, expiry_time: Date.now() - 1000, note: 'line one\nline two', created_ts: Date.now() });
    const r = await tokens('list');
    expect(r.code).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^TOKEN\s+STATE\s+USED\s+PENDING\s+ALLOWED\s+EXPIRES\s+NOTE$/);
    expect(lines.find((l) => l.startsWith('cli-alice '))).toMatch(/^cli-alice\s+valid\s+0\s+0\s+3\s+2099-01-01T00:00:00Z\s+for Alice$/);
    expect(lines.find((l) => l.startsWith('cli-audit '))).toMatch(/^cli-audit\s+used up\s+2\s+0\s+2\s+never\s+for the Browns$/);
    // A note with a line break stays on its row.
    expect(lines.find((l) => l.startsWith('cli-expired '))).toMatch(/^cli-expired\s+expired\s+0\s+0\s+unlimited\s+\S+\s+line one line two$/);
    expect(lines).toHaveLength(1 + (await countRows(hs, 'registration_tokens')));

    const all = await json('list');
    expect(Object.keys(all)).toEqual(['registration_tokens']);
    const names = (l: { registration_tokens: { token: string }[] }) => l.registration_tokens.map((t) => t.token);
    const valid = names(await json('list', '--valid'));
    const invalid = names(await json('list', '--invalid'));
    expect(valid).toContain('cli-alice');
    expect(valid).not.toContain('cli-audit');
    expect(invalid).toEqual(expect.arrayContaining(['cli-audit', 'cli-expired']));
    expect(invalid).not.toContain('cli-alice');
    expect([...valid, ...invalid].sort()).toEqual(names(all).sort());
  });

  it('list goes through every page (more than the API\'s 1000 a page)', async () => {
    const now = Date.now();
    const rows = Array.from({ length: 1005 }, (_, i) => ({ token: `bulk-${String(i).padStart(4, '0')}`, uses_allowed: null, pending: 0, completed: 0, expiry_time: null, note: null, created_ts: now + i }));
    for (let i = 0; i < rows.length; i += 200) await hs.db()('registration_tokens').insert(rows.slice(i, i + 200));
    const all = await json('list');
    expect(all.registration_tokens).toHaveLength(await countRows(hs, 'registration_tokens'));
    expect(all.registration_tokens.filter((t: { token: string }) => t.token.startsWith('bulk-'))).toHaveLength(1005);
    await hs.db()('registration_tokens').where('token', 'like', 'bulk-%').delete();
  });

  it('update changes uses, expiry and note; --unlimited, --never and --note "" clear them', async () => {
    await json('new', '--token', 'cli-upd', '--uses', '1', '--note', 'old');
    expect(await json('update', 'cli-upd', '--uses', '5', '--expires', '2099-01-01', '--note', 'new note')).toEqual({
      token: 'cli-upd',
      uses_allowed: 5,
      pending: 0,
      completed: 0,
      expiry_time: Date.UTC(2099, 0, 1),
      note: 'new note',
    });
    expect(await json('update', 'cli-upd', '--unlimited')).toMatchObject({ uses_allowed: null, expiry_time: Date.UTC(2099, 0, 1), note: 'new note' });
    expect(await json('update', 'cli-upd', '--never', '--note', '')).toMatchObject({ uses_allowed: null, expiry_time: null, note: null });
    const table = await tokens('update', 'cli-upd', '--uses', '0');
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/^state:\s+used up$/m);
    expect((await hs.db()('registration_tokens').where({ token: 'cli-upd' }).first()).uses_allowed).toBe(0);
  });

  it('update refuses bad values and unknown tokens, changing nothing', async () => {
    await fails('No such registration token: nope', 'update', 'nope', '--uses', '1');
    await fails('expiry_time must not be in the past', 'update', 'cli-upd', '--expires', '2001-01-01');
    await fails('uses_allowed must be', 'update', 'cli-upd', '--uses', '99999999999');
  });

  it('delete removes the token (the server stops taking it); a second delete exits 1', async () => {
    await json('new', '--token', 'cli-del');
    const r = await tokens('delete', 'cli-del');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('deleted cli-del\n');
    expect(await countRows(hs, 'registration_tokens', { token: 'cli-del' })).toBe(0);
    expect((await registerWith('never_made', 'cli-del')).status).toBe(401);
    await fails('No such registration token: cli-del', 'delete', 'cli-del');
    await json('new', '--token', 'cli-del2');
    expect(await json('delete', 'cli-del2')).toEqual({});
  });
});
