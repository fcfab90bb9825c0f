// The floor of the chosen stack for a small authenticated JSON GET: koa and
// @koa/router (the design card's packages) answering the whoami path with the
// same body and headers as Gatehouse, without auth, database or logging. The
// whoami section runs it beside the bare node:http server, so that a ratio to
// bare can be read as "how much is koa, how much is Gatehouse".
// Usage: node bench/koa-floor-server.mjs '<json {body, headers, path}>'; prints {"port":N} when listening.

import Router from '@koa/router';
import Koa from 'koa';

const { body, headers, path } = JSON.parse(process.argv[2]);
const app = new Koa();
const router = new Router();
router.get(path, (ctx) => {
  for (const [name, value] of Object.entries(headers)) ctx.set(name, value);
  ctx.body = body;
});
app.use(router.routes());
const server = app.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ port: server.address().port })}\n`);
});
server.keepAliveTimeout = 65_000; // as Gatehouse
process.on('SIGTERM', () => server.close(() => process.exit(0)) && server.closeAllConnections());
