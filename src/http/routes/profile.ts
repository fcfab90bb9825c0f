// Profiles: the whole profile, and one field of it (display name, avatar,
// m.tz, any custom field; MSC4133). Reads may be unauthenticated unless the
// config says otherwise (MSC4170); writes need the owner's token.

import type Router from '@koa/router';
import type { Context, Next } from 'koa';
import type { Logger } from 'pino';
import type { Config } from '../../config/types.js';
import { DISPLAYNAME } from '../../domain/profiles.js';
import { MatrixError } from '../../errors.js';
import { type ProfileActor, type ProfileHandler, profileFieldName, profileUserId } from '../../handlers/profiles.js';
import type { Requester, SessionHandler } from '../../handlers/sessions.js';
import { accessTokenOf, requesterOf, requireAuth } from '../middleware/auth.js';
import { clientPaths } from '../paths.js';
import { reply } from '../reply.js';
import { jsonObject } from '../validate.js';

/**
 * Who reads a profile. With `require_auth_for_profile_requests`, a valid
 * token is required (401 as everywhere; guests may read, as the spec's guest
 * access lists these endpoints). With only
 * `limit_profile_requests_to_users_who_share_rooms`, a token is read when one
 * is sent (a bad one is 401), since the lookup depends on who asks. Otherwise
 * no token is looked at (as Synapse): anyone may read.
 */
function profileReader(config: Config, sessions: SessionHandler, logger: Logger) {
  if (config.require_auth_for_profile_requests) return requireAuth(sessions, logger, { allowGuests: true });
  return async (ctx: Context, next: Next) => {
    if (config.limit_profile_requests_to_users_who_share_rooms) {
      const token = accessTokenOf(ctx, logger);
      if (token) ctx.state.requester = await sessions.authenticate(token, ctx.ip, ctx.get('user-agent') || null);
    }
    await next();
  };
}

const readerOf = (ctx: Context): string | null => (ctx.state.requester as Requester | undefined)?.userId ?? null;

/** The signed-in writer; guests may change their display name only (spec: guest access). */
function writerOf(ctx: Context, name: string): ProfileActor {
  const requester = requesterOf(ctx);
  if (requester.isGuest && name !== DISPLAYNAME)
    throw new MatrixError(403, 'M_GUEST_ACCESS_FORBIDDEN', 'Guests may only change their display name');
  return { userId: requester.userId, isAdmin: requester.isAdmin };
}

export function profileRoutes(router: Router, profiles: ProfileHandler, config: Config, sessions: SessionHandler, logger: Logger): void {
  const reader = profileReader(config, sessions, logger);
  // MSC3823: profile changes are among the writes a suspended account may not make.
  const writer = requireAuth(sessions, logger, { allowGuests: true, forbidWhenSuspended: true });

  // GET /_matrix/client/v3/profile/{userId}
  router.get(clientPaths('/profile/:userId'), reader, async (ctx) => {
    const userId = profileUserId(ctx.params.userId!);
    reply(ctx, 200, await profiles.profile(readerOf(ctx), userId));
  });

  // GET /_matrix/client/v3/profile/{userId}/{keyName}
  router.get(clientPaths('/profile/:userId/:keyName'), reader, async (ctx) => {
    const userId = profileUserId(ctx.params.userId!);
    const name = profileFieldName(ctx.params.keyName!);
    reply(ctx, 200, await profiles.field(readerOf(ctx), userId, name));
  });

  // PUT /_matrix/client/v3/profile/{userId}/{keyName}
  router.put(clientPaths('/profile/:userId/:keyName'), writer, async (ctx) => {
    const userId = profileUserId(ctx.params.userId!);
    const name = profileFieldName(ctx.params.keyName!);
    const actor = writerOf(ctx, name);
    reply(ctx, 200, await profiles.setField(actor, userId, name, jsonObject(ctx)));
  });

  // DELETE /_matrix/client/v3/profile/{userId}/{keyName}
  router.delete(clientPaths('/profile/:userId/:keyName'), writer, async (ctx) => {
    const userId = profileUserId(ctx.params.userId!);
    const name = profileFieldName(ctx.params.keyName!);
    reply(ctx, 200, await profiles.deleteField(writerOf(ctx, name), userId, name));
  });
}
