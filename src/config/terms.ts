// Terms of service at registration (MSC1692): Gatehouse's `terms` section
// (MSC1692's shape: policy ID → version and a {name, url} per language) and
// Synapse's `user_consent` (one policy, `privacy_policy`). A document without
// a `url` is served by Gatehouse from a folder; everything a client will be
// sent to is checked at start (the file exists and renders), so a broken
// link is a configuration error, not a 404 at registration.

import { readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Document } from 'yaml';
import { renderPolicyDocument } from '../templates/policy-documents.js';
import type { Section } from './load.js';
import type { Config, TermsDocument, TermsPolicy, UserConsentConfig } from './types.js';
import { yaml } from './yaml.js';

/** MSC1597's opaque identifier (policy IDs and versions): 1 to 255 characters of [0-9a-zA-Z._~-]. */
export const OPAQUE_ID_RE = /^[0-9a-zA-Z._~-]{1,255}$/;
/** A language code: RFC 5646 §2.2's shape, subtags joined by `-` or `_` (MSC1692 allows `en_US`). */
export const LANGUAGE_RE = /^[A-Za-z]{2,8}(?:[-_][A-Za-z0-9]{1,8}){0,7}$/;
/** Synapse's one policy ID (and its name's default). */
export const USER_CONSENT_POLICY_ID = 'privacy_policy';

const OPAQUE_ID_RULE = '1 to 255 characters of 0-9, a-z, A-Z, ".", "_", "~" and "-"';

type Raw = Record<string, unknown>;
const isObject = (v: unknown): v is Raw => typeof v === 'object' && v !== null && !Array.isArray(v);

/** What is at `p`, or null when nothing can be found there (missing, or a path through a file or an unreadable folder). */
function statOf(p: string) {
  try {
    return statSync(p, { throwIfNoEntry: false }) ?? null;
  } catch {
    return null;
  }
}
const isDirectory = (p: string) => statOf(p)?.isDirectory() === true;
const isFile = (p: string) => statOf(p)?.isFile() === true;

/** The entries of a folder (none when it cannot be read). */
function entriesOf(dir: string): string[] {
  try {
    return readdirSync(dir).sort();
  } catch {
    return [];
  }
}

/** Gatehouse's URL for a document it serves from `terms.documents_dir` (every part is URL-safe by grammar). */
export const termsDocumentPath = (policyId: string, version: string, lang: string) => `_gatehouse/terms/${policyId}/${version}/${lang}`;

export interface TermsInput {
  root: Section;
  track: (s: Section) => Section;
  errors: string[];
  /** Anchors relative paths. */
  baseDir: string;
  /** Validated, with its trailing `/`; null when not set. */
  publicBaseurl: string | null;
}

/** A policy version: a string, or a YAML number (as written in the file, see keepVersionsAsWritten). */
function version(s: Section, path: string, errors: string[]): string | null {
  s.accept('version');
  const v = s.peek('version');
  if (v === undefined || v === null) {
    errors.push(`${path}.version: required`);
    return null;
  }
  const text = typeof v === 'number' ? String(v) : v;
  if (typeof text !== 'string') {
    errors.push(`${path}.version: expected a string, got ${JSON.stringify(v)}`);
    return null;
  }
  if (!OPAQUE_ID_RE.test(text)) {
    errors.push(`${path}.version: "${text}" is not an opaque identifier (${OPAQUE_ID_RULE})`);
    return null;
  }
  return text;
}

/** Renders a document once at start, so that a broken template stops the server instead of failing a reader. */
function checkRenders(root: string, name: string, vars: Parameters<typeof renderPolicyDocument>[2]): string | null {
  try {
    renderPolicyDocument(root, name, vars);
    return null;
  } catch (e) {
    return (e as Error).message.replace(/\s+/g, ' ').trim();
  }
}

function gatehousePolicies(input: TermsInput): Config['terms'] {
  const { root, track, errors, baseDir, publicBaseurl } = input;
  const t = root.section('terms');
  const rawDir = t.optionalString('documents_dir');
  const documentsDir = rawDir === null ? null : resolve(baseDir, rawDir);
  if (documentsDir !== null && !isDirectory(documentsDir)) errors.push(`terms.documents_dir: ${documentsDir} is not a directory`);

  const policies: Record<string, TermsPolicy> = {};
  // Every key of `policies` is a policy ID, and every key of a policy but `version` a language:
  // neither section is tracked for unknown keys.
  const ps = t.section('policies');
  for (const id of ps.keys()) {
    const path = `terms.policies.${id}`;
    if (!OPAQUE_ID_RE.test(id)) {
      errors.push(`${path}: "${id}" is not an opaque identifier (${OPAQUE_ID_RULE})`);
      continue;
    }
    // They would name folders above or at documents_dir.
    if (id === '.' || id === '..') {
      errors.push(`${path}: "." and ".." cannot be policy IDs`);
      continue;
    }
    const p = ps.child(ps.peek(id), id);
    if (!p) continue;
    const v = version(p, path, errors);
    const languages: Record<string, TermsDocument> = {};
    for (const lang of p.keys()) {
      if (lang === 'version') continue;
      const lpath = `${path}.${lang}`;
      if (!LANGUAGE_RE.test(lang)) {
        errors.push(`${lpath}: "${lang}" is not a language code (such as en, fr or en-US)`);
        continue;
      }
      const l = p.child(p.peek(lang), lang);
      if (!l) continue;
      track(l);
      const name = l.string('name', '');
      const rawName = l.peek('name');
      if (rawName === undefined || rawName === null || rawName === '') errors.push(`${lpath}.name: required (the policy's name in this language)`);
      const url = l.optionalString('url');
      if (url === null && l.has('url')) continue; // of the wrong type: reported
      if (url !== null) {
        if (!isHttpUrl(url)) errors.push(`${lpath}.url: "${url}" is not an http(s) URL`);
        languages[lang] = { name, url, file: null };
        continue;
      }
      // No url: Gatehouse serves the document.
      if (v === null) continue;
      const file = `${id}/${lang}/${v}.html`;
      if (documentsDir === null) {
        errors.push(`${lpath}: give a url, or set terms.documents_dir for Gatehouse to serve ${file}`);
        continue;
      }
      if (publicBaseurl === null) {
        errors.push(`${lpath}: public_baseurl must be set for Gatehouse to serve the document (clients need its absolute URL), or give a url`);
        continue;
      }
      if (!isDirectory(documentsDir)) continue; // reported above
      const full = join(documentsDir, file);
      if (!isFile(full)) {
        errors.push(`${lpath}: no url is given, and ${full} does not exist`);
        continue;
      }
      const failure = checkRenders(documentsDir, file, { policy_id: id, version: v, lang, name });
      if (failure !== null) errors.push(`${lpath}: cannot render ${full}: ${failure}`);
      languages[lang] = { name, url: publicBaseurl + termsDocumentPath(id, v, lang), file };
    }
    if (p.keys().every((k) => k === 'version')) errors.push(`${path}: give the document in at least one language (for example en: {name, url})`);
    if (v !== null) policies[id] = { version: v, languages };
  }
  // Not a warning: a misspelt `policies` would open registration without the terms.
  for (const k of t.unknownKeys()) errors.push(`${k}: unknown key (expected policies, documents_dir)`);
  return { policies, documents_dir: documentsDir };
}

/**
 * Synapse's `user_consent`: `version` and `template_dir` are required when the
 * section is given (as Synapse); `<template_dir>/<lang>/<version>.html` are the
 * documents, served at /_matrix/consent. With `require_at_registration` the
 * policy is `privacy_policy`, named `policy_name`, in English only, at
 * `<public_baseurl>_matrix/consent?v=<version>` (as Synapse), so
 * `<template_dir>/en/<version>.html` must exist.
 */
function userConsent(input: TermsInput): UserConsentConfig | null {
  const { root, track, errors, baseDir, publicBaseurl } = input;
  const given = root.has('user_consent');
  const s = track(root.section('user_consent'));
  // Server notices and blocking events concern rooms, which Gatehouse does not serve yet.
  s.accept('server_notice_content', 'send_server_notice_to_guests', 'block_events_error');
  if (!given || !isObject(root.peek('user_consent'))) return null;
  const v = version(s, 'user_consent', errors);
  const rawDir = s.optionalString('template_dir');
  const policyName = s.string('policy_name', 'Privacy Policy');
  if (policyName === '') errors.push('user_consent.policy_name: must not be empty');
  const required = s.boolean('require_at_registration', false);
  if (rawDir === null) errors.push('user_consent.template_dir: required (the folder holding <lang>/<version>.html)');
  const dir = rawDir === null ? '' : resolve(baseDir, rawDir);
  if (rawDir !== null && !isDirectory(dir)) errors.push(`user_consent.template_dir: ${dir} is not a directory`);
  if (required && publicBaseurl === null)
    errors.push('user_consent.require_at_registration: public_baseurl must be set (the policy is linked as <public_baseurl>_matrix/consent?v=<version>)');
  if (v === null || rawDir === null || !isDirectory(dir)) return null;

  const languages: string[] = [];
  for (const lang of entriesOf(dir)) {
    const file = `${lang}/${v}.html`;
    if (!LANGUAGE_RE.test(lang) || !isFile(join(dir, file))) continue;
    const failure = checkRenders(dir, file, { policy_id: USER_CONSENT_POLICY_ID, version: v, lang, name: policyName });
    if (failure !== null) errors.push(`user_consent.template_dir: cannot render ${join(dir, file)}: ${failure}`);
    languages.push(lang);
  }
  if (required && !languages.includes('en'))
    errors.push(`user_consent.template_dir: ${join(dir, 'en', `${v}.html`)} does not exist (the English document m.login.terms links to)`);
  return { version: v, template_dir: dir, policy_name: policyName, require_at_registration: required, languages };
}

/**
 * Reads `terms` and `user_consent`. Both may be given: the policies merge
 * (user_consent's is `privacy_policy`, which `terms.policies` must then not
 * also define).
 */
export function termsConfig(input: TermsInput): { terms: Config['terms']; user_consent: UserConsentConfig | null } {
  const terms = gatehousePolicies(input);
  const consent = userConsent(input);
  if (consent?.require_at_registration && input.publicBaseurl !== null) {
    if (USER_CONSENT_POLICY_ID in terms.policies)
      input.errors.push(
        `terms.policies.${USER_CONSENT_POLICY_ID}: user_consent.require_at_registration already presents this policy; rename one, or move the policy to one place`,
      );
    else
      terms.policies[USER_CONSENT_POLICY_ID] = {
        version: consent.version,
        languages: {
          en: { name: consent.policy_name, url: `${input.publicBaseurl}_matrix/consent?v=${consent.version}`, file: null },
        },
      };
  }
  return { terms, user_consent: consent };
}

function isHttpUrl(s: string): boolean {
  try {
    const u = new URL(s);
    return u.protocol === 'http:' || u.protocol === 'https:';
  } catch {
    return false;
  }
}

/**
 * YAML reads `version: 1.0` as the number 1, where Synapse (Python) reads
 * "1.0" and looks for `1.0.html`. A policy version is an identifier: a
 * version written as a number is taken as written. Changes `raw` in place.
 */
export function keepVersionsAsWritten(text: string, raw: unknown): void {
  if (!isObject(raw)) return;
  const paths: string[][] = [['user_consent', 'version']];
  const policies = isObject(raw.terms) ? raw.terms.policies : undefined;
  if (isObject(policies)) for (const id of Object.keys(policies)) paths.push(['terms', 'policies', id, 'version']);
  let doc: Document | null = null;
  for (const path of paths) {
    const parent = path.slice(0, -1).reduce<unknown>((o, k) => (isObject(o) ? o[k] : undefined), raw);
    if (!isObject(parent) || typeof parent.version !== 'number') continue;
    doc ??= yaml().parseDocument(text);
    const node = doc.getIn(path, true);
    if (yaml().isScalar(node) && typeof node.source === 'string') parent.version = node.source;
  }
}
