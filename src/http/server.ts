// The Koa application: one front middleware that does, in order, what every
// request needs (CORS, URL text, body, r0 paths, errors, the drain, the log
// line), then the routes of every area, then M_UNRECOGNIZED for anything no
// route answered. One middleware rather than a chain of eight: each link of a
// koa chain is an async closure and a promise per request, on the path every
// authenticated request takes (issue 15, docs/benchmarks.md).

import { createRequire } from 'node:module';
import type RouterClass from '@koa/router';
import type Koa from 'koa';
import type { Logger } from 'pino';
import { MatrixError, unrecognized } from '../errors.js';
import { GatehouseKoa } from './application.js';
import { readRequestBody } from './middleware/body.js';
import { applyCors } from './middleware/cors.js';
import { drainUnreadBody } from './middleware/drain.js';
import { replyError } from './middleware/errors.js';
import { loggablePath, logRequest } from './middleware/request-log.js';
import { checkUrlText } from './middleware/url-text.js';
import { rewriteLegacyPrefix } from './paths.js';
import { reply } from './reply.js';

// @koa/router's CommonJS build, not its ES module: the ES build imports node:http as an ES module, for
// which Node builds the module's whole namespace, and reading its WebSocket getter loads undici (~10 MB
// of RSS and ~18 ms of every start, measured; issue 15). Same class, same behaviour.
const Router = createRequire(import.meta.url)('@koa/router') as typeof RouterClass;
type Router = RouterClass;

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
  const app = new GatehouseKoa({ proxy: opts.trustProxy, maxIpsCount: 1 });
  app.silent = true; // errors are logged once, by the request log
  const router = new Router();
  opts.mount(router);
  const dispatch = prefixDispatch(router);
  const allowedMethods = router.allowedMethods() as unknown as Middleware;
  const done = () => Promise.resolve();
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
          // A route that answers without waiting (a cached whoami) returns no promise.
          const routed = dispatch(ctx, done);
          if (routed instanceof Promise) await routed;
          // No route answered: 405 with Allow for a known path and another method (@koa/router's allowedMethods).
          if (ctx.matched && ctx.status === 404) await allowedMethods(ctx, done);
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

type Layer = Router['stack'][number];
type Middleware = (ctx: Koa.Context, next: () => Promise<unknown>) => unknown;

/** One node of the literal-prefix tree: a path segment, the layers whose literal prefix ends here, the candidates of a request that ends its walk here. */
interface PrefixNode {
  children: Map<string, PrefixNode>;
  /** Layers whose literal prefix is exactly this node's path, with their position in the full stack. */
  own: { index: number; layer: Layer }[];
  /** Every layer that can match a path whose walk ends here, in the stack's order. */
  candidates: Layer[];
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
 * `router.routes()` with a cost per request that does not grow with the route table, and less of it.
 *
 * @koa/router tests every layer's regexp on every request (~130 layers with the clients' routes), and
 * builds and composes the matched layers' middleware chain anew for each request (about 5 µs of a
 * whoami's CPU, measured: docs/benchmarks.md). This indexes the layers once, after every area has
 * mounted, in a tree of their literal leading path segments; a request walks the tree along its own path
 * (one Map lookup per segment) and tests only the layers that can match there: those whose literal
 * prefix is an ancestor of (or is) the deepest node reached, in their original order, each with its own
 * regexp (`Layer#match`). Then it does what @koa/router's dispatch does, with the router's own Layer
 * methods for captures and params: `ctx.matched` (every layer matching the path, which allowedMethods
 * builds 405's Allow from), `ctx.routeMatched`, `ctx.params`, `ctx.routerPath`, `ctx._matchedRoute`; no
 * route for the method → `next()`; else the matched layers' middleware in order. A layer's own chain is
 * composed once, not per request. `test/blackbox/router.test.ts` holds it to the flat router on the real
 * table. `router` stays the registry (`routeTable` reads its stack); routes added after this call are
 * not served. Not supported (a start-time error): `router.param` middleware, and layers without methods
 * (`router.use`), which Gatehouse does not use.
 */
export function prefixDispatch(router: Router): Middleware {
  const node = (): PrefixNode => ({ children: new Map(), own: [], candidates: [] });
  const root = node();
  const chains = new Map<Layer, Middleware>();
  router.stack.forEach((layer, index) => {
    if (layer.methods.length === 0) throw new Error(`prefixDispatch: ${String(layer.path)} is router.use middleware, which it does not dispatch`);
    let at = root;
    for (const segment of literalPrefix(layer.path)) {
      let child = at.children.get(segment);
      if (!child) at.children.set(segment, (child = node()));
      at = child;
    }
    at.own.push({ index, layer });
    chains.set(layer, composeRoute(layer.stack as Middleware[]));
  });
  if (Object.keys((router as unknown as { params: object }).params ?? {}).length > 0)
    throw new Error('prefixDispatch: router.param middleware is not dispatched');
  const build = (at: PrefixNode, inherited: PrefixNode['own']) => {
    const candidates = [...inherited, ...at.own].sort((a, b) => a.index - b.index);
    at.candidates = candidates.map((c) => c.layer);
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
    const method = ctx.method.toUpperCase();
    const matched: Layer[] = [];
    const run: Layer[] = [];
    for (const layer of at.candidates) {
      if (!layer.match(path)) continue;
      matched.push(layer);
      if (layer.methods.includes(method)) run.push(layer);
    }
    const c = ctx as Koa.Context & Record<string, unknown>;
    if (c.matched) (c.matched as Layer[]).push(...matched);
    else c.matched = matched;
    c.router = router;
    c.routeMatched = run.length > 0;
    if (run.length === 0) return next();
    const last = run[run.length - 1]!;
    c._matchedRoute = last.path;
    if (last.name) c._matchedRouteName = last.name;
    if (run.length === 1) {
      enterLayer(c, last, path);
      return chains.get(last)!(ctx, next);
    }
    // Several layers for one path and method (not in Gatehouse's table today): each in turn, as the router does.
    return composeRoute(run.flatMap((layer) => [(cx: Koa.Context, nx: () => Promise<unknown>) => (enterLayer(cx, layer, path), nx()), chains.get(layer)!]) as Middleware[])(ctx, next);
  };
}

/**
 * koa-compose for a route's middleware, minus a promise per link: each link
 * gets `next` and its return value is passed up as it is, a promise when the
 * link waited for something and a plain value when it answered at once (a
 * cached whoami goes through auth and handler without one). koa-compose wraps
 * every link's result in `Promise.resolve` and binds a `next` per link (~0.5
 * µs of a whoami; issue 15). Same order, and the same error for a link that
 * calls `next()` twice; a link that throws throws to its caller (every caller
 * here awaits inside a try, which catches both).
 */
export function composeRoute(stack: readonly Middleware[]): Middleware {
  return (ctx, next) => {
    let called = -1;
    const step = (i: number): unknown => {
      if (i <= called) return Promise.reject(new Error('next() called multiple times'));
      called = i;
      const link = i < stack.length ? stack[i] : next;
      return link ? link(ctx, () => step(i + 1) as Promise<unknown>) : undefined;
    };
    return step(0);
  };
}

/** What @koa/router sets on the context before a matched layer's middleware runs. */
function enterLayer(ctx: Koa.Context & Record<string, unknown>, layer: Layer, path: string): void {
  const captures = layer.captures(path);
  ctx.captures = captures;
  const params = layer.params(path, captures, ctx.params as Record<string, string> | undefined);
  (ctx.request as Koa.Request & { params?: Record<string, string> }).params = params;
  ctx.params = params;
  ctx.routerPath = layer.path;
  ctx.routerName = layer.name || undefined;
  ctx._matchedRoute = layer.path;
  if (layer.name) ctx._matchedRouteName = layer.name;
}

/** Unknown endpoints are 404 M_UNRECOGNIZED; a known path with an unsupported method is 405 M_UNRECOGNIZED. */
function answerUnrecognized(ctx: Koa.Context): void {
  if (ctx.status === 405) {
    reply(ctx, 405, new MatrixError(405, 'M_UNRECOGNIZED', 'Unrecognized request').toJSON());
  } else if (ctx.status === 404 && ctx.body === undefined) {
    reply(ctx, 404, unrecognized().toJSON());
  }
}
