// Account moderation for server admins: the spec's suspension and locking
// endpoints (MSC4323, spec v1.18, and their unstable paths) and Synapse's
// suspension endpoint. requireAdmin checks the requester before anything is
// read or looked up, so a non-admin learns nothing (403, never a 404).

import type Router from '@koa/router';
import type { Context } from 'koa';
import type { Logger } from 'pino';
import type { AccountStateHandler, AccountStateView, Moderation, RestrictionChange } from '../../../handlers/account-state.js';
import type { SessionHandler } from '../../../handlers/sessions.js';
import { badJson, missingParam } from '../../../errors.js';
import { requesterOf, requireAdmin } from '../../middleware/auth.js';
import { reply } from '../../reply.js';
import { Fields, jsonObject } from '../../validate.js';

const PREFIXES = ['/_matrix/client/v1/admin', '/_matrix/client/unstable/uk.timedout.msc4323/admin'];

/**
 * Gatehouse's own fields next to MSC4323's (which allows namespaced custom
 * properties): why, and until when (ms since the epoch), in requests and answers.
 */
export const REASON_FIELD = 'gatehouse.reason';
export const UNTIL_FIELD = 'gatehouse.until';

/** A required boolean: 400 M_MISSING_PARAM when absent (or null), M_BAD_JSON when not a boolean. */
function requiredBoolean(body: Record<string, unknown>, name: string): boolean {
  const v = body[name];
  if (v === undefined || v === null) throw missingParam(`Missing parameter: ${name}`);
  if (typeof v !== 'boolean') throw badJson(`${name} must be a boolean`);
  return v;
}

/** An integer or null (absent = null); the handler checks it is in the future. */
function optionalInteger(body: Record<string, unknown>, name: string): number | null {
  const v = body[name];
  if (v === undefined || v === null) return null;
  if (typeof v !== 'number' || !Number.isInteger(v)) throw badJson(`${name} must be an integer (ms since the epoch) or null`);
  return v;
}

/** MSC4323's answer: `{suspended}` or `{locked}`, plus the reason and end time while it holds. */
function answer(state: AccountStateView, what: Moderation, key: 'locked' | 'suspended'): Record<string, unknown> {
  const r = what === 'lock' ? state.locked : state.suspended;
  const body: Record<string, unknown> = { [key]: r.active };
  if (r.active && r.reason !== null) body[REASON_FIELD] = r.reason;
  if (r.active && r.until !== null) body[UNTIL_FIELD] = r.until;
  return body;
}

export function adminModerationRoutes(router: Router, accountState: AccountStateHandler, sessions: SessionHandler, logger: Logger): void {
  const admin = requireAdmin(sessions, logger);
  const paths = (segment: string) => PREFIXES.map((p) => `${p}/${segment}/:userId`);
  const audit = (ctx: Context, what: Moderation, change: RestrictionChange) =>
    logger.info({ admin: requesterOf(ctx).userId, user: ctx.params.userId, what, on: change.on, until: change.until ?? null }, 'account moderation');

  const show = (what: Moderation, key: 'locked' | 'suspended') => async (ctx: Context) => {
    const state = await accountState.moderationState(requesterOf(ctx).userId, ctx.params.userId!);
    reply(ctx, 200, answer(state, what, key));
  };
  const set = (what: Moderation, key: 'locked' | 'suspended') => async (ctx: Context) => {
    const body = jsonObject(ctx);
    const change: RestrictionChange = {
      on: requiredBoolean(body, key),
      reason: new Fields(body).optionalString(REASON_FIELD),
      until: optionalInteger(body, UNTIL_FIELD),
    };
    const state = await accountState.moderate(requesterOf(ctx).userId, ctx.params.userId!, what, change);
    audit(ctx, what, change);
    reply(ctx, 200, answer(state, what, key));
  };

  // GET /_matrix/client/v1/admin/suspend/{userId} (and MSC4323's unstable path)
  router.get(paths('suspend'), admin, show('suspension', 'suspended'));

  // PUT /_matrix/client/v1/admin/suspend/{userId} (and MSC4323's unstable path)
  router.put(paths('suspend'), admin, set('suspension', 'suspended'));

  // GET /_matrix/client/v1/admin/lock/{userId} (and MSC4323's unstable path)
  router.get(paths('lock'), admin, show('lock', 'locked'));

  // PUT /_matrix/client/v1/admin/lock/{userId} (and MSC4323's unstable path)
  router.put(paths('lock'), admin, set('lock', 'locked'));

  // PUT /_synapse/admin/v1/suspend/{userId}
  // As Synapse: `{suspend: bool}` → `{"user_<userId>_suspended": bool}`; no reason or end
  // time here (the MSC4323 endpoints, the v2 user API and the CLI carry them). Unlike Synapse,
  // an admin may not suspend themselves (they could not lift it: admin writes are suspension-covered).
  router.put('/_synapse/admin/v1/suspend/:userId', admin, async (ctx) => {
    const change: RestrictionChange = { on: requiredBoolean(jsonObject(ctx), 'suspend') };
    const state = await accountState.setSuspended(ctx.params.userId!, change, requesterOf(ctx).userId);
    audit(ctx, 'suspension', change);
    reply(ctx, 200, { [`user_${state.user_id}_suspended`]: state.suspended.active });
  });
}
