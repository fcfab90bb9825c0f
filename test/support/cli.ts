// Runs the compiled `gatehouse` command (dist/src/main.js) as an admin would,
// with $GATEHOUSE_CONFIG cleared so that only the arguments name a config;
// and any other short-lived Node process a test needs (`runNode`).

import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';

export const MAIN = new URL('../../dist/src/main.js', import.meta.url).pathname;

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  /** Written to standard input, which then closes. */
  stdin?: string;
  cwd?: string;
  /** Added to (or, as undefined, removed from) the environment. */
  env?: Record<string, string | undefined>;
  /** Milliseconds before the command is killed and the test fails (default 15 s). */
  timeoutMs?: number;
}

/** A `gatehouse start --ephemeral` process that has printed its admin token (see `startEphemeralCli`). */
export interface EphemeralCli {
  /** Its stdout and stderr so far. */
  output(): string;
  /** SIGTERM, then waits for it to exit (it flushes what it buffered); its whole output. */
  stop(): Promise<string>;
}

/**
 * Runs `node <nodeFlags> main.js start --ephemeral --port 0` with `env` (added
 * to, or as undefined removed from, the environment) until it has printed its
 * admin token or exited. Killed after 30 s whatever happens.
 */
export async function startEphemeralCli(nodeFlags: string[], env: Record<string, string | undefined>): Promise<EphemeralCli> {
  const child = spawn(process.execPath, [...nodeFlags, MAIN, 'start', '--ephemeral', '--port', '0'], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr.on('data', (c: Buffer) => (out += c.toString()));
  const exited = new Promise((r) => child.once('exit', r));
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  const stop = async () => {
    child.kill('SIGTERM');
    await exited;
    clearTimeout(timer);
    return out;
  };
  while (!/admin access token: \S+\n/.test(out) && child.exitCode === null) await new Promise((r) => setTimeout(r, 10));
  return { output: () => out, stop };
}

export function runGatehouse(args: string[], opts: CliOptions = {}): Promise<CliRun> {
  return runNode([MAIN, ...args], { ...opts, env: { GATEHOUSE_CONFIG: undefined, ...opts.env } });
}

/**
 * Runs `node <nodeArgs>` (the test's own Node) until it exits: its exit code
 * and output. Rejects, killing it, when it has not exited within `timeoutMs`.
 */
export function runNode(nodeArgs: string[], opts: CliOptions = {}): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    // An undefined value leaves the variable out (spawn skips it).
    const env: Record<string, string | undefined> = { ...process.env, ...opts.env };
    const child = spawn(process.execPath, nodeArgs, { env, cwd: opts.cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.stdin.end(opts.stdin ?? '');
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`node ${nodeArgs.join(' ')} did not exit:\n${stdout}\n${stderr}`));
    }, opts.timeoutMs ?? 15_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      // Let the last output events arrive.
      setImmediate(() => resolve({ code, stdout, stderr }));
    });
  });
}

/**
 * Writes `<dir>/<name>.yaml`: a config that would start (server_name
 * example.org, an HTTP listener on a free port, SQLite at
 * `./<name>-data/homeserver.db`, relative to `dir` as the working directory),
 * plus `extra`. Returns the file and that data folder.
 */
export function writeStartConfig(dir: string, name: string, extra: Record<string, unknown>): { file: string; data: string } {
  const file = join(dir, `${name}.yaml`);
  writeFileSync(
    file,
    stringify({
      server_name: 'example.org',
      listeners: [{ port: 0, bind_addresses: ['127.0.0.1'], type: 'http' }],
      database: { name: 'sqlite3', args: { database: `./${name}-data/homeserver.db` } },
      ...extra,
    }),
  );
  return { file, data: join(dir, `${name}-data`) };
}
