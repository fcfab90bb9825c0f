// /sync, filters, account data, send-to-device and presence (spec: "Syncing",
// "Filtering", "Client Config", "Send-to-Device messaging", "Presence").
// MSC3823: none of these is among the writes a suspended account may not make
// (it may still read, verify its devices, and keep its settings).

import type Router from '@koa/router';
import type { Context } from 'koa';
import type { Logger } from 'pino';
import { invalidParam } from '../../errors.js';
import type { SessionHandler } from '../../handlers/sessions.js';
import { MAX_SYNC_TIMEOUT_MS, type SyncHandler } from '../../handlers/sync.js';
import { type AccountDataHandler, type FilterHandler, PRESENCE_STATES, type PresenceHandler, type PresenceState, type ToDeviceHandler } from '../../handlers/sync-data.js';
import { requesterOf, requireAuth } from '../middleware/auth.js';
import { clientPaths } from '../paths.js';
import { reply } from '../reply.js';
import { jsonObject } from '../validate.js';

export interface SyncRouteHandlers {
  sync: SyncHandler;
  filters: FilterHandler;
  accountData: AccountDataHandler;
  toDevice: ToDeviceHandler;
  presence: PresenceHandler;
}

/** A single query parameter (a repeated one is 400, as it is ambiguous). */
function query(ctx: Context, name: string): string | null {
  const v = ctx.query[name];
  if (v === undefined) return null;
  if (Array.isArray(v)) throw invalidParam(`${name} given more than once`);
  return v;
}

/** `timeout` in milliseconds: a non-negative integer (400 M_INVALID_PARAM otherwise, as Synapse), capped. */
function timeoutOf(ctx: Context): number {
  const v = query(ctx, 'timeout');
  if (v === null || v === '') return 0;
  if (!/^[0-9]{1,16}$/.test(v)) throw invalidParam('timeout must be a non-negative integer (milliseconds)');
  return Math.min(Number(v), MAX_SYNC_TIMEOUT_MS);
}

/** `full_state`: true or false (400 M_INVALID_PARAM otherwise, as Synapse). */
function fullStateOf(ctx: Context): boolean {
  const v = query(ctx, 'full_state');
  if (v === null || v === 'false') return false;
  if (v === 'true') return true;
  throw invalidParam('full_state must be true or false');
}

function setPresenceOf(ctx: Context): PresenceState {
  const v = query(ctx, 'set_presence');
  if (v === null) return 'online';
  if (!(PRESENCE_STATES as readonly string[]).includes(v)) throw invalidParam('set_presence must be online, offline or unavailable');
  return v as PresenceState;
}

export function syncRoutes(router: Router, h: SyncRouteHandlers, sessions: SessionHandler, logger: Logger): void {
  // Guests may sync, use filters and presence, and send to-device messages (as Synapse); not keep account data (as Synapse).
  const auth = requireAuth(sessions, logger, { allowGuests: true });
  const noGuests = requireAuth(sessions, logger);

  // GET /_matrix/client/v3/sync
  router.get(clientPaths('/sync'), auth, async (ctx) => {
    const requester = requesterOf(ctx);
    const since = query(ctx, 'since');
    const timeoutMs = timeoutOf(ctx);
    const fullState = fullStateOf(ctx);
    const setPresence = setPresenceOf(ctx);
    const filter = await h.filters.resolve(requester, query(ctx, 'filter'));
    // Stop waiting when the client goes away.
    const gone = new AbortController();
    const onClose = () => gone.abort();
    ctx.res.once('close', onClose);
    try {
      const body = await h.sync.sync(
        { userId: requester.userId, deviceId: requester.deviceId },
        { since: since === '' ? null : since, timeoutMs, fullState, setPresence, filter, signal: gone.signal },
      );
      reply(ctx, 200, body);
    } finally {
      ctx.res.off('close', onClose);
    }
  });

  // POST /_matrix/client/v3/user/{userId}/filter
  router.post(clientPaths('/user/:userId/filter'), auth, async (ctx) => {
    reply(ctx, 200, await h.filters.create(requesterOf(ctx), ctx.params.userId!, jsonObject(ctx)));
  });

  // GET /_matrix/client/v3/user/{userId}/filter/{filterId}
  router.get(clientPaths('/user/:userId/filter/:filterId'), auth, async (ctx) => {
    reply(ctx, 200, await h.filters.get(requesterOf(ctx), ctx.params.userId!, ctx.params.filterId!));
  });

  // GET /_matrix/client/v3/user/{userId}/account_data/{type}
  router.get(clientPaths('/user/:userId/account_data/:type'), noGuests, async (ctx) => {
    reply(ctx, 200, await h.accountData.get(requesterOf(ctx), ctx.params.userId!, null, ctx.params.type!));
  });

  // PUT /_matrix/client/v3/user/{userId}/account_data/{type}
  router.put(clientPaths('/user/:userId/account_data/:type'), noGuests, async (ctx) => {
    reply(ctx, 200, await h.accountData.put(requesterOf(ctx), ctx.params.userId!, null, ctx.params.type!, jsonObject(ctx)));
  });

  // GET /_matrix/client/v3/user/{userId}/rooms/{roomId}/account_data/{type}
  router.get(clientPaths('/user/:userId/rooms/:roomId/account_data/:type'), noGuests, async (ctx) => {
    reply(ctx, 200, await h.accountData.get(requesterOf(ctx), ctx.params.userId!, ctx.params.roomId!, ctx.params.type!));
  });

  // PUT /_matrix/client/v3/user/{userId}/rooms/{roomId}/account_data/{type}
  router.put(clientPaths('/user/:userId/rooms/:roomId/account_data/:type'), noGuests, async (ctx) => {
    reply(ctx, 200, await h.accountData.put(requesterOf(ctx), ctx.params.userId!, ctx.params.roomId!, ctx.params.type!, jsonObject(ctx)));
  });

  // PUT /_matrix/client/v3/sendToDevice/{eventType}/{txnId}
  router.put(clientPaths('/sendToDevice/:eventType/:txnId'), auth, async (ctx) => {
    reply(ctx, 200, await h.toDevice.send(requesterOf(ctx), ctx.params.eventType!, ctx.params.txnId!, jsonObject(ctx)));
  });

  // GET /_matrix/client/v3/presence/{userId}/status
  router.get(clientPaths('/presence/:userId/status'), auth, async (ctx) => {
    reply(ctx, 200, await h.presence.get(requesterOf(ctx), ctx.params.userId!));
  });

  // PUT /_matrix/client/v3/presence/{userId}/status
  router.put(clientPaths('/presence/:userId/status'), auth, async (ctx) => {
    reply(ctx, 200, await h.presence.put(requesterOf(ctx), ctx.params.userId!, jsonObject(ctx)));
  });
}
