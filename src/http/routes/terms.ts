// Policy documents (terms of service at registration, MSC1692) that Gatehouse
// serves itself: its own folder's, and Synapse's consent page's.

import type Router from '@koa/router';
import type { Context } from 'koa';
import { invalidParam } from '../../errors.js';
import type { TermsHandler } from '../../handlers/terms.js';

/** An HTML page, with the anti-framing headers Synapse sends with its HTML pages. */
function html(ctx: Context, body: string): void {
  ctx.status = 200;
  ctx.set('Content-Type', 'text/html; charset=utf-8');
  ctx.set('X-Frame-Options', 'DENY');
  ctx.set('Content-Security-Policy', "frame-ancestors 'none';");
  ctx.body = body;
}

/** A query parameter given at most once (null when absent). */
function queryOnce(ctx: Context, name: string): string | null {
  const v = ctx.query[name];
  if (Array.isArray(v)) throw invalidParam(`${name} must be given once`);
  return v ?? null;
}

export function termsRoutes(router: Router, terms: TermsHandler): void {
  // GET /_gatehouse/terms/{policyId}/{version}/{lang}
  router.get('/_gatehouse/terms/:policyId/:version/:lang', (ctx) => {
    const { policyId, version, lang } = ctx.params as Record<string, string>;
    html(ctx, terms.document(policyId!, version!, lang!));
  });

  // GET /_matrix/consent
  router.get('/_matrix/consent', (ctx) => {
    // Synapse's per-user form (`u`, `h`) is not served: every reader gets the public version.
    html(ctx, terms.consentDocument(queryOnce(ctx, 'v'), queryOnce(ctx, 'lang'), ctx.get('accept-language') || null));
  });
}
