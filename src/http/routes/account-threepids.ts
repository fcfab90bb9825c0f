// The signed-in user's email addresses: list, add, delete, and the identity
// server endpoints (bind, unbind, the deprecated POST /account/3pid) answered
// as a homeserver that uses none. The requestToken endpoints are in threepid.ts.

import type Router from '@koa/router';
import type { Context } from 'koa';
import type { Logger } from 'pino';
import { badJson, invalidParam, missingParam } from '../../errors.js';
import type { SessionHandler } from '../../handlers/sessions.js';
import { MAX_SID_LENGTH, MEDIA, type ThreepidHandler } from '../../handlers/threepids.js';
import { requesterOf, requireAuth } from '../middleware/auth.js';
import { clientPaths } from '../paths.js';
import { reply } from '../reply.js';
import { Fields, jsonObject } from '../validate.js';

/** Longest address read (as requestToken's `email`): a longer one is malformed input. */
const MAX_ADDRESS = 512;

/** The {medium, address, id_server?} body of delete and unbind. 400 M_INVALID_PARAM for a medium outside the spec's enum. */
function threepidBody(ctx: Context) {
  const f = new Fields(jsonObject(ctx));
  const medium = f.string('medium', { maxLength: 16 });
  if (!(MEDIA as readonly string[]).includes(medium)) throw invalidParam('medium must be "email" or "msisdn"');
  const address = f.string('address', { maxLength: MAX_ADDRESS });
  // Read for its type only: there is no identity server to unbind from.
  f.optionalString('id_server', { maxLength: 255 });
  return { medium: medium as (typeof MEDIA)[number], address };
}

export function accountThreepidRoutes(router: Router, threepids: ThreepidHandler, sessions: SessionHandler, logger: Logger): void {
  const reader = requireAuth(sessions, logger);
  // MSC3823: a suspended account may not change its 3PIDs.
  const writer = requireAuth(sessions, logger, { forbidWhenSuspended: true });

  // GET /_matrix/client/v3/account/3pid
  router.get(clientPaths('/account/3pid'), reader, async (ctx) => reply(ctx, 200, await threepids.list(requesterOf(ctx))));

  // POST /_matrix/client/v3/account/3pid (deprecated: the spec now defines it as /account/3pid/bind)
  router.post(clientPaths('/account/3pid'), writer, async (ctx) => {
    const body = jsonObject(ctx);
    const creds = body.three_pid_creds ?? body.threePidCreds;
    if (creds === undefined || creds === null) throw missingParam('Missing parameter: three_pid_creds');
    if (typeof creds !== 'object' || Array.isArray(creds)) throw badJson('three_pid_creds must be an object');
    const f = new Fields(creds as Record<string, unknown>);
    f.string('client_secret', { maxLength: 255 });
    f.string('sid', { maxLength: MAX_SID_LENGTH });
    threepids.bind();
  });

  // POST /_matrix/client/v3/account/3pid/add (UIA)
  router.post(clientPaths('/account/3pid/add'), writer, async (ctx) => {
    const f = new Fields(jsonObject(ctx));
    const result = await threepids.add(requesterOf(ctx), {
      // Either may be left out when an earlier request of the UIA session gave it.
      clientSecret: f.optionalString('client_secret', { maxLength: 255 }),
      sid: f.optionalString('sid', { maxLength: MAX_SID_LENGTH }),
      auth: f.raw('auth'),
      ip: ctx.ip,
    });
    reply(ctx, 200, result);
  });

  // POST /_matrix/client/v3/account/3pid/bind
  router.post(clientPaths('/account/3pid/bind'), writer, async (ctx) => {
    const f = new Fields(jsonObject(ctx));
    f.string('client_secret', { maxLength: 255 });
    f.string('sid', { maxLength: MAX_SID_LENGTH });
    f.string('id_server', { maxLength: 255 });
    f.string('id_access_token', { maxLength: 1024 });
    threepids.bind();
  });

  // POST /_matrix/client/v3/account/3pid/delete
  router.post(clientPaths('/account/3pid/delete'), writer, async (ctx) => {
    reply(ctx, 200, await threepids.delete(requesterOf(ctx), threepidBody(ctx)));
  });

  // POST /_matrix/client/v3/account/3pid/unbind
  router.post(clientPaths('/account/3pid/unbind'), writer, async (ctx) => {
    threepidBody(ctx);
    reply(ctx, 200, threepids.unbind());
  });
}
