// CORS on every response, as the spec asks (with MSC4138's method list), and
// OPTIONS answered without running any endpoint logic.

import type { Context } from 'koa';

const HEADERS: readonly [string, string][] = [
  ['Access-Control-Allow-Origin', '*'],
  ['Access-Control-Allow-Methods', 'GET, HEAD, POST, PUT, DELETE, OPTIONS'],
  ['Access-Control-Allow-Headers', 'X-Requested-With, Content-Type, Authorization'],
];

/**
 * Sets the CORS headers on the response; for an OPTIONS request (a browser's
 * preflight) also answers it, 204 with no body. Returns true when the request
 * is answered and nothing else may run.
 */
export function applyCors(ctx: Context): boolean {
  const res = ctx.res;
  for (const [name, value] of HEADERS) res.setHeader(name, value);
  if (ctx.method !== 'OPTIONS') return false;
  ctx.status = 204;
  return true;
}
