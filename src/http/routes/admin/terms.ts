// Gatehouse's admin API for terms of service (MSC1692): what a user accepted.

import type Router from '@koa/router';
import type { Logger } from 'pino';
import type { SessionHandler } from '../../../handlers/sessions.js';
import type { TermsHandler } from '../../../handlers/terms.js';
import { requireAdmin } from '../../middleware/auth.js';
import { reply } from '../../reply.js';

export function adminTermsRoutes(router: Router, terms: TermsHandler, sessions: SessionHandler, logger: Logger): void {
  // GET /_gatehouse/admin/v1/users/{userId}/terms
  router.get('/_gatehouse/admin/v1/users/:userId/terms', requireAdmin(sessions, logger), async (ctx) =>
    reply(ctx, 200, await terms.acceptedBy(ctx.params.userId!)),
  );
}
