// Access tokens: from `Authorization: Bearer`, or the deprecated
// `?access_token=` query parameter (MSC4126) that older clients and test
// suites still send.

import type { Context, Next } from 'koa';
import type { Logger } from 'pino';
import { MatrixError, missingToken } from '../../errors.js';
import type { Requester, SessionHandler } from '../../handlers/sessions.js';

export function accessTokenOf(ctx: Context, logger: Logger): string | null {
  const header = ctx.get('authorization');
  if (header) {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
    return m ? m[1]! : null;
  }
  const q = ctx.query.access_token;
  if (typeof q === 'string' && q.length > 0) {
    logger.warn({ path: ctx.path }, 'access token passed in the query string (deprecated by MSC4126)');
    return q;
  }
  return null;
}

export interface AuthOptions {
  /** Guests may call this endpoint. */
  allowGuests?: boolean;
  /** An expired token (soft logout) is accepted too: for /logout and /logout/all only. */
  allowExpired?: boolean;
}

/** Requires a valid access token and puts the requester in ctx.state.requester. */
export function requireAuth(sessions: SessionHandler, logger: Logger, opts: AuthOptions = {}) {
  return async (ctx: Context, next: Next) => {
    const token = accessTokenOf(ctx, logger);
    if (!token) throw missingToken();
    const requester = await sessions.authenticate(token, ctx.ip, ctx.get('user-agent') || null, { allowExpired: opts.allowExpired ?? false });
    if (requester.isGuest && !opts.allowGuests)
      throw new MatrixError(403, 'M_GUEST_ACCESS_FORBIDDEN', 'Guest access is not allowed here');
    ctx.state.requester = requester;
    await next();
  };
}

export function requesterOf(ctx: Context): Requester {
  return ctx.state.requester as Requester;
}

/**
 * Requires a server admin's access token (Synapse's admin API): 401 without a
 * valid token, then 403 M_FORBIDDEN for anyone else, before the route looks
 * anything up (so a non-admin learns nothing, not even a 404).
 */
export function requireAdmin(sessions: SessionHandler, logger: Logger) {
  const auth = requireAuth(sessions, logger);
  return async (ctx: Context, next: Next) =>
    auth(ctx, async () => {
      if (!requesterOf(ctx).isAdmin) throw new MatrixError(403, 'M_FORBIDDEN', 'You are not a server admin');
      await next();
    });
}
