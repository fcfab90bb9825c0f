// A real client: matrix-nio 0.20 (Debian's python3-matrix-nio and python3-olm)
// logs in over r0 with the token in the query string, syncs, uploads its
// device keys, sets its display name, lists and renames its devices and logs
// out (test/clients/nio_smoke.py). Skipped, saying why, where nio is missing;
// .ci/run installs it.

import { spawnSync, spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends } from '../support/backends.js';
import { DEFAULT_PASSWORD, startServer, type TestServer } from '../support/server.js';

const PYTHON = '/usr/bin/python3';
const SCRIPT = new URL('../clients/nio_smoke.py', import.meta.url).pathname;
const hasNio = spawnSync(PYTHON, ['-c', 'import nio, olm'], { stdio: 'ignore' }).status === 0;
const describeWithNio = describe.skipIf(!hasNio);
const reason = hasNio ? '' : ' (skipped: python3-matrix-nio and python3-olm are not installed)';

function runNio(url: string, user: string): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(PYTHON, [SCRIPT, url, user, DEFAULT_PASSWORD], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    child.once('exit', (code) => resolve({ code, out }));
  });
}

describeWithNio.each(backends())(`matrix-nio 0.20 (%s)${reason}`, (backend) => {
  let hs: TestServer;
  beforeAll(async () => {
    hs = await startServer(backend);
  });
  afterAll(async () => {
    await hs?.stop();
  });

  it('logs in, syncs, uploads keys, sets its name, renames its device and logs out without an error', async () => {
    await hs.register('nio_user');
    const r = await runNio(hs.url, '@nio_user:test.local');
    expect(r.out).not.toContain('FAIL');
    expect(r.code, r.out).toBe(0);
    for (const step of ['login', 'sync', 'keys_upload', 'set_displayname', 'devices', 'update_device', 'logout']) expect(r.out).toContain(`ok ${step}`);
    // What nio did is what the server has.
    const profile = await hs.request('GET', '/_matrix/client/v3/profile/%40nio_user%3Atest.local');
    expect(profile.body.displayname).toBe('Nio Smoke');
    // nio's own device went with its logout; the one registration made is left.
    expect(await hs.db()('devices').where({ user_id: '@nio_user:test.local' })).toHaveLength(1);
  }, 60_000);
});
