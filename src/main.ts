#!/usr/bin/env node
// The `gatehouse` executable. `start --ephemeral` is started over and over (a
// developer's loop, a client's test run), and most of its start is Node
// compiling the server's modules: for it, Node's compile cache is turned on
// (~30 ms of a ~260 ms start on a warm cache) in a folder of the user's own
// (`$XDG_CACHE_HOME/gatehouse/compile-cache`, else `~/.cache/...`; never a
// shared /tmp folder: a cache others can write is code others can run).
// The cache must be on before the modules are loaded, hence this file loads
// the commands (src/cli/gatehouse.ts) itself, after it. Other commands, and
// a production `start`, leave the cache to NODE_COMPILE_CACHE as Node does.
// For the same reason `start --ephemeral` starts with V8's optimizing
// compilers paused (src/cli/start-flags.ts), also before the modules load.

import { lstatSync, mkdirSync } from 'node:fs';
import { enableCompileCache } from 'node:module';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { pauseForStart } from './cli/start-flags.js';

function privateCompileCache(): void {
  try {
    const base = process.env.XDG_CACHE_HOME || join(homedir(), '.cache');
    const dir = join(base, 'gatehouse', 'compile-cache');
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const st = lstatSync(dir);
    // Ours, a real folder, and nobody else may write in it; else no cache.
    if (!st.isDirectory() || (process.getuid && st.uid !== process.getuid()) || (st.mode & 0o022) !== 0) return;
    // Does nothing when NODE_COMPILE_CACHE already turned it on, or NODE_DISABLE_COMPILE_CACHE is set.
    enableCompileCache(dir);
  } catch {
    // A read-only or missing home: start without the cache.
  }
}

if (process.argv[2] === 'start' && process.argv.includes('--ephemeral')) {
  pauseForStart();
  privateCompileCache();
}
await import('./cli/gatehouse.js');
