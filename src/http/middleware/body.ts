// JSON request bodies (koa-body). As Synapse, a body is read as JSON whatever
// its Content-Type; it must be a JSON object. Over the configured size is
// M_TOO_LARGE (checked from Content-Length before reading, when given).

import type { Context, Next } from 'koa';
import { HttpMethodEnum, koaBody } from 'koa-body';
import { badJson, MatrixError } from '../../errors.js';

export function jsonBody(limitBytes: number) {
  const parse = koaBody({
    json: true,
    urlencoded: false,
    text: false,
    multipart: false,
    jsonLimit: limitBytes,
    jsonStrict: true,
    parsedMethods: [HttpMethodEnum.POST, HttpMethodEnum.PUT, HttpMethodEnum.PATCH, HttpMethodEnum.DELETE],
  });
  return async (ctx: Context, next: Next) => {
    const declared = Number(ctx.get('content-length') || 0);
    if (declared > limitBytes) throw new MatrixError(413, 'M_TOO_LARGE', 'Request body is too large');
    if (['POST', 'PUT', 'PATCH', 'DELETE'].includes(ctx.method) && !ctx.is('json')) {
      ctx.request.headers['content-type'] = 'application/json';
    }
    await parse(ctx, async () => {});
    const body = ctx.request.body as unknown;
    if (body === undefined || body === null) ctx.request.body = {};
    else if (typeof body !== 'object' || Array.isArray(body)) throw badJson('Content must be a JSON object.');
    await next();
  };
}
