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

/**
 * What a route declares about who may call it. Every authenticated route goes
 * through requireAuth, and so through SessionHandler.authenticate, which
 * enforces the account's state (deactivated, locked, awaiting approval,
 * suspended) in one place.
 */
export interface AuthOptions {
  /** Guests may call this endpoint. */
  allowGuests?: boolean;
  /**
   * A sign-out route (/logout and /logout/all only): an expired token is
   * accepted, and the account's state does not stop it (MSC3939: a locked
   * account may still sign out; so may one awaiting approval).
   */
  signOut?: boolean;
  /**
   * A write a suspended account may not make (MSC3823: profile changes, 3PID
   * changes, room writes): 403 M_USER_SUSPENDED. Routes where only some requests
   * are refused call `forbidIfSuspended` from their handler instead.
   */
  forbidWhenSuspended?: boolean;
}

/** Requires a valid access token and puts the requester in ctx.state.requester. */
export function requireAuth(sessions: SessionHandler, logger: Logger, opts: AuthOptions = {}) {
  const policy = { signOut: opts.signOut ?? false, forbidWhenSuspended: opts.forbidWhenSuspended ?? false };
  return async (ctx: Context, next: Next) => {
    const token = accessTokenOf(ctx, logger);
    if (!token) throw missingToken();
    const requester = await sessions.authenticate(token, ctx.ip, ctx.get('user-agent') || null, policy);
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
 * anything up (so a non-admin learns nothing, not even a 404). Admin writes
 * (any method but GET and HEAD) are suspension-covered: a suspended admin
 * (suspended from the CLI; the admin APIs refuse to suspend admins) may read
 * but not act, as an account under suspicion must not keep using the server's powers.
 */
export function requireAdmin(sessions: SessionHandler, logger: Logger) {
  const read = requireAuth(sessions, logger);
  const write = requireAuth(sessions, logger, { forbidWhenSuspended: true });
  return async (ctx: Context, next: Next) =>
    (ctx.method === 'GET' || ctx.method === 'HEAD' ? read : write)(ctx, async () => {
      if (!requesterOf(ctx).isAdmin) throw new MatrixError(403, 'M_FORBIDDEN', 'You are not a server admin');
      await next();
    });
}
