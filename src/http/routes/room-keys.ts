// Server-side key backup: /room_keys/version[/{version}] and /room_keys/keys[/{roomId}[/{sessionId}]].

import type Router from '@koa/router';
import type { Context } from 'koa';
import type { Logger } from 'pino';
import { badJson, notFound } from '../../errors.js';
import type { KeyBackupHandler } from '../../handlers/key-backup.js';
import type { SessionHandler } from '../../handlers/sessions.js';
import { requesterOf, requireAuth } from '../middleware/auth.js';
import { clientPaths } from '../paths.js';
import { reply } from '../reply.js';
import { jsonObject } from '../validate.js';

/** The `version` query parameter, or null when absent. */
function versionQuery(ctx: Context): string | null {
  const v = ctx.query.version;
  if (v === undefined) return null;
  if (typeof v !== 'string') throw badJson('version must be given once');
  return v;
}

/** A path parameter; one no room or session can have (too long, NUL) is not found. */
function param(ctx: Context, name: string): string {
  const v = ctx.params[name]!;
  if (v.length > 255 || v.includes('\u0000')) throw notFound('No room_keys found');
  return v;
}

export function roomKeyRoutes(router: Router, backup: KeyBackupHandler, sessions: SessionHandler, logger: Logger): void {
  const auth = requireAuth(sessions, logger);

  // GET /_matrix/client/v3/room_keys/version
  router.get(clientPaths('/room_keys/version'), auth, async (ctx) => reply(ctx, 200, await backup.getVersion(requesterOf(ctx), null)));

  // POST /_matrix/client/v3/room_keys/version
  router.post(clientPaths('/room_keys/version'), auth, async (ctx) => reply(ctx, 200, await backup.createVersion(requesterOf(ctx), jsonObject(ctx))));

  // GET /_matrix/client/v3/room_keys/version/{version}
  router.get(clientPaths('/room_keys/version/:version'), auth, async (ctx) =>
    reply(ctx, 200, await backup.getVersion(requesterOf(ctx), param(ctx, 'version'))),
  );

  // PUT /_matrix/client/v3/room_keys/version/{version}
  router.put(clientPaths('/room_keys/version/:version'), auth, async (ctx) =>
    reply(ctx, 200, await backup.updateVersion(requesterOf(ctx), param(ctx, 'version'), jsonObject(ctx))),
  );

  // DELETE /_matrix/client/v3/room_keys/version/{version}
  router.delete(clientPaths('/room_keys/version/:version'), auth, async (ctx) =>
    reply(ctx, 200, await backup.deleteVersion(requesterOf(ctx), param(ctx, 'version'))),
  );

  // The keys, at three levels: all rooms, one room, one session.
  const levels: [string, (ctx: Context) => [string | null, string | null]][] = [
    ['/room_keys/keys', () => [null, null]],
    ['/room_keys/keys/:roomId', (ctx) => [param(ctx, 'roomId'), null]],
    ['/room_keys/keys/:roomId/:sessionId', (ctx) => [param(ctx, 'roomId'), param(ctx, 'sessionId')]],
  ];
  for (const [path, ids] of levels) {
    // GET /_matrix/client/v3/room_keys/keys
    // GET /_matrix/client/v3/room_keys/keys/{roomId}
    // GET /_matrix/client/v3/room_keys/keys/{roomId}/{sessionId}
    router.get(clientPaths(path), auth, async (ctx) => reply(ctx, 200, await backup.getKeys(requesterOf(ctx), versionQuery(ctx), ...ids(ctx))));
    // PUT /_matrix/client/v3/room_keys/keys
    // PUT /_matrix/client/v3/room_keys/keys/{roomId}
    // PUT /_matrix/client/v3/room_keys/keys/{roomId}/{sessionId}
    router.put(clientPaths(path), auth, async (ctx) =>
      reply(ctx, 200, await backup.putKeys(requesterOf(ctx), versionQuery(ctx), ...ids(ctx), jsonObject(ctx))),
    );
    // DELETE /_matrix/client/v3/room_keys/keys
    // DELETE /_matrix/client/v3/room_keys/keys/{roomId}
    // DELETE /_matrix/client/v3/room_keys/keys/{roomId}/{sessionId}
    router.delete(clientPaths(path), auth, async (ctx) => reply(ctx, 200, await backup.deleteKeys(requesterOf(ctx), versionQuery(ctx), ...ids(ctx))));
  }
}
