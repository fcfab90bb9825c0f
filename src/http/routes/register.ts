// Registration endpoints.

import type Router from '@koa/router';
import { badJson, invalidParam, MatrixError, missingParam } from '../../errors.js';
import type { RegistrationHandler } from '../../handlers/registration.js';
import { clientPaths } from '../paths.js';
import { reply } from '../reply.js';
import { Fields, jsonObject } from '../validate.js';

export function registerRoutes(router: Router, registration: RegistrationHandler): void {
  // POST /_matrix/client/v3/register
  router.post(clientPaths('/register'), async (ctx) => {
    const kind = ctx.query.kind ?? 'user';
    // As Synapse: an unknown kind is M_UNRECOGNIZED.
    if (kind !== 'user' && kind !== 'guest') throw new MatrixError(400, 'M_UNRECOGNIZED', 'kind must be "user" or "guest"');
    const f = new Fields(jsonObject(ctx));
    const client = { ip: ctx.ip, userAgent: ctx.get('user-agent') || null };
    const initialDeviceDisplayName = f.deviceDisplayName('initial_device_display_name');
    if (kind === 'guest') {
      // Spec: a guest registration ignores every parameter but initial_device_display_name.
      reply(ctx, 200, await registration.registerGuest({ initialDeviceDisplayName, ...client }));
      return;
    }
    const result = await registration.register({
      // Up to 512 as Synapse; longer than a user ID allows is then M_INVALID_USERNAME.
      username: f.optionalString('username', { maxLength: 512 }),
      password: f.optionalString('password'),
      deviceId: f.deviceId('device_id'),
      initialDeviceDisplayName,
      // Absent (null) is not false: an earlier request of the UIA session may have set them.
      inhibitLogin: f.has('inhibit_login') ? f.boolean('inhibit_login', false) : null,
      refreshToken: f.has('refresh_token') ? f.boolean('refresh_token', false) : null,
      guestAccessToken: f.optionalString('guest_access_token', { maxLength: 512 }),
      auth: f.raw('auth'),
      ...client,
    });
    reply(ctx, 200, result);
  });

  // GET /_matrix/client/v1/register/m.login.registration_token/validity (and MSC3231's unstable path)
  router.get(
    [
      '/_matrix/client/v1/register/m.login.registration_token/validity',
      '/_matrix/client/unstable/org.matrix.msc3231/register/org.matrix.msc3231.login.registration_token/validity',
    ],
    async (ctx) => {
      const token = ctx.query.token;
      if (Array.isArray(token)) throw invalidParam('token must be given once');
      reply(ctx, 200, await registration.registrationTokenValidity(token ?? null, ctx.ip));
    },
  );

  // GET /_matrix/client/v3/password_policy (MSC2000; Synapse also serves it under the unstable prefix)
  router.get([...clientPaths('/password_policy'), '/_matrix/client/unstable/password_policy'], (ctx) =>
    reply(ctx, 200, registration.passwordPolicy()),
  );

  // GET /_matrix/client/v3/register/available
  router.get(clientPaths('/register/available'), async (ctx) => {
    const username = ctx.query.username;
    if (username === undefined) throw missingParam('Missing parameter: username');
    if (typeof username !== 'string') throw badJson('username must be given once');
    reply(ctx, 200, await registration.available(username));
  });
}
