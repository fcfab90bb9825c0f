// The Koa application class the server runs: koa's own, with its per-request
// loop (`handleRequest`) minus on-finished. Koa attaches on-finished listeners
// to every response and its socket only so that a socket error reaches
// `ctx.onerror`, which for a silent app with nothing listening to 'error'
// does nothing once the response is gone; adding and removing those listeners
// was about 1 µs of every request's ~35 (issue 15, docs/benchmarks.md).
// Everything else is koa's: contexts, middleware, errors, and the response
// rules below, which follow koa 3's `respond`.

import { Stream } from 'node:stream';
import Koa from 'koa';

type Middleware = (ctx: Koa.Context) => Promise<unknown>;

// Statuses whose responses have no body (as the `statuses` package's `empty`, which koa uses).
const EMPTY_BODY = new Set([204, 205, 304]);

export class GatehouseKoa extends Koa {
  /**
   * Koa's `handleRequest` (a private method its `callback()` calls for each
   * request) without the on-finished listeners; should a koa release rename
   * it, koa's own loop runs instead, which answers the same.
   */
  handleRequest(ctx: Koa.Context, fnMiddleware: Middleware): Promise<void> {
    ctx.res.statusCode = 404;
    // As koa: an error thrown while responding (e.g. a body JSON cannot serialise) goes to onerror too.
    return fnMiddleware(ctx)
      .then(() => respond(ctx))
      .catch((err: unknown) => ctx.onerror(err as Error));
  }
}

/** Writes ctx's status, headers and body to the response, as koa 3's `respond` does. */
export function respond(ctx: Koa.Context): void {
  if (ctx.respond === false) return;
  const res = ctx.res;
  if (!ctx.writable) {
    res.end();
    return;
  }
  let body: unknown = ctx.body;
  const code = ctx.status;
  if (EMPTY_BODY.has(code)) {
    ctx.body = null; // strips Content-Type, Content-Length and Transfer-Encoding
    res.end();
    return;
  }
  if (ctx.method === 'HEAD') {
    if (!res.headersSent && !res.hasHeader('Content-Length')) {
      const { length } = ctx.response;
      if (Number.isInteger(length)) ctx.length = length;
    }
    res.end();
    return;
  }
  if (body === null || body === undefined) {
    if ((ctx.response as Koa.Response & { _explicitNullBody?: boolean })._explicitNullBody) {
      ctx.response.remove('Content-Type');
      ctx.response.remove('Transfer-Encoding');
      ctx.length = 0;
      res.end();
      return;
    }
    body = ctx.req.httpVersionMajor >= 2 ? String(code) : ctx.message || String(code);
    if (!res.headersSent) {
      ctx.type = 'text';
      ctx.length = Buffer.byteLength(body as string);
    }
    res.end(body);
    return;
  }
  if (typeof body === 'string' || Buffer.isBuffer(body)) {
    res.end(body);
    return;
  }
  let stream: Stream.Readable | null = null;
  if (body instanceof Blob) stream = Stream.Readable.from(body.stream());
  else if (body instanceof ReadableStream) stream = Stream.Readable.from(body);
  else if (body instanceof Response) stream = Stream.Readable.from(body.body ?? '');
  else if (body instanceof Stream) stream = body as Stream.Readable;
  if (stream) {
    Stream.pipeline(stream, res, (err) => {
      if (err && ctx.app.listenerCount('error')) ctx.onerror(err);
    });
    return;
  }
  // Gatehouse sets strings (reply() serialises); anything else is JSON, as koa does.
  const json = JSON.stringify(body);
  if (!res.headersSent) ctx.length = Buffer.byteLength(json);
  res.end(json);
}
