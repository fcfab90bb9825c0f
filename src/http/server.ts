// The Koa application: one front middleware that does, in order, what every
// request needs (CORS, URL text, body, r0 paths, errors, the drain, the log
// line), then the routes of every area, then M_UNRECOGNIZED for anything no
// route answered. One middleware rather than a chain of eight: each link of a
// koa chain is an async closure and a promise per request, on the path every
// authenticated request takes (issue 15, docs/benchmarks.md).

import Router from '@koa/router';
import Koa from 'koa';
import type { Logger } from 'pino';
import { MatrixError, unrecognized } from '../errors.js';
import { readRequestBody } from './middleware/body.js';
import { applyCors } from './middleware/cors.js';
import { drainUnreadBody } from './middleware/drain.js';
import { replyError } from './middleware/errors.js';
import { loggablePath, logRequest } from './middleware/request-log.js';
import { checkUrlText } from './middleware/url-text.js';
import { rewriteLegacyPrefix } from './paths.js';
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
  const dispatch = prefixDispatch(router);
  const allowedMethods = router.allowedMethods() as unknown as Koa.Middleware;
  const done = () => Promise.resolve();
  // The routes, then a 405 with Allow for a known path and another method (@koa/router's allowedMethods).
  const route = (ctx: Koa.Context) => allowedMethods(ctx, () => dispatch(ctx, done));
  const { logger, maxBodyBytes, formPaths } = opts;

  app.use(async (ctx) => {
    const startedAt = performance.now();
    // As the client sent it: routing may rewrite r0 paths to v3.
    const path = loggablePath(ctx);
    try {
      // An OPTIONS request is answered by applyCors, without any endpoint logic.
      if (!applyCors(ctx)) {
        try {
          checkUrlText(ctx);
          const reading = readRequestBody(ctx, maxBodyBytes, formPaths);
          if (reading) await reading;
          rewriteLegacyPrefix(ctx);
          await route(ctx);
          answerUnrecognized(ctx);
        } catch (err) {
          replyError(ctx, err);
        }
      }
      // An unread body is skipped before the answer is sent.
      const draining = drainUnreadBody(ctx);
      if (draining) await draining;
    } finally {
      logRequest(logger, ctx, path, startedAt);
    }
  });
  return app;
}

/** One node of the literal-prefix tree: a path segment, the layers whose literal prefix ends here, a router over the candidates. */
interface PrefixNode {
  children: Map<string, PrefixNode>;
  /** Layers whose literal prefix is exactly this node's path, with their position in the full stack. */
  own: { index: number; layer: Router['stack'][number] }[];
  dispatch: Koa.Middleware;
}

/** A segment with any path-to-regexp syntax in it (a parameter, wildcard, group, escape) ends a literal prefix. */
const PATTERN_SYNTAX = /[:*?+(){}[\]\\!]/;

/** The literal leading segments of a route pattern, lower-cased (the router matches case-insensitively). */
function literalPrefix(path: string | RegExp): string[] {
  if (typeof path !== 'string') return [];
  const out: string[] = [];
  for (const segment of path.split('/').slice(1)) {
    if (segment === '' || PATTERN_SYNTAX.test(segment)) break;
    out.push(segment.toLowerCase());
  }
  return out;
}

/**
 * `router.routes()` with a cost per request that does not grow with the route table.
 *
 * @koa/router tests every layer's regexp on every request (~130 layers with the clients' routes). This
 * indexes the layers once, after every area has mounted, in a tree of their literal leading path
 * segments; a request walks the tree along its own path (one Map lookup per segment) and runs a router
 * whose stack is only the layers that can match there: those whose literal prefix is an ancestor of (or
 * is) the deepest node reached, in their original order. Every layer that could match the path is a
 * candidate, and each candidate is still tested with its own regexp, so `ctx.matched` (hence 405 with
 * Allow from `allowedMethods`), params, HEAD for GET and the order of layers are exactly the flat router's.
 * `router` stays the registry (`routeTable` reads its stack); routes added after this call are not served.
 */
export function prefixDispatch(router: Router): Koa.Middleware {
  const node = (): PrefixNode => ({ children: new Map(), own: [], dispatch: async (_ctx, next) => next() });
  const root = node();
  router.stack.forEach((layer, index) => {
    let at = root;
    for (const segment of literalPrefix(layer.path)) {
      let child = at.children.get(segment);
      if (!child) at.children.set(segment, (child = node()));
      at = child;
    }
    at.own.push({ index, layer });
  });
  const build = (at: PrefixNode, inherited: PrefixNode['own']) => {
    const candidates = [...inherited, ...at.own].sort((a, b) => a.index - b.index);
    const sub = new Router(router.opts);
    sub.stack.push(...candidates.map((c) => c.layer));
    at.dispatch = sub.routes() as unknown as Koa.Middleware;
    for (const child of at.children.values()) build(child, candidates);
  };
  build(root, []);

  return (ctx, next) => {
    const path = ctx.path;
    let at = root;
    let start = 1;
    for (;;) {
      const end = path.indexOf('/', start);
      const child = at.children.get((end < 0 ? path.slice(start) : path.slice(start, end)).toLowerCase());
      if (!child) break;
      at = child;
      if (end < 0) break;
      start = end + 1;
    }
    return at.dispatch(ctx, next);
  };
}

/** Unknown endpoints are 404 M_UNRECOGNIZED; a known path with an unsupported method is 405 M_UNRECOGNIZED. */
function answerUnrecognized(ctx: Koa.Context): void {
  if (ctx.status === 405) {
    reply(ctx, 405, new MatrixError(405, 'M_UNRECOGNIZED', 'Unrecognized request').toJSON());
  } else if (ctx.status === 404 && ctx.body === undefined) {
    reply(ctx, 404, unrecognized().toJSON());
  }
}
