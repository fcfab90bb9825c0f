// Terms of service (MSC1692): the policy documents Gatehouse serves itself
// (so a small server needs no other web host), and what each user accepted
// (for admins). The m.login.terms stage itself is src/uia/stages/terms.ts.

import type { Knex } from 'knex';
import { USER_CONSENT_POLICY_ID } from '../config/terms.js';
import type { Config } from '../config/types.js';
import { invalidParam, notFound } from '../errors.js';
import { parseUserId } from '../domain/user-ids.js';
import * as Acceptances from '../repositories/policy-acceptances.js';
import * as Users from '../repositories/users.js';
import { renderPolicyDocument } from '../templates/policy-documents.js';

/** At most this many Accept-Language entries are considered (the rest of a longer header is ignored). */
const MAX_ACCEPT_LANGUAGES = 20;

const unknownDocument = () => notFound('Unknown policy document');

/** A language code as compared: lower case, `_` read as `-` (MSC1692 allows both). */
const normalise = (lang: string) => lang.toLowerCase().replaceAll('_', '-');

/**
 * The language ranges of an Accept-Language header (RFC 9110 §12.5.4), best
 * first; `*` and q=0 ranges are left out (the caller falls back to English).
 */
export function acceptedLanguages(header: string | null): string[] {
  if (!header) return [];
  const ranges: { tag: string; q: number; i: number }[] = [];
  header
    .split(',')
    .slice(0, MAX_ACCEPT_LANGUAGES)
    .forEach((part, i) => {
      const [tag = '', ...params] = part.split(';').map((s) => s.trim());
      if (!/^[A-Za-z]{1,8}(?:-[A-Za-z0-9]{1,8})*$/.test(tag)) return;
      let q = 1;
      for (const p of params) {
        if (!/^q=/i.test(p)) continue;
        const m = /^q=(0(?:\.\d{0,3})?|1(?:\.0{0,3})?)$/i.exec(p);
        q = m ? Number(m[1]) : 0; // a malformed weight: the range is left out
      }
      if (q > 0) ranges.push({ tag, q, i });
    });
  return ranges.sort((a, b) => b.q - a.q || a.i - b.i).map((r) => r.tag);
}

/**
 * RFC 4647 "lookup": the first of `wanted` that names one of `available`,
 * exactly or once its last subtags are cut (`fr-CA` finds `fr`). Returns the
 * available code as configured, or null.
 */
export function lookupLanguage(wanted: string[], available: string[]): string | null {
  const byNorm = new Map(available.map((a) => [normalise(a), a]));
  for (const w of wanted) {
    const parts = normalise(w).split('-');
    for (let n = parts.length; n > 0; n--) {
      const hit = byNorm.get(parts.slice(0, n).join('-'));
      if (hit !== undefined) return hit;
    }
  }
  return null;
}

export class TermsHandler {
  /** Rendered documents of `terms.documents_dir`, by `<policy_id>/<version>/<lang>`. */
  private readonly documents = new Map<string, string>();
  /** Rendered documents of `user_consent.template_dir` for its version, by language. */
  private readonly consent = new Map<string, string>();

  /**
   * Renders every document Gatehouse serves, once (the configuration loader
   * has checked that each renders): a document changed on disk is served
   * after a restart.
   */
  constructor(
    private readonly db: Knex,
    private readonly config: Config,
  ) {
    const { documents_dir: dir, policies } = config.terms;
    for (const [id, policy] of Object.entries(policies)) {
      for (const [lang, doc] of Object.entries(policy.languages)) {
        if (doc.file === null || dir === null) continue;
        const html = renderPolicyDocument(dir, doc.file, { policy_id: id, version: policy.version, lang, name: doc.name });
        this.documents.set(`${id}/${policy.version}/${lang}`, html);
      }
    }
    const uc = config.user_consent;
    if (uc)
      for (const lang of uc.languages)
        this.consent.set(
          lang,
          renderPolicyDocument(uc.template_dir, `${lang}/${uc.version}.html`, {
            policy_id: USER_CONSENT_POLICY_ID,
            version: uc.version,
            lang,
            name: uc.policy_name,
          }),
        );
  }

  /**
   * GET /_gatehouse/terms/{policyId}/{version}/{lang}: the HTML of a document
   * Gatehouse serves from `terms.documents_dir` (a policy's current version,
   * in a language configured without a `url`). Anything else is 404
   * M_NOT_FOUND: only configured documents are looked up, never a path.
   */
  document(policyId: string, version: string, lang: string): string {
    const html = this.documents.get(`${policyId}/${version}/${lang}`);
    if (html === undefined) throw unknownDocument();
    return html;
  }

  /**
   * GET /_matrix/consent?v=<version> (Synapse's consent page, public version):
   * `<template_dir>/<lang>/<version>.html` of `user_consent`. `v` defaults to
   * the configured version (as Synapse); another version is 404 M_NOT_FOUND
   * (only the configured one is served). The language is the `lang` query
   * parameter's, else the best of Accept-Language, else English, among those
   * with a document; none is 404 M_NOT_FOUND.
   */
  consentDocument(version: string | null, lang: string | null, acceptLanguage: string | null): string {
    const uc = this.config.user_consent;
    if (!uc || (version !== null && version !== uc.version)) throw unknownDocument();
    const wanted = [...(lang === null ? [] : [lang]), ...acceptedLanguages(acceptLanguage), 'en'];
    const chosen = lookupLanguage(wanted, uc.languages);
    const html = chosen === null ? undefined : this.consent.get(chosen);
    if (html === undefined) throw unknownDocument();
    return html;
  }

  /**
   * GET /_gatehouse/admin/v1/users/{userId}/terms (server admins): the
   * policy versions `userId` accepted and when (ms since the epoch), oldest
   * first. 400 M_INVALID_PARAM for a malformed user ID or one of another
   * server; 404 M_NOT_FOUND for a local user that does not exist.
   */
  async acceptedBy(userId: string): Promise<{ accepted: Acceptances.PolicyAcceptance[] }> {
    const parsed = parseUserId(userId);
    if (!parsed || userId.length > 255 || userId.includes('\u0000')) throw invalidParam('Not a user ID');
    // As Synapse's admin API.
    if (parsed.serverName !== this.config.server_name) throw invalidParam('Can only look up local users');
    if (!(await Users.findUser(this.db, userId))) throw notFound('User not found');
    return { accepted: await Acceptances.listAcceptances(this.db, userId) };
  }
}
