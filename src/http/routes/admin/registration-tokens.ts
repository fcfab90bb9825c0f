// Synapse's registration-token admin API (what synadm's `regtok` commands
// call), for server admins only: the admin check runs before anything else, so
// a non-admin gets 403 even for a token that does not exist.
// As Synapse, a value of the wrong type is 400 M_INVALID_PARAM (not M_BAD_JSON).

import type Router from '@koa/router';
import type { Context } from 'koa';
import type { Logger } from 'pino';
import { invalidParam } from '../../../errors.js';
import { DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT, type RegistrationTokenAdminHandler, type TokenUpdate } from '../../../handlers/admin/registration-tokens.js';
import type { SessionHandler } from '../../../handlers/sessions.js';
import { requireAdmin } from '../../middleware/auth.js';
import { reply } from '../../reply.js';
import { jsonObject } from '../../validate.js';

const BASE = '/_synapse/admin/v1/registration_tokens';

type QueryValue = Context['query'][string];

/** As Synapse's parse_boolean: "true" or "false" (once), null when absent, else 400 M_INVALID_PARAM with `error`. */
function booleanParam(v: QueryValue, error: string): boolean | null {
  if (v === undefined) return null;
  if (v !== 'true' && v !== 'false') throw invalidParam(error);
  return v === 'true';
}

/** Decimal digits only (no sign, no exponent), once; `fallback` when absent. The handler checks the range. */
function integerParam(v: QueryValue, fallback: number, error: string): number {
  if (v === undefined) return fallback;
  if (typeof v !== 'string' || !/^\d{1,15}$/.test(v)) throw invalidParam(error);
  return Number(v);
}

/** A JSON integer or null; booleans, fractions and strings are 400. undefined when the key is absent. */
function integerField(body: Record<string, unknown>, name: string): number | null | undefined {
  const v = body[name];
  if (v === undefined || v === null) return v;
  if (typeof v !== 'number' || !Number.isInteger(v)) throw invalidParam(`${name} must be an integer or null`);
  return v;
}

function stringField(body: Record<string, unknown>, name: string): string | null | undefined {
  const v = body[name];
  if (v === undefined || v === null) return v;
  if (typeof v !== 'string') throw invalidParam(`${name} must be a string or null`);
  return v;
}

export function adminRegistrationTokenRoutes(router: Router, tokens: RegistrationTokenAdminHandler, sessions: SessionHandler, logger: Logger): void {
  const admin = requireAdmin(sessions, logger);

  // GET /_synapse/admin/v1/registration_tokens (?valid=true|false, ?from=N, ?limit=N)
  router.get(BASE, admin, async (ctx) => {
    const q = ctx.query;
    reply(
      ctx,
      200,
      await tokens.list({
        valid: booleanParam(q.valid, 'valid must be "true" or "false"'),
        from: integerParam(q.from, 0, 'from must be a non-negative integer'),
        limit: integerParam(q.limit, DEFAULT_LIST_LIMIT, `limit must be an integer from 1 to ${MAX_LIST_LIMIT}`),
      }),
    );
  });

  // POST /_synapse/admin/v1/registration_tokens/new
  router.post(`${BASE}/new`, admin, async (ctx) => {
    const body = jsonObject(ctx);
    const created = await tokens.create({
      token: stringField(body, 'token') ?? null,
      length: integerField(body, 'length') ?? null,
      usesAllowed: integerField(body, 'uses_allowed') ?? null,
      expiryTime: integerField(body, 'expiry_time') ?? null,
      note: stringField(body, 'note') ?? null,
    });
    reply(ctx, 200, created);
  });

  // GET /_synapse/admin/v1/registration_tokens/{token} (?registrations=true)
  router.get(`${BASE}/:token`, admin, async (ctx) => {
    const registrations = booleanParam(ctx.query.registrations, 'registrations must be "true" or "false"') ?? false;
    reply(ctx, 200, await tokens.get(ctx.params.token!, { registrations }));
  });

  // PUT /_synapse/admin/v1/registration_tokens/{token}
  router.put(`${BASE}/:token`, admin, async (ctx) => {
    const body = jsonObject(ctx);
    // As Synapse, other keys (token, pending, completed) are ignored.
    const changes: TokenUpdate = {
      usesAllowed: integerField(body, 'uses_allowed'),
      expiryTime: integerField(body, 'expiry_time'),
      note: stringField(body, 'note'),
    };
    reply(ctx, 200, await tokens.update(ctx.params.token!, changes));
  });

  // DELETE /_synapse/admin/v1/registration_tokens/{token} (no request body)
  router.delete(`${BASE}/:token`, admin, async (ctx) => reply(ctx, 200, await tokens.delete(ctx.params.token!)));
}
