// V8 settings for the start of `gatehouse start --ephemeral` only (issue 15:
// idle RSS < 80 MB; docs/benchmarks.md "idle RSS, fourth round"). Of an idle
// ephemeral server's ~88 MB, ~8 MB were pages of the node binary holding
// V8's optimizing compilers (Maglev, TurboFan), touched only because start-up
// code (config, schema, routes: run once) got hot enough to be optimized, and
// ~6 MB a young generation grown to 16 MB by the start's allocations. So,
// while the server starts, nothing is optimized and the young generation does
// not grow; once it serves, both are back at V8's defaults: code hot under
// load is optimized and the young generation grows as before (whoami req/s
// unchanged, measured). Idle after start: 88 → 73 MB; start time unchanged.
//
// `startEphemeral()` runs in its caller's process and never calls these: a
// library does not change its host's V8 flags. A production `start` neither.
// V8 flags set after start-up are Node's "use with care" (v8.setFlagsFromString);
// these three are read each time V8 decides to optimize or grow, which is
// what makes them work here, and the process is a throwaway test server.

import { setFlagsFromString } from 'node:v8';

// Flags a user may have set (NODE_OPTIONS, node's own arguments): then theirs stand and nothing is paused.
const OURS = /(?:^|\s)--(?:no-)?(?:maglev|turbofan|opt|jitless|lite-mode|semi-space-growth-factor)(?=[\s=]|$)/;

// Maglev exists only where V8 was built with it (x64, arm64): elsewhere, leave its flag alone.
const hasMaglev = Boolean((process.config.variables as Record<string, unknown>).v8_enable_maglev);

let paused = false;

/**
 * Turns V8's optimizing compilers off and stops the young generation growing,
 * unless the user set one of those flags. Call before the server's modules
 * load. Returns whether it did.
 */
export function pauseForStart(): boolean {
  const given = `${process.execArgv.join(' ')} ${process.env.NODE_OPTIONS ?? ''}`.replaceAll('_', '-');
  if (paused || OURS.test(given)) return false;
  if (hasMaglev) setFlagsFromString('--no-maglev');
  setFlagsFromString('--no-turbofan');
  setFlagsFromString('--semi-space-growth-factor=1');
  paused = true;
  return true;
}

/** Undoes {@link pauseForStart} (V8's defaults); once the server serves. Does nothing if it was not paused. */
export function resumeAfterStart(): void {
  if (!paused) return;
  paused = false;
  if (hasMaglev) setFlagsFromString('--maglev');
  setFlagsFromString('--turbofan');
  setFlagsFromString('--semi-space-growth-factor=2');
}
