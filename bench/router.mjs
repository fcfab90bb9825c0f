// The router's cost per request as the route table grows, in-process, on the
// compiled code (dist/): @koa/router's own dispatch (`router.routes()`, which
// tests every layer's regexp) against Gatehouse's `prefixDispatch`
// (src/http/server.ts, which tests only the layers sharing the request's
// literal path prefix). Each table is dispatched `GET /_matrix/client/v3/account/whoami`
// to a handler that sets the body, as CPU of the whole process per request.
//
// Tables: synthetic ones of N Matrix-shaped routes (N = 1 … 800), and the real
// one read from `Gatehouse.routes()` (same patterns and methods, in the same
// order, dummy handlers): in full, and cut to "today's size" as issue 15 defines
// it (the table before the clients issue: every route mounted before /sync).
// Usage: npm run build && node bench/router.mjs   (BENCH_ROUTER_N=200000 requests per row)

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Router from '@koa/router';
import pino from 'pino';

const dist = new URL('../dist/src/', import.meta.url);
const { createGatehouse } = await import(new URL('app.js', dist));
const { buildConfig } = await import(new URL('config/load.js', dist));
const { prefixDispatch } = await import(new URL('http/server.js', dist));

const N = Number(process.env.BENCH_ROUTER_N ?? 200_000);
const WHOAMI = '/_matrix/client/v3/account/whoami';
const BODY = { user_id: '@bench:bench.local', device_id: 'DEVICE', is_guest: false };

/** The real route table, as `Gatehouse.routes()` lists it. */
async function realRoutes() {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-router-'));
  try {
    const { config } = buildConfig(
      {
        server_name: 'bench.local',
        listeners: [{ port: 0, bind_addresses: ['127.0.0.1'], type: 'http' }],
        database: { name: 'sqlite3', args: { database: ':memory:' } },
        signing_key_path: join(dir, 'signing.key'),
        enable_registration: true,
        enable_registration_without_verification: true,
        registration_shared_secret: 'bench-shared-secret',
      },
      dir,
    );
    const g = await createGatehouse(config, { logger: pino({ level: 'silent' }), ephemeralKey: true });
    try {
      return g.routes();
    } finally {
      await g.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A router holding `routes` ({method, path}) in order, each answering with the whoami body. */
function routerOf(routes) {
  const router = new Router();
  const handler = (ctx) => {
    ctx.body = BODY;
  };
  for (const { method, path } of routes) router[method.toLowerCase()](path, handler);
  return router;
}

/** N routes shaped like the Client-Server API's (literal areas, parameters), whoami among them. */
function synthetic(n) {
  const shapes = ['/_matrix/client/v3/area%/:id', '/_matrix/client/v3/user/:userId/area%/:type', '/_synapse/admin/v1/area%/:userId', '/_matrix/client/v1/area%'];
  const routes = [];
  for (let i = 0; routes.length < n - 1; i++) routes.push({ method: i % 3 ? 'GET' : 'PUT', path: shapes[i % shapes.length].replace('%', String(i)) });
  routes.splice(Math.floor(routes.length / 2), 0, { method: 'GET', path: WHOAMI });
  return routes;
}

/** CPU µs per dispatch of GET whoami through `mw`; checks the handler ran. */
async function cost(mw) {
  const run = async () => {
    const ctx = { method: 'GET', path: WHOAMI, host: 'bench.local', body: undefined, request: {} };
    await mw(ctx, async () => {});
    if (ctx.body !== BODY) throw new Error('whoami not dispatched');
  };
  for (let i = 0; i < 20_000; i++) await run();
  const best = [];
  for (let round = 0; round < 3; round++) {
    const c0 = process.cpuUsage();
    for (let i = 0; i < N; i++) await run();
    const c = process.cpuUsage(c0);
    best.push((c.user + c.system) / N);
  }
  return Math.min(...best); // the least disturbed of three rounds
}

const real = await realRoutes();
const cut = real.findIndex((r) => r.path === '/_matrix/client/v3/sync');
const tables = [
  ...[1, 25, 50, 100, 200, 400, 800].map((n) => ({ name: `synthetic, ${n} routes`, routes: synthetic(n) })),
  { name: `real, today's size (before the clients issue): ${cut} routes`, routes: real.slice(0, cut) },
  { name: `real, full table: ${real.length} routes`, routes: real },
];

const rows = [];
for (const t of tables) {
  const router = routerOf(t.routes);
  const flat = await cost(router.routes());
  const indexed = await cost(prefixDispatch(router));
  rows.push({ name: t.name, layers: router.stack.length, flat, indexed });
  process.stderr.write(`  ${t.name}: flat ${flat.toFixed(2)} µs, prefix ${indexed.toFixed(2)} µs\n`);
}
const w = Math.max(...rows.map((r) => r.name.length));
process.stdout.write(`\nrouter dispatch of GET whoami, CPU µs per request (best of 3 × ${N}), Node ${process.version}\n`);
process.stdout.write(`${'table'.padEnd(w)}  layers  @koa/router  prefixDispatch\n`);
for (const r of rows) {
  process.stdout.write(`${r.name.padEnd(w)}  ${String(r.layers).padStart(6)}  ${r.flat.toFixed(2).padStart(11)}  ${r.indexed.toFixed(2).padStart(14)}\n`);
}
