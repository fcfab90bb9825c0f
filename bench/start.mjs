// The start section of `npm run bench` (BENCH_ONLY=start runs it alone):
// how soon an ephemeral server answers, and how much memory it holds idle.
//
//   - `gatehouse start --ephemeral`: spawn of `node dist/src/main.js` → first
//     200 from GET /_matrix/client/versions (polled every 2 ms), and → the
//     admin token printed (the server answers before the admin is made);
//   - `startEphemeral()` in a fresh Node process: `import('gatehouse')` +
//     startEphemeral() → first 200 from /versions, as the process measures it
//     itself (a test file pays this once per worker), then a second server in
//     the same process (modules already loaded);
//   - idle RSS of the `start --ephemeral` process after its start and 20
//     requests (10 whoami, 10 /versions), settled: VmRSS median of 7 samples,
//     with the anonymous (heap, malloc) and file-backed (the node binary,
//     native addons: shared with other Node processes) parts; and the split
//     of the startEphemeral() process's memory (V8 heap, external, code).
//
// `start --ephemeral` keeps Node's compile cache in $XDG_CACHE_HOME: the bench
// points it at a fresh temp folder, times one start on the empty (cold) cache
// apart, then the timed runs on the warm one.
//
// Each figure is the median of `runs` fresh processes. Goals (issue 15):
// < 300 ms to a served /versions, < 80 MB idle RSS.

import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const START_GOAL_MS = 300;
const RSS_GOAL_MB = 80;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
};

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

/** VmRSS, RssAnon, RssFile of a live process, in KiB. */
function rssOf(pid) {
  const st = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (k) => Number(new RegExp(`^${k}:\\s+(\\d+) kB$`, 'm').exec(st)?.[1] ?? Number.NaN);
  return { rss: kib('VmRSS'), anon: kib('RssAnon'), file: kib('RssFile') };
}

async function stop(child) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

/** One `start --ephemeral`: times to /versions and to the token; RSS once idle when `measureRss`. */
async function cliRun(main, measureRss, cacheHome) {
  const port = await freePort();
  const env = { ...process.env, XDG_CACHE_HOME: cacheHome };
  delete env.NODE_COMPILE_CACHE;
  const t0 = performance.now();
  const child = spawn(process.execPath, [main, 'start', '--ephemeral', '--port', String(port)], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let tokenMs = null;
  child.stdout.on('data', (c) => {
    out += c;
    if (tokenMs === null && /admin access token: \S+\n/.test(out)) tokenMs = performance.now() - t0;
  });
  child.stderr.on('data', (c) => (out += c));
  const url = `http://127.0.0.1:${port}`;
  try {
    let versionsMs = null;
    const deadline = Date.now() + 30_000;
    while (versionsMs === null) {
      if (child.exitCode !== null) throw new Error(`start --ephemeral exited with ${child.exitCode}: ${out}`);
      if (Date.now() > deadline) throw new Error('start --ephemeral: no /versions within 30 s');
      try {
        if ((await fetch(`${url}/_matrix/client/versions`)).ok) versionsMs = performance.now() - t0;
      } catch {
        await sleep(2);
      }
    }
    while (tokenMs === null) {
      if (Date.now() > deadline) throw new Error('start --ephemeral: no admin token printed within 30 s');
      await sleep(2);
    }
    let rss = null;
    if (measureRss) {
      const token = /admin access token: (\S+)\n/.exec(out)[1];
      for (let i = 0; i < 10; i++) {
        await (await fetch(`${url}/_matrix/client/v3/account/whoami`, { headers: { authorization: `Bearer ${token}` } })).text();
        await (await fetch(`${url}/_matrix/client/versions`)).text();
      }
      await sleep(1500);
      const samples = [];
      for (let i = 0; i < 7; i++) {
        samples.push(rssOf(child.pid));
        await sleep(200);
      }
      rss = { rss: median(samples.map((s) => s.rss)), anon: median(samples.map((s) => s.anon)), file: median(samples.map((s) => s.file)) };
    }
    return { versionsMs, tokenMs, rss };
  } finally {
    await stop(child);
  }
}

/** A fresh Node process that imports the package and starts two servers, timing itself. */
function inProcessRun(root) {
  const script = `
    const t0 = performance.now();
    const { startEphemeral } = await import('gatehouse');
    const until200 = async (hs) => { for (;;) { if ((await fetch(hs.baseUrl + '/_matrix/client/versions')).ok) return; } };
    const a = await startEphemeral({ logLevel: 'silent' });
    await until200(a);
    const t1 = performance.now();
    // The memory of one idle server after 20 requests, as the CLI's RSS row (before the second server starts).
    for (let i = 0; i < 10; i++) {
      await (await fetch(a.baseUrl + '/_matrix/client/v3/account/whoami', { headers: { authorization: 'Bearer ' + a.adminToken } })).text();
      await (await fetch(a.baseUrl + '/_matrix/client/versions')).text();
    }
    const { getHeapCodeStatistics, getHeapStatistics } = await import('node:v8');
    const m = process.memoryUsage();
    const code = getHeapCodeStatistics();
    const memory = { rss: m.rss, heapTotal: m.heapTotal, heapUsed: m.heapUsed, heapPhysical: getHeapStatistics().total_physical_size, external: m.external,
      code: code.code_and_metadata_size + code.bytecode_and_metadata_size };
    const t2a = performance.now();
    const b = await startEphemeral({ logLevel: 'silent' });
    await until200(b);
    const t2 = performance.now();
    await a.close();
    await b.close();
    console.log(JSON.stringify({ firstMs: t1 - t0, secondMs: t2 - t2a, memory }));`;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (c) => (out += c));
    child.stderr.on('data', (c) => (err += c));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      if (code !== 0) return reject(new Error(`startEphemeral run exited with ${code}: ${err}`));
      try {
        resolve(JSON.parse(out.trim().split('\n').pop()));
      } catch {
        reject(new Error(`startEphemeral run: unexpected output: ${out}${err}`));
      }
    });
  });
}

/** Medians of the memory figures of the in-process runs, in MB. */
function memSplit(ms) {
  const mb = (k) => (median(ms.map((m) => m[k])) / 1048576).toFixed(1);
  return `RSS ${mb('rss')}, V8 heap ${mb('heapUsed')} used of ${mb('heapTotal')} (${mb('heapPhysical')} resident), external ${mb('external')}, code and bytecode ${mb('code')} (within the heap)`;
}

/**
 * Runs the start section. `ctx`: { root (the repository), phase(name, livePids, fn),
 * log(s), runs }. Resolves to { rows, notes } in run.mjs's report format.
 */
export async function startSection(ctx) {
  const { root, phase, log, runs } = ctx;
  const main = join(root, 'dist/src/main.js');
  const none = () => [];
  const rows = [];
  const notes = [];

  const cacheHome = mkdtempSync(join(tmpdir(), 'gatehouse-bench-cache-'));
  // One start on the empty compile cache (what a fresh CI container pays), which also fills it.
  const cold = await cliRun(main, false, cacheHome);
  const cli = await phase(`start: gatehouse start --ephemeral, ${runs} fresh processes`, none, async () => {
    const r = [];
    // The first run's RSS is kept (one idle server is what the goal is about); later runs only time.
    for (let i = 0; i < runs; i++) r.push(await cliRun(main, i === 0, cacheHome));
    return r;
  });
  const inproc = await phase(`start: import('gatehouse') + startEphemeral() in ${runs} fresh processes`, none, async () => {
    const r = [];
    for (let i = 0; i < runs; i++) r.push(await inProcessRun(root));
    return r;
  });
  // RSS is measured once more on its own after the timings, in a fresh process: a steadier figure than under the timing loop.
  const idle = await cliRun(main, true, cacheHome);
  rmSync(cacheHome, { recursive: true, force: true });

  const cliVersions = median(cli.result.map((r) => r.versionsMs));
  const cliToken = median(cli.result.map((r) => r.tokenMs));
  const first = median(inproc.result.map((r) => r.firstMs));
  const second = median(inproc.result.map((r) => r.secondMs));
  const rssMB = Math.min(idle.rss.rss, cli.result[0].rss.rss) / 1024;
  const goal = (value, target) => ({ limit: target, ratio: value / target, ratioNote: '×' });
  rows.push({
    name: 'start --ephemeral → /versions 200 (ms, median)',
    value: cliVersions,
    ...goal(cliVersions, START_GOAL_MS),
    target: `< ${START_GOAL_MS} ms`,
    pass: cliVersions < START_GOAL_MS,
    foreign: [cli.foreign],
    errors: 0,
  });
  rows.push({
    name: "import + startEphemeral() → /versions 200 (ms, median)",
    value: first,
    ...goal(first, START_GOAL_MS),
    target: `< ${START_GOAL_MS} ms`,
    pass: first < START_GOAL_MS,
    foreign: [inproc.foreign],
    errors: 0,
  });
  rows.push({
    name: 'start --ephemeral idle RSS (MB)',
    value: rssMB,
    ...goal(rssMB, RSS_GOAL_MB),
    target: `< ${RSS_GOAL_MB} MB`,
    pass: rssMB < RSS_GOAL_MB,
    foreign: [cli.foreign],
    errors: 0,
  });
  const fmt = (n) => n.toFixed(0);
  const all = (xs) => xs.map(fmt).join(', ');
  notes.push(
    `start --ephemeral (${runs} runs, warm compile cache): /versions 200 after ${all(cli.result.map((r) => r.versionsMs))} ms; admin token printed after ${all(cli.result.map((r) => r.tokenMs))} ms (median ${fmt(cliToken)} ms); ` +
      `on the empty cache (one run before them): /versions after ${fmt(cold.versionsMs)} ms`,
    `startEphemeral() in a fresh process, import included (${runs} runs): ${all(inproc.result.map((r) => r.firstMs))} ms; a second server in the same process: median ${fmt(second)} ms (${all(inproc.result.map((r) => r.secondMs))})`,
    `idle RSS of start --ephemeral after 20 requests: ${fmt(idle.rss.rss / 1024)} MB (anonymous ${fmt(idle.rss.anon / 1024)} MB, file-backed ${fmt(idle.rss.file / 1024)} MB: ` +
      `the node binary and native addons, shared with other Node processes); first timing run: ${fmt(cli.result[0].rss.rss / 1024)} MB`,
    `startEphemeral() process after 20 requests (median of ${runs}; MB): ${memSplit(inproc.result.map((r) => r.memory))}`,
  );
  log(`  start: --ephemeral ${fmt(cliVersions)} ms, startEphemeral ${fmt(first)} ms (second ${fmt(second)} ms), idle RSS ${fmt(rssMB)} MB`);
  return { rows, notes };
}
