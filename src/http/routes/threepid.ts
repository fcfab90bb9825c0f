// Email validation: the requestToken endpoints (registration, adding an
// address, password reset) and `submit_url`. The page the mail links to is
// in pages.ts. Phone numbers (msisdn) are not supported: their endpoints
// answer M_THREEPID_MEDIUM_NOT_SUPPORTED (MSC4178).

import type Router from '@koa/router';
import type { Context } from 'koa';
import { invalidParam, missingParam } from '../../errors.js';
import { mediumNotSupported, type ThreepidValidationHandler } from '../../handlers/threepid-validation.js';
import type { ValidationPurpose } from '../../repositories/threepids.js';
import { clientPaths } from '../paths.js';
import { reply } from '../reply.js';
import { Fields, jsonObject } from '../validate.js';

/** The path of `submit_url` (ThreepidValidationHandler.submitUrl). */
export const SUBMIT_TOKEN_PATH = '/_gatehouse/client/email/submit_token';

const PURPOSES: [string, ValidationPurpose][] = [
  ['/register', 'registration'],
  ['/account/3pid', 'add_threepid'],
  ['/account/password', 'password_reset'],
];

export function threepidValidationRoutes(router: Router, validation: ThreepidValidationHandler): void {
  // POST /_matrix/client/v3/register/email/requestToken
  // POST /_matrix/client/v3/account/3pid/email/requestToken
  // POST /_matrix/client/v3/account/password/email/requestToken
  // POST /_matrix/client/v3/register/msisdn/requestToken
  // POST /_matrix/client/v3/account/3pid/msisdn/requestToken
  // POST /_matrix/client/v3/account/password/msisdn/requestToken
  for (const [prefix, purpose] of PURPOSES) {
    router.post(clientPaths(`${prefix}/email/requestToken`), async (ctx) => {
      reply(ctx, 200, await validation.requestToken(purpose, requestTokenRequest(ctx)));
    });

    router.post(clientPaths(`${prefix}/msisdn/requestToken`), async (ctx) => {
      jsonObject(ctx);
      throw mediumNotSupported('Phone numbers');
    });
  }

  // POST /_gatehouse/client/email/submit_token (submit_url: the Identity Service API's submitToken, answered by the homeserver)
  router.post(SUBMIT_TOKEN_PATH, async (ctx) => {
    const f = new Fields(jsonObject(ctx));
    await validation.submitToken({
      sid: f.string('sid'),
      clientSecret: f.string('client_secret'),
      token: f.string('token'),
    });
    reply(ctx, 200, { success: true });
  });
}

/** The requestToken body (spec: EmailValidation). `id_server` and `id_access_token` are ignored (no identity server). */
function requestTokenRequest(ctx: Context) {
  const f = new Fields(jsonObject(ctx));
  const sendAttempt = f.raw('send_attempt');
  if (sendAttempt === undefined || sendAttempt === null) throw missingParam('Missing parameter: send_attempt');
  if (typeof sendAttempt !== 'number') throw invalidParam('send_attempt must be an integer');
  return {
    clientSecret: f.string('client_secret'),
    email: f.string('email', { maxLength: 512 }),
    sendAttempt,
    nextLink: f.optionalString('next_link', { maxLength: 2048 }),
    ip: ctx.ip,
  };
}
