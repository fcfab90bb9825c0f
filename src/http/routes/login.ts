// Signing in, signing out, refreshing tokens, and login tokens for another device.

import type Router from '@koa/router';
import type { Logger } from 'pino';
import type { LoginHandler } from '../../handlers/login.js';
import type { LoginTokenHandler } from '../../handlers/login-tokens.js';
import type { SessionHandler } from '../../handlers/sessions.js';
import { requesterOf, requireAuth } from '../middleware/auth.js';
import { clientPaths } from '../paths.js';
import { reply } from '../reply.js';
import { Fields, jsonObject } from '../validate.js';

/** Longest `token` read at login: Gatehouse's login tokens are 44 characters; longer is malformed. */
const MAX_LOGIN_TOKEN = 255;

export function loginRoutes(router: Router, login: LoginHandler, loginTokens: LoginTokenHandler, sessions: SessionHandler, logger: Logger): void {
  // GET /_matrix/client/v3/login
  router.get(clientPaths('/login'), (ctx) => reply(ctx, 200, login.flows()));

  // POST /_matrix/client/v3/login
  router.post(clientPaths('/login'), async (ctx) => {
    const body = jsonObject(ctx);
    const f = new Fields(body);
    const type = f.string('type', { maxLength: 255 });
    const result = await login.login({
      type,
      password: f.optionalString('password'),
      // Read for its own type only: a stray `token` beside a password is ignored, as Synapse.
      token: type === 'm.login.token' ? f.optionalString('token', { maxLength: MAX_LOGIN_TOKEN }) : null,
      identifier: { identifier: body.identifier, user: body.user, medium: body.medium, address: body.address },
      deviceId: f.deviceId('device_id'),
      initialDeviceDisplayName: f.deviceDisplayName('initial_device_display_name'),
      refreshToken: f.boolean('refresh_token', false),
      ip: ctx.ip,
      userAgent: ctx.get('user-agent') || null,
    });
    reply(ctx, 200, result);
  });

  // As Synapse: served only when login_via_existing_session is enabled (otherwise 404 M_UNRECOGNIZED).
  if (loginTokens.enabled) {
    // POST /_matrix/client/v1/login/get_token
    // POST /_matrix/client/unstable/org.matrix.msc3882/login/token (MSC3882's path, still served by Synapse)
    router.post(
      ['/_matrix/client/v1/login/get_token', '/_matrix/client/unstable/org.matrix.msc3882/login/token'],
      requireAuth(sessions, logger),
      async (ctx) => {
        const f = new Fields(jsonObject(ctx));
        reply(ctx, 200, await loginTokens.create(requesterOf(ctx), { auth: f.raw('auth'), ip: ctx.ip }));
      },
    );
  }

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
