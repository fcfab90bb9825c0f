// Summarises a V8 CPU profile (node --cpu-prof) of the server: self time by
// package / source file / function, and inclusive time of a few layers of the
// request path, so that one can see where a request's time goes.
// Usage: node bench/profile-summary.mjs <dir-or-.cpuprofile> [top=25]

import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

const target = process.argv[2];
const top = Number(process.argv[3] ?? 25);
if (!target) {
  process.stderr.write('usage: node bench/profile-summary.mjs <dir-or-.cpuprofile> [top]\n');
  process.exit(2);
}
const file = statSync(target).isDirectory()
  ? join(
      target,
      readdirSync(target)
        .filter((f) => f.endsWith('.cpuprofile'))
        .sort()
        .pop(),
    )
  : target;
const profile = JSON.parse(readFileSync(file, 'utf8'));

// Self time per node, from the samples and their time deltas.
const selfUs = new Map();
for (let i = 0; i < profile.samples.length; i++) {
  const id = profile.samples[i];
  selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
}
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const parent = new Map();
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

function where(cf) {
  const url = cf.url || '';
  if (!url) return cf.functionName.startsWith('(') ? cf.functionName : '(native)';
  if (url.startsWith('node:')) return url;
  const nm = url.lastIndexOf('node_modules/');
  if (nm >= 0) {
    const rest = url.slice(nm + 'node_modules/'.length).split('/');
    return rest[0].startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0];
  }
  const dist = url.indexOf('/dist/');
  return dist >= 0 ? url.slice(dist + 6) : url;
}

const total = [...selfUs.values()].reduce((a, b) => a + b, 0);
const idle = [...selfUs].filter(([id]) => byId.get(id).callFrame.functionName === '(idle)').reduce((a, [, v]) => a + v, 0);
const busy = total - idle;

function table(title, map, n = top) {
  const rows = [...map].sort((a, b) => b[1] - a[1]).slice(0, n);
  console.log(`\n${title}`);
  for (const [k, v] of rows) console.log(`${((v / busy) * 100).toFixed(1).padStart(6)}%  ${(v / 1000).toFixed(0).padStart(7)} ms  ${k}`);
}

const byPlace = new Map();
const byFn = new Map();
for (const [id, us] of selfUs) {
  const cf = byId.get(id).callFrame;
  if (cf.functionName === '(idle)') continue;
  const w = where(cf);
  byPlace.set(w, (byPlace.get(w) ?? 0) + us);
  const fn = `${cf.functionName || '(anonymous)'}  ${w}:${cf.lineNumber + 1}`;
  byFn.set(fn, (byFn.get(fn) ?? 0) + us);
}

// Inclusive time: a sample counts once for every distinct place on its stack.
const inclusive = new Map();
for (const [id, us] of selfUs) {
  if (byId.get(id).callFrame.functionName === '(idle)') continue;
  const seen = new Set();
  for (let cur = id; cur !== undefined; cur = parent.get(cur)) {
    const w = where(byId.get(cur).callFrame);
    if (seen.has(w)) continue;
    seen.add(w);
    inclusive.set(w, (inclusive.get(w) ?? 0) + us);
  }
}

console.log(`${file}`);
console.log(`sampled ${(total / 1e6).toFixed(1)} s; busy (not idle) ${(busy / 1e6).toFixed(1)} s = 100%`);
table('self time by package / file', byPlace);
table('inclusive time by package / file (a sample counts for every place on its stack)', inclusive);
table('self time by function', byFn);
