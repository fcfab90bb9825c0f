// drainUnreadBody (src/http/middleware/drain.ts) when a route answers before
// node's parser has finished the request: a request that announces no body
// has nothing to drain, and one that announces a body is still drained.

import { PassThrough } from 'node:stream';
import type { Context } from 'koa';
import { describe, expect, it } from 'vitest';
import { drainUnreadBody } from '../../src/http/middleware/drain.js';

/** A request still being parsed (not complete), with these headers. */
function pendingRequest(headers: Record<string, string>) {
  const req = Object.assign(new PassThrough(), { headers, complete: false });
  const set: Record<string, string> = {};
  const ctx = { req, set: (name: string, value: string) => void (set[name] = value) } as unknown as Context;
  return { req, ctx, set };
}

describe('drainUnreadBody on a request not yet complete', () => {
  it.each([[{}], [{ 'content-length': '0' }]])('no body announced (%j): nothing to drain, no promise', (headers) => {
    const { ctx } = pendingRequest(headers);
    expect(drainUnreadBody(ctx)).toBeUndefined();
  });

  it.each([[{ 'content-length': '5' }], [{ 'transfer-encoding': 'chunked' }]])('a body announced (%j) is read to its end', async (headers) => {
    const { req, ctx, set } = pendingRequest(headers);
    const draining = drainUnreadBody(ctx);
    expect(draining).toBeInstanceOf(Promise);
    req.end('hello');
    await draining;
    expect(req.readableEnded).toBe(true);
    expect(set).toEqual({}); // all of it arrived: the connection may stay open
  });

  it('a body that does not arrive in time closes the connection', async () => {
    const { ctx, set } = pendingRequest({ 'content-length': '5' });
    await drainUnreadBody(ctx, { maxBytes: 100, maxMs: 20 });
    expect(set).toEqual({ Connection: 'close' });
  });
});
