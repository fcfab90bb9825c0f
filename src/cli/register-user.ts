// `gatehouse register-user`: creates an account on a running server through
// Synapse's shared-secret registration (/_synapse/admin/v1/register), as
// Synapse's register_new_matrix_user does: ask for a nonce, send the HMAC of
// nonce, username, password, admin flag (and user type) with the secret.

import { createHmac } from 'node:crypto';
import { createInterface } from 'node:readline';
import type { Config } from '../config/types.js';
import { parseCommandLine, readFirstLine } from './common.js';

export const REGISTER_USER_USAGE = `Usage: gatehouse register-user [options] [SERVER_URL]

Creates an account on a running server with the registration shared secret
(as Synapse's register_new_matrix_user). What is not given is asked for when
the terminal allows it.

Options:
  -u, --user NAME          Localpart of the new user (down-cased by the server)
  -p, --password PASS      Its password (visible to other users of this machine: prefer
                           the prompt or --password-stdin)
  --password-stdin         Read the password from the first line of standard input
  -a, --admin              Make a server admin
  --no-admin               Make an ordinary user (the default when not asked)
  -t, --user-type TYPE     support or bot
  -k, --shared-secret S    The secret (default: registration_shared_secret of the config)
  -c, --config PATH        Configuration file, for the secret and the server's address
                           (default: $GATEHOUSE_CONFIG or ./homeserver.yaml)
  -h, --help               Show this help

SERVER_URL defaults to the config's first listener (http://localhost:8008 without one).
`;

export interface RegisterUserContext {
  /** The config, read and checked (exits on errors); null when there is no config to read. */
  readConfig(given: string | undefined): Config | null;
  out(text: string): void;
  fail(message: string): never;
  stdin: NodeJS.ReadStream;
  /** Whether questions can be asked (standard input and error are terminals). */
  interactive: boolean;
}

/** The URL a listener is reached at from this machine (a wildcard address means this machine). */
export function listenerUrl(config: Config | null): string {
  const l = config?.listeners[0];
  if (!l) return 'http://localhost:8008';
  const host = l.bind_addresses[0] ?? '127.0.0.1';
  const local = host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '::1' : host;
  return `http://${local.includes(':') ? `[${local}]` : local}:${l.port}`;
}

/** Synapse's MAC: HMAC-SHA1 over `nonce\0username\0password\0admin|notadmin[\0user_type]`, hex. */
export function registrationMac(secret: string, nonce: string, user: string, password: string, admin: boolean, userType: string | null): string {
  const parts = [nonce, user, password, admin ? 'admin' : 'notadmin'];
  if (userType !== null) parts.push(userType);
  return createHmac('sha1', secret).update(parts.join('\x00'), 'utf8').digest('hex');
}

export async function registerUserCommand(args: string[], ctx: RegisterUserContext): Promise<void> {
  const parsed = parseCommandLine(
    args,
    {
      user: { type: 'string', short: 'u' },
      password: { type: 'string', short: 'p' },
      'password-stdin': { type: 'boolean' },
      admin: { type: 'boolean', short: 'a' },
      'no-admin': { type: 'boolean' },
      'user-type': { type: 'string', short: 't' },
      'shared-secret': { type: 'string', short: 'k' },
      config: { type: 'string', short: 'c' },
      help: { type: 'boolean', short: 'h' },
    },
    REGISTER_USER_USAGE,
    ctx,
  );
  const { values, positionals } = parsed;
  if (values.help) return ctx.out(REGISTER_USER_USAGE);
  if (positionals.length > 1) ctx.fail(`register-user: unexpected argument "${positionals[1]}"`);
  if (values.admin && values['no-admin']) ctx.fail('register-user: give --admin or --no-admin, not both');
  if (values.password !== undefined && values['password-stdin']) ctx.fail('register-user: give --password or --password-stdin, not both');
  const userType = (values['user-type'] as string | undefined) ?? null;
  if (userType !== null && userType !== 'support' && userType !== 'bot') ctx.fail('register-user: --user-type must be support or bot');

  // The config is needed only for what the flags leave out.
  const needConfig = values['shared-secret'] === undefined || positionals.length === 0;
  const config = needConfig ? ctx.readConfig(values.config as string | undefined) : null;
  const secret = (values['shared-secret'] as string | undefined) ?? config?.registration_shared_secret ?? null;
  if (!secret) ctx.fail('register-user: no shared secret: give --shared-secret, or set registration_shared_secret in the config');
  const url = (positionals[0] ?? listenerUrl(config)).replace(/\/+$/, '');
  try {
    new URL(url);
  } catch {
    ctx.fail(`register-user: "${url}" is not a URL`);
  }

  const ask = new Questions(ctx);
  try {
    const user = (values.user as string | undefined) ?? (await ask.line('New user localpart: '));
    if (!user) ctx.fail('register-user: no user name given');
    let password = values.password as string | undefined;
    if (values['password-stdin']) password = await ask.stdinLine();
    if (password === undefined) {
      password = await ask.secret('Password: ');
      if ((await ask.secret('Confirm password: ')) !== password) ctx.fail('register-user: the passwords do not match');
    }
    if (!password) ctx.fail('register-user: no password given');
    let admin = values.admin === true;
    if (!values.admin && !values['no-admin'] && ctx.interactive) admin = /^y(es)?$/i.test(await ask.line('Make admin [no]: '));

    const nonceRes = await call(ctx, `${url}/_synapse/admin/v1/register`, 'GET');
    const nonce = (nonceRes as { nonce?: unknown }).nonce;
    if (typeof nonce !== 'string') ctx.fail('register-user: the server sent no nonce');
    const body: Record<string, unknown> = { nonce, username: user, password, admin, mac: registrationMac(secret, nonce, user, password, admin, userType) };
    if (userType !== null) body.user_type = userType;
    const created = (await call(ctx, `${url}/_synapse/admin/v1/register`, 'POST', body)) as { user_id?: string };
    ctx.out(`Success! ${created.user_id ?? user}${admin ? ' (server admin)' : ''}\n`);
  } finally {
    ask.close();
  }
}

/** One HTTP call; a Matrix error or an unreachable server ends the command with its message. */
async function call(ctx: RegisterUserContext, url: string, method: string, body?: unknown): Promise<unknown> {
  let res: Response;
  try {
    res = await fetch(url, {
      method,
      headers: body === undefined ? {} : { 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    return ctx.fail(`register-user: cannot reach ${url}: ${(e as Error & { cause?: Error }).cause?.message ?? (e as Error).message}`);
  }
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  if (!res.ok) {
    const err = json as { errcode?: string; error?: string } | undefined;
    return ctx.fail(`register-user: ${res.status} ${err?.errcode ?? ''} ${err?.error ?? text.slice(0, 200)}`.trimEnd());
  }
  return json;
}

/** Questions on the terminal; a secret is read without echoing it. */
class Questions {
  private rl: ReturnType<typeof createInterface> | null = null;
  private muted = false;

  constructor(private readonly ctx: RegisterUserContext) {}

  private open() {
    if (!this.ctx.interactive) this.ctx.fail('register-user: missing --user or --password, and there is no terminal to ask on');
    if (!this.rl) {
      const output = process.stderr;
      this.rl = createInterface({ input: this.ctx.stdin, output, terminal: true });
      // Echo nothing while a secret is typed (the prompt itself is written directly).
      const write = (this.rl as unknown as { _writeToOutput: (s: string) => void })._writeToOutput?.bind(this.rl);
      (this.rl as unknown as { _writeToOutput: (s: string) => void })._writeToOutput = (s: string) => {
        if (!this.muted || s.includes('\n')) write?.(this.muted ? '\n' : s);
      };
    }
    return this.rl;
  }

  line(prompt: string): Promise<string> {
    const rl = this.open();
    this.muted = false;
    return new Promise((resolve) => rl.question(prompt, (a) => resolve(a.trim())));
  }

  secret(prompt: string): Promise<string> {
    const rl = this.open();
    process.stderr.write(prompt);
    this.muted = true;
    return new Promise((resolve) =>
      rl.question('', (a) => {
        this.muted = false;
        resolve(a);
      }),
    );
  }

  /** The first line of standard input (for --password-stdin). */
  stdinLine(): Promise<string> {
    return readFirstLine(this.ctx.stdin);
  }

  close() {
    this.rl?.close();
  }
}
