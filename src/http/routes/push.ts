// Push rules and pushers. Neither is among the writes MSC3823 forbids a
// suspended account (they change only what the user is told), so they stay open.

import type Router from '@koa/router';
import type { Context } from 'koa';
import type { Logger } from 'pino';
import { badJson, missingParam } from '../../errors.js';
import { type PushRuleHandler, ruleKind } from '../../handlers/push-rules.js';
import type { PusherHandler } from '../../handlers/pushers.js';
import type { SessionHandler } from '../../handlers/sessions.js';
import { requesterOf, requireAuth } from '../middleware/auth.js';
import { clientPaths } from '../paths.js';
import { reply } from '../reply.js';
import { jsonObject } from '../validate.js';

const queryString = (ctx: Context, name: string): string | null => {
  const v = ctx.query[name];
  if (v === undefined) return null;
  if (typeof v !== 'string') throw badJson(`${name} may be given once`);
  return v;
};

export function pushRoutes(router: Router, rules: PushRuleHandler, pushers: PusherHandler, sessions: SessionHandler, logger: Logger): void {
  const auth = requireAuth(sessions, logger);
  const RULE = '/pushrules/global/:kind/:ruleId';

  // GET /_matrix/client/v3/pushrules/
  router.get(clientPaths('/pushrules/'), auth, async (ctx) => {
    reply(ctx, 200, { global: await rules.ruleset(requesterOf(ctx).userId) });
  });

  // GET /_matrix/client/v3/pushrules/global/
  router.get(clientPaths('/pushrules/global/'), auth, async (ctx) => {
    reply(ctx, 200, await rules.ruleset(requesterOf(ctx).userId));
  });

  // GET /_matrix/client/v3/pushrules/global/{kind}/{ruleId}
  router.get(clientPaths(RULE), auth, async (ctx) => {
    reply(ctx, 200, await rules.rule(requesterOf(ctx).userId, ruleKind(ctx.params.kind!), ctx.params.ruleId!));
  });

  // PUT /_matrix/client/v3/pushrules/global/{kind}/{ruleId}
  router.put(clientPaths(RULE), auth, async (ctx) => {
    const kind = ruleKind(ctx.params.kind!);
    const body = jsonObject(ctx);
    await rules.putRule(requesterOf(ctx).userId, { kind, ruleId: ctx.params.ruleId!, body, before: queryString(ctx, 'before'), after: queryString(ctx, 'after') });
    reply(ctx, 200, {});
  });

  // DELETE /_matrix/client/v3/pushrules/global/{kind}/{ruleId}
  router.delete(clientPaths(RULE), auth, async (ctx) => {
    await rules.deleteRule(requesterOf(ctx).userId, ruleKind(ctx.params.kind!), ctx.params.ruleId!);
    reply(ctx, 200, {});
  });

  // GET /_matrix/client/v3/pushrules/global/{kind}/{ruleId}/enabled
  router.get(clientPaths(`${RULE}/enabled`), auth, async (ctx) => {
    const rule = await rules.rule(requesterOf(ctx).userId, ruleKind(ctx.params.kind!), ctx.params.ruleId!);
    reply(ctx, 200, { enabled: rule.enabled });
  });

  // PUT /_matrix/client/v3/pushrules/global/{kind}/{ruleId}/enabled
  router.put(clientPaths(`${RULE}/enabled`), auth, async (ctx) => {
    const kind = ruleKind(ctx.params.kind!);
    const body = jsonObject(ctx);
    if (body.enabled === undefined || body.enabled === null) throw missingParam('Missing parameter: enabled');
    if (typeof body.enabled !== 'boolean') throw badJson('enabled must be a boolean');
    await rules.setEnabled(requesterOf(ctx).userId, kind, ctx.params.ruleId!, body.enabled);
    reply(ctx, 200, {});
  });

  // GET /_matrix/client/v3/pushrules/global/{kind}/{ruleId}/actions
  router.get(clientPaths(`${RULE}/actions`), auth, async (ctx) => {
    const rule = await rules.rule(requesterOf(ctx).userId, ruleKind(ctx.params.kind!), ctx.params.ruleId!);
    reply(ctx, 200, { actions: rule.actions });
  });

  // PUT /_matrix/client/v3/pushrules/global/{kind}/{ruleId}/actions
  router.put(clientPaths(`${RULE}/actions`), auth, async (ctx) => {
    const kind = ruleKind(ctx.params.kind!);
    const body = jsonObject(ctx);
    await rules.setActions(requesterOf(ctx).userId, kind, ctx.params.ruleId!, body.actions);
    reply(ctx, 200, {});
  });

  // GET /_matrix/client/v3/pushers
  router.get(clientPaths('/pushers'), auth, async (ctx) => {
    reply(ctx, 200, { pushers: await pushers.list(requesterOf(ctx).userId) });
  });

  // POST /_matrix/client/v3/pushers/set
  router.post(clientPaths('/pushers/set'), auth, async (ctx) => {
    await pushers.set(requesterOf(ctx), jsonObject(ctx));
    reply(ctx, 200, {});
  });
}
