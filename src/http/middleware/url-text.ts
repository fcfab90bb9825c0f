// Path and query text must be percent-encoded UTF-8. Left alone, `%81` would
// decode to U+FFFD (query strings) or stay as the three characters `%81` (path
// parameters), so that different requests name the same thing; a malformed
// escape (`%zz`, a lone `%`) is refused for the same reason.

import type { Context } from 'koa';
import { invalidParam } from '../../errors.js';

/** A percent escape that is malformed or does not decode to UTF-8. */
function isBadlyEncoded(component: string): boolean {
  if (!component.includes('%')) return false; // nothing to decode: the common case, without a try
  try {
    decodeURIComponent(component);
    return false;
  } catch {
    return true;
  }
}

/**
 * Throws 400 M_INVALID_PARAM, before any route runs, when the path or a query
 * parameter (name or value) holds a malformed percent escape or escapes that
 * are not UTF-8 (overlong forms and encoded surrogates included). Checked for
 * every path, served or not: such a request cannot name anything.
 */
export function checkUrlText(ctx: Context): void {
  if (isBadlyEncoded(ctx.path)) throw invalidParam('The request path is not percent-encoded UTF-8');
  const query = ctx.querystring;
  if (query === '' || !query.includes('%')) return;
  for (const part of query.split('&')) {
    // In a query string `+` stands for a space; it is never part of an escape.
    if (isBadlyEncoded(part.replaceAll('+', ' '))) throw invalidParam('A query parameter is not percent-encoded UTF-8');
  }
}
