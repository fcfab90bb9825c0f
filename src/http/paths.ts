// Client-Server API paths. Routes are registered under the stable v3 prefix;
// r0, which older clients (matrix-nio, older SDKs) still call, is rewritten to
// v3 before routing (`rewriteLegacyPrefix`), so each route is matched once.

import type { Context } from 'koa';

export function clientPaths(path: string): string[] {
  return [`/_matrix/client/v3${path}`];
}

const R0 = '/_matrix/client/r0/';

/** Serves every r0 path as its v3 twin (the endpoints Gatehouse serves are the same in both): rewrites `ctx.path` before routing. */
export function rewriteLegacyPrefix(ctx: Context): void {
  const path = ctx.path;
  if (path.startsWith(R0)) ctx.path = `/_matrix/client/v3/${path.slice(R0.length)}`;
}

/** The body of a request as a plain object (the body middleware guarantees one). */
export type JsonObject = Record<string, unknown>;
