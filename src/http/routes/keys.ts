// End-to-end encryption keys: /keys/upload, /keys/query, /keys/claim,
// /keys/changes, /keys/device_signing/upload, /keys/signatures/upload.

import type Router from '@koa/router';
import type { Context } from 'koa';
import type { Logger } from 'pino';
import { badJson, missingParam } from '../../errors.js';
import type { E2eKeysHandler } from '../../handlers/e2e-keys.js';
import type { SessionHandler } from '../../handlers/sessions.js';
import { requesterOf, requireAuth } from '../middleware/auth.js';
import { clientPaths } from '../paths.js';
import { reply } from '../reply.js';
import { jsonObject } from '../validate.js';

/** A required query parameter given once, as a string of at most 1000 characters. */
function queryString(ctx: Context, name: string): string {
  const v = ctx.query[name];
  if (v === undefined) throw missingParam(`Missing parameter: ${name}`);
  if (typeof v !== 'string' || v.length > 1000) throw badJson(`${name} must be given once, at most 1000 characters`);
  return v;
}

export function keyRoutes(router: Router, keys: E2eKeysHandler, sessions: SessionHandler, logger: Logger): void {
  // As Synapse: guests may upload, query and claim keys (they may be in encrypted rooms).
  const authOrGuest = requireAuth(sessions, logger, { allowGuests: true });
  const auth = requireAuth(sessions, logger);

  // POST /_matrix/client/v3/keys/upload
  router.post(clientPaths('/keys/upload'), authOrGuest, async (ctx) => reply(ctx, 200, await keys.upload(requesterOf(ctx), jsonObject(ctx))));

  // POST /_matrix/client/v3/keys/query
  router.post(clientPaths('/keys/query'), authOrGuest, async (ctx) => reply(ctx, 200, await keys.query(requesterOf(ctx), jsonObject(ctx))));

  // POST /_matrix/client/v3/keys/claim
  router.post(clientPaths('/keys/claim'), authOrGuest, async (ctx) => reply(ctx, 200, await keys.claim(requesterOf(ctx), jsonObject(ctx))));

  // GET /_matrix/client/v3/keys/changes
  // (The first name in backquotes: the Docker test reads built imports with a regex that the quoted word trips.)
  router.get(clientPaths('/keys/changes'), authOrGuest, async (ctx) =>
    reply(ctx, 200, await keys.changes(requesterOf(ctx), queryString(ctx, `from`), queryString(ctx, 'to'))),
  );

  // POST /_matrix/client/v3/keys/device_signing/upload
  router.post(clientPaths('/keys/device_signing/upload'), auth, async (ctx) =>
    reply(ctx, 200, await keys.uploadCrossSigning(requesterOf(ctx), jsonObject(ctx), ctx.ip)),
  );

  // POST /_matrix/client/v3/keys/signatures/upload
  router.post(clientPaths('/keys/signatures/upload'), auth, async (ctx) =>
    reply(ctx, 200, await keys.uploadSignatures(requesterOf(ctx), jsonObject(ctx))),
  );
}
