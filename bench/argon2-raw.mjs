// The physical limit for password hashing: raw argon2 throughput with the
// same package, the same parameters and the same libuv thread-pool size as
// the server, keeping `concurrency` operations in flight (as many as the
// HTTP load generator keeps requests in flight).
// Usage: UV_THREADPOOL_SIZE=N node bench/argon2-raw.mjs '<json {op, encoded, password, concurrency, duration, delay}>'
//   op: "verify" (checks `password` against `encoded`) or "hash" (hashes with
//   the parameters read from `encoded`). Prints one JSON line: {ops, duration, perSecond}.

import argon2 from 'argon2';
import { argon2ParamsOf } from './lib/argon2-params.mjs';

const { op, encoded, password, concurrency, duration, delay = 0 } = JSON.parse(process.argv[2]);

const a = argon2ParamsOf(encoded);
const params = { type: argon2[a.type], memoryCost: a.m, timeCost: a.t, parallelism: a.p };

if (delay > 0) await new Promise((r) => setTimeout(r, delay * 1000));

const run =
  op === 'verify'
    ? async () => {
        if (!(await argon2.verify(encoded, password))) throw new Error('verify returned false');
      }
    : async () => {
        await argon2.hash(password, params);
      };

const cpu0 = process.cpuUsage();
const start = performance.now();
const end = start + duration * 1000;
let ops = 0;
async function lane() {
  while (performance.now() < end) {
    await run();
    if (performance.now() <= end) ops++;
  }
}
await Promise.all(Array.from({ length: concurrency }, lane));
const cpu = process.cpuUsage(cpu0);
process.stdout.write(
  `${JSON.stringify({ op, params: { m: params.memoryCost, t: params.timeCost, p: params.parallelism }, ops, duration, perSecond: ops / duration, cpuMs: (cpu.user + cpu.system) / 1000 })}\n`,
);
