// Files holding secrets are created readable by their owner only (0600),
// whatever the umask: the SQLite database and its -wal/-shm files, the signing
// key, `generate-config --output`, and what the Complement entrypoint writes.
// Files that exist already keep their mode; a start warns about ones other
// users can read. SQLite only: on PostgreSQL there is no database file.

import { type ChildProcess, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const MAIN = join(ROOT, 'dist/src/main.js');
const ENTRYPOINT = join(ROOT, 'docker/complement-entrypoint.sh');

const modeOf = (path: string) => statSync(path).mode & 0o777;

const dirs: string[] = [];
const children: ChildProcess[] = [];
afterEach(() => {
  for (const c of children.splice(0)) {
    try {
      // Each run has its own process group (the entrypoint's shell execs node, but be sure).
      process.kill(-c.pid!, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'gatehouse-perm-'));
  dirs.push(d);
  return d;
}

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const port = (srv.address() as { port: number }).port;
  await new Promise((r) => srv.close(r));
  return port;
}

/** Runs a shell command line under `umask`, in its own process group; resolves once `ready` appears in its output (or it exits). */
function runUnderUmask(umask: string, command: string, env: Record<string, string>, ready: string | null): Promise<{ code: number | null; output: string }> {
  const child = spawn('sh', ['-c', `umask ${umask} && ${command}`], {
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
    env: { ...process.env, GATEHOUSE_CONFIG: '', ...env },
  });
  children.push(child);
  let output = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out:\n${output}`)), 20_000);
    const onData = (c: Buffer) => {
      output += c.toString();
      if (ready && output.includes(ready)) {
        clearTimeout(timer);
        resolve({ code: null, output });
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

function writeConfig(dir: string, extra: Record<string, unknown> = {}): string {
  const path = join(dir, 'homeserver.yaml');
  writeFileSync(
    path,
    stringify({
      server_name: 'perm.test',
      listeners: [{ port: 0, bind_addresses: ['127.0.0.1'], type: 'http' }],
      database: { name: 'sqlite3', args: { database: join(dir, 'state', 'db', 'homeserver.db') } },
      signing_key_path: join(dir, 'keys', 'nested', 'perm.signing.key'),
      registration_shared_secret: 'perm-secret',
      log_level: 'info',
      ...extra,
    }),
  );
  return path;
}

describe('files Gatehouse creates are private', () => {
  it.each(['000', '022'])('start with umask %s: database, -wal, -shm and signing key are 0600, new directories 0700', async (umask) => {
    const dir = tempDir();
    const config = writeConfig(dir);
    const run = await runUnderUmask(umask, `exec "${process.execPath}" "${MAIN}" start --config "${config}"`, {}, 'Gatehouse is ready');
    expect(run.code, run.output).toBeNull();
    const db = join(dir, 'state', 'db', 'homeserver.db');
    for (const f of [db, `${db}-wal`, `${db}-shm`, join(dir, 'keys', 'nested', 'perm.signing.key')]) {
      expect(existsSync(f), f).toBe(true);
      expect({ f, mode: modeOf(f).toString(8) }).toEqual({ f, mode: '600' });
    }
    for (const d of [join(dir, 'state'), join(dir, 'state', 'db'), join(dir, 'keys'), join(dir, 'keys', 'nested')])
      expect({ d, mode: modeOf(d).toString(8) }).toEqual({ d, mode: '700' });
    // Nothing to warn about.
    expect(run.output).not.toContain('chmod 600');
  });

  it('migrate with umask 000 creates the database 0600', async () => {
    const dir = tempDir();
    const config = writeConfig(dir);
    const run = await runUnderUmask('000', `exec "${process.execPath}" "${MAIN}" migrate --config "${config}"`, {}, null);
    expect(run.code, run.output).toBe(0);
    expect(modeOf(join(dir, 'state', 'db', 'homeserver.db'))).toBe(0o600);
  });

  it('generate-config --output with umask 000 is 0600', async () => {
    const dir = tempDir();
    const out = join(dir, 'generated.yaml');
    const run = await runUnderUmask('000', `exec "${process.execPath}" "${MAIN}" generate-config --output "${out}"`, {}, null);
    expect(run.code, run.output).toBe(0);
    expect(modeOf(out)).toBe(0o600);
  });

  it('existing files keep their mode, and the start warns about the ones others can read', async () => {
    const dir = tempDir();
    const config = writeConfig(dir);
    // A first start creates them; then an admin opens them up.
    const first = await runUnderUmask('022', `exec "${process.execPath}" "${MAIN}" start --config "${config}"`, {}, 'Gatehouse is ready');
    expect(first.code, first.output).toBeNull();
    process.kill(-children.pop()!.pid!, 'SIGKILL');
    const db = join(dir, 'state', 'db', 'homeserver.db');
    const key = join(dir, 'keys', 'nested', 'perm.signing.key');
    chmodSync(db, 0o644);
    chmodSync(key, 0o640);

    const second = await runUnderUmask('022', `exec "${process.execPath}" "${MAIN}" start --config "${config}"`, {}, 'Gatehouse is ready');
    expect(second.code, second.output).toBeNull();
    expect(modeOf(db)).toBe(0o644);
    expect(modeOf(key)).toBe(0o640);
    const warnings = second.output.split('\n').filter((l) => l.includes('chmod 600'));
    expect(warnings).toHaveLength(2);
    expect(warnings.some((l) => l.includes(JSON.stringify(db)) && l.includes('"mode":"0644"'))).toBe(true);
    expect(warnings.some((l) => l.includes(JSON.stringify(key)) && l.includes('"mode":"0640"'))).toBe(true);
    for (const w of warnings) expect(JSON.parse(w).level).toBe(40);
  });

  it('the Complement entrypoint, under umask 000, writes its config, database and key 0600 in a 0700 directory', async () => {
    const dataRoot = tempDir();
    const port = await freePort();
    const run = await runUnderUmask(
      '000',
      `exec sh "${ENTRYPOINT}"`,
      { SERVER_NAME: 'hs1', GATEHOUSE_DATA_DIR: dataRoot, GATEHOUSE_APP_DIR: ROOT, GATEHOUSE_PORT: String(port), GATEHOUSE_BIND_ADDRESS: '127.0.0.1' },
      'Gatehouse is ready',
    );
    expect(run.code, run.output).toBeNull();
    const dataDir = join(dataRoot, 'hs1');
    expect(modeOf(dataDir)).toBe(0o700);
    for (const f of ['homeserver.yaml', 'homeserver.db', 'homeserver.db-wal', 'homeserver.db-shm', 'hs1.signing.key'])
      expect({ f, mode: modeOf(join(dataDir, f)).toString(8) }).toEqual({ f, mode: '600' });
  });
});
