// Endpoints clients call at start-up: TURN servers, third-party protocols,
// media config, joined rooms, notifications, the public room directory.
// Until rooms, media and bridges exist their answers are empty.

import type Router from '@koa/router';
import type { Context } from 'koa';
import type { Logger } from 'pino';
import { invalidParam } from '../../errors.js';
import type { ClientMiscHandler } from '../../handlers/client-misc.js';
import type { SessionHandler } from '../../handlers/sessions.js';
import { requesterOf, requireAuth } from '../middleware/auth.js';
import { clientPaths } from '../paths.js';
import { reply } from '../reply.js';
import { Fields, jsonObject } from '../validate.js';

/** As Synapse: `limit`, when given, must be a non-negative integer. */
function checkLimit(raw: unknown): void {
  if (raw === undefined || raw === null) return;
  const ok = typeof raw === 'number' ? Number.isInteger(raw) && raw >= 0 : typeof raw === 'string' && /^\d{1,15}$/.test(raw);
  if (!ok) throw invalidParam('limit must be a non-negative integer');
}

/** An empty page of the public room directory (spec: PublicRoomsResponse). */
const noRooms = (ctx: Context) => reply(ctx, 200, { chunk: [], total_room_count_estimate: 0 });

export function clientMiscRoutes(router: Router, misc: ClientMiscHandler, sessions: SessionHandler, logger: Logger): void {
  const auth = requireAuth(sessions, logger);
  const guestsToo = requireAuth(sessions, logger, { allowGuests: true });

  // GET /_matrix/client/v3/voip/turnServer
  router.get(clientPaths('/voip/turnServer'), requireAuth(sessions, logger, { allowGuests: misc.turnAllowsGuests }), async (ctx) => {
    reply(ctx, 200, misc.turnServer(requesterOf(ctx).userId));
  });

  // GET /_matrix/client/v3/thirdparty/protocols
  router.get(clientPaths('/thirdparty/protocols'), guestsToo, async (ctx) => {
    // No bridges (application services) yet.
    reply(ctx, 200, {});
  });

  // GET /_matrix/client/v1/media/config
  router.get('/_matrix/client/v1/media/config', guestsToo, async (ctx) => {
    // No media repository yet: no upload size to announce (`m.upload.size` is optional).
    reply(ctx, 200, {});
  });

  // GET /_matrix/client/v3/joined_rooms
  router.get(clientPaths('/joined_rooms'), guestsToo, async (ctx) => {
    reply(ctx, 200, { joined_rooms: [] });
  });

  // GET /_matrix/client/v3/notifications
  router.get(clientPaths('/notifications'), auth, async (ctx) => {
    checkLimit(ctx.query.limit);
    reply(ctx, 200, { notifications: [] });
  });

  // GET /_matrix/client/v3/publicRooms
  router.get(clientPaths('/publicRooms'), guestsToo, async (ctx) => {
    checkLimit(ctx.query.limit);
    noRooms(ctx);
  });

  // POST /_matrix/client/v3/publicRooms
  router.post(clientPaths('/publicRooms'), auth, async (ctx) => {
    const f = new Fields(jsonObject(ctx));
    checkLimit(f.raw('limit'));
    f.optionalString('since');
    const filter = f.raw('filter');
    if (filter !== undefined && filter !== null && (typeof filter !== 'object' || Array.isArray(filter))) throw invalidParam('filter must be an object');
    noRooms(ctx);
  });
}
