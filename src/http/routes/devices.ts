// Device management.

import type Router from '@koa/router';
import type { Logger } from 'pino';
import { badJson } from '../../errors.js';
import type { DeviceHandler } from '../../handlers/devices.js';
import type { SessionHandler } from '../../handlers/sessions.js';
import { requesterOf, requireAuth } from '../middleware/auth.js';
import { clientPaths, type JsonObject } from '../paths.js';
import { reply } from '../reply.js';
import { Fields } from '../validate.js';

/** Bounds on what one request may name, so a request cannot make unbounded work. */
const MAX_DEVICES_PER_REQUEST = 1000;
const MAX_DEVICE_NAME = 1024;

export function deviceRoutes(router: Router, devices: DeviceHandler, sessions: SessionHandler, logger: Logger): void {
  const auth = requireAuth(sessions, logger);
  // As Synapse: guests may list and rename their devices, but not delete them.
  const authOrGuest = requireAuth(sessions, logger, { allowGuests: true });

  // GET /_matrix/client/v3/devices
  router.get(clientPaths('/devices'), authOrGuest, async (ctx) => reply(ctx, 200, await devices.list(requesterOf(ctx))));

  // GET /_matrix/client/v3/devices/{deviceId}
  router.get(clientPaths('/devices/:deviceId'), authOrGuest, async (ctx) =>
    reply(ctx, 200, await devices.get(requesterOf(ctx), ctx.params.deviceId!)),
  );

  // PUT /_matrix/client/v3/devices/{deviceId}
  router.put(clientPaths('/devices/:deviceId'), authOrGuest, async (ctx) => {
    const name = (ctx.request.body as JsonObject).display_name;
    if (name !== undefined && name !== null && typeof name !== 'string') throw badJson('display_name must be a string');
    if (typeof name === 'string' && name.length > MAX_DEVICE_NAME) throw badJson(`display_name must be at most ${MAX_DEVICE_NAME} characters`);
    reply(ctx, 200, await devices.rename(requesterOf(ctx), ctx.params.deviceId!, name as string | null | undefined));
  });

  // DELETE /_matrix/client/v3/devices/{deviceId}
  router.delete(clientPaths('/devices/:deviceId'), auth, async (ctx) => {
    const deviceId = ctx.params.deviceId!;
    const f = new Fields(ctx.request.body as JsonObject);
    const result = await devices.delete(requesterOf(ctx), {
      operation: `DELETE /devices/${deviceId}`,
      deviceIds: [deviceId],
      auth: f.raw('auth'),
      ip: ctx.ip,
    });
    reply(ctx, 200, result);
  });

  // POST /_matrix/client/v3/delete_devices
  router.post(clientPaths('/delete_devices'), auth, async (ctx) => {
    const f = new Fields(ctx.request.body as JsonObject);
    const result = await devices.delete(requesterOf(ctx), {
      operation: 'POST /delete_devices',
      deviceIds: f.stringArray('devices', { maxItems: MAX_DEVICES_PER_REQUEST, maxLength: 255 }),
      auth: f.raw('auth'),
      ip: ctx.ip,
    });
    reply(ctx, 200, result);
  });
}
