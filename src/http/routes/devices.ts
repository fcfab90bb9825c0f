// Device management.

import type Router from '@koa/router';
import type { Logger } from 'pino';
import type { Context } from 'koa';
import { notFound } from '../../errors.js';
import type { DeviceHandler } from '../../handlers/devices.js';
import type { SessionHandler } from '../../handlers/sessions.js';
import { requesterOf, requireAuth } from '../middleware/auth.js';
import { clientPaths } from '../paths.js';
import { reply } from '../reply.js';
import { Fields, jsonObject } from '../validate.js';

/** Bounds on what one request may name, so a request cannot make unbounded work. */
const MAX_DEVICES_PER_REQUEST = 1000;

/** The {deviceId} of the path. One that no device can have (too long, NUL) is not found. */
function deviceIdParam(ctx: Context): string {
  const id = ctx.params.deviceId!;
  if (id.length > 255 || id.includes('\u0000')) throw notFound('Device not found');
  return id;
}

export function deviceRoutes(router: Router, devices: DeviceHandler, sessions: SessionHandler, logger: Logger): void {
  const auth = requireAuth(sessions, logger);
  // As Synapse: guests may list and rename their devices, but not delete them.
  const authOrGuest = requireAuth(sessions, logger, { allowGuests: true });

  // GET /_matrix/client/v3/devices
  router.get(clientPaths('/devices'), authOrGuest, async (ctx) => reply(ctx, 200, await devices.list(requesterOf(ctx))));

  // GET /_matrix/client/v3/devices/{deviceId}
  router.get(clientPaths('/devices/:deviceId'), authOrGuest, async (ctx) =>
    reply(ctx, 200, await devices.get(requesterOf(ctx), deviceIdParam(ctx))),
  );

  // PUT /_matrix/client/v3/devices/{deviceId}
  router.put(clientPaths('/devices/:deviceId'), authOrGuest, async (ctx) => {
    const deviceId = deviceIdParam(ctx);
    const body = jsonObject(ctx);
    // Absent leaves the name as it is; null clears it; over 100 characters is 400 M_TOO_LARGE.
    const name = body.display_name === undefined ? undefined : new Fields(body).deviceDisplayName('display_name');
    reply(ctx, 200, await devices.rename(requesterOf(ctx), deviceId, name));
  });

  // DELETE /_matrix/client/v3/devices/{deviceId}
  router.delete(clientPaths('/devices/:deviceId'), auth, async (ctx) => {
    const deviceId = deviceIdParam(ctx);
    const f = new Fields(jsonObject(ctx));
    reply(ctx, 200, await devices.deleteOne(requesterOf(ctx), { deviceId, auth: f.raw('auth'), ip: ctx.ip }));
  });

  // POST /_matrix/client/v3/delete_devices
  router.post(clientPaths('/delete_devices'), auth, async (ctx) => {
    const f = new Fields(jsonObject(ctx));
    const result = await devices.deleteMany(requesterOf(ctx), {
      // May be left out when an earlier request of the UIA session gave it.
      deviceIds: f.has('devices') ? f.stringArray('devices', { maxItems: MAX_DEVICES_PER_REQUEST, maxLength: 255 }) : null,
      auth: f.raw('auth'),
      ip: ctx.ip,
    });
    reply(ctx, 200, result);
  });
}
