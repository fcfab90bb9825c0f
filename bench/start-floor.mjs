// The memory floor under `start --ephemeral`'s idle RSS: the same RSS probe as
// bench/start.mjs (VmRSS 1.5 s after 10 whoami + 10 /versions requests,
// median of 3 fresh processes) on servers that load less and less of the stack:
//   - bare:  node:http answering JSON;
//   - koa:   koa alone;
//   - koa+knex: koa, knex on an in-memory SQLite database (one table, one query);
//   - floor: koa, @koa/router (its CommonJS build), knex + sqlite3, pino, argon2 (one hash), two routes;
//   - gatehouse: `gatehouse start --ephemeral` itself.
//   npm run build && node bench/start-floor.mjs
// (`node bench/start-floor.mjs --serve <parts>` is one of those servers.)

import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const SELF = fileURLToPath(import.meta.url);
const MAIN = fileURLToPath(new URL('../dist/src/main.js', import.meta.url));

async function serve(parts) {
  const has = (p) => parts.includes(p);
  let handle;
  if (has('bare')) {
    // require, not import(): an ES import of node:http builds its whole namespace, which loads undici (~10 MB).
    const http = require('node:http');
    const s = http.createServer((_q, r) => r.setHeader('Content-Type', 'application/json').end('{"versions":["v1.11"]}'));
    handle = s;
  } else {
    const Koa = require('koa');
    let db = null;
    if (has('knex')) {
      db = require('knex')({ client: 'sqlite3', connection: { filename: ':memory:' }, useNullAsDefault: true });
      await db.raw('CREATE TABLE t (a text)');
      await db('t').insert({ a: 'x' });
    }
    if (has('pino')) require('pino')({ level: 'warn' });
    if (has('argon2')) await require('argon2').hash('password', { memoryCost: 1024, timeCost: 1, parallelism: 1 });
    const app = new Koa();
    const answer = async (ctx) => (ctx.body = db ? await db('t').first() : { versions: ['v1.11'] });
    if (has('router')) {
      const router = new (require('@koa/router'))();
      router.get('/_matrix/client/versions', answer);
      router.get('/_matrix/client/v3/account/whoami', answer);
      app.use(router.routes());
    } else app.use(answer);
    handle = app;
  }
  const s = handle.listen(0, '127.0.0.1', () => process.stdout.write(`serving at http://127.0.0.1:${s.address().port}/\nadmin access token: x\n`));
  process.on('SIGTERM', () => process.exit(0));
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function probe(args) {
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  await new Promise((resolve, reject) => {
    child.stdout.on('data', (d) => {
      out += d;
      if (/admin access token: \S+\n/.test(out)) resolve();
    });
    child.once('exit', (code) => reject(new Error(`${args.join(' ')} exited with ${code}`)));
  });
  const base = /at (http:\/\/\S+?)\/?\n/.exec(out)[1];
  const token = /admin access token: (\S+)\n/.exec(out)[1];
  for (let i = 0; i < 10; i++) {
    await (await fetch(`${base}/_matrix/client/v3/account/whoami`, { headers: { authorization: `Bearer ${token}` } })).text();
    await (await fetch(`${base}/_matrix/client/versions`)).text();
  }
  await sleep(1500);
  const st = readFileSync(`/proc/${child.pid}/status`, 'utf8');
  const kib = (k) => Number(new RegExp(`^${k}:\\s+(\\d+) kB$`, 'm').exec(st)[1]);
  const r = { rss: kib('VmRSS'), anon: kib('RssAnon'), file: kib('RssFile') };
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
  return r;
}

if (process.argv[2] === '--serve') await serve(process.argv[3].split(','));
else {
  const rows = [
    ['bare node:http', [SELF, '--serve', 'bare']],
    ['koa', [SELF, '--serve', 'koa']],
    ['koa + knex (in-memory SQLite)', [SELF, '--serve', 'koa,knex']],
    ['floor: koa, router, knex, pino, argon2', [SELF, '--serve', 'koa,router,knex,pino,argon2']],
    ['gatehouse start --ephemeral', [MAIN, 'start', '--ephemeral', '--port', '0']],
  ];
  for (const [name, args] of rows) {
    const runs = [];
    for (let i = 0; i < 3; i++) runs.push(await probe(args));
    const mb = (k) => (median(runs.map((r) => r[k])) / 1024).toFixed(1);
    console.log(`${name.padEnd(40)} RSS ${mb('rss')} MB (anonymous ${mb('anon')}, file-backed ${mb('file')})`);
  }
}
