// What an ephemeral start loads, and where `start --ephemeral` keeps its compile cache (issue 15: < 300 ms to a served /versions,
// < 80 MB idle): the modules a start does not need stay unloaded until first
// use. A regression here (a static import of one of them) costs every
// `start --ephemeral` and every test suite that calls startEphemeral().

import { chmodSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runNode, startEphemeralCli } from '../support/cli.js';

const ROOT = new URL('../../', import.meta.url).pathname;

/** Loaded by a start only when needed; each with what loads it. */
const NOT_AT_START: Record<string, string> = {
  nunjucks: 'the first page or mail rendered, or a configured custom template folder',
  yaml: 'reading a config file',
  nodemailer: 'the first mail sent (its address parser alone is used by the config)',
  tweetnacl: 'the first use of the signing key (GET /_matrix/key/v2/server)',
  pg: 'a PostgreSQL database',
};

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'gatehouse-footprint-'));
  // Records every file any import or require resolves to (module.registerHooks sees both).
  writeFileSync(
    join(dir, 'hooks.mjs'),
    `import { registerHooks } from 'node:module';
     globalThis.__resolved = new Set();
     registerHooks({ resolve(spec, ctx, next) { const r = next(spec, ctx); globalThis.__resolved.add(r.url); return r; } });`,
  );
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Runs `script` (ESM) in a fresh Node process with the hooks; resolves to its last stdout line, parsed. */
async function run(script: string): Promise<{ packages: string[]; files: string[] } & Record<string, unknown>> {
  const { code, stdout, stderr } = await runNode(['--import', pathToFileURL(join(dir, 'hooks.mjs')).href, '--input-type=module', '-e', script], {
    cwd: ROOT,
    timeoutMs: 30_000,
  });
  if (code !== 0) throw new Error(`exit ${code}: ${stderr}`);
  return JSON.parse(stdout.trim().split('\n').pop()!);
}

const REPORT = `
  const files = [...globalThis.__resolved].filter((u) => u.includes('/node_modules/')).map((u) => u.slice(u.lastIndexOf('/node_modules/') + 14));
  const packages = [...new Set(files.map((f) => f.split('/').slice(0, f.startsWith('@') ? 2 : 1).join('/')))];`;

describe('an ephemeral start loads only what it needs', () => {
  it('startEphemeral(), a few requests and close(): none of nunjucks, yaml, nodemailer (but its address parser), tweetnacl, pg', async () => {
    const r = await run(`
      const { startEphemeral } = await import('gatehouse');
      const hs = await startEphemeral({ logLevel: 'silent' });
      const versions = await fetch(hs.baseUrl + '/_matrix/client/versions');
      const whoami = await fetch(hs.baseUrl + '/_matrix/client/v3/account/whoami', { headers: { authorization: 'Bearer ' + hs.adminToken } });
      const register = await fetch(hs.baseUrl + '/_matrix/client/v3/register', { method: 'POST', body: JSON.stringify({ username: 'u1', password: 'pw-pw-pw-pw', auth: { type: 'm.login.dummy' } }) });
      await hs.close();
      ${REPORT}
      console.log(JSON.stringify({ statuses: [versions.status, whoami.status, register.status], packages, files }));`);
    expect(r.statuses).toEqual([200, 200, 200]);
    // The server's own stack is there (the hooks see the modules)...
    expect(r.packages).toEqual(expect.arrayContaining(['knex', 'koa', '@koa/router', 'pino', 'argon2', 'sqlite3']));
    // ...and not what the start does not need.
    for (const [pkg, when] of Object.entries(NOT_AT_START)) {
      const loaded = r.files.filter((f) => f.startsWith(`${pkg}/`) && !/^nodemailer\/.*\/addressparser\//.test(f));
      expect(loaded, `${pkg} is loaded at start; it should load on ${when}`).toEqual([]);
    }
  });

  it('the first page rendered loads nunjucks then (the lazy path works in the same process)', async () => {
    const r = await run(`
      const { startEphemeral } = await import('gatehouse');
      const hs = await startEphemeral({ logLevel: 'silent' });
      ${REPORT}
      const before = packages.includes('nunjucks');
      const page = await fetch(hs.baseUrl + '/_gatehouse/invite/no-such-invite');
      const html = await page.text();
      await hs.close();
      const after = [...globalThis.__resolved].some((u) => u.includes('/node_modules/nunjucks/'));
      console.log(JSON.stringify({ before, after, status: page.status, type: page.headers.get('content-type'), html, packages, files: [] }));`);
    expect(r.before).toBe(false);
    expect(r.after).toBe(true);
    expect(r.type).toMatch(/^text\/html/);
    expect(r.html).toContain('<title>Join localhost');
  });
});

/** Runs `gatehouse start --ephemeral --port 0` with `env` until it has printed the admin token, then stops it. */
async function startAndStop(env: Record<string, string | undefined>): Promise<string> {
  const hs = await startEphemeralCli([], { NODE_COMPILE_CACHE: undefined, NODE_DISABLE_COMPILE_CACHE: undefined, ...env });
  const out = await hs.stop();
  expect(out).toMatch(/admin access token: \S+\n/);
  return out;
}

describe('start --ephemeral keeps Node compile cache in a folder of the user only', () => {
  const filesUnder = (p: string): number =>
    readdirSync(p, { withFileTypes: true }).reduce((n, e) => n + (e.isDirectory() ? filesUnder(join(p, e.name)) : 1), 0);

  it('$XDG_CACHE_HOME/gatehouse/compile-cache, created 0700 and filled; a second start still works from it', async () => {
    const home = join(dir, 'xdg-ok');
    await startAndStop({ XDG_CACHE_HOME: home });
    const cache = join(home, 'gatehouse', 'compile-cache');
    expect(statSync(cache).mode & 0o777).toBe(0o700);
    expect(filesUnder(cache)).toBeGreaterThan(10);
    await startAndStop({ XDG_CACHE_HOME: home });
  });

  it('a folder others may write in is not used (the server starts without the cache)', async () => {
    const home = join(dir, 'xdg-open');
    const cache = join(home, 'gatehouse', 'compile-cache');
    mkdirSync(cache, { recursive: true });
    chmodSync(cache, 0o777);
    await startAndStop({ XDG_CACHE_HOME: home });
    expect(filesUnder(cache)).toBe(0);
  });

  it('NODE_DISABLE_COMPILE_CACHE=1 turns it off', async () => {
    const home = join(dir, 'xdg-disabled');
    await startAndStop({ XDG_CACHE_HOME: home, NODE_DISABLE_COMPILE_CACHE: '1' });
    const cache = join(home, 'gatehouse', 'compile-cache');
    expect(filesUnder(cache)).toBe(0);
  });
});
