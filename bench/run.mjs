// `npm run bench`: Gatehouse (compiled, on SQLite) against the physical
// limits of this machine, measured in the same run. Every result is a ratio
// to its limit; no number is compared to one taken elsewhere.
//
//   1. GET /account/whoami req/s       vs a bare node:http server (same body, same headers); and koa + @koa/router alone (bench/koa-floor-server.mjs), the stack's floor;
//                                      and, for the design question, a prototype of whoami's work answered before koa (bench/prekoa-whoami-server.mjs)
//   2. POST /login (password) logins/s vs raw argon2 verify/s (same package, params, pool size, concurrency)
//   3. POST /register (dummy) regs/s   vs raw argon2 hash/s   (same)
//   4. whoami p99 at a fixed rate while logins run flat out
//                                     vs the bare server's p99 at that rate while raw argon2 verify runs flat out
//   5. /sync (bench/sync.mjs, its own fresh server): RSS per waiting long-poll with 1000 waiting,
//      GET /versions p99 with 1000 waiting vs none waiting, to-device send → delivery p50/p99
//   6. start (bench/start.mjs, run first): start --ephemeral and startEphemeral() → /versions, idle RSS
//   7. scale (bench/scale.mjs): whoami and login with 1M users, 1M devices, 2M tokens seeded by bulk SQL
//      vs the same with 1,000 users; SQLite, and PostgreSQL when BENCH_PG is set
//   8. scaleout (bench/scaleout.mjs, needs BENCH_PG): server CPU per whoami, two processes on one
//      PostgreSQL database vs one process
//
// It is a measurement, not a test: it exits 0 whether or not a target is met.
//
// Environment (all optional):
//   BENCH_DURATION=8          seconds per measured phase
//   BENCH_SLICES=4            a throughput goal's two sides (Gatehouse, its limit) run in this many alternating
//                             slices of BENCH_DURATION / BENCH_SLICES seconds each, so that the machine's drift
//                             (a VM's speed moves by 10-30% within minutes) falls on both alike; 1 = one phase each
//   BENCH_CONNECTIONS=50      connections for the whoami throughput phase
//   BENCH_HASH_CONCURRENCY    requests (and raw argon2 operations) in flight for login/register; default 2 × pool size
//   BENCH_LOG=file|devnull    where the server's stdout (pino, level info) goes; default file
//   BENCH_LOG_LEVEL=info      the server's log_level (keep info, as in production; other values are for experiments)
//   BENCH_CONTENTION_RATE=N  whoami req/s in phase 4 (default: 25% of the whoami maximum measured in phase 1)
//   BENCH_ONLY=whoami,login,register,contention,sync,start,scale,scaleout   run only these phases
//   BENCH_START_RUNS=7        fresh processes timed per start path (the median is reported)
//   BENCH_PG=postgres://...   a PostgreSQL server (role with CREATE DATABASE) for scale and scaleout
//   BENCH_SCALE_USERS=1000000 users seeded in the scale section (devices: as many; tokens: twice as many)
//   BENCH_SCALE_WHOAMI_RATE=500, BENCH_SCALE_LOGIN_RATE=10   the fixed rates of the scale section's latency phases
//   BENCH_SCALE_PROBE_TOKENS=1000   seeded tokens the scale section's whoami load rotates over
//   BENCH_SCALE_TOKEN_CACHE=off     the server's token cache off at both sizes (the scale section measures the database lookup)
//   BENCH_SCALE_BACKENDS=sqlite,postgres   the scale section's backends (postgres only with BENCH_PG)
//   BENCH_SYNC_WAITING=1000   long-polls held open at once in the sync section
//   BENCH_SYNC_MESSAGES=200   to-device messages timed in the sync section
//   BENCH_PROFILE=1           run the server under --cpu-prof and keep the profile (see bench/profile-summary.mjs)
//   BENCH_KEEP=1              keep the temp directory (config, database, server log)
//   UV_THREADPOOL_SIZE        passed to the server and to the raw argon2 process alike (Node's default: 4)

import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { closeSync, existsSync, mkdtempSync, openSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import sqlite3 from 'sqlite3';
import { stringify } from 'yaml';
import { argon2ParamsOf } from './lib/argon2-params.mjs';
import { cpuSnapshot, foreignShare, processCpuMs, threadCpuMs } from './lib/cpu.mjs';
import { scaleSection } from './scale.mjs';
import { scaleoutSection } from './scaleout.mjs';
import { startSection } from './start.mjs';
import { syncSection } from './sync.mjs';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const MAIN = join(ROOT, 'dist/src/main.js');
const HERE = fileURLToPath(new URL('.', import.meta.url));

const env = process.env;
const DURATION = Number(env.BENCH_DURATION ?? 8);
const SLICES = Math.max(1, Math.floor(Number(env.BENCH_SLICES ?? 4)));
const CONNECTIONS = Number(env.BENCH_CONNECTIONS ?? 50);
const POOL = env.UV_THREADPOOL_SIZE ? Number(env.UV_THREADPOOL_SIZE) : 4;
const HASH_CONCURRENCY = Number(env.BENCH_HASH_CONCURRENCY ?? 2 * POOL);
const LOG_LEVEL = env.BENCH_LOG_LEVEL ?? 'info';
const LOG_MODE = env.BENCH_LOG === 'devnull' ? 'devnull' : 'file';
const ONLY = env.BENCH_ONLY ? new Set(env.BENCH_ONLY.split(',').map((s) => s.trim())) : null;
const PROFILE = env.BENCH_PROFILE === '1';
const KEEP = env.BENCH_KEEP === '1' || PROFILE;
const WARMUP = 1; // seconds of load before a throughput phase, not counted
const CONTENTION_CONNECTIONS = 10;
const CONTENTION_RATE_SHARE = 0.25; // of the measured whoami maximum
const LATENCY_TARGET_MS = 25;
const PASSWORD = 'bench-password-not-secret';
const SERVER_NAME = 'bench.local';
const LOGIN_USERS = 16;
const SYNC_WAITING = Number(env.BENCH_SYNC_WAITING ?? 1000);
const SYNC_MESSAGES = Number(env.BENCH_SYNC_MESSAGES ?? 200);

const wants = (phase) => !ONLY || ONLY.has(phase);
const children = new Set();

function log(s) {
  process.stderr.write(`${s}\n`);
}

/** Runs a bench helper script in a child process and resolves to the JSON line it prints. */
/** Where an argument too long for the command line (Linux: 128 KiB per string) is handed over as `@file`. */
let bigArgDir = null;
function childArg(arg) {
  const text = JSON.stringify(arg);
  if (text.length < 100_000) return text;
  bigArgDir ??= mkdtempSync(join(tmpdir(), 'gatehouse-bench-args-'));
  const file = join(bigArgDir, `${randomUUID()}.json`);
  writeFileSync(file, text);
  return `@${file}`;
}
process.on('exit', () => bigArgDir && rmSync(bigArgDir, { recursive: true, force: true }));

function runChild(script, arg, extraEnv = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(HERE, script), childArg(arg)], {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...env, ...extraEnv },
    });
    children.add(child);
    let out = '';
    child.stdout.on('data', (c) => (out += c));
    child.once('exit', (code) => {
      children.delete(child);
      const line = out.trim().split('\n').pop();
      if (code !== 0) return reject(new Error(`${script} exited with ${code}: ${out}`));
      try {
        resolve(JSON.parse(line));
      } catch {
        reject(new Error(`${script}: unexpected output: ${out}`));
      }
    });
  });
}

/** Starts a long-running helper that prints one JSON line when ready. */
function startChild(script, arg, extraEnv = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(HERE, script), JSON.stringify(arg)], {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...env, ...extraEnv },
    });
    children.add(child);
    let out = '';
    const onData = (c) => {
      out += c;
      const nl = out.indexOf('\n');
      if (nl < 0) return;
      child.stdout.off('data', onData);
      resolve({ child, info: JSON.parse(out.slice(0, nl)) });
    };
    child.stdout.on('data', onData);
    child.once('exit', (code) => {
      children.delete(child);
      reject(new Error(`${script} exited with ${code}`));
    });
  });
}

async function stopChild(child) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

process.on('exit', () => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
});

function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Spawns the compiled server on SQLite in a temp directory; `overrides` are merged into its config. */
async function startGatehouse(overrides = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-bench-'));
  const port = await freePort();
  const open = { per_second: 1_000_000_000, burst_count: 1_000_000_000 };
  const config = {
    server_name: SERVER_NAME,
    listeners: [{ port, bind_addresses: ['127.0.0.1'], type: 'http' }],
    database: { name: 'sqlite3', args: { database: join(dir, 'homeserver.db') } },
    signing_key_path: join(dir, 'signing.key'),
    enable_registration: true,
    enable_registration_without_verification: true,
    rc_login: { address: open, account: open, failed_attempts: open },
    rc_registration: open,
    // As in production. argon2 is left at the server's defaults on purpose.
    log_level: LOG_LEVEL,
    ...overrides,
  };
  const configPath = join(dir, 'homeserver.yaml');
  writeFileSync(configPath, stringify(config));
  const logPath = LOG_MODE === 'file' ? join(dir, 'server.log') : '/dev/null';
  const outFd = openSync(logPath, 'a');
  const errFd = openSync(join(dir, 'server.stderr'), 'a');
  const profDir = join(dir, 'cpu-profile');
  const args = [...(PROFILE ? ['--cpu-prof', '--cpu-prof-dir', profDir] : []), MAIN, 'start', '--config', configPath];
  const child = spawn(process.execPath, args, { stdio: ['ignore', outFd, errFd], env: { ...env, GATEHOUSE_CONFIG: '' } });
  closeSync(outFd);
  closeSync(errFd);
  children.add(child);
  child.once('exit', () => children.delete(child));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`gatehouse exited with ${child.exitCode}; see ${join(dir, 'server.stderr')}`);
    try {
      if ((await fetch(`${url}/_matrix/client/versions`)).ok) break;
    } catch {
      /* not listening yet */
    }
    if (Date.now() > deadline) throw new Error('gatehouse did not start within 30 s');
    await sleep(100);
  }
  return { child, url, dir, logPath, profDir, dbPath: join(dir, 'homeserver.db') };
}

async function post(url, path, body) {
  const res = await fetch(url + path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const json = await res.json();
  if (res.status !== 200) throw new Error(`${path}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

const register = (url, username) => post(url, '/_matrix/client/v3/register', { username, password: PASSWORD, auth: { type: 'm.login.dummy' } });

function passwordHashOf(dbPath, localpart) {
  return new Promise((resolve, reject) => {
    const db = new sqlite3.Database(dbPath, sqlite3.OPEN_READONLY, (err) => {
      if (err) return reject(err);
      db.get('SELECT password_hash FROM users WHERE localpart = ?', [localpart], (e, row) => {
        db.close();
        if (e) reject(e);
        else resolve(row.password_hash);
      });
    });
  });
}

/**
 * Runs `fn` and measures the share of the machine other processes used
 * meanwhile, and the CPU time the server under test (`serverPid`) used.
 */
async function phase(name, livePids, fn, serverPid = null) {
  log(`· ${name}`);
  const before = cpuSnapshot(livePids());
  const cpu0 = serverPid ? processCpuMs(serverPid) : 0;
  const threads0 = serverPid ? threadCpuMs(serverPid) : null;
  const result = await fn();
  const cpuMs = serverPid ? processCpuMs(serverPid) - cpu0 : null;
  let threads = null;
  if (serverPid) {
    const t1 = threadCpuMs(serverPid);
    threads = Object.fromEntries(Object.keys(t1).map((k) => [k, t1[k] - threads0[k]]));
  }
  const after = cpuSnapshot(livePids());
  const foreign = foreignShare(before, after);
  return { result, foreign, cpuMs, threads };
}

/**
 * Gatehouse's side and its limit's side of a throughput goal, in `SLICES` alternating slices of
 * `DURATION / SLICES` seconds each (`runA(seconds)`, `runB(seconds)` run one load), summed into one
 * phase result per side: requests and CPU added up, rates over the whole time, other load averaged,
 * latency as the median of the slices' p50 and the highest of their p99.
 */
async function interleaved(nameA, nameB, livePids, runA, runB, pidA = null, pidB = null) {
  const seconds = DURATION / SLICES;
  const a = [];
  const b = [];
  for (let i = 0; i < SLICES; i++) {
    const slice = SLICES > 1 ? ` (slice ${i + 1}/${SLICES})` : '';
    a.push(await phase(`${nameA}${slice}`, livePids, () => runA(seconds), pidA));
    b.push(await phase(`${nameB}${slice}`, livePids, () => runB(seconds), pidB));
  }
  return [mergeSlices(a, seconds), mergeSlices(b, seconds)];
}

/** One phase result from the slices of one side (see `interleaved`). */
function mergeSlices(slices, seconds) {
  const sum = (f) => slices.reduce((t, s) => t + (f(s) ?? 0), 0);
  const median = (xs) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];
  const r0 = slices[0].result;
  const result = { ...r0, perSecond: sum((s) => s.result.perSecond * seconds) / (seconds * slices.length) };
  for (const key of ['ok', 'ops', 'non2xx', 'errors', 'cpuMs']) if (typeof r0[key] === 'number') result[key] = sum((s) => s.result[key]);
  if (r0.latency) result.latency = { ...r0.latency, p50: median(slices.map((s) => s.result.latency.p50)), p99: Math.max(...slices.map((s) => s.result.latency.p99)) };
  const threads = slices[0].threads ? Object.fromEntries(Object.keys(slices[0].threads).map((k) => [k, sum((s) => s.threads[k])])) : null;
  return {
    result,
    foreign: sum((s) => s.foreign) / slices.length,
    cpuMs: slices[0].cpuMs === null ? null : sum((s) => s.cpuMs),
    threads,
    slices: slices.map((s) => s.result.perSecond),
  };
}

/** The ratio of each pair of slices (see `interleaved`): how much the goal's ratio moved within the run. */
function sliceRatios(what, g, limit) {
  const ratios = g.slices.map((x, i) => fmt(x / limit.slices[i], 2));
  return `${what}: ${ratios.length} alternating slices of ${fmt(DURATION / SLICES, 1)} s per side, ratio per slice pair ${ratios.join(', ')}`;
}

/** Server CPU per request against raw argon2 CPU per operation: what the rest of the request costs. */
function cpuPerOp(what, g, op, r) {
  const per = g.cpuMs / g.result.ok;
  const raw = r.result.cpuMs / r.result.ops;
  const t = g.threads;
  const main = t.main / g.result.ok;
  return (
    `${what} server CPU: ${fmt(per, 1)} ms per request (main thread ${fmt(main, 2)} ms, libuv pool ${fmt(t.threadpool / g.result.ok, 1)} ms); ` +
    `raw argon2 ${op}: ${fmt(raw, 1)} ms per operation → ${fmt(per - raw, 1)} ms (${fmt(((per - raw) / per) * 100, 0)}%) of each ${what} is not argon2`
  );
}

const fmt = (n, d = 1) => (n === null || n === undefined || Number.isNaN(n) ? '—' : n.toFixed(d));
const pct = (x) => (x === null ? '?' : `${Math.round(x * 100)}%`);

/** A throughput row: Gatehouse's phase against its limit's, with a minimum ratio (or null for information only). */
function throughputRow(name, g, limit, minRatio) {
  const ratio = g.result.perSecond / limit.result.perSecond;
  return {
    name,
    value: g.result.perSecond,
    limit: limit.result.perSecond,
    ratio,
    target: minRatio === null ? '—' : `≥ ${minRatio.toFixed(2)}`,
    pass: minRatio === null ? null : ratio >= minRatio,
    foreign: [g.foreign, limit.foreign],
    errors: g.result.non2xx + g.result.errors,
  };
}

async function main() {
  const startedAt = Date.now();
  const load0 = loadavg();
  if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: run npm run build`);
  log(`Gatehouse bench: ${cpus().length} cores (${cpus()[0]?.model ?? '?'}), Node ${process.version}, load average ${load0.map((l) => l.toFixed(2)).join(' ')}`);

  // 6. Start time and idle memory, first: no other server of the bench runs yet.
  const started = wants('start') ? await startSection({ root: ROOT, phase, log, runs: Number(env.BENCH_START_RUNS ?? 7) }) : { rows: [], notes: [] };
  const gh = await startGatehouse();
  let bare = null;
  const live = () => [gh.child.pid, ...(bare ? [bare.child.pid] : [])];
  const rows = [...started.rows];
  const notes = [...started.notes];

  // Setup: the whoami user and the login users (registered one at a time).
  const me = await register(gh.url, 'bench');
  const whoamiHeaders = { authorization: `Bearer ${me.access_token}` };
  const sample = await fetch(`${gh.url}/_matrix/client/v3/account/whoami`, { headers: whoamiHeaders });
  const whoamiBody = await sample.text();
  if (sample.status !== 200) throw new Error(`whoami: ${sample.status} ${whoamiBody}`);
  const mirrored = {};
  for (const [k, v] of sample.headers) if (!['date', 'connection', 'keep-alive', 'content-length', 'transfer-encoding'].includes(k)) mirrored[k] = v;
  const loginUsers = [];
  if (wants('login') || wants('contention')) {
    for (let i = 0; i < LOGIN_USERS; i++) {
      await register(gh.url, `login${i}`);
      loginUsers.push(`login${i}`);
    }
  }
  const encoded = await passwordHashOf(gh.dbPath, 'bench');
  const a2 = argon2ParamsOf(encoded);
  const a2params = `${a2.type} m=${a2.m} KiB, t=${a2.t}, p=${a2.p}`;
  const a2env = { UV_THREADPOOL_SIZE: String(POOL) };
  log(`  argon2 parameters read from the server's stored hash: ${a2params}; UV_THREADPOOL_SIZE=${POOL}${env.UV_THREADPOOL_SIZE ? '' : ' (default)'}`);

  const load = (o) => runChild('load.mjs', { url: gh.url, ...o });
  const whoamiReq = { path: '/_matrix/client/v3/account/whoami', headers: whoamiHeaders };

  let whoamiRate = null;
  if (wants('whoami') || wants('contention')) {
    bare = await startChild('bare-server.mjs', { body: whoamiBody, headers: mirrored });
    bare.url = `http://127.0.0.1:${bare.info.port}`;
  }

  // 1. whoami throughput vs bare node:http.
  if (wants('whoami') || wants('contention')) {
    await load({ ...whoamiReq, connections: CONNECTIONS, duration: WARMUP });
    await runChild('load.mjs', { url: bare.url, ...whoamiReq, connections: CONNECTIONS, duration: WARMUP });
    const [g, b] = await interleaved(
      `whoami, Gatehouse: ${CONNECTIONS} connections, ${DURATION / SLICES} s`,
      `whoami, bare node:http: ${CONNECTIONS} connections, ${DURATION / SLICES} s`,
      live,
      (seconds) => load({ ...whoamiReq, connections: CONNECTIONS, duration: seconds }),
      (seconds) => runChild('load.mjs', { url: bare.url, ...whoamiReq, connections: CONNECTIONS, duration: seconds }),
      gh.child.pid,
      bare.child.pid,
    );
    // The floor of the chosen stack: koa + @koa/router answering the same bytes (no auth, no log).
    const floor = await startChild('koa-floor-server.mjs', { body: whoamiBody, headers: mirrored, path: whoamiReq.path });
    const floorUrl = `http://127.0.0.1:${floor.info.port}`;
    await runChild('load.mjs', { url: floorUrl, ...whoamiReq, connections: CONNECTIONS, duration: WARMUP });
    const k = await phase(
      `whoami path, koa + @koa/router alone: ${CONNECTIONS} connections, ${DURATION} s`,
      () => [...live(), floor.child.pid],
      () => runChild('load.mjs', { url: floorUrl, ...whoamiReq, connections: CONNECTIONS, duration: DURATION }),
      floor.child.pid,
    );
    await stopChild(floor.child);
    // A prototype, not Gatehouse's path: Gatehouse's work on a cached whoami done by node:http before koa (the design question).
    const prekoa = await startChild('prekoa-whoami-server.mjs', {
      body: whoamiBody,
      headers: mirrored,
      path: whoamiReq.path,
      token: me.access_token,
      logFile: LOG_MODE === 'file' ? join(gh.dir, 'prekoa.log') : '/dev/null',
    });
    const prekoaUrl = `http://127.0.0.1:${prekoa.info.port}`;
    await runChild('load.mjs', { url: prekoaUrl, ...whoamiReq, connections: CONNECTIONS, duration: WARMUP });
    const p = await phase(
      `whoami path answered before koa (prototype): ${CONNECTIONS} connections, ${DURATION} s`,
      () => [...live(), prekoa.child.pid],
      () => runChild('load.mjs', { url: prekoaUrl, ...whoamiReq, connections: CONNECTIONS, duration: DURATION }),
      prekoa.child.pid,
    );
    await stopChild(prekoa.child);
    if (p.result.non2xx > 0) throw new Error(`prekoa-whoami-server answered ${p.result.non2xx} requests with an error`);
    whoamiRate = g.result.perSecond;
    rows.push(throughputRow('whoami throughput (req/s)', g, b, 0.5));
    notes.push(sliceRatios('whoami', g, b));
    rows.push(throughputRow('koa + @koa/router alone, same bytes (req/s)', k, b, null));
    rows.push(throughputRow("whoami's work before koa (prototype; req/s)", p, b, null));
    // CPU per request does not depend on how much CPU other processes left us, so it is the steadier comparison.
    const gUs = (g.cpuMs * 1000) / g.result.ok;
    const bUs = (b.cpuMs * 1000) / b.result.ok;
    notes.push(
      `whoami server CPU per request (all threads): Gatehouse ${fmt(gUs, 0)} µs, bare ${fmt(bUs, 0)} µs → efficiency ratio ${fmt(bUs / gUs, 2)} ` +
        `(Gatehouse used ${fmt(g.cpuMs / 10 / DURATION, 0)}% of a core, bare ${fmt(b.cpuMs / 10 / DURATION, 0)}%)`,
    );
    const kUs = (k.cpuMs * 1000) / k.result.ok;
    notes.push(
      `koa + @koa/router alone (the chosen stack's floor, no auth, no log line): ${fmt(kUs, 0)} µs per request = ${fmt(bUs / kUs, 2)} of bare's efficiency; ` +
        `Gatehouse's own work (auth, CORS, checks, log line, handler) ${fmt(gUs - kUs, 0)} µs on top`,
    );
    const pUs = (p.cpuMs * 1000) / p.result.ok;
    notes.push(
      `prototype (bench/prekoa-whoami-server.mjs): Gatehouse's work on a cached whoami (token hash, cache, checks, JSON, CORS, log line) on node:http before koa: ` +
        `${fmt(pUs, 0)} µs per request = ${fmt(bUs / pUs, 2)} of bare's efficiency`,
    );
    const perReq = (ms) => fmt((ms * 1000) / g.result.ok, 0);
    notes.push(
      `Gatehouse whoami CPU per request by thread: main ${perReq(g.threads.main)} µs, libuv pool ${perReq(g.threads.threadpool)} µs, ` +
        `V8 helpers ${perReq(g.threads.v8)} µs, other ${perReq(g.threads.other)} µs`,
    );
    notes.push(
      `whoami latency at ${CONNECTIONS} connections: Gatehouse p50 ${g.result.latency.p50} ms / p99 ${g.result.latency.p99} ms; bare p50 ${b.result.latency.p50} ms / p99 ${b.result.latency.p99} ms`,
    );
  }

  // 3. registration throughput vs raw argon2 hash.
  if (wants('register')) {
    const g = await phase(
      `register, Gatehouse: ${HASH_CONCURRENCY} connections, ${DURATION} s`,
      live,
      () => load({ mode: 'register', prefix: 'reg', password: PASSWORD, connections: HASH_CONCURRENCY, duration: DURATION }),
      gh.child.pid,
    );
    const r = await phase(`argon2 hash, raw: ${HASH_CONCURRENCY} in flight, ${DURATION} s`, live, () =>
      runChild('argon2-raw.mjs', { op: 'hash', encoded, password: PASSWORD, concurrency: HASH_CONCURRENCY, duration: DURATION }, a2env),
    );
    rows.push(throughputRow('registrations/s (m.login.dummy)', g, r, null));
    notes.push(`register latency: p50 ${g.result.latency.p50} ms, p99 ${g.result.latency.p99} ms`);
    notes.push(cpuPerOp('registration', g, 'hash', r));
  }

  // 2. login throughput vs raw argon2 verify.
  let loginRate = null;
  if (wants('login')) {
    const [g, r] = await interleaved(
      `login, Gatehouse: ${HASH_CONCURRENCY} connections, ${DURATION / SLICES} s`,
      `argon2 verify, raw: ${HASH_CONCURRENCY} in flight, ${DURATION / SLICES} s`,
      live,
      (seconds) => load({ mode: 'login', users: loginUsers, password: PASSWORD, connections: HASH_CONCURRENCY, duration: seconds }),
      (seconds) => runChild('argon2-raw.mjs', { op: 'verify', encoded, password: PASSWORD, concurrency: HASH_CONCURRENCY, duration: seconds }, a2env),
      gh.child.pid,
    );
    loginRate = g.result.perSecond;
    rows.push(throughputRow('logins/s (m.login.password)', g, r, 0.9)); // issue 15's goal
    notes.push(sliceRatios('login', g, r));
    notes.push(`login latency: p50 ${g.result.latency.p50} ms, p99 ${g.result.latency.p99} ms`);
    notes.push(cpuPerOp('login', g, 'verify', r));
  }

  // 4. whoami latency at a fixed rate while logins run flat out.
  if (wants('contention')) {
    const rate = env.BENCH_CONTENTION_RATE
      ? Number(env.BENCH_CONTENTION_RATE)
      : Math.max(50, Math.round((whoamiRate ?? 2000) * CONTENTION_RATE_SHARE));
    const paced = { ...whoamiReq, connections: CONTENTION_CONNECTIONS, overallRate: rate };
    const alone = await phase(`whoami alone, Gatehouse: ${rate} req/s over ${CONTENTION_CONNECTIONS} connections, ${Math.ceil(DURATION / 2)} s`, live, () =>
      load({ ...paced, duration: Math.ceil(DURATION / 2) }),
    );
    // The limit: the bare server at the same rate while raw argon2 verify keeps the same pool busy in another process.
    const lim = await phase(`whoami on bare node:http at ${rate} req/s + raw argon2 verify (${HASH_CONCURRENCY} in flight), ${DURATION} s`, live, () =>
      Promise.all([
        runChild('argon2-raw.mjs', { op: 'verify', encoded, password: PASSWORD, concurrency: HASH_CONCURRENCY, duration: DURATION + 2 }, a2env),
        runChild('load.mjs', { url: bare.url, ...paced, duration: DURATION, delay: 1 }),
      ]),
    );
    const g = await phase(`whoami on Gatehouse at ${rate} req/s + logins (${HASH_CONCURRENCY} connections), ${DURATION} s`, live, () =>
      Promise.all([
        load({ mode: 'login', users: loginUsers, password: PASSWORD, connections: HASH_CONCURRENCY, duration: DURATION + 2 }),
        load({ ...paced, duration: DURATION, delay: 1 }),
      ]),
    );
    const [glogin, gwho] = g.result;
    const [, bwho] = lim.result;
    rows.push({
      name: `whoami p99 (ms) at ${rate} req/s during logins`,
      value: gwho.latency.p99,
      limit: bwho.latency.p99,
      ratio: gwho.latency.p99 / bwho.latency.p99,
      ratioNote: '×',
      target: `< ${LATENCY_TARGET_MS} ms`,
      pass: gwho.latency.p99 < LATENCY_TARGET_MS && gwho.errors === 0,
      foreign: [g.foreign, lim.foreign],
      errors: gwho.non2xx + gwho.errors + glogin.non2xx + glogin.errors,
    });
    notes.push(
      `contention: whoami served ${fmt(gwho.perSecond, 0)} of ${rate} req/s asked (p50 ${gwho.latency.p50} ms, p99 ${gwho.latency.p99} ms, max ${gwho.latency.max} ms); ` +
        `logins meanwhile ${fmt(glogin.perSecond)}/s (${loginRate ? `${fmt((glogin.perSecond / loginRate) * 100, 0)}% of the login-only phase` : 'no login-only phase'})`,
      `contention limit: bare node:http p50 ${bwho.latency.p50} ms, p99 ${bwho.latency.p99} ms while raw argon2 verify ran ${fmt(lim.result[0].perSecond)}/s`,
      `whoami alone at the same rate: Gatehouse p50 ${alone.result.latency.p50} ms, p99 ${alone.result.latency.p99} ms, max ${alone.result.latency.max} ms`,
    );
  }

  if (bare) await stopChild(bare.child);
  await stopChild(gh.child);
  let logBytes = null;
  if (LOG_MODE === 'file') logBytes = statSync(gh.logPath).size;

  // 5. /sync: idle long-polls and to-device wake-ups, on a fresh server of its own (a clean RSS baseline).
  if (wants('sync')) {
    const s = await syncSection({
      startGatehouse,
      stopChild,
      runLoad: (url, o) => runChild('load.mjs', { url, ...o }),
      phase,
      log,
      cleanup: (server) => {
        if (!KEEP) rmSync(server.dir, { recursive: true, force: true });
      },
      waiting: SYNC_WAITING,
      messages: SYNC_MESSAGES,
      probeSeconds: Math.ceil(DURATION / 2),
      syncTimeoutMs: 120_000,
    });
    rows.push(...s.rows);
    notes.push(...s.notes);
  }

  // 6 and 7. Scale (a million users) and scale-out (two processes on one PostgreSQL), each on servers of their own.
  const sectionDeps = {
    startGatehouse,
    stopChild,
    runLoad: (url, o) => runChild('load.mjs', { url, ...o }),
    phase,
    log,
    cleanup: (server) => {
      if (!KEEP) rmSync(server.dir, { recursive: true, force: true });
    },
    register,
    pgUrl: env.BENCH_PG || null,
    duration: DURATION,
    connections: CONNECTIONS,
  };
  if (wants('scale')) {
    const s = await scaleSection({
      ...sectionDeps,
      users: Number(env.BENCH_SCALE_USERS ?? 1_000_000),
      whoamiRate: Number(env.BENCH_SCALE_WHOAMI_RATE ?? 500),
      loginRate: Number(env.BENCH_SCALE_LOGIN_RATE ?? 10),
    });
    rows.push(...s.rows);
    notes.push(...s.notes);
  }
  if (wants('scaleout')) {
    const s = await scaleoutSection(sectionDeps);
    rows.push(...s.rows);
    notes.push(...s.notes);
  }

  // The report (stdout).
  const header = ['measurement', 'Gatehouse', 'limit', 'ratio', 'target', 'result', 'other load'];
  const table = rows.map((r) => [
    r.name,
    fmt(r.value, r.value < 100 ? 1 : 0),
    fmt(r.limit, r.limit < 100 ? 1 : 0),
    r.ratioNote ? `${fmt(r.ratio, 2)}×` : fmt(r.ratio, 2),
    r.target,
    r.pass === null ? 'info' : r.pass ? 'PASS' : 'MISS',
    r.foreign.map(pct).join(' / '),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...table.map((row) => row[i].length)));
  const line = (cells) => `| ${cells.map((c, i) => c.padEnd(widths[i])).join(' | ')} |`;
  const out = [];
  out.push('');
  out.push(`Gatehouse bench — ${new Date().toISOString()} — ${cpus().length} cores, Node ${process.version}`);
  out.push(
    `server: SQLite, log_level ${LOG_LEVEL}, stdout → ${LOG_MODE === 'file' ? `a file (${fmt(logBytes / 1e6)} MB written)` : '/dev/null'}; ` +
      `argon2 ${a2params}; UV_THREADPOOL_SIZE=${POOL}; hashing concurrency ${HASH_CONCURRENCY}; ${DURATION} s per phase`,
  );
  out.push('');
  out.push(line(header));
  out.push(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
  for (const row of table) out.push(line(row));
  out.push('');
  out.push('ratio = Gatehouse ÷ limit (throughput: higher is better, 1.00 is the limit; latency: × the limit\'s p99, lower is better).');
  out.push('other load = share of the whole machine used by processes outside this bench during the Gatehouse / limit phase (noise).');
  for (const r of rows) if (r.errors) out.push(`WARNING: ${r.name}: ${r.errors} non-2xx responses or errors`);
  for (const n of notes) out.push(`- ${n}`);
  const load1 = loadavg();
  out.push(
    `- load average before ${load0.map((l) => l.toFixed(2)).join(' ')}, after ${load1.map((l) => l.toFixed(2)).join(' ')}; total ${fmt((Date.now() - startedAt) / 1000, 0)} s`,
  );
  if (PROFILE) out.push(`- CPU profile of the server in ${gh.profDir} (summarise with: node bench/profile-summary.mjs ${gh.profDir})`);
  else if (KEEP) out.push(`- kept ${gh.dir}`);
  process.stdout.write(`${out.join('\n')}\n`);

  if (!KEEP) rmSync(gh.dir, { recursive: true, force: true });
}

main().catch((err) => {
  process.stderr.write(`bench failed: ${err.stack ?? err}\n`);
  process.exitCode = 1;
});
