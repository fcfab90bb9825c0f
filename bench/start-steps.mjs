// Where one ephemeral start's time goes, in one process: the time (ms since
// this script started) after importing each listed dependency, Gatehouse's
// modules, building the config, createGatehouse (templates, database and
// schema, handlers, routes), listen and the admin account; then the memory.
//   npm run build && node bench/start-steps.mjs
//   MODS=pino,knex,koa node bench/start-steps.mjs   (preload these first, to see each one's cost; MODS= for none)
// Run it several times: the first of a series pays the disk cache.

const T = performance.now();
const lap = (label) => console.log(label.padEnd(28), (performance.now() - T).toFixed(1));
const DIST = new URL('../dist/src/', import.meta.url).href;
for (const m of (process.env.MODS ?? 'pino,knex,koa,@koa/router,argon2,sqlite3').split(',').filter(Boolean)) {
  await import(m);
  lap(m);
}
const { ephemeralConfig } = await import(`${DIST}ephemeral.js`);
lap('ephemeral.js');
const { createGatehouse } = await import(`${DIST}app.js`);
lap('app.js');
const { default: pino } = await import('pino');
const config = ephemeralConfig('localhost', 0, 'silent');
lap('config');
const g = await createGatehouse(config, { logger: pino({ level: 'silent' }), ephemeralKey: true });
lap('createGatehouse');
await g.listen();
lap('listen');
await g.createAdmin('admin', 'password12345');
lap('admin');
const mb = (v) => (v / 1048576).toFixed(1);
console.log(Object.entries(process.memoryUsage()).map(([k, v]) => `${k} ${mb(v)} MB`).join(', '));
await g.close();
