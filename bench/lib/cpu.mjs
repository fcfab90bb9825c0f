// CPU accounting from /proc (Linux), to tell how much of the machine was
// busy with something other than this benchmark during a phase: other
// processes on the same cores are the main source of noise.

import { readdirSync, readFileSync } from 'node:fs';

function read(path) {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null;
  }
}

/** Ticks (USER_HZ) the whole machine spent busy, across all cores. */
function machineBusyTicks() {
  const line = read('/proc/stat')?.split('\n')[0];
  if (!line) return null;
  const f = line.trim().split(/\s+/).slice(1).map(Number);
  const [user, nice, system, idle, iowait = 0, irq = 0, softirq = 0, steal = 0] = f;
  return { busy: user + nice + system + irq + softirq + steal, total: user + nice + system + idle + iowait + irq + softirq + steal };
}

/** utime+stime (+ cutime+cstime of waited-for children when `withChildren`) of one process, in ticks. */
function processTicks(pid, withChildren) {
  const s = read(`/proc/${pid}/stat`);
  if (!s) return 0;
  // Fields after the parenthesised command name (which may contain spaces).
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ').map(Number);
  // f[0] is field 3 (state); utime is field 14 → f[11].
  const own = f[11] + f[12];
  return withChildren ? own + f[13] + f[14] : own;
}

/**
 * A snapshot of the machine and of "our" CPU: this process, every child it
 * has waited for (finished load generators), and the live processes given.
 */
export function cpuSnapshot(livePids = []) {
  const m = machineBusyTicks();
  if (!m) return null;
  let ours = processTicks(process.pid, true);
  for (const pid of livePids) ours += processTicks(pid, false);
  return { ...m, ours };
}

/** Share of the machine's CPU (0..1 of all cores) used by other processes between two snapshots. */
export function foreignShare(a, b) {
  if (!a || !b) return null;
  const total = b.total - a.total;
  if (total <= 0) return null;
  const foreign = b.busy - a.busy - (b.ours - a.ours);
  return Math.max(0, foreign / total);
}

/** CPU time (user + system, all threads) a live process has used so far, in ms. USER_HZ is 100 on Linux. */
export function processCpuMs(pid) {
  return processTicks(pid, false) * 10;
}

/**
 * CPU time of a live process by kind of thread, in ms: Node's main thread
 * (JavaScript, the event loop), libuv's thread pool (sqlite3 queries, argon2,
 * async crypto and fs), V8's helpers (GC, compilation) and the rest.
 */
export function threadCpuMs(pid) {
  const out = { main: 0, threadpool: 0, v8: 0, other: 0 };
  let tids = [];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tids) {
    const comm = read(`/proc/${pid}/task/${tid}/comm`)?.trim() ?? '';
    const ms = processTicks(`${pid}/task/${tid}`, false) * 10;
    const kind = comm === 'MainThread' || tid === String(pid) ? 'main' : comm === 'libuv-worker' ? 'threadpool' : comm.startsWith('V8') ? 'v8' : 'other';
    out[kind] += ms;
  }
  return out;
}
