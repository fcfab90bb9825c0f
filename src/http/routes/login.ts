// Signing in, signing out, and refreshing tokens.

import type Router from '@koa/router';
import type { Logger } from 'pino';
import type { LoginHandler } from '../../handlers/login.js';
import type { SessionHandler } from '../../handlers/sessions.js';
import { requesterOf, requireAuth } from '../middleware/auth.js';
import { clientPaths } from '../paths.js';
import { reply } from '../reply.js';
import { Fields, jsonObject } from '../validate.js';

export function loginRoutes(router: Router, login: LoginHandler, sessions: SessionHandler, logger: Logger): void {
  // GET /_matrix/client/v3/login
  router.get(clientPaths('/login'), (ctx) => reply(ctx, 200, login.flows()));

  // POST /_matrix/client/v3/login
  router.post(clientPaths('/login'), async (ctx) => {
    const body = jsonObject(ctx);
    const f = new Fields(body);
    const result = await login.login({
      type: f.string('type', { maxLength: 255 }),
      password: f.optionalString('password'),
      identifier: { identifier: body.identifier, user: body.user },
      deviceId: f.deviceId('device_id'),
      initialDeviceDisplayName: f.deviceDisplayName('initial_device_display_name'),
      refreshToken: f.boolean('refresh_token', false),
      ip: ctx.ip,
      userAgent: ctx.get('user-agent') || null,
    });
    reply(ctx, 200, result);
  });

  // Sign-out routes: as Synapse, an expired access token (soft logout) may still sign out, so that
  // a client can clean up instead of leaving the device behind, and so may a locked account
  // (MSC3939). Unknown and revoked tokens may not.
  const auth = requireAuth(sessions, logger, { allowGuests: true, signOut: true });

  // POST /_matrix/client/v3/logout
  router.post(clientPaths('/logout'), auth, async (ctx) => {
    await sessions.logout(requesterOf(ctx));
    reply(ctx, 200, {});
  });

  // POST /_matrix/client/v3/logout/all
  router.post(clientPaths('/logout/all'), auth, async (ctx) => {
    await sessions.logoutAll(requesterOf(ctx).userId);
    reply(ctx, 200, {});
  });

  // POST /_matrix/client/v3/refresh (v1 in the spec's history; v3 is current)
  router.post([...clientPaths('/refresh'), '/_matrix/client/v1/refresh'], async (ctx) => {
    const f = new Fields(jsonObject(ctx));
    reply(ctx, 200, await sessions.refresh(f.string('refresh_token', { maxLength: 255 })));
  });
}
