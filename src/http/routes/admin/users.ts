// Synapse's user admin API (what synadm's `user` commands and admin UIs
// call), for server admins only: the admin check runs before anything else,
// so a non-admin gets 403 even for a user that does not exist. Also the
// spec's whois, which users may call about themselves.
// Values of the wrong type are 400 M_BAD_JSON (as Synapse for `admin` and
// `erase`; Synapse answers M_UNKNOWN for some others).

import type Router from '@koa/router';
import type { Context } from 'koa';
import type { Logger } from 'pino';
import { badJson, invalidParam, missingParam, notFound } from '../../../errors.js';
import { serverVersion } from '../../../handlers/admin/server-version.js';
import type { UserSessionsAdminHandler } from '../../../handlers/admin/user-sessions.js';
import { DEFAULT_LIST_LIMIT, type ThreepidInput, type UserAdminHandler, type UserChanges } from '../../../handlers/admin/users.js';
import type { Requester, SessionHandler } from '../../../handlers/sessions.js';
import { ACCOUNT_ORDERS, type AccountOrder } from '../../../repositories/user-admin.js';
import { requesterOf, requireAdmin, requireAuth } from '../../middleware/auth.js';
import { clientPaths } from '../../paths.js';
import { reply } from '../../reply.js';
import { Fields, jsonObject } from '../../validate.js';

type QueryValue = Context['query'][string];

/** As Synapse's parse_boolean: "true" or "false", once; `fallback` when absent; else 400 M_INVALID_PARAM. */
function booleanParam<T extends boolean | null>(q: Context['query'], name: string, fallback: T): boolean | T {
  const v = q[name];
  if (v === undefined) return fallback;
  if (v !== 'true' && v !== 'false') throw invalidParam(`Query parameter ${name} must be "true" or "false"`);
  return v === 'true';
}

/** An integer (a sign allowed, so that the handler can say it must not be negative), once; `fallback` when absent, else 400 M_INVALID_PARAM with `error`. */
function integerParam(v: QueryValue, fallback: number, error: string): number {
  if (v === undefined) return fallback;
  if (typeof v !== 'string' || !/^-?\d{1,15}$/.test(v)) throw invalidParam(error);
  return Number(v);
}

/** A string given at most once (null when absent). */
function stringParam(v: QueryValue, name: string): string | null {
  if (v === undefined) return null;
  if (typeof v !== 'string') throw invalidParam(`Query parameter ${name} must be given once`);
  return v;
}

/** A parameter that may be repeated (`not_user_type=bot&not_user_type=`). */
const repeated = (v: QueryValue): string[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);

/** The {userId} of the path, as given: the handlers refuse what is not a local user ID (400). */
const userIdParam = (ctx: Context): string => ctx.params.userId!;

/** A boolean field: undefined when absent or null, else it must be a boolean (400 M_BAD_JSON). */
function optionalBoolean(body: Record<string, unknown>, name: string): boolean | undefined {
  const v = body[name];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'boolean') throw badJson(`Param '${name}' must be a boolean, if given`);
  return v;
}

/** A string-or-null field: undefined when absent, null when null. */
function stringOrNull(body: Record<string, unknown>, name: string): string | null | undefined {
  if (body[name] === undefined) return undefined;
  if (body[name] === null) return null;
  return new Fields(body).string(name);
}

/** A list of objects each with these string fields (Synapse's threepids and external_ids); undefined when absent or null. */
function objectList(body: Record<string, unknown>, name: string, keys: string[]): unknown[] | undefined {
  const v = body[name];
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v)) throw badJson(`${name} must be an array`);
  for (const item of v) {
    if (typeof item !== 'object' || item === null || Array.isArray(item)) throw badJson(`Each of ${name} must be an object`);
    const f = new Fields(item as Record<string, unknown>);
    for (const key of keys) f.string(key);
  }
  return v;
}

/** The body of PUT /_synapse/admin/v2/users/{userId}, its types checked; other keys are ignored (as Synapse). */
function userChanges(body: Record<string, unknown>): UserChanges {
  const f = new Fields(body);
  const changes: UserChanges = {
    displayname: stringOrNull(body, 'displayname'),
    avatarUrl: stringOrNull(body, 'avatar_url'),
    threepids: objectList(body, 'threepids', ['medium', 'address']) as ThreepidInput[] | undefined,
    externalIds: objectList(body, 'external_ids', ['auth_provider', 'external_id']),
    admin: optionalBoolean(body, 'admin'),
    deactivated: optionalBoolean(body, 'deactivated'),
    locked: optionalBoolean(body, 'locked'),
    userType: stringOrNull(body, 'user_type'),
    approved: optionalBoolean(body, 'approved'),
    logoutDevices: optionalBoolean(body, 'logout_devices'),
  };
  const password = f.optionalString('password');
  if (password !== null) changes.password = password;
  return changes;
}

const actorOf = (r: Requester) => ({ userId: r.userId, deviceId: r.deviceId });

export function adminUserRoutes(router: Router, users: UserAdminHandler, userSessions: UserSessionsAdminHandler, sessions: SessionHandler, logger: Logger): void {
  const admin = requireAdmin(sessions, logger);

  // GET /_synapse/admin/v1/server_version (as Synapse: no access token needed)
  router.get('/_synapse/admin/v1/server_version', (ctx) => reply(ctx, 200, serverVersion()));

  // GET /_synapse/admin/v2/users (?from, limit, user_id, name, guests, deactivated, locked, admins, approved, not_user_type, order_by, dir)
  router.get('/_synapse/admin/v2/users', admin, async (ctx) => {
    const q = ctx.query;
    const orderBy = stringParam(q.order_by, 'order_by') ?? 'name';
    if (!(ACCOUNT_ORDERS as readonly string[]).includes(orderBy)) throw invalidParam(`Query parameter order_by must be one of ${ACCOUNT_ORDERS.join(', ')}`);
    const dir = stringParam(q.dir, 'dir') ?? 'f';
    if (dir !== 'f' && dir !== 'b') throw invalidParam('Query parameter dir must be "f" or "b"');
    const list = await users.list({
      from: integerParam(q.from, 0, 'from must be an integer'),
      limit: integerParam(q.limit, DEFAULT_LIST_LIMIT, 'limit must be an integer'),
      userId: stringParam(q.user_id, 'user_id'),
      name: stringParam(q.name, 'name'),
      guests: booleanParam(q, 'guests', true),
      deactivated: booleanParam(q, 'deactivated', false),
      locked: booleanParam(q, 'locked', false),
      admins: booleanParam(q, 'admins', null),
      approved: booleanParam(q, 'approved', true),
      notUserTypes: repeated(q.not_user_type),
      orderBy: orderBy as AccountOrder,
      backwards: dir === 'b',
    });
    reply(ctx, 200, list);
  });

  // GET /_synapse/admin/v2/users/{userId}
  router.get('/_synapse/admin/v2/users/:userId', admin, async (ctx) => reply(ctx, 200, await users.get(userIdParam(ctx))));

  // PUT /_synapse/admin/v2/users/{userId} (201 when it creates the account, 200 when it changes it)
  router.put('/_synapse/admin/v2/users/:userId', admin, async (ctx) => {
    const userId = userIdParam(ctx);
    const changes = userChanges(jsonObject(ctx));
    const { created, user } = await users.put(actorOf(requesterOf(ctx)), userId, changes);
    reply(ctx, created ? 201 : 200, user);
  });

  // POST /_synapse/admin/v1/deactivate/{userId} ({erase?}; an empty body is fine)
  router.post('/_synapse/admin/v1/deactivate/:userId', admin, async (ctx) => {
    const userId = userIdParam(ctx);
    const erase = optionalBoolean(jsonObject(ctx), 'erase') ?? false;
    reply(ctx, 200, await users.deactivate(userId, erase));
  });

  // POST /_synapse/admin/v1/reset_password/{userId} ({new_password, logout_devices?})
  router.post('/_synapse/admin/v1/reset_password/:userId', admin, async (ctx) => {
    const userId = userIdParam(ctx);
    const f = new Fields(jsonObject(ctx));
    const newPassword = f.string('new_password');
    const logoutDevices = f.boolean('logout_devices', true);
    reply(ctx, 200, await users.resetPassword(actorOf(requesterOf(ctx)), userId, newPassword, logoutDevices));
  });

  // GET /_synapse/admin/v1/users/{userId}/admin
  router.get('/_synapse/admin/v1/users/:userId/admin', admin, async (ctx) => reply(ctx, 200, await users.isAdmin(userIdParam(ctx))));

  // PUT /_synapse/admin/v1/users/{userId}/admin ({admin})
  router.put('/_synapse/admin/v1/users/:userId/admin', admin, async (ctx) => {
    const userId = userIdParam(ctx);
    const body = jsonObject(ctx);
    if (body.admin === undefined || body.admin === null) throw missingParam('Missing params: admin');
    const value = optionalBoolean(body, 'admin')!;
    reply(ctx, 200, await users.setAdmin(actorOf(requesterOf(ctx)), userId, value));
  });

  // GET /_synapse/admin/v1/threepid/{medium}/users/{address}
  router.get('/_synapse/admin/v1/threepid/:medium/users/:address', admin, async (ctx) =>
    reply(ctx, 200, await users.userByThreepid(ctx.params.medium!, ctx.params.address!)),
  );

  // GET /_synapse/admin/v1/username_available?username=
  router.get('/_synapse/admin/v1/username_available', admin, async (ctx) => {
    const username = ctx.query.username;
    if (username === undefined) throw missingParam('Missing parameter: username');
    if (typeof username !== 'string') throw invalidParam('username must be given once');
    reply(ctx, 200, await users.usernameAvailable(username));
  });

  // GET /_synapse/admin/v2/users/{userId}/devices
  router.get('/_synapse/admin/v2/users/:userId/devices', admin, async (ctx) => reply(ctx, 200, await userSessions.devices(userIdParam(ctx))));

  // GET /_synapse/admin/v2/users/{userId}/devices/{deviceId}
  router.get('/_synapse/admin/v2/users/:userId/devices/:deviceId', admin, async (ctx) =>
    reply(ctx, 200, await userSessions.device(userIdParam(ctx), deviceIdParam(ctx))),
  );

  // DELETE /_synapse/admin/v2/users/{userId}/devices/{deviceId} (no request body)
  router.delete('/_synapse/admin/v2/users/:userId/devices/:deviceId', admin, async (ctx) =>
    reply(ctx, 200, await userSessions.deleteDevice(userIdParam(ctx), deviceIdParam(ctx))),
  );

  // GET /_synapse/admin/v1/users/{userId}/joined_rooms
  router.get('/_synapse/admin/v1/users/:userId/joined_rooms', admin, (ctx) => reply(ctx, 200, userSessions.joinedRooms(userIdParam(ctx))));

  // GET /_synapse/admin/v1/whois/{userId}
  router.get('/_synapse/admin/v1/whois/:userId', admin, async (ctx) => reply(ctx, 200, await userSessions.whoisForAdmins(userIdParam(ctx))));

  // GET /_matrix/client/v3/admin/whois/{userId} (server admins, and anyone about themselves)
  router.get(clientPaths('/admin/whois/:userId'), requireAuth(sessions, logger), async (ctx) =>
    reply(ctx, 200, await userSessions.whois(requesterOf(ctx), userIdParam(ctx))),
  );
}

/** The {deviceId} of the path; one no device can have (too long, a NUL) is not found. */
function deviceIdParam(ctx: Context): string {
  const id = ctx.params.deviceId!;
  if (id.length > 255 || id.includes('\u0000')) throw notFound('No device found');
  return id;
}
