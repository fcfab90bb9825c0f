// Invite links: the token admin API and `gatehouse tokens` give each token's
// invite page URL ({public_baseurl}_gatehouse/invite/{token}) when the server
// knows its public address, and nothing without it.

import { createHmac } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { countRows } from '../support/assertions.js';
import { backends } from '../support/backends.js';
import { DEFAULT_PASSWORD, startServer, type TestServer } from '../support/server.js';
import { runGatehouse } from '../support/cli.js';

const TOKENS = '/_synapse/admin/v1/registration_tokens';

const run = (args: string[]) => runGatehouse(args);

async function adminToken(hs: TestServer): Promise<string> {
  const nonce = (await hs.request('GET', '/_synapse/admin/v1/register')).body.nonce as string;
  const mac = createHmac('sha1', 'test-shared-secret').update([nonce, 'linkadmin', DEFAULT_PASSWORD, 'admin'].join('\x00')).digest('hex');
  const res = await hs.request('POST', '/_synapse/admin/v1/register', { body: { nonce, username: 'linkadmin', password: DEFAULT_PASSWORD, admin: true, mac } });
  return res.body.access_token as string;
}

describe.each(backends())('invite links (%s)', (backend) => {
  let withBase: TestServer;
  let without: TestServer;
  let admin: string;
  beforeAll(async () => {
    [withBase, without] = await Promise.all([
      startServer(backend, { public_baseurl: 'https://matrix.example.org/', registration_requires_token: true }),
      startServer(backend, { registration_requires_token: true }),
    ]);
    admin = await adminToken(withBase);
  });
  afterAll(async () => {
    await withBase?.stop();
    await without?.stop();
  });

  it('the admin API gives invite_url on every token object when public_baseurl is set', async () => {
    const created = await withBase.request('POST', `${TOKENS}/new`, { token: admin, body: { token: 'link-me', uses_allowed: 1 } });
    expect(created.status, created.text).toBe(200);
    expect(created.body.invite_url).toBe('https://matrix.example.org/_gatehouse/invite/link-me');
    expect((await withBase.request('GET', `${TOKENS}/link-me`, { token: admin })).body.invite_url).toBe(created.body.invite_url);
    const list = await withBase.request('GET', TOKENS, { token: admin });
    expect(list.body.registration_tokens.map((t: { invite_url: string }) => t.invite_url)).toContain(created.body.invite_url);
    // The link opens the invite page for that token.
    const page = await withBase.request('GET', '/_gatehouse/invite/link-me');
    expect(page.status).toBe(200);
  });

  it('gatehouse tokens new --link prints just the link; without public_baseurl it refuses, creating nothing', async () => {
    const r = await run(['tokens', 'new', '--link', '--uses', '1', '-c', join(withBase.dataDir, 'homeserver.yaml')]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^https:\/\/matrix\.example\.org\/_gatehouse\/invite\/[A-Za-z0-9._~-]{16}\n$/);
    const token = r.stdout.trim().split('/').pop()!;
    expect(await countRows(withBase, 'registration_tokens', { token })).toBe(1);

    const before = await countRows(without, 'registration_tokens');
    const refused = await run(['tokens', 'new', '--link', '-c', join(without.dataDir, 'homeserver.yaml')]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('set public_baseurl');
    expect(await countRows(without, 'registration_tokens')).toBe(before);
    // Without public_baseurl the token objects carry no invite_url.
    const show = await run(['tokens', 'new', '--json', '--token', 'no-link', '-c', join(without.dataDir, 'homeserver.yaml')]);
    expect(JSON.parse(show.stdout)).not.toHaveProperty('invite_url');
  });
});
