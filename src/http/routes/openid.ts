// OpenID: a signed-in user asks for a token (client API) that a third party
// (a widget, Element Call's focus) exchanges for the user's ID (federation API).

import type Router from '@koa/router';
import type { Logger } from 'pino';
import type { OpenIdHandler } from '../../handlers/openid.js';
import type { SessionHandler } from '../../handlers/sessions.js';
import { requesterOf, requireAuth } from '../middleware/auth.js';
import { clientPaths } from '../paths.js';
import { reply } from '../reply.js';
import { jsonObject } from '../validate.js';

export function openIdRoutes(router: Router, openid: OpenIdHandler, sessions: SessionHandler, logger: Logger): void {
  // POST /_matrix/client/v3/user/{userId}/openid/request_token
  router.post(clientPaths('/user/:userId/openid/request_token'), requireAuth(sessions, logger), async (ctx) => {
    jsonObject(ctx); // The spec's body is an empty object.
    reply(ctx, 200, await openid.requestToken(requesterOf(ctx).userId, ctx.params.userId!));
  });

  // GET /_matrix/federation/v1/openid/userinfo
  router.get('/_matrix/federation/v1/openid/userinfo', async (ctx) => {
    const token = ctx.query.access_token;
    reply(ctx, 200, await openid.userinfo(typeof token === 'string' && token !== '' ? token : null));
  });
}
