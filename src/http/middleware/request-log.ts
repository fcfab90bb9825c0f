// One structured log line per request. The query string is left out (it may
// carry ?access_token=), and so is an invite link's token; no header or body
// is logged.

import type { Context } from 'koa';
import type { Logger } from 'pino';
import type { Requester } from '../../handlers/sessions.js';
import { logFlatInfo } from '../../logger.js';

const INVITE_PREFIX = '/_gatehouse/invite/';
/** An invite page's path holds a registration token (a secret): it is not logged. */
const INVITE_TOKEN = /^(\/_gatehouse\/invite\/)[^/]+/;

/** The request's path as the client sent it (before any r0 → v3 rewrite), fit for the log. */
export function loggablePath(ctx: Context): string {
  const path = ctx.path;
  return path.startsWith(INVITE_PREFIX) ? path.replace(INVITE_TOKEN, '$1<token>') : path;
}

/**
 * Writes the request's line once it is answered: `{method, path, status, ms,
 * ip, user?}` at info, or at error with `err` (and its stack) when the
 * request failed with a 5xx kept in `ctx.state.error`. `startedAt` is a
 * `performance.now()` reading (milliseconds) taken when the request arrived.
 */
export function logRequest(logger: Logger, ctx: Context, path: string, startedAt: number): void {
  const failed = ctx.state.error;
  if (!failed && !logger.isLevelEnabled('info')) return;
  const line = {
    method: ctx.method,
    path,
    status: ctx.status,
    ms: Math.round((performance.now() - startedAt) * 100) / 100,
    ip: ctx.ip,
    user: (ctx.state.requester as Requester | undefined)?.userId,
  };
  if (failed) logger.error({ ...line, err: failed }, 'request failed');
  else logFlatInfo(logger, line, 'request');
}
