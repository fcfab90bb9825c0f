// Discovery and server facts, all unauthenticated except capabilities.

import type Router from '@koa/router';
import type { Logger } from 'pino';
import type { ServerInfoHandler } from '../../handlers/server-info.js';
import type { SessionHandler } from '../../handlers/sessions.js';
import { requesterOf, requireAuth } from '../middleware/auth.js';
import { clientPaths } from '../paths.js';
import { reply } from '../reply.js';

export function serverInfoRoutes(router: Router, info: ServerInfoHandler, sessions: SessionHandler, logger: Logger): void {
  // GET /_matrix/client/versions
  router.get('/_matrix/client/versions', (ctx) => reply(ctx, 200, info.versions()));

  // GET /.well-known/matrix/client
  router.get('/.well-known/matrix/client', (ctx) => reply(ctx, 200, info.clientWellKnown()));

  // GET /.well-known/matrix/server
  router.get('/.well-known/matrix/server', (ctx) => reply(ctx, 200, info.serverWellKnown()));

  // GET /.well-known/matrix/support
  router.get('/.well-known/matrix/support', (ctx) => reply(ctx, 200, info.supportWellKnown()));

  // GET /_matrix/client/v3/capabilities
  router.get(clientPaths('/capabilities'), requireAuth(sessions, logger, { allowGuests: true }), (ctx) =>
    reply(ctx, 200, info.capabilities(requesterOf(ctx))),
  );

  // GET /_matrix/key/v2/server
  router.get('/_matrix/key/v2/server', (ctx) => reply(ctx, 200, info.serverKeys()));
}
