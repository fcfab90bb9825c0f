// One structured log line per request. The query string is left out (it may
// carry ?access_token=), and so is an invite link's token; no header or body
// is logged.

import type { Context, Next } from 'koa';
import type { Logger } from 'pino';

/** An invite page's path holds a registration token (a secret): it is not logged. */
const INVITE_TOKEN = /^(\/_gatehouse\/invite\/)[^/]+/;

export function requestLog(logger: Logger) {
  return async (ctx: Context, next: Next) => {
    const start = process.hrtime.bigint();
    // As the client sent it (routing may rewrite r0 paths to v3), less an invite link's token.
    const path = ctx.path.replace(INVITE_TOKEN, '$1<token>');
    try {
      await next();
    } finally {
      const ms = Number(process.hrtime.bigint() - start) / 1e6;
      const line: Record<string, unknown> = {
        method: ctx.method,
        path,
        status: ctx.status,
        ms: Math.round(ms * 100) / 100,
        ip: ctx.ip,
      };
      if (ctx.state.requester) line.user = ctx.state.requester.userId;
      if (ctx.state.error) {
        line.err = ctx.state.error;
        logger.error(line, 'request failed');
      } else {
        logger.info(line, 'request');
      }
    }
  };
}
