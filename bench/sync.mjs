// The /sync section of `npm run bench` (BENCH_ONLY=sync runs it alone).
// Gatehouse holds many idle long-polls open at once; this measures what each
// one costs and how fast one of them wakes:
//
//   - server RSS before and while N syncs wait (per waiting sync = delta / N),
//     read from /proc/<pid>/status;
//   - event-loop delay while they wait, seen from outside: the p99 of a cheap
//     unrelated request (GET /_matrix/client/versions) at a fixed rate, with
//     0 and with N syncs waiting (the 0-waiting figure is the row's limit);
//   - server CPU while they wait idle;
//   - to-device latency: with N waiting, M messages sent one at a time to
//     distinct waiting devices, timed from the start of the PUT /sendToDevice
//     to the recipient's sync response (which is then re-issued at once, as
//     a client does).
//
// One user per device (one waiting sync each): the notifier is keyed by user,
// so a user with several devices wakes all of their syncs; one device per user
// is the case where one message wakes exactly one request.
//
// The clients live in the orchestrating process (1000 idle sockets cost it
// nothing measurable; each wake-up is one request); the /versions load runs
// in its own child (bench/load.mjs), as the other phases do.

import { readFileSync } from 'node:fs';
import { Agent, request as httpRequest } from 'node:http';
import { performance } from 'node:perf_hooks';
import { processCpuMs } from './lib/cpu.mjs';

const PASSWORD = 'bench-password-not-secret';
const SETUP_CONCURRENCY = 8;
const PROBE_RATE = 200; // GET /versions per second
const PROBE_CONNECTIONS = 4;
const DELIVERY_TIMEOUT_MS = 10_000; // a message not delivered by then counts as lost

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** VmRSS of a live process, in KiB. */
function rssKiB(pid) {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : null;
}

/** Median of `n` RSS samples `gapMs` apart (RSS moves with GC; one sample is noisy). */
async function settledRss(pid, n = 7, gapMs = 200) {
  const s = [];
  for (let i = 0; i < n; i++) {
    s.push(rssKiB(pid));
    if (i < n - 1) await sleep(gapMs);
  }
  s.sort((a, b) => a - b);
  return { median: s[Math.floor(n / 2)], min: s[0], max: s[n - 1] };
}

/** Waits until the server's CPU use stays under 2% of a core for two 250 ms windows (at most `capMs`). */
async function quiet(pid, capMs = 10_000) {
  const end = Date.now() + capMs;
  let calm = 0;
  while (Date.now() < end && calm < 2) {
    const c0 = processCpuMs(pid);
    await sleep(250);
    calm = processCpuMs(pid) - c0 <= 5 ? calm + 1 : 0;
  }
}

function percentile(sorted, p) {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

/** Runs `fn` over `items` with at most `k` in flight. */
async function pool(items, k, fn) {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(k, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        await fn(items[i], i);
      }
    }),
  );
}

/** A client over one keep-alive agent with no socket limit (node:http, not fetch: explicit sockets). */
function client(baseUrl) {
  const agent = new Agent({ keepAlive: true, maxSockets: Infinity, maxFreeSockets: Infinity });
  const u = new URL(baseUrl);
  function req(method, path, { token, body } = {}) {
    return new Promise((resolve, reject) => {
      const data = body === undefined ? null : JSON.stringify(body);
      const headers = {};
      if (token) headers.authorization = `Bearer ${token}`;
      if (data !== null) {
        headers['content-type'] = 'application/json';
        headers['content-length'] = Buffer.byteLength(data);
      }
      const r = httpRequest({ host: u.hostname, port: u.port, method, path, headers, agent }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c) => (text += c));
        res.on('end', () => {
          let json = null;
          try {
            json = JSON.parse(text);
          } catch {
            /* not JSON */
          }
          if (res.statusCode !== 200) reject(new Error(`${method} ${path.split('?')[0]}: ${res.statusCode} ${text.slice(0, 200)}`));
          else resolve(json);
        });
      });
      r.on('error', reject);
      if (data !== null) r.write(data);
      r.end();
    });
  }
  return { req, agent };
}

/**
 * Runs the section. `ctx` comes from run.mjs: startGatehouse(overrides),
 * stopChild(child), runLoad(url, options) (bench/load.mjs in a child),
 * phase(name, livePids, fn, serverPid), log(s), and the sizes.
 * Returns { rows, notes } in run.mjs's table format.
 */
export async function syncSection(ctx) {
  const { startGatehouse, stopChild, runLoad, phase, log, waiting: N, messages: M, probeSeconds, syncTimeoutMs } = ctx;
  // argon2 at its cheapest allowed parameters: only the seeding of N accounts
  // hashes passwords, and nothing measured here does.
  const gh = await startGatehouse({ argon2: { memory_cost: 1024, time_cost: 1, parallelism: 1 } });
  const pid = gh.child.pid;
  const live = () => [pid];
  const { req, agent } = client(gh.url);
  const rows = [];
  const notes = [];
  try {
    // Seeding: N recipients and one sender, through POST /register (m.login.dummy), SETUP_CONCURRENCY at a time.
    log(`· sync: registering ${N} users + 1 sender, and an initial sync for each`);
    const t0 = performance.now();
    const users = Array.from({ length: N }, (_, i) => ({ localpart: `sync${i}` }));
    await pool(users, SETUP_CONCURRENCY, async (u) => {
      const r = await req('POST', '/_matrix/client/v3/register', { body: { username: u.localpart, password: PASSWORD, auth: { type: 'm.login.dummy' } } });
      Object.assign(u, { userId: r.user_id, deviceId: r.device_id, token: r.access_token });
    });
    const sender = await req('POST', '/_matrix/client/v3/register', { body: { username: 'syncsender', password: PASSWORD, auth: { type: 'm.login.dummy' } } });
    // The initial sync (no since) answers at once with the token to wait from.
    await pool(users, SETUP_CONCURRENCY, async (u) => {
      u.since = (await req('GET', '/_matrix/client/v3/sync?timeout=0', { token: u.token })).next_batch;
    });
    log(`  seeded in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

    const probe = { path: '/_matrix/client/versions', connections: PROBE_CONNECTIONS, overallRate: PROBE_RATE, duration: probeSeconds };
    await runLoad(gh.url, { ...probe, duration: 1 }); // warm-up
    await quiet(pid);
    const rss0 = await settledRss(pid);
    const idle0 = await phase(`sync: GET /versions at ${PROBE_RATE} req/s, no sync waiting, ${probeSeconds} s`, live, () => runLoad(gh.url, probe), pid);

    // N long-polls. Each answered sync is checked and re-issued at once from its next_batch.
    const expect = new Map(); // userId → { resolve, marker }
    let early = 0; // answers nobody asked for (a sync that woke with nothing for it, or timed out)
    let failures = 0;
    let stopping = false;
    const inFlight = new Set();
    function poll(u) {
      const p = req('GET', `/_matrix/client/v3/sync?timeout=${syncTimeoutMs}&since=${encodeURIComponent(u.since)}`, { token: u.token }).then(
        (body) => {
          const at = performance.now();
          inFlight.delete(p);
          u.since = body.next_batch;
          const markers = (body.to_device?.events ?? []).map((e) => e.content?.marker);
          const waiter = expect.get(u.userId);
          if (waiter && markers.includes(waiter.marker)) {
            expect.delete(u.userId);
            waiter.resolve(at);
          } else early++;
          if (!stopping) poll(u);
        },
        () => {
          inFlight.delete(p);
          if (!stopping) failures++;
        },
      );
      inFlight.add(p);
    }
    log(`· sync: opening ${N} long-polls (timeout ${syncTimeoutMs / 1000} s)`);
    const cpuOpen0 = processCpuMs(pid);
    for (const u of users) poll(u);
    await quiet(pid);
    const openCpuMs = processCpuMs(pid) - cpuOpen0;
    const cpuIdle0 = processCpuMs(pid);
    const rss1 = await settledRss(pid, 11, 200);
    const idleCpuMsPerS = (processCpuMs(pid) - cpuIdle0) / 2;
    const sockets = Object.values(agent.sockets).reduce((n, list) => n + list.length, 0);
    const waiting1 = await phase(`sync: GET /versions at ${PROBE_RATE} req/s, ${N} syncs waiting, ${probeSeconds} s`, live, () => runLoad(gh.url, probe), pid);
    const rss1b = await settledRss(pid);

    // To-device latency: M messages, one at a time, to M distinct waiting devices.
    const order = [...users];
    for (let i = order.length - 1; i > 0; i--) {
      const j = Math.floor(Math.random() * (i + 1));
      [order[i], order[j]] = [order[j], order[i]];
    }
    order.length = Math.min(M, N);
    const delivery = [];
    const sendRtt = [];
    let lost = 0;
    const tdStart = performance.now();
    const td = await phase(`sync: ${order.length} to-device messages, ${N} syncs waiting`, live, async () => {
      for (let i = 0; i < order.length; i++) {
        const u = order[i];
        const marker = `m${i}`;
        let timer;
        const delivered = new Promise((resolve) => {
          expect.set(u.userId, { resolve, marker });
          timer = setTimeout(() => resolve(null), DELIVERY_TIMEOUT_MS);
        });
        const start = performance.now();
        await req('PUT', `/_matrix/client/v3/sendToDevice/m.bench.ping/txn${i}`, {
          token: sender.access_token,
          body: { messages: { [u.userId]: { [u.deviceId]: { marker } } } },
        });
        sendRtt.push(performance.now() - start);
        const at = await delivered;
        clearTimeout(timer);
        if (at === null) {
          lost++;
          expect.delete(u.userId);
        } else delivery.push(at - start);
      }
    }, pid);
    const tdSeconds = (performance.now() - tdStart) / 1000;
    const tdCpuMs = td.cpuMs;
    const earlyBeforeStop = early;

    stopping = true;
    agent.destroy(); // the clients go away: the server must drop their waits
    await Promise.allSettled([...inFlight]);
    await quiet(pid);
    const rss2 = await settledRss(pid);
    // The same probe again with none waiting, so that machine noise between the first two probes shows.
    const idle2 = await phase(`sync: GET /versions at ${PROBE_RATE} req/s, none waiting again, ${probeSeconds} s`, live, () => runLoad(gh.url, probe), pid);

    delivery.sort((a, b) => a - b);
    sendRtt.sort((a, b) => a - b);
    const perSyncKiB = (rss1.median - rss0.median) / N;
    const fmt = (n, d = 1) => (n === null || n === undefined || Number.isNaN(n) ? '—' : n.toFixed(d));
    const none = { target: '—', pass: null, limit: null, ratio: null };
    rows.push({ name: `RSS per waiting /sync (KiB), ${N} waiting`, value: perSyncKiB, ...none, foreign: [waiting1.foreign], errors: failures });
    rows.push({
      name: `GET /versions p99 (ms) at ${PROBE_RATE} req/s, ${N} syncs waiting`,
      value: waiting1.result.latency.p99,
      limit: idle0.result.latency.p99,
      ratio: waiting1.result.latency.p99 / idle0.result.latency.p99,
      ratioNote: '×',
      target: '—',
      pass: null,
      foreign: [waiting1.foreign, idle0.foreign],
      errors: waiting1.result.non2xx + waiting1.result.errors,
    });
    rows.push({ name: `to-device send → delivery p50 (ms), ${N} waiting`, value: percentile(delivery, 50), ...none, foreign: [td.foreign], errors: lost });
    rows.push({ name: `to-device send → delivery p99 (ms), ${N} waiting`, value: percentile(delivery, 99), ...none, foreign: [td.foreign], errors: lost });

    notes.push(
      `sync: server RSS ${fmt(rss0.median / 1024)} MiB before, ${fmt(rss1.median / 1024)} MiB with ${N} syncs waiting ` +
        `(samples ${fmt(rss1.min / 1024)}–${fmt(rss1.max / 1024)}; ${fmt(rss1b.median / 1024)} after the /versions probe), ` +
        `${fmt(rss2.median / 1024)} MiB after the clients closed their sockets; ${sockets} client sockets open while waiting`,
      `sync: opening ${N} long-polls cost ${fmt(openCpuMs, 0)} ms of server CPU (${fmt((openCpuMs * 1000) / N, 0)} µs each); ` +
        `while they waited idle the server used ${fmt(idleCpuMsPerS, 0)} ms of CPU per second`,
      `sync: GET /versions at ${PROBE_RATE} req/s: no sync waiting p50 ${idle0.result.latency.p50} ms / p99 ${idle0.result.latency.p99} ms / max ${idle0.result.latency.max} ms; ` +
        `${N} waiting p50 ${waiting1.result.latency.p50} ms / p99 ${waiting1.result.latency.p99} ms / max ${waiting1.result.latency.max} ms ` +
        `(served ${fmt(waiting1.result.perSecond, 0)} of ${PROBE_RATE} req/s); none waiting again, after the clients closed: ` +
        `p50 ${idle2.result.latency.p50} ms / p99 ${idle2.result.latency.p99} ms / max ${idle2.result.latency.max} ms (other load ${Math.round((idle2.foreign ?? 0) * 100)}%)`,
      `sync: to-device: ${delivery.length} of ${order.length} delivered (${lost} not within ${DELIVERY_TIMEOUT_MS / 1000} s); send → delivery ` +
        `p50 ${fmt(percentile(delivery, 50))} / p90 ${fmt(percentile(delivery, 90))} / p99 ${fmt(percentile(delivery, 99))} / max ${fmt(delivery.at(-1))} ms; ` +
        `the PUT itself p50 ${fmt(percentile(sendRtt, 50))} / p99 ${fmt(percentile(sendRtt, 99))} ms; ` +
        `${fmt(tdCpuMs / order.length, 1)} ms of server CPU per message (send + wake + sync read + re-issued sync) over ${fmt(tdSeconds)} s`,
      `sync: a fresh server of its own (SQLite, same config but argon2 m=1024 KiB t=1 p=1, which only the seeding uses); ${N} users with one device each, one long-poll per device; ` +
        `${earlyBeforeStop} sync responses carried nothing the bench sent (woken for nothing, or timed out); ${failures} sync requests failed`,
    );
  } finally {
    agent.destroy();
    await stopChild(gh.child);
    ctx.cleanup(gh);
  }
  return { rows, notes };
}
