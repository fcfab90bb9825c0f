// The HTML pages' pieces that need no server: invite URLs, the terms'
// documents as the pages show them, the templates (escaping, the admin's
// custom folder, a broken template caught at start) and the config key.

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Context } from 'koa';
import { afterAll, describe, expect, it } from 'vitest';
import { buildConfig, ConfigError } from '../../src/config/load.js';
import { invitePath, inviteUrl } from '../../src/domain/invite-links.js';
import { builtinTemplateDir, Pages, TEMPLATE_NAMES, type TemplateName } from '../../src/http/pages.js';
import { policyList } from '../../src/http/routes/pages.js';

const dirs: string[] = [];
const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), 'gatehouse-pages-'));
  dirs.push(d);
  return d;
};
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** Renders a page into a stand-in for Koa's context: the status, headers and body it was given. */
function render(pages: Pages, name: TemplateName, vars: Record<string, unknown>) {
  const headers: Record<string, string> = {};
  const ctx = { status: 0, body: '', set: (k: string, v: string) => (headers[k.toLowerCase()] = v) };
  pages.send(ctx as unknown as Context, 200, name, vars);
  return { status: ctx.status, headers, html: ctx.body };
}

describe('invite links', () => {
  it('are {public_baseurl}_gatehouse/invite/{token}, or null without public_baseurl', () => {
    expect(inviteUrl('https://matrix.example.org/', 'abc-DEF_1.2~3')).toBe('https://matrix.example.org/_gatehouse/invite/abc-DEF_1.2~3');
    expect(inviteUrl('https://example.org/matrix/', 'abc')).toBe('https://example.org/matrix/_gatehouse/invite/abc');
    expect(inviteUrl('https://example.org', 'abc')).toBe('https://example.org/_gatehouse/invite/abc');
    expect(inviteUrl(null, 'abc')).toBeNull();
    // A token is one path segment, whatever it holds.
    expect(invitePath('a/b?c#d')).toBe('/_gatehouse/invite/a%2Fb%3Fc%23d');
  });
});

describe('the terms as the pages show them', () => {
  const params = {
    policies: {
      privacy: { version: '1.2', en: { name: 'Privacy', url: 'https://example.org/p-en' }, fr: { name: 'Confidentialité', url: 'https://example.org/p-fr' } },
      terms_of_service: { version: '2', de_DE: { name: 'Nutzungsbedingungen', url: 'https://example.org/t-de' }, en_GB: { name: 'Terms', url: 'https://example.org/t-gb' } },
    },
  };

  it('picks the reader\'s language (Accept-Language, by weight, region or not), else English, else the first', () => {
    expect(policyList(params, '').map((p) => p.name)).toEqual(['Privacy', 'Terms']);
    const noEnglish = { policies: { p: { version: '1', de: { name: 'Datenschutz', url: 'https://example.org/de' }, fr: { name: 'Vie privée', url: 'https://example.org/fr' } } } };
    expect(policyList(noEnglish, 'it').map((p) => p.name)).toEqual(['Datenschutz']);
    expect(policyList(noEnglish, '*, fr;q=0.1').map((p) => p.name)).toEqual(['Vie privée']);
    expect(policyList(params, 'fr-CH, fr;q=0.9, en;q=0.8').map((p) => p.name)).toEqual(['Confidentialité', 'Terms']);
    expect(policyList(params, 'en-GB;q=0.5, de-DE').map((p) => p.name)).toEqual(['Privacy', 'Nutzungsbedingungen']);
    expect(policyList(params, 'en-GB').map((p) => p.name)).toEqual(['Privacy', 'Terms']);
    expect(policyList(params, 'de')).toEqual([
      { id: 'privacy', version: '1.2', name: 'Privacy', url: 'https://example.org/p-en' },
      { id: 'terms_of_service', version: '2', name: 'Nutzungsbedingungen', url: 'https://example.org/t-de' },
    ]);
  });

  it('links only http(s) URLs and skips what is not MSC1692\'s shape', () => {
    const odd = {
      policies: {
        js: { version: '1', en: { name: 'Click', url: 'javascript:alert(1)' } },
        data: { version: '1', en: { name: 'Data', url: 'data:text/html,<script>alert(1)</script>' } },
        relative: { version: '1', en: { name: 'Relative', url: '/terms' } },
        broken: { version: '1', en: { name: 'No URL' } },
        notObject: 'terms',
      },
    };
    expect(policyList(odd, 'en')).toEqual([
      { id: 'js', version: '1', name: 'Click', url: null },
      { id: 'data', version: '1', name: 'Data', url: null },
      { id: 'relative', version: '1', name: 'Relative', url: null },
    ]);
    for (const nothing of [undefined, null, 'x', [], { policies: [] }, { policies: null }]) expect(policyList(nothing, 'en')).toEqual([]);
  });
});

describe('templates', () => {
  const pages = new Pages(null, { server_name: 'example.org' });

  it('every built-in template compiles', () => {
    expect(() => pages.verify()).not.toThrow();
    expect(TEMPLATE_NAMES.length).toBe(9);
  });

  it('escape what they are given, and link no policy URL that is not http(s)', () => {
    const policies = policyList({ policies: { p: { version: '<v>', en: { name: '<script>alert(1)</script>', url: 'javascript:alert(1)' } } } }, 'en');
    const { html, headers } = render(pages, 'terms.html', { session: '"><b>', myurl: '/x', policies });
    expect(html).toContain('&lt;script&gt;alert(1)&lt;/script&gt; (version &lt;v&gt;)');
    expect(html).toContain('value="&quot;&gt;&lt;b&gt;"');
    expect(html).not.toContain('javascript:');
    expect(html).not.toContain('<script>alert');
    expect(headers['content-type']).toBe('text/html; charset=utf-8');
    // The one inline script or style carries this answer's nonce.
    const nonce = /'nonce-([^']+)'/.exec(headers['content-security-policy']!)![1]!;
    expect(html).toContain(`<style nonce="${nonce}">`);
  });

  it('the invite success page says when public_baseurl is not configured', () => {
    const { html } = render(pages, 'invite_success.html', { user_id: '@a:example.org', localpart: 'a', address: null });
    expect(html).toContain('not configured on this server');
    expect(html).toContain('<code>public_baseurl</code>');
    expect(html).not.toContain('<code>null</code>');
  });

  it('an admin\'s folder replaces templates of the same name, and a broken one stops the start', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'registration_token.html'), '<p>Custom for {{ server_name }}: {{ session }}{% if error is defined %} ({{ error }}){% endif %}</p>');
    const custom = new Pages(dir, { server_name: 'example.org' });
    expect(() => custom.verify()).not.toThrow();
    expect(render(custom, 'registration_token.html', { session: '<s>' }).html).toBe('<p>Custom for example.org: &lt;s&gt;</p>');
    expect(render(custom, 'registration_token.html', { session: 's', error: 'Bad' }).html).toBe('<p>Custom for example.org: s (Bad)</p>');
    // The others are still the built-in ones.
    expect(render(custom, 'error.html', { title: 'T', message: 'M' }).html).toContain('<h1>T</h1>');

    writeFileSync(join(dir, 'terms.html'), '{% if %}');
    expect(() => new Pages(dir, { server_name: 'example.org' }).verify()).toThrow(/^template terms\.html: /);
  });
});

describe('templates.custom_template_directory', () => {
  it('is resolved against the config file\'s folder, and must be a directory', () => {
    const base = tempDir();
    const build = (templates: unknown) => buildConfig({ server_name: 'example.org', templates }, base);
    expect(build(undefined).config.templates.custom_template_directory).toBeNull();
    expect(build({ custom_template_directory: '.' }).config.templates.custom_template_directory).toBe(base);
    writeFileSync(join(base, 'file'), '');
    for (const [value, problem] of [
      ['missing', `templates.custom_template_directory: ${join(base, 'missing')} is not a directory`],
      ['file', `templates.custom_template_directory: ${join(base, 'file')} is not a directory`],
      [7, 'templates.custom_template_directory: expected a string, got number'],
    ] as const) {
      try {
        build({ custom_template_directory: value });
        throw new Error('accepted');
      } catch (e) {
        expect(e).toBeInstanceOf(ConfigError);
        expect((e as ConfigError).problems).toEqual([problem]);
      }
    }
  });
});

describe('the Docker image', () => {
  it('carries templates/ beside package.json, where the server looks for it', () => {
    const dockerfile = readFileSync(new URL('../../Dockerfile', import.meta.url), 'utf8');
    const runtime = dockerfile.slice(dockerfile.lastIndexOf('\nFROM '));
    expect(runtime).toMatch(/^WORKDIR \/app$/m);
    expect(runtime).toMatch(/^COPY package\.json \.\/$/m);
    expect(runtime).toMatch(/^COPY templates \.\/templates$/m);
    expect(builtinTemplateDir()).toBe(fileURLToPath(new URL('../../templates', import.meta.url)));
  });
});
