// `start --ephemeral` starts with V8's optimizing compilers paused and turns
// them back on once it serves (src/cli/start-flags.ts; issue 15, idle RSS
// < 80 MB). Seen from outside through `--trace-opt`, which prints every
// optimized compile on stdout. Its lines are buffered by the C library (they
// reach a pipe only when the process exits), so each case is its own process
// and is counted after it has exited. `startEphemeral()` runs in its caller's
// process and must leave that process's V8 flags as they were.

import { describe, expect, it } from 'vitest';
import { runNode, startEphemeralCli } from '../support/cli.js';

const ROOT = new URL('../../', import.meta.url).pathname;

interface Compiles {
  maglev: number;
  turbofan: number;
  whoami: number;
}

/**
 * Runs `node <nodeFlags> --trace-opt main.js start --ephemeral --port 0`; once
 * it has printed its admin token, sends `requests` whoami requests (one at a
 * time), then stops it; counts the optimized compiles it reported.
 */
async function traceStart(nodeFlags: string[], requests: number): Promise<Compiles> {
  const hs = await startEphemeralCli([...nodeFlags, '--trace-opt'], { NODE_OPTIONS: undefined, GATEHOUSE_CONFIG: undefined });
  let out: string;
  try {
    const started = hs.output();
    const base = /serving \S+ at (http:\/\/\S+?)\/?\n/.exec(started)?.[1];
    const token = /admin access token: (\S+)\n/.exec(started)?.[1];
    expect(base && token, started).toBeTruthy();
    let ok = 0;
    for (let i = 0; i < requests; i++) {
      const r = await fetch(`${base}/_matrix/client/v3/account/whoami`, { headers: { authorization: `Bearer ${token}` } });
      if ((await r.json()).user_id === '@admin:localhost') ok++;
    }
    expect(ok).toBe(requests);
  } finally {
    // SIGTERM: the server closes and exits, which flushes the trace lines.
    out = await hs.stop();
  }
  const count = (re: RegExp) => out.split('\n').filter((l) => l.startsWith('[completed compiling') && re.test(l)).length;
  return { maglev: count(/target MAGLEV/), turbofan: count(/target TURBOFAN/), whoami: requests };
}

describe('start --ephemeral: V8 optimizing compilers paused while it starts', () => {
  it('optimizes nothing of its own while starting and idle (a start with the pause overridden optimizes dozens of functions)', async () => {
    const paused = await traceStart([], 0);
    // The one or two compiles left happen while Node loads main.js itself (path helpers), before any Gatehouse code runs.
    expect(paused.turbofan).toBe(0);
    expect(paused.maglev).toBeLessThanOrEqual(5);
    // `--turbofan` on node's command line is the user's choice: then nothing is paused.
    const unpaused = await traceStart(['--turbofan'], 0);
    expect(unpaused.maglev + unpaused.turbofan).toBeGreaterThan(20);
  });

  it('optimizes again once it serves: code hot under requests is compiled', async () => {
    const served = await traceStart([], 1500);
    expect(served.maglev + served.turbofan).toBeGreaterThan(10);
  });
});

describe('startEphemeral() leaves its caller V8 flags alone', () => {
  it('a function made hot after startEphemeral() and close() is optimized by TurboFan', async () => {
    const { code, stdout, stderr } = await runNode(
      [
        '--allow-natives-syntax',
        '--input-type=module',
        '-e',
        `
        const { startEphemeral } = await import('gatehouse');
        const hs = await startEphemeral({ logLevel: 'silent' });
        const versions = (await fetch(hs.baseUrl + '/_matrix/client/versions')).status;
        await hs.close();
        const status = new Function('f', 'return %GetOptimizationStatus(f)');
        function hot(a) { let s = 0; for (let i = 0; i < a.length; i++) s += a[i] * 2; return s; }
        const arr = Array.from({ length: 100 }, (_, i) => i);
        let optimized = false;
        // Hot enough for TurboFan within a few hundred thousand calls; bit 16 is "optimized", 64 "TurboFan".
        for (let round = 0; round < 50 && !optimized; round++) {
          for (let i = 0; i < 20000; i++) hot(arr);
          optimized = (status(hot) & 64) !== 0;
        }
        console.log(JSON.stringify({ versions, optimized }));`,
      ],
      { cwd: ROOT, timeoutMs: 30_000 },
    );
    expect(code, stderr).toBe(0);
    expect(JSON.parse(stdout.trim().split('\n').pop()!)).toEqual({ versions: 200, optimized: true });
  });
});
