// Client-Server API paths. Routes are registered under the stable v3 prefix;
// r0, which older clients (matrix-nio, older SDKs) still call, is rewritten to
// v3 before routing (`legacyPrefix`), so each route is matched once.

import type { Context, Next } from 'koa';

export function clientPaths(path: string): string[] {
  return [`/_matrix/client/v3${path}`];
}

const R0 = '/_matrix/client/r0/';

/** Serves every r0 path as its v3 twin (the endpoints Gatehouse serves are the same in both). */
export function legacyPrefix() {
  return async (ctx: Context, next: Next) => {
    if (ctx.path.startsWith(R0)) ctx.path = `/_matrix/client/v3/${ctx.path.slice(R0.length)}`;
    await next();
  };
}

/** The body of a request as a plain object (the body middleware guarantees one). */
export type JsonObject = Record<string, unknown>;
