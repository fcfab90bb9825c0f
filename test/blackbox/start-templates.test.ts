// Templates are compiled on first render, not at start (issue 15: a start does
// not pay for pages and mails it may never send), except the admin's own:
// a broken template in a configured folder (templates.custom_template_directory,
// email.template_dir) still stops `gatehouse start` before anything is opened.

import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends } from '../support/backends.js';
import { runGatehouse, writeStartConfig } from '../support/cli.js';
import { startServer, type TestServer } from '../support/server.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'gatehouse-start-templates-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A folder `name` under the temp dir holding `files` (name → content); returns its path. */
function folder(name: string, files: Record<string, string>): string {
  const path = join(dir, name);
  mkdirSync(path, { recursive: true });
  for (const [f, body] of Object.entries(files)) writeFileSync(join(path, f), body);
  return path;
}

/** A config that would start (its signing key beside its database), plus `extra`; returns its path and where its database would be. */
const writeConfig = (name: string, extra: Record<string, unknown>) => writeStartConfig(dir, name, { signing_key_path: `./${name}-data/signing.key`, ...extra });

// The SMTP server is never contacted at start: nothing listens on it.
const EMAIL = { smtp_host: '127.0.0.1', smtp_port: 9, enable_tls: false, notif_from: 'Gatehouse <noreply@example.org>' };
const BROKEN = '{% if %}unclosed';

describe('a broken configured template refuses start', () => {
  it.each([
    ['a page in templates.custom_template_directory', 'terms.html', () => ({ templates: { custom_template_directory: folder('pages-broken', { 'terms.html': BROKEN }) } })],
    [
      'a mail in templates.custom_template_directory (email configured)',
      'registration.html',
      () => ({ templates: { custom_template_directory: folder('mail-broken', { 'registration.html': BROKEN }) }, email: EMAIL }),
    ],
    ['a mail in email.template_dir', 'password_reset.txt', () => ({ email: { ...EMAIL, template_dir: folder('legacy-broken', { 'password_reset.txt': BROKEN }) } })],
  ])('%s: exit 1 naming %s, nothing created', async (label, template, extra) => {
    const name = label.replace(/\W+/g, '-');
    const { file, data } = writeConfig(name, extra());
    const r = await runGatehouse(['start', '--config', file], { cwd: dir });
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toContain(`template ${template}: `);
    expect(r.stdout).not.toContain('Gatehouse is ready');
    // Checked before the database and the signing key are opened.
    expect(existsSync(join(data, 'homeserver.db'))).toBe(false);
    expect(existsSync(join(data, 'signing.key'))).toBe(false);
  });
});

describe.each(backends())('templates compile on first render (%s)', (backend) => {
  let plain: TestServer;
  let custom: TestServer;
  beforeAll(async () => {
    plain = await startServer(backend);
    // Configured folders whose templates are fine: the server starts (the control of the refusals above).
    custom = await startServer(backend, {
      templates: { custom_template_directory: folder(`custom-${backend}`, { 'invite.html': '<p id="custom">custom invite page of {{ server_name }}</p>' }) },
      email: { ...EMAIL, template_dir: folder(`legacy-${backend}`, { 'registration.txt': 'Link: {{ link }}' }) },
    });
  });
  afterAll(async () => {
    await plain?.stop();
    await custom?.stop();
  });

  it("Gatehouse's own invite page renders on the first request for it (and the next)", async () => {
    for (let i = 0; i < 2; i++) {
      const res = await plain.request('GET', '/_gatehouse/invite/no-such-invite');
      expect(res.status).toBe(403);
      expect(res.headers.get('content-type')).toMatch(/^text\/html/);
      expect(res.text).toContain(`<title>Join ${plain.serverName} · ${plain.serverName}</title>`);
      expect(res.headers.get('content-security-policy')).toMatch(/default-src 'none'/);
    }
  });

  it("the admin's page replaces the built-in one", async () => {
    const res = await custom.request('GET', '/_gatehouse/invite/no-such-invite');
    expect(res.status).toBe(403);
    expect(res.text).toBe(`<p id="custom">custom invite page of ${custom.serverName}</p>`);
  });
});
