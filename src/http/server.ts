// The Koa application: middleware in the order a request meets it, then the
// routes of every area, then M_UNRECOGNIZED for anything no route answered.

import Router from '@koa/router';
import Koa from 'koa';
import type { Logger } from 'pino';
import { MatrixError, unrecognized } from '../errors.js';
import { jsonBody } from './middleware/body.js';
import { cors } from './middleware/cors.js';
import { drainUnreadBody } from './middleware/drain.js';
import { matrixErrors } from './middleware/errors.js';
import { requestLog } from './middleware/request-log.js';
import { strictUrlText } from './middleware/url-text.js';
import { legacyPrefix } from './paths.js';
import { reply } from './reply.js';

export interface HttpOptions {
  logger: Logger;
  maxBodyBytes: number;
  /** Trust X-Forwarded-For (a reverse proxy in front). */
  trustProxy: boolean;
  /** Adds each area's routes. */
  mount: (router: Router) => void;
  /** Paths whose routes read an HTML form instead of JSON (see `formBody`), v3 and r0 alike. */
  formPaths?: readonly RegExp[];
}

export function createHttpApp(opts: HttpOptions): Koa {
  // Behind a proxy, trust only the address it appended (the last X-Forwarded-For entry):
  // earlier entries come from the client and would let it pick its own rate-limit bucket.
  const app = new Koa({ proxy: opts.trustProxy, maxIpsCount: 1 });
  app.silent = true; // errors are logged once, by the request log
  const router = new Router();
  opts.mount(router);

  app.use(requestLog(opts.logger));
  // Runs last on the way out: an unread body is skipped before the answer is sent.
  app.use(drainUnreadBody());
  app.use(cors());
  app.use(matrixErrors());
  app.use(unrecognizedFallback());
  app.use(strictUrlText());
  app.use(jsonBody(opts.maxBodyBytes, opts.formPaths));
  app.use(legacyPrefix());
  app.use(router.routes());
  app.use(router.allowedMethods());
  return app;
}

/** Unknown endpoints are 404 M_UNRECOGNIZED; a known path with an unsupported method is 405 M_UNRECOGNIZED. */
function unrecognizedFallback() {
  return async (ctx: Koa.Context, next: Koa.Next) => {
    await next();
    if (ctx.status === 405) {
      reply(ctx, 405, new MatrixError(405, 'M_UNRECOGNIZED', 'Unrecognized request').toJSON());
    } else if (ctx.status === 404 && ctx.body === undefined) {
      reply(ctx, 404, unrecognized().toJSON());
    }
  };
}
