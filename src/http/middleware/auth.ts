// Access tokens: from `Authorization: Bearer`, or the deprecated
// `?access_token=` query parameter (MSC4126) that older clients and test
// suites still send.

import type { Context, Next } from 'koa';
import type { Logger } from 'pino';
import { MatrixError, missingToken } from '../../errors.js';
import { forbidIfSuspended } from '../../handlers/account-state.js';
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
  /**
   * The route also serves requests that carry no access token (only POST
   * /account/password: a password reset by email). A request that carries one,
   * valid or not, is held to it exactly as on any other route; the handler
   * gets a null requester only when none is sent. Set by `optionalAuth`.
   */
  optional?: boolean;
}

/**
 * What a route's auth middleware declares, as the route table reports it
 * (`Gatehouse.routes()`): a user route with its options, or an admin route
 * (whose writes, every method but GET and HEAD, are suspension-covered).
 */
export type AuthDeclaration = ({ admin: false } & AuthOptions) | { admin: true };

const declarations = new WeakMap<object, AuthDeclaration>();

/** The declaration of an auth middleware made by requireAuth or requireAdmin; undefined for any other function. */
export function authDeclarationOf(middleware: unknown): AuthDeclaration | undefined {
  return typeof middleware === 'function' ? declarations.get(middleware) : undefined;
}

function declared<T extends object>(middleware: T, declaration: AuthDeclaration): T {
  declarations.set(middleware, declaration);
  return middleware;
}

/** Requires a valid access token and puts the requester in ctx.state.requester. */
export function requireAuth(sessions: SessionHandler, logger: Logger, opts: AuthOptions = {}) {
  const policy = { signOut: opts.signOut ?? false, forbidWhenSuspended: opts.forbidWhenSuspended ?? false };
  const admit = (ctx: Context, next: Next, requester: Requester) => {
    if (requester.isGuest && !opts.allowGuests)
      throw new MatrixError(403, 'M_GUEST_ACCESS_FORBIDDEN', 'Guest access is not allowed here');
    ctx.state.requester = requester;
    return next();
  };
  return declared(
    // Not an async function: a cached token is answered without a promise, and the route's
    // own answer passes through as it is (see composeRoute). Errors are thrown to the caller.
    (ctx: Context, next: Next) => {
      const token = accessTokenOf(ctx, logger);
      if (!token) throw missingToken();
      const found = sessions.authenticate(token, ctx.ip, ctx.get('user-agent') || null, policy);
      return found instanceof Promise ? found.then((requester) => admit(ctx, next, requester)) : admit(ctx, next, found);
    },
    { admin: false, ...opts },
  );
}

/**
 * Whether the request tries to send an access token at all: an Authorization
 * header (even a malformed one) or an `access_token` query parameter (even an
 * empty one). As Synapse's `has_access_token`: such a request is never
 * treated as one without a token.
 */
function sendsAccessToken(ctx: Context): boolean {
  return ctx.get('authorization') !== '' || ctx.query.access_token !== undefined;
}

/**
 * Like requireAuth for a request that sends a token (the same errors: 401
 * M_MISSING_TOKEN for a malformed one, M_UNKNOWN_TOKEN, M_USER_LOCKED...);
 * a request that sends none goes on with a null requester (`optionalRequesterOf`).
 */
export function optionalAuth(sessions: SessionHandler, logger: Logger, opts: Omit<AuthOptions, 'optional' | 'signOut'> = {}) {
  const auth = requireAuth(sessions, logger, opts);
  return declared(
    async (ctx: Context, next: Next) => {
      if (sendsAccessToken(ctx)) return auth(ctx, next);
      ctx.state.requester = null;
      await next();
    },
    { admin: false, ...opts, optional: true },
  );
}

/** The requester of a route behind `optionalAuth`: null when the request sent no access token. */
export function optionalRequesterOf(ctx: Context): Requester | null {
  return (ctx.state.requester as Requester | null | undefined) ?? null;
}

export function requesterOf(ctx: Context): Requester {
  return ctx.state.requester as Requester;
}

/**
 * Requires a server admin's access token (Synapse's admin API): 401 without a
 * valid token, then 403 M_FORBIDDEN for anyone else, before the route looks
 * anything up (so a non-admin learns nothing, not even a 404). Admin writes
 * (every method but GET and HEAD) are suspension-covered, told after the admin
 * check: a suspended admin (Synapse's suspend endpoint and the CLI can suspend
 * one) may read but not act, as an account under suspicion must not keep using
 * the server's powers.
 */
export function requireAdmin(sessions: SessionHandler, logger: Logger) {
  const auth = requireAuth(sessions, logger);
  return declared(
    async (ctx: Context, next: Next) =>
      auth(ctx, async () => {
        const requester = requesterOf(ctx);
        if (!requester.isAdmin) throw new MatrixError(403, 'M_FORBIDDEN', 'You are not a server admin');
        if (ctx.method !== 'GET' && ctx.method !== 'HEAD') forbidIfSuspended(requester);
        await next();
      }),
    { admin: true },
  );
}
