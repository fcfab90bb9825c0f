// Synapse's shared-secret registration API.

import type Router from '@koa/router';
import type { SharedSecretRegistrationHandler } from '../../../handlers/admin/shared-secret-registration.js';
import { Fields, jsonObject } from '../../validate.js';
import { reply } from '../../reply.js';

export function adminRegisterRoutes(router: Router, handler: SharedSecretRegistrationHandler): void {
  // GET /_synapse/admin/v1/register
  router.get('/_synapse/admin/v1/register', async (ctx) => reply(ctx, 200, await handler.newNonce()));

  // POST /_synapse/admin/v1/register
  router.post('/_synapse/admin/v1/register', async (ctx) => {
    const f = new Fields(jsonObject(ctx));
    const result = await handler.register({
      nonce: f.string('nonce', { maxLength: 64 }),
      // Up to 512 as Synapse (and /register); longer than a user ID allows is then M_INVALID_USERNAME.
      username: f.string('username', { maxLength: 512 }),
      password: f.string('password', { maxLength: 512 }),
      admin: f.boolean('admin', false),
      displayname: f.optionalString('displayname', { maxLength: 256 }),
      // Any string: the handler refuses an unknown type with M_INVALID_PARAM, whatever its length.
      userType: f.optionalString('user_type'),
      mac: f.string('mac', { maxLength: 128 }),
    });
    reply(ctx, 200, result);
  });
}
