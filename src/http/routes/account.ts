// The signed-in user's own account.

import type Router from '@koa/router';
import type { Logger } from 'pino';
import type { AccountHandler } from '../../handlers/account.js';
import type { SessionHandler } from '../../handlers/sessions.js';
import { optionalAuth, optionalRequesterOf, requesterOf, requireAuth } from '../middleware/auth.js';
import { clientPaths } from '../paths.js';
import { reply } from '../reply.js';
import { Fields, jsonObject } from '../validate.js';

export function accountRoutes(router: Router, account: AccountHandler, sessions: SessionHandler, logger: Logger): void {
  // GET /_matrix/client/v3/account/whoami
  router.get(clientPaths('/account/whoami'), requireAuth(sessions, logger, { allowGuests: true }), (ctx) =>
    reply(ctx, 200, account.whoami(requesterOf(ctx))),
  );

  const auth = requireAuth(sessions, logger);

  // POST /_matrix/client/v3/account/password
  // A change with an access token; a reset by email without one.
  router.post(clientPaths('/account/password'), optionalAuth(sessions, logger), async (ctx) => {
    const requester = optionalRequesterOf(ctx);
    // Without email there is no reset: 401 M_MISSING_TOKEN as before, whatever the body.
    if (!requester) account.checkResetAvailable();
    const f = new Fields(jsonObject(ctx));
    const req = {
      // Either may be left out when an earlier request of the UIA session gave it.
      newPassword: f.optionalString('new_password'),
      logoutDevices: f.has('logout_devices') ? f.boolean('logout_devices', true) : null,
      auth: f.raw('auth'),
      ip: ctx.ip,
    };
    const result = requester ? await account.changePassword(requester, req) : await account.resetPassword(req);
    reply(ctx, 200, result);
  });

  // POST /_matrix/client/v3/account/deactivate
  router.post(clientPaths('/account/deactivate'), auth, async (ctx) => {
    const f = new Fields(jsonObject(ctx));
    const result = await account.deactivate(requesterOf(ctx), {
      erase: f.has('erase') ? f.boolean('erase', false) : null,
      idServer: f.optionalString('id_server', { maxLength: 255 }),
      auth: f.raw('auth'),
      ip: ctx.ip,
    });
    reply(ctx, 200, result);
  });
}
