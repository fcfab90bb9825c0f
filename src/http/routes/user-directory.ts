// The user directory.

import type Router from '@koa/router';
import type { Logger } from 'pino';
import { badJson } from '../../errors.js';
import type { SessionHandler } from '../../handlers/sessions.js';
import type { UserDirectoryHandler } from '../../handlers/user-directory.js';
import { requesterOf, requireAuth } from '../middleware/auth.js';
import { clientPaths } from '../paths.js';
import { reply } from '../reply.js';
import { Fields, jsonObject } from '../validate.js';

/** The spec's default number of results, and Synapse's ceiling. */
const DEFAULT_LIMIT = 10;
const MAX_LIMIT = 50;
/** Longest search term: more words than that only narrow a search (and each costs a condition). */
const MAX_TERM = 1000;

export function userDirectoryRoutes(router: Router, directory: UserDirectoryHandler, sessions: SessionHandler, logger: Logger): void {
  // POST /_matrix/client/v3/user_directory/search
  router.post(clientPaths('/user_directory/search'), requireAuth(sessions, logger), async (ctx) => {
    const f = new Fields(jsonObject(ctx));
    const term = f.string('search_term', { maxLength: MAX_TERM });
    const raw = f.raw('limit');
    if (raw !== undefined && raw !== null && !Number.isInteger(raw)) throw badJson('limit must be an integer');
    // As Synapse: clamped to 0–50.
    const limit = Math.max(0, Math.min(MAX_LIMIT, (raw as number | null | undefined) ?? DEFAULT_LIMIT));
    reply(ctx, 200, await directory.search(requesterOf(ctx).userId, term, limit));
  });
}
