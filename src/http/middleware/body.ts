// JSON request bodies (koa-body). As Synapse, a body is read as JSON whatever
// its Content-Type; routes that read it need a JSON object (`jsonObject`). Over the configured size is
// M_TOO_LARGE (checked from Content-Length before reading, when given).

import type { Context, Next } from 'koa';
import { HttpMethodEnum, koaBody } from 'koa-body';
import { MatrixError } from '../../errors.js';

export function jsonBody(limitBytes: number) {
  const parse = koaBody({
    json: true,
    urlencoded: false,
    text: false,
    multipart: false,
    jsonLimit: limitBytes,
    // Not strict: a JSON value that is not an object is M_BAD_JSON (below), as Synapse, not M_NOT_JSON.
    jsonStrict: false,
    includeUnparsed: true,
    parsedMethods: [HttpMethodEnum.POST, HttpMethodEnum.PUT, HttpMethodEnum.PATCH, HttpMethodEnum.DELETE],
  });
  return async (ctx: Context, next: Next) => {
    const declared = Number(ctx.get('content-length') || 0);
    if (declared > limitBytes) throw new MatrixError(413, 'M_TOO_LARGE', 'Request body is too large');
    if (['POST', 'PUT', 'PATCH', 'DELETE'].includes(ctx.method) && !ctx.is('json')) {
      ctx.request.headers['content-type'] = 'application/json';
    }
    try {
      await parse(ctx, async () => {});
    } catch (err) {
      // A broken compressed body (a zlib error) carries no HTTP status; it is bad input all the same.
      if (!(err as { status?: number }).status && !(err as { statusCode?: number }).statusCode)
        throw new MatrixError(400, 'M_NOT_JSON', 'Content not JSON.');
      throw err;
    }
    const raw = (ctx.request as { rawBody?: string }).rawBody;
    // No body (or an empty one) reads as {}. Any other JSON value is kept as it is: routes that
    // read a body take it through `jsonObject` (M_BAD_JSON unless an object); routes whose
    // request has no body ignore it, as Synapse does (Nheko's logout sends `null`).
    if (raw === undefined || raw === '') ctx.request.body = {};
    await next();
  };
}
