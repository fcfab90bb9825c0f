// A real desktop client: Nheko 0.11 (Debian's nheko) under Xvfb, driven with
// xdotool, signs in with a password and reaches its main screen (the room
// list). Nheko keeps its secrets in a Secret Service, so the test runs a
// private D-Bus session bus and an unlocked gnome-keyring for it. Every
// process is started here and stopped by its PID. Skipped, saying why, where
// a tool is missing; .ci/run installs them. docs/clients.md tells the steps.
// GATEHOUSE_NHEKO_SCREENSHOT=path copies the main screen's screenshot there.

import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_PASSWORD, startServer, type TestServer } from '../support/server.js';

const TOOLS = ['nheko', 'Xvfb', 'xdotool', 'dbus-daemon', 'dbus-send', 'gnome-keyring-daemon', 'import', 'convert'];
const missing = TOOLS.filter((t) => spawnSync('sh', ['-c', `command -v ${t}`], { stdio: 'ignore' }).status !== 0);
const NAME = 'Nheko 0.11 signs in and reaches its main screen (sqlite)';
const describeWithNheko = (fn: () => void) =>
  describe.skipIf(missing.length > 0)(
    missing.length === 0
      ? NAME
      : `${NAME} (skipped: ${missing.join(', ')} missing; apt-get install nheko xvfb xdotool dbus-daemon gnome-keyring imagemagick, as .ci/run does)`,
    fn,
  );

const PROFILE = 'gatehouse';
/** The window's size, forced so that the clicks below land on the same widgets everywhere. */
const WIDTH = 1066;
const HEIGHT = 600;

interface Proc {
  child: ChildProcess;
  out: () => string;
}

function start(cmd: string, args: string[], env: NodeJS.ProcessEnv, stdin?: string, extraFd = false): Proc {
  const child = spawn(cmd, args, { env, stdio: [stdin === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe', ...(extraFd ? ['pipe' as const] : [])] });
  let out = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (out += c.toString()));
  if (stdin !== undefined) child.stdin!.end(stdin);
  return { child, out: () => out };
}

async function stop(p: Proc | undefined): Promise<void> {
  if (!p || p.child.exitCode !== null || p.child.signalCode !== null) return;
  const exited = new Promise((r) => p.child.once('exit', r));
  p.child.kill('SIGTERM');
  await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
  if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `check` every 250 ms until it returns a truthy value; throws `what` after `ms`. */
async function waitFor<T>(what: string, ms: number, check: () => T | Promise<T>): Promise<NonNullable<T>> {
  const until = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v) return v as NonNullable<T>;
    if (Date.now() > until) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(250);
  }
}

interface RequestLine {
  method: string;
  path: string;
  status: number;
  user?: string;
}

/** The server's one-line-per-request pino records. */
function requests(hs: TestServer): RequestLine[] {
  const out: RequestLine[] = [];
  for (const line of hs.logs().split('\n')) {
    try {
      const j = JSON.parse(line) as { msg?: string } & RequestLine;
      if (j.msg === 'request' && j.method) out.push(j);
    } catch {
      /* not a JSON line */
    }
  }
  return out;
}

describeWithNheko(() => {
  let hs: TestServer;
  let dir: string;
  let xvfb: Proc | undefined;
  let bus: Proc | undefined;
  let keyring: Proc | undefined;
  let nheko: Proc | undefined;
  let env: NodeJS.ProcessEnv;

  const xdotool = (...args: string[]) => {
    const r = spawnSync('xdotool', args, { env, encoding: 'utf8', timeout: 30_000 });
    return r.stdout.trim();
  };

  beforeAll(async () => {
    hs = await startServer('sqlite');
    await hs.register('nheko_user');
    dir = mkdtempSync(join(tmpdir(), 'gatehouse-nheko-'));
    const home = join(dir, 'home');
    const runtime = join(dir, 'run');
    mkdirSync(home);
    mkdirSync(runtime, { mode: 0o700 });
    // Only what the client needs: no display, bus or keyring of the machine's leaks in.
    env = { PATH: process.env.PATH, HOME: home, XDG_RUNTIME_DIR: runtime, LANG: 'C.UTF-8', QT_QPA_PLATFORM: 'xcb' };

    // -displayfd: Xvfb picks a free display number and writes it to fd 3.
    xvfb = start('Xvfb', ['-displayfd', '3', '-screen', '0', '1280x800x24', '-nolisten', 'tcp'], env, undefined, true);
    let fd3 = '';
    (xvfb.child.stdio[3] as NodeJS.ReadableStream).on('data', (c: Buffer) => (fd3 += c.toString()));
    const display = await waitFor('Xvfb to give its display', 15_000, () => fd3.match(/^(\d+)\n/)?.[1]);
    env.DISPLAY = `:${display}`;

    bus = start('dbus-daemon', ['--session', '--nofork', '--print-address=1', `--address=unix:path=${join(dir, 'bus')}`], env);
    env.DBUS_SESSION_BUS_ADDRESS = await waitFor('the D-Bus session bus', 15_000, () => bus!.out().match(/^(unix:\S+)\n/m)?.[1]);
    // A new login keyring, created unlocked with the password read from stdin.
    keyring = start('gnome-keyring-daemon', ['--foreground', '--unlock', '--components=secrets'], env, 'keyring-password');
    const hasSecrets = () =>
      spawnSync('dbus-send', ['--session', '--print-reply', '--dest=org.freedesktop.DBus', '/org/freedesktop/DBus', 'org.freedesktop.DBus.NameHasOwner', 'string:org.freedesktop.secrets'], {
        env,
        encoding: 'utf8',
      }).stdout.includes('boolean true');
    await waitFor('gnome-keyring to own org.freedesktop.secrets', 15_000, hasSecrets);
  }, 60_000);

  afterAll(async () => {
    await stop(nheko);
    await stop(keyring);
    await stop(bus);
    await stop(xvfb);
    await hs?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('signs in through the login page, syncs, and shows the room list; no request fails', async () => {
    nheko = start('nheko', ['--profile', PROFILE, '--log-type', 'stderr'], env);
    const nlog = () => nheko!.out();
    const context = () => `\n--- nheko ---\n${nlog().slice(-3000)}\n--- requests ---\n${requests(hs).map((r) => `${r.method} ${r.path} ${r.status}`).join('\n')}`;
    try {
      const win = await waitFor('the Nheko window', 30_000, () => xdotool('search', '--onlyvisible', '--name', `^nheko \\| ${PROFILE}$`).split('\n')[0]);
      xdotool('windowmove', win, '0', '0');
      xdotool('windowsize', win, String(WIDTH), String(HEIGHT));
      await waitFor('Nheko to start', 30_000, () => nlog().includes('starting nheko'));
      await sleep(1500);

      // Welcome page → LOGIN; the login page's "Matrix ID" field. Nheko looks up
      // https://test.local/.well-known, fails (no such host) and then shows a
      // "Homeserver address" field: the server's real URL goes there.
      for (let attempt = 1; ; attempt++) {
        xdotool('mousemove', '614', '432', 'click', '1');
        await sleep(1500);
        xdotool('mousemove', '533', '272', 'click', '1');
        await sleep(300);
        xdotool('key', 'ctrl+a'); // a retry replaces what an earlier attempt typed
        xdotool('type', '--delay', '20', '@nheko_user:test.local');
        xdotool('key', 'Tab');
        try {
          await waitFor('Nheko to try autodiscovery', 15_000, () => nlog().includes('Autodiscovery failed'));
          break;
        } catch (e) {
          if (attempt === 3) throw e;
        }
      }
      await sleep(500);
      // Focus is on Password; then Device name, then Homeserver address.
      xdotool('type', '--delay', '20', DEFAULT_PASSWORD);
      xdotool('key', 'Tab');
      xdotool('type', '--delay', '20', 'Nheko under Xvfb');
      xdotool('key', 'Tab', 'ctrl+a');
      xdotool('type', '--delay', '10', hs.url);
      const loginChecks = () => requests(hs).filter((r) => r.method === 'GET' && r.path === '/_matrix/client/v3/login').length;
      xdotool('key', 'Tab');
      // Leaving the field makes Nheko check the server (versions, login flows).
      await waitFor('Nheko to check the homeserver (GET /login)', 20_000, () => loginChecks() > 0);
      await sleep(500);
      // Focus wrapped round to Matrix ID; Tab to Password and press Enter.
      xdotool('key', 'Tab', 'Return');

      await waitFor('POST /login 200', 30_000, () => requests(hs).some((r) => r.method === 'POST' && r.path === '/_matrix/client/v3/login' && r.status === 200));
      await waitFor('the first /sync', 60_000, () =>
        requests(hs).some((r) => r.method === 'GET' && r.path.startsWith('/_matrix/client/v3/sync') && r.user === '@nheko_user:test.local'),
      );
      await waitFor('Nheko to finish its initial sync', 30_000, () => nlog().includes('initial sync completed'));

      // The main screen shows the room list's dark sidebar where the welcome and
      // login pages are white. A new account first gets a "Setup Encryption"
      // popup over it (inside the window, a second or two after the sync):
      // Cancel (its bottom-right button) leaves that for later.
      const shot = join(dir, 'nheko-main.png');
      /** Mean brightness (0..1) of a strip of the room list: about 0.2 there, 1 on the other pages and on the popup. */
      const sidebar = () => {
        const r = spawnSync('import', ['-window', win, shot], { env, timeout: 30_000 });
        if (r.status !== 0) throw new Error(`import: ${r.stderr?.toString()}`);
        return Number(spawnSync('convert', [shot, '-crop', '60x6+100+386', '-format', '%[fx:mean]', 'info:'], { encoding: 'utf8' }).stdout);
      };
      // Dark twice, 2.5 s apart: the popup may come after the first look.
      await waitFor('the room list (a dark sidebar)', 30_000, async () => {
        if (sidebar() < 0.5) {
          await sleep(2500);
          if (sidebar() < 0.5) return true;
        }
        xdotool('mousemove', '999', '561', 'click', '1');
        await sleep(1000);
        return false;
      });
      if (process.env.GATEHOUSE_NHEKO_SCREENSHOT) copyFileSync(shot, process.env.GATEHOUSE_NHEKO_SCREENSHOT);
      expect(statSync(shot).size).toBeGreaterThan(1000);

      // Still signed in: the token works and nobody logged out.
      const log = requests(hs);
      expect(log.some((r) => r.path.includes('/logout')), context()).toBe(false);
      const device = await hs.db()('devices').where({ user_id: '@nheko_user:test.local', display_name: 'Nheko under Xvfb' }).first();
      expect(device, context()).toBeTruthy();

      // No request failed, except the ones a new account answers with 404:
      // no key backup yet (M_NOT_FOUND) and unstable probes (M_UNRECOGNIZED).
      const failed = log.filter((r) => r.status >= 400);
      for (const f of failed) {
        const allowed = (f.method === 'GET' && f.path === '/_matrix/client/v3/room_keys/version' && f.status === 404) || (f.path.includes('/unstable/') && f.status === 404);
        expect(allowed, `${f.method} ${f.path} ${f.status}${context()}`).toBe(true);
      }
      if (failed.some((f) => f.path === '/_matrix/client/v3/room_keys/version')) {
        const tokenOwner = await hs.login('nheko_user');
        const backup = await hs.request('GET', '/_matrix/client/v3/room_keys/version', { token: tokenOwner.access_token });
        expect(backup.body.errcode).toBe('M_NOT_FOUND');
      }
    } catch (e) {
      (e as Error).message += context();
      throw e;
    }
  }, 180_000);
});
