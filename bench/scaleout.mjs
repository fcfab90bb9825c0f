// The scale-out section of `npm run bench` (BENCH_ONLY=scaleout, needs BENCH_PG):
// stateless processes on one PostgreSQL database. Server CPU per whoami with
// one process taking all the load, against two processes on the same database
// sharing it (one autocannon per process, at once). CPU comes from /proc of the
// Gatehouse processes (all threads); PostgreSQL's own backends are not counted
// (they serve other developers' databases too on a shared machine).
// Goal: CPU per whoami with two processes within 10% of one process's, so
// throughput grows with cores instead of being spent on coordination.
// Two comparisons: flat out (one process at 50 connections vs two at 25 each),
// and at a fixed total rate below saturation (half the one-process maximum, all
// on one process vs split over two), which compares the same work on a machine
// that is not saturated.

import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { processCpuMs } from './lib/cpu.mjs';

const WHOAMI = '/_matrix/client/v3/account/whoami';
const PASSWORD = 'bench-password-not-secret';

async function login(url, user) {
  const res = await fetch(`${url}/_matrix/client/v3/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ type: 'm.login.password', identifier: { type: 'm.id.user', user }, password: PASSWORD }),
  });
  const body = await res.json();
  if (res.status !== 200) throw new Error(`login: ${res.status} ${JSON.stringify(body)}`);
  return body.access_token;
}

/**
 * Runs the section; resolves to `{ rows, notes }`.
 * deps: startGatehouse(overrides), stopChild, runLoad(url, opts), phase, log, cleanup(server), register(url, username)
 */
export async function scaleoutSection(deps) {
  const { startGatehouse, stopChild, runLoad, phase, log, cleanup, register, pgUrl, duration, connections } = deps;
  if (!pgUrl) return { rows: [], notes: ['scaleout: not measured (it needs BENCH_PG=postgres://...)'] };
  const url = new URL(pgUrl);
  const dbName = `gh_bench_${randomBytes(5).toString('hex')}`;
  const admin = new pg.Client({ connectionString: pgUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${dbName}`);
  const database = {
    name: 'psycopg2',
    args: { host: url.hostname, port: Number(url.port || 5432), user: decodeURIComponent(url.username), password: decodeURIComponent(url.password), database: dbName },
  };
  const servers = [];
  try {
    const a = await startGatehouse({ database });
    servers.push(a);
    const b = await startGatehouse({ database });
    servers.push(b);
    await register(a.url, 'scaleout');
    // One sign-in per process's load, both on the same account: each process sees tokens it did not issue.
    const tokens = [await login(b.url, 'scaleout'), await login(a.url, 'scaleout')];
    const load = (server, token, conns) => runLoad(server.url, { path: WHOAMI, headers: { authorization: `Bearer ${token}` }, connections: conns, duration });
    const live = () => servers.map((s) => s.child.pid);
    const cpu = () => servers.map((s) => processCpuMs(s.child.pid));

    await Promise.all([runLoad(a.url, { path: WHOAMI, headers: { authorization: `Bearer ${tokens[0]}` }, connections, duration: 1 }), runLoad(b.url, { path: WHOAMI, headers: { authorization: `Bearer ${tokens[1]}` }, connections, duration: 1 })]);

    let c0 = cpu();
    const one = await phase(`scaleout: one process, ${connections} connections, ${duration} s`, live, () => load(a, tokens[0], connections));
    let c1 = cpu();
    const oneCpu = c1[0] - c0[0] + (c1[1] - c0[1]);
    const oneUs = (oneCpu * 1000) / one.result.ok;

    const half = Math.max(1, Math.round(connections / 2));
    c0 = cpu();
    const two = await phase(`scaleout: two processes, ${half} connections each, ${duration} s`, live, () => Promise.all([load(a, tokens[0], half), load(b, tokens[1], half)]));
    c1 = cpu();
    const twoCpu = c1[0] - c0[0] + (c1[1] - c0[1]);
    const twoOk = two.result[0].ok + two.result[1].ok;
    const twoUs = (twoCpu * 1000) / twoOk;
    // The same total rate, below saturation: half the one-process maximum, all on A, then split over A and B.
    // Flat out, each process of two serves fewer requests per event-loop turn and the 2 vCPUs are shared with the
    // load generators and PostgreSQL; at a fixed rate both configurations do the same work on an unsaturated machine.
    const rate = Math.max(100, Math.round(one.result.perSecond / 2));
    const paced = (server, token, r) => runLoad(server.url, { path: WHOAMI, headers: { authorization: `Bearer ${token}` }, connections: 10, overallRate: r, duration });
    c0 = cpu();
    const oneP = await phase(`scaleout: one process at ${rate} req/s, ${duration} s`, live, () => paced(a, tokens[0], rate));
    c1 = cpu();
    const onePUs = ((c1[0] - c0[0] + (c1[1] - c0[1])) * 1000) / oneP.result.ok;
    c0 = cpu();
    const twoP = await phase(`scaleout: two processes at ${Math.round(rate / 2)} req/s each, ${duration} s`, live, () =>
      Promise.all([paced(a, tokens[0], Math.round(rate / 2)), paced(b, tokens[1], Math.round(rate / 2))]),
    );
    c1 = cpu();
    const twoPOk = twoP.result[0].ok + twoP.result[1].ok;
    const twoPUs = ((c1[0] - c0[0] + (c1[1] - c0[1])) * 1000) / twoPOk;
    // What each of the two processes sees, on one process alone: half the rate. If CPU per request rises here as
    // much as with two processes, the cost is the lighter load per process (less work per event-loop turn), not
    // anything the processes do to each other.
    c0 = cpu();
    const halfP = await phase(`scaleout: one process at ${Math.round(rate / 2)} req/s, ${duration} s`, live, () => paced(a, tokens[0], Math.round(rate / 2)));
    c1 = cpu();
    const halfPUs = ((c1[0] - c0[0] + (c1[1] - c0[1])) * 1000) / halfP.result.ok;

    const errors = [one.result, oneP.result, halfP.result, ...two.result, ...twoP.result].reduce((s, r) => s + r.non2xx + r.errors, 0);

    const rows = [
      {
        name: 'scaleout: server CPU per whoami, two processes (µs; limit = one process)',
        value: twoUs,
        limit: oneUs,
        ratio: twoUs / oneUs,
        ratioNote: '×',
        target: '≤ 1.10×',
        pass: twoUs <= 1.1 * oneUs,
        foreign: [two.foreign, one.foreign],
        errors,
      },
      {
        name: `scaleout: server CPU per whoami at ${rate} req/s in all, two processes (µs; limit = one)`,
        value: twoPUs,
        limit: onePUs,
        ratio: twoPUs / onePUs,
        ratioNote: '×',
        target: '≤ 1.10×',
        pass: twoPUs <= 1.1 * onePUs,
        foreign: [twoP.foreign, oneP.foreign],
        errors: 0,
      },
    ];
    const notes = [
      `scaleout (PostgreSQL, one database): one process ${one.result.perSecond.toFixed(0)} req/s at ${(oneCpu / 10 / duration).toFixed(0)}% of a core, ` +
        `${oneUs.toFixed(0)} µs per whoami; two processes ${(twoOk / duration).toFixed(0)} req/s together (${two.result[0].perSecond.toFixed(0)} + ${two.result[1].perSecond.toFixed(0)}) ` +
        `at ${(twoCpu / 10 / duration).toFixed(0)}% of a core, ${twoUs.toFixed(0)} µs per whoami; p99 one ${one.result.latency.p99} ms, two ${two.result[0].latency.p99} / ${two.result[1].latency.p99} ms`,
      `scaleout at ${rate} req/s in all: one process ${onePUs.toFixed(0)} µs per whoami (p99 ${oneP.result.latency.p99} ms, ${oneP.result.perSecond.toFixed(0)} req/s served); ` +
        `two processes ${twoPUs.toFixed(0)} µs (p99 ${twoP.result[0].latency.p99} / ${twoP.result[1].latency.p99} ms, ${(twoPOk / duration).toFixed(0)} req/s served); ` +
        `one process alone at half that rate (what each of the two sees): ${halfPUs.toFixed(0)} µs per whoami`,
    ];
    return { rows, notes };
  } finally {
    for (const s of servers) {
      await stopChild(s.child);
      cleanup(s);
    }
    await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`).catch((e) => log(`  could not drop ${dbName}: ${e.message}`));
    await admin.end();
  }
}
