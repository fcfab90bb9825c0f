// JSON responses with Content-Type exactly "application/json" (black-box test
// suites compare the whole header, and Koa would add a charset).

import type { Context } from 'koa';

export function reply(ctx: Context, status: number, body: unknown): void {
  ctx.status = status;
  ctx.set('Content-Type', 'application/json');
  ctx.body = JSON.stringify(body);
}
