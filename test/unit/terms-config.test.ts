// Terms of service configuration (MSC1692): `terms.policies` in MSC1692's
// shape and Synapse's `user_consent`, every part validated with its key path,
// and a start refused when a document Gatehouse would link to cannot be served.

import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildConfig, ConfigError, loadConfigFile } from '../../src/config/load.js';
import { acceptedLanguages, lookupLanguage } from '../../src/handlers/terms.js';
import { gatehouseDocument, synapseTemplate, writeTree } from '../support/terms.js';

const BASE_URL = 'https://matrix.example.org/';

const docs = writeTree({
  'tos/en/1.2.html': gatehouseDocument('TOS'),
  'tos/fr/1.2.html': gatehouseDocument('TOS'),
  'tos/en/1.0.html': gatehouseDocument('TOS'),
  'broken/en/1.html': '{% if %}',
  'undefined-include/en/1.html': '{% include "nowhere.html" %}',
  'not-a-file/en/1.html/keep': '',
});
const templates = writeTree({
  'en/1.0.html': synapseTemplate('EN'),
  'fr/1.0.html': synapseTemplate('FR'),
  'fr/2.html': synapseTemplate('FR'),
  'not a language/1.0.html': synapseTemplate('X'),
});
const frenchOnly = writeTree({ 'fr/1.0.html': synapseTemplate('FR') });
const configDir = writeTree({ 'docs/tos/en/7.html': gatehouseDocument('REL'), 'plain-file': 'x' });
afterAll(() => {
  for (const d of [docs, templates, frenchOnly, configDir]) rmSync(d, { recursive: true, force: true });
});

const build = (extra: Record<string, unknown>, baseDir = '/etc/gatehouse') => buildConfig({ server_name: 'example.org', ...extra }, baseDir);

/** The problems buildConfig reports for `extra`; fails the test when it accepts it. */
function problemsOf(extra: Record<string, unknown>, baseDir?: string): string[] {
  try {
    build(extra, baseDir);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as ConfigError).problems;
  }
  throw new Error(`config was accepted: ${JSON.stringify(extra)}`);
}

/** The one problem reported for `extra`. */
function problemOf(extra: Record<string, unknown>): string {
  const problems = problemsOf(extra);
  expect(problems).toHaveLength(1);
  return problems[0]!;
}

/** `terms` with one policy `tos` (version 1.2) whose languages are `languages`, served from `docs`. */
const withTos = (languages: Record<string, unknown>, more: Record<string, unknown> = {}) => ({
  public_baseurl: BASE_URL,
  terms: { documents_dir: docs, policies: { tos: { version: '1.2', ...languages } } },
  ...more,
});

describe('terms.policies', () => {
  it('is empty by default: no terms stage', () => {
    const { config, warnings } = build({});
    expect(config.terms).toEqual({ policies: {}, documents_dir: null });
    expect(config.user_consent).toBeNull();
    expect(warnings).toEqual([]);
  });

  it('takes documents elsewhere (url) without documents_dir or public_baseurl', () => {
    const { config, warnings } = build({
      terms: { policies: { privacy: { version: '2', en: { name: 'Privacy', url: 'https://example.org/p' }, en_US: { name: 'P', url: 'http://x.test/' } } } },
    });
    expect(config.terms.policies).toEqual({
      privacy: {
        version: '2',
        languages: { en: { name: 'Privacy', url: 'https://example.org/p', file: null }, en_US: { name: 'P', url: 'http://x.test/', file: null } },
      },
    });
    expect(warnings).toEqual([]);
  });

  it('serves documents without a url from documents_dir, at an absolute URL under public_baseurl', () => {
    const { config } = build(withTos({ en: { name: 'Terms' }, fr: { name: 'Conditions', url: 'https://example.org/fr' } }));
    expect(config.terms.documents_dir).toBe(docs);
    expect(config.terms.policies.tos).toEqual({
      version: '1.2',
      languages: {
        en: { name: 'Terms', url: `${BASE_URL}_gatehouse/terms/tos/1.2/en`, file: 'tos/en/1.2.html' },
        fr: { name: 'Conditions', url: 'https://example.org/fr', file: null },
      },
    });
  });

  it('reads documents_dir relative to the config file', () => {
    const { config } = build(
      { public_baseurl: BASE_URL, terms: { documents_dir: 'docs', policies: { tos: { version: 7, en: { name: 'T' } } } } },
      configDir,
    );
    expect(config.terms.documents_dir).toBe(join(configDir, 'docs'));
    // A number is taken as a version (as written; see below for YAML's 1.0).
    expect(config.terms.policies.tos!.version).toBe('7');
  });

  it('warns about unknown keys of a document', () => {
    const { warnings } = build(withTos({ en: { name: 'Terms', ulr: 'https://typo.example/' } }));
    expect(warnings).toEqual(['unknown configuration key "terms.policies.tos.en.ulr" is ignored']);
  });

  it.each<[string, Record<string, unknown>, RegExp]>([
    ['terms is not a mapping', { terms: 'yes' }, /^terms: expected a mapping$/],
    ['policies is not a mapping', { terms: { policies: ['tos'] } }, /^terms\.policies: expected a mapping$/],
    ['a misspelt key (it would open registration without the terms)', { terms: { polices: { tos: { version: '1', en: { name: 'T', url: 'https://x.test/' } } } } }, /^terms\.polices: unknown key \(expected policies, documents_dir\)$/],
    ['documents_dir is not a string', { terms: { documents_dir: 5 } }, /^terms\.documents_dir: expected a string/],
    ['documents_dir does not exist', { terms: { documents_dir: '/nonexistent/terms' } }, /^terms\.documents_dir: \/nonexistent\/terms is not a directory$/],
    ['documents_dir is a file', { terms: { documents_dir: join(configDir, 'plain-file') } }, /^terms\.documents_dir: .*\/plain-file is not a directory$/],
    ['documents_dir goes through a file', { terms: { documents_dir: join(configDir, 'plain-file', 'terms') } }, /^terms\.documents_dir: .*\/plain-file\/terms is not a directory$/],
    ['a policy ID with a space', { terms: { policies: { 'my tos': { version: '1', en: { name: 'T', url: 'https://x.test/' } } } } }, /^terms\.policies\.my tos: "my tos" is not an opaque identifier/],
    ['a policy ID over 255 characters', { terms: { policies: { ['a'.repeat(256)]: { version: '1', en: { name: 'T', url: 'https://x.test/' } } } } }, /is not an opaque identifier/],
    ['a policy ID of ..', { terms: { policies: { '..': { version: '1', en: { name: 'T', url: 'https://x.test/' } } } } }, /^terms\.policies\...: "\." and "\.\." cannot be policy IDs$/],
    ['a policy that is not a mapping', { terms: { policies: { tos: 'https://x.test/' } } }, /^terms\.policies\.tos: expected a mapping$/],
    ['a policy without a version', { terms: { policies: { tos: { en: { name: 'T', url: 'https://x.test/' } } } } }, /^terms\.policies\.tos\.version: required$/],
    ['a version of the wrong type', { terms: { policies: { tos: { version: true, en: { name: 'T', url: 'https://x.test/' } } } } }, /^terms\.policies\.tos\.version: expected a string, got true$/],
    ['a version with a space', { terms: { policies: { tos: { version: '1 0', en: { name: 'T', url: 'https://x.test/' } } } } }, /^terms\.policies\.tos\.version: "1 0" is not an opaque identifier \(1 to 255 characters/],
    ['a version with a slash', { terms: { policies: { tos: { version: '../1', en: { name: 'T', url: 'https://x.test/' } } } } }, /^terms\.policies\.tos\.version: "\.\.\/1" is not an opaque identifier/],
    ['an empty version', { terms: { policies: { tos: { version: '', en: { name: 'T', url: 'https://x.test/' } } } } }, /^terms\.policies\.tos\.version: "" is not an opaque identifier/],
    ['a version over 255 characters', { terms: { policies: { tos: { version: '1'.repeat(256), en: { name: 'T', url: 'https://x.test/' } } } } }, /^terms\.policies\.tos\.version: "1+" is not an opaque identifier/],
    ['a policy without a language', { terms: { policies: { tos: { version: '1' } } } }, /^terms\.policies\.tos: give the document in at least one language/],
    ['a language that is not a language code', { terms: { policies: { tos: { version: '1', en: { name: 'T', url: 'https://x.test/' }, '../en': { name: 'T', url: 'https://x.test/' } } } } }, /^terms\.policies\.tos\.\.\.\/en: "\.\.\/en" is not a language code/],
    ['a one-letter language', { terms: { policies: { tos: { version: '1', e: { name: 'T', url: 'https://x.test/' } } } } }, /^terms\.policies\.tos\.e: "e" is not a language code/],
    ['a document that is not a mapping', { terms: { policies: { tos: { version: '1', en: 'https://x.test/' } } } }, /^terms\.policies\.tos\.en: expected a mapping$/],
    ['a document without a name', { terms: { policies: { tos: { version: '1', en: { url: 'https://x.test/' } } } } }, /^terms\.policies\.tos\.en\.name: required/],
    ['a document with an empty name', { terms: { policies: { tos: { version: '1', en: { name: '', url: 'https://x.test/' } } } } }, /^terms\.policies\.tos\.en\.name: required/],
    ['a name of the wrong type', { terms: { policies: { tos: { version: '1', en: { name: 5, url: 'https://x.test/' } } } } }, /^terms\.policies\.tos\.en\.name: expected a string, got number$/],
    ['a url that is not http(s)', { terms: { policies: { tos: { version: '1', en: { name: 'T', url: 'ftp://x.test/tos' } } } } }, /^terms\.policies\.tos\.en\.url: "ftp:\/\/x\.test\/tos" is not an http\(s\) URL$/],
    ['a javascript: url', { terms: { policies: { tos: { version: '1', en: { name: 'T', url: 'javascript:alert(1)' } } } } }, /^terms\.policies\.tos\.en\.url: .* is not an http\(s\) URL$/],
    ['a relative url', { terms: { policies: { tos: { version: '1', en: { name: 'T', url: '/tos.html' } } } } }, /^terms\.policies\.tos\.en\.url: .* is not an http\(s\) URL$/],
    ['a url of the wrong type', { terms: { policies: { tos: { version: '1', en: { name: 'T', url: 5 } } } } }, /^terms\.policies\.tos\.en\.url: expected a string, got number$/],
    ['no url and no documents_dir', { public_baseurl: BASE_URL, terms: { policies: { tos: { version: '1.2', en: { name: 'T' } } } } }, /^terms\.policies\.tos\.en: give a url, or set terms\.documents_dir for Gatehouse to serve tos\/en\/1\.2\.html$/],
    ['no url and no public_baseurl', { terms: { documents_dir: docs, policies: { tos: { version: '1.2', en: { name: 'T' } } } } }, /^terms\.policies\.tos\.en: public_baseurl must be set/],
    ['no url and no file for this version', withTos({ en: { name: 'T' } }, { terms: { documents_dir: docs, policies: { tos: { version: '1.3', en: { name: 'T' } } } } }), /^terms\.policies\.tos\.en: no url is given, and .*\/tos\/en\/1\.3\.html does not exist$/],
    ['no url and no file for this language', withTos({ de: { name: 'AGB' } }), /^terms\.policies\.tos\.de: no url is given, and .*\/tos\/de\/1\.2\.html does not exist$/],
    ['no url and a folder where the file should be', { public_baseurl: BASE_URL, terms: { documents_dir: docs, policies: { 'not-a-file': { version: '1', en: { name: 'T' } } } } }, /^terms\.policies\.not-a-file\.en: no url is given, and .* does not exist$/],
    ['a document that is not a valid template', { public_baseurl: BASE_URL, terms: { documents_dir: docs, policies: { broken: { version: '1', en: { name: 'T' } } } } }, /^terms\.policies\.broken\.en: cannot render .*\/broken\/en\/1\.html: /],
    ['a document including a missing file', { public_baseurl: BASE_URL, terms: { documents_dir: docs, policies: { 'undefined-include': { version: '1', en: { name: 'T' } } } } }, /^terms\.policies\.undefined-include\.en: cannot render .*nowhere\.html/],
  ])('refuses %s', (_what, extra, expected) => {
    expect(problemOf(extra)).toMatch(expected);
  });

  it('reports every problem at once', () => {
    const problems = problemsOf({
      terms: { policies: { tos: { version: '1 0', en: { url: 'ftp://x' } }, 'a b': {} } },
    });
    expect(problems.map((p) => p.split(': ')[0]).sort()).toEqual(
      ['terms.policies.a b', 'terms.policies.tos.en.name', 'terms.policies.tos.en.url', 'terms.policies.tos.version'].sort(),
    );
  });
});

describe('user_consent (Synapse)', () => {
  const consent = (more: Record<string, unknown> = {}) => ({
    public_baseurl: BASE_URL,
    user_consent: { version: '1.0', template_dir: templates, require_at_registration: true, ...more },
  });

  it("yields Synapse's one policy, privacy_policy, in English at /_matrix/consent", () => {
    const { config, warnings } = build(consent({ server_notice_content: { msgtype: 'm.text', body: 'x' }, send_server_notice_to_guests: true, block_events_error: 'no' }));
    expect(warnings).toEqual([]);
    expect(config.terms.policies).toEqual({
      privacy_policy: {
        version: '1.0',
        languages: { en: { name: 'Privacy Policy', url: `${BASE_URL}_matrix/consent?v=1.0`, file: null } },
      },
    });
    expect(config.user_consent).toEqual({
      version: '1.0',
      template_dir: templates,
      policy_name: 'Privacy Policy',
      require_at_registration: true,
      // Folders that are not language codes are left out.
      languages: ['en', 'fr'],
    });
  });

  it('names the policy policy_name', () => {
    expect(build(consent({ policy_name: 'Datenschutz' })).config.terms.policies.privacy_policy!.languages.en!.name).toBe('Datenschutz');
  });

  it('without require_at_registration serves the documents but adds no stage (and needs no public_baseurl or English)', () => {
    const { config } = build({ user_consent: { version: '1.0', template_dir: frenchOnly } });
    expect(config.terms.policies).toEqual({});
    expect(config.user_consent).toMatchObject({ require_at_registration: false, languages: ['fr'] });
  });

  it('merges with terms.policies', () => {
    const { config } = build(consent({}), undefined);
    const merged = build({ ...consent(), terms: { policies: { tos: { version: '3', en: { name: 'T', url: 'https://x.test/' } } } } }).config;
    expect(Object.keys(config.terms.policies)).toEqual(['privacy_policy']);
    expect(Object.keys(merged.terms.policies).sort()).toEqual(['privacy_policy', 'tos']);
  });

  it.each<[string, Record<string, unknown>, RegExp]>([
    ['user_consent is not a mapping', { user_consent: true }, /^user_consent: expected a mapping$/],
    ['no version', { user_consent: { template_dir: templates } }, /^user_consent\.version: required$/],
    ['a version that is not an opaque identifier', { user_consent: { version: '1.0 beta', template_dir: templates } }, /^user_consent\.version: "1\.0 beta" is not an opaque identifier/],
    ['no template_dir', { user_consent: { version: '1.0' } }, /^user_consent\.template_dir: required/],
    ['a template_dir that does not exist', { user_consent: { version: '1.0', template_dir: '/nonexistent/consent' } }, /^user_consent\.template_dir: \/nonexistent\/consent is not a directory$/],
    ['require_at_registration that is not a boolean', { user_consent: { version: '1.0', template_dir: templates, require_at_registration: 'yes' } }, /^user_consent\.require_at_registration: expected true or false/],
    ['require_at_registration without public_baseurl', { user_consent: { version: '1.0', template_dir: templates, require_at_registration: true } }, /^user_consent\.require_at_registration: public_baseurl must be set/],
    ['require_at_registration without an English document', { public_baseurl: BASE_URL, user_consent: { version: '1.0', template_dir: frenchOnly, require_at_registration: true } }, /^user_consent\.template_dir: .*\/en\/1\.0\.html does not exist/],
    ['require_at_registration with a version that has no document', { public_baseurl: BASE_URL, user_consent: { version: '2', template_dir: templates, require_at_registration: true } }, /^user_consent\.template_dir: .*\/en\/2\.html does not exist/],
    ['an empty policy_name', { user_consent: { version: '1.0', template_dir: templates, policy_name: '' } }, /^user_consent\.policy_name: must not be empty$/],
    ['privacy_policy in both', { ...{ public_baseurl: BASE_URL, user_consent: { version: '1.0', template_dir: templates, require_at_registration: true } }, terms: { policies: { privacy_policy: { version: '1', en: { name: 'P', url: 'https://x.test/' } } } } }, /^terms\.policies\.privacy_policy: user_consent\.require_at_registration already presents this policy/],
  ])('refuses %s', (_what, extra, expected) => {
    expect(problemOf(extra)).toMatch(expected);
  });
});

describe('verification', () => {
  it('terms are not a verification step (as Synapse): open registration still needs enable_registration_without_verification', () => {
    const terms = { terms: { policies: { tos: { version: '1', en: { name: 'T', url: 'https://x.test/' } } } } };
    expect(problemOf({ enable_registration: true, ...terms })).toMatch(/^enable_registration: open registration without any verification/);
    expect(build({ enable_registration: true, enable_registration_without_verification: true, ...terms }).config.enable_registration).toBe(true);
    expect(build({ enable_registration: true, registration_requires_token: true, ...terms }).config.enable_registration).toBe(true);
  });
});

describe('versions written as YAML numbers', () => {
  it('are read as written (1.0 stays "1.0", as Synapse reads it), in user_consent and terms', () => {
    const dir = writeTree({ 'consent/en/1.0.html': synapseTemplate('EN'), 'docs/tos/en/2.50.html': gatehouseDocument('T') });
    try {
      const file = join(dir, 'homeserver.yaml');
      writeFileSync(
        file,
        [
          'server_name: example.org',
          `public_baseurl: ${BASE_URL}`,
          'user_consent:',
          '  version: 1.0',
          '  template_dir: consent',
          '  require_at_registration: true',
          'terms:',
          '  documents_dir: docs',
          '  policies:',
          '    tos:',
          '      version: 2.50',
          '      en: {name: Terms}',
          '',
        ].join('\n'),
      );
      const { config } = loadConfigFile(file);
      expect(config.user_consent!.version).toBe('1.0');
      expect(config.terms.policies.privacy_policy!.languages.en!.url).toBe(`${BASE_URL}_matrix/consent?v=1.0`);
      expect(config.terms.policies.tos!.version).toBe('2.50');
      expect(config.terms.policies.tos!.languages.en!.url).toBe(`${BASE_URL}_gatehouse/terms/tos/2.50/en`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('language choice', () => {
  it('reads Accept-Language best first, leaving out * and q=0', () => {
    expect(acceptedLanguages('fr-CH, fr;q=0.9, en;q=0.8, de;q=0.7, *;q=0.5')).toEqual(['fr-CH', 'fr', 'en', 'de']);
    expect(acceptedLanguages('de;q=0.5, ja, en;q=0')).toEqual(['ja', 'de']);
    expect(acceptedLanguages('da, en-gb;q=0.8, en;q=0.8')).toEqual(['da', 'en-gb', 'en']);
    expect(acceptedLanguages(null)).toEqual([]);
    expect(acceptedLanguages('; q=1, ,<script>, en;q=2')).toEqual([]);
    // A long header is read up to a bound.
    expect(acceptedLanguages(Array.from({ length: 1000 }, () => 'en').join(',')).length).toBe(20);
  });

  it('looks a language up as RFC 4647 does, either separator, any case', () => {
    expect(lookupLanguage(['de-CH', 'fr'], ['en', 'fr', 'de'])).toBe('de');
    expect(lookupLanguage(['en-GB'], ['en_GB', 'en'])).toBe('en_GB');
    expect(lookupLanguage(['EN_us'], ['en-US'])).toBe('en-US');
    expect(lookupLanguage(['fr'], ['fr-CA'])).toBeNull();
    expect(lookupLanguage([], ['en'])).toBeNull();
  });
});
