// `gatehouse tokens ...`: registration tokens from the command line.
//
// It opens the database named in the config, as `migrate` does, and goes
// through the same handler as the admin API, so the rules are the same. Why
// not over HTTP with an admin access token (synadm does that already)? All of
// Gatehouse's state is in the database, so a running server (or several, on
// PostgreSQL) sees a change at once; and this way it needs no admin account
// and no running server: the first tokens of a server with
// registration_requires_token can be made before anyone can register.

import type { Knex } from 'knex';
import type { Config } from '../config/types.js';
import { MatrixError } from '../errors.js';
import { formatTime, oneLine, openMigratedDatabase, parseCommandLine, parseWhen, table } from './common.js';
import {
  MAX_LIST_LIMIT,
  RegistrationTokenAdminHandler,
  type TokenList,
  type TokenRegistration,
  type TokenUpdate,
  type TokenView,
} from '../handlers/admin/registration-tokens.js';

export const TOKENS_USAGE = `Usage: gatehouse tokens <command> [options]

Registration tokens (registration_requires_token), read and written in the
database of the config (the server need not run; a running one sees changes at once).

Commands:
  list [--valid | --invalid]       All tokens, or only those that can (cannot) be used now
  new [--token T | --length N] [--uses N] [--expires WHEN] [--note TEXT] [--link]
                                   Create a token (default: 16 random characters,
                                   unlimited uses, no expiry); --link prints only its
                                   invite link ({public_baseurl}_gatehouse/invite/{token})
  show TOKEN                       One token and the accounts registered with it
  update TOKEN [--uses N | --unlimited] [--expires WHEN | --never] [--note TEXT]
                                   Change a token (--note "" removes the note)
  delete TOKEN                     Delete a token (registrations in progress with it fail)

Options:
  -c, --config PATH   Configuration file (default: $GATEHOUSE_CONFIG or ./homeserver.yaml)
  --json              Print the admin API's JSON instead of a table
  -h, --help          Show this help

WHEN is a date or time in ISO 8601 (2026-12-31, 2026-12-31T18:00:00Z; without
a zone, local time), a time from now (30m, 12h, 7d, 2w), or milliseconds since
the epoch. A TOKEN that starts with "-" goes after "--" (show -- -abc).
`;

/** What the command needs from main: the config, read and checked (exits on errors). */
export interface TokensCommandContext {
  readConfig(given: string | undefined): Config;
  out(text: string): void;
  /** Prints the message and exits 1. */
  fail(message: string): never;
  now?: () => number;
}

type Values = Record<string, string | boolean | undefined>;

export async function tokensCommand(args: string[], ctx: TokensCommandContext): Promise<void> {
  const parsed = parseCommandLine(
    args,
    {
      config: { type: 'string', short: 'c' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
      valid: { type: 'boolean' },
      invalid: { type: 'boolean' },
      token: { type: 'string' },
      length: { type: 'string' },
      uses: { type: 'string' },
      unlimited: { type: 'boolean' },
      expires: { type: 'string' },
      never: { type: 'boolean' },
      note: { type: 'string' },
      link: { type: 'boolean' },
    },
    TOKENS_USAGE,
    ctx,
  );
  const { values, positionals } = parsed;
  if (values.help) return ctx.out(TOKENS_USAGE);
  const [command, ...rest] = positionals;
  if (!command) return ctx.fail(`tokens: which command?\n\n${TOKENS_USAGE}`);
  const now = ctx.now ?? Date.now;

  // Everything about the arguments is checked before the database is opened.
  let action: (handler: RegistrationTokenAdminHandler) => Promise<string>;
  const json = values.json === true;
  const allowed = (...names: string[]) => {
    const common = ['config', 'json', 'help'];
    for (const name of Object.keys(values)) if (!common.includes(name) && !names.includes(name)) ctx.fail(`tokens ${command}: --${name} does not apply here`);
  };
  const oneToken = (): string => {
    if (rest.length !== 1) ctx.fail(`tokens ${command}: give one TOKEN\n\n${TOKENS_USAGE}`);
    return rest[0]!;
  };
  const noPositionals = () => {
    if (rest.length > 0) ctx.fail(`tokens ${command}: unexpected argument "${rest[0]}"`);
  };

  switch (command) {
    case 'list': {
      allowed('valid', 'invalid');
      noPositionals();
      if (values.valid && values.invalid) ctx.fail('tokens list: give --valid or --invalid, not both');
      const valid = values.valid ? true : values.invalid ? false : null;
      action = async (h) => {
        const all: TokenList = { registration_tokens: [] };
        for (let from = 0; ; ) {
          const page = await h.list({ valid, from, limit: MAX_LIST_LIMIT });
          all.registration_tokens.push(...page.registration_tokens);
          if (page.next_token === undefined) break;
          from = Number(page.next_token);
        }
        return json ? toJson(all) : tokenTable(all.registration_tokens, now());
      };
      break;
    }
    case 'new': {
      allowed('token', 'length', 'uses', 'expires', 'note', 'link');
      noPositionals();
      if (values.token !== undefined && values.length !== undefined) ctx.fail('tokens new: give --token or --length, not both');
      const req = {
        token: (values.token as string | undefined) ?? null,
        length: values.length === undefined ? null : integerOption('--length', values.length as string, ctx),
        usesAllowed: values.uses === undefined ? null : integerOption('--uses', values.uses as string, ctx),
        expiryTime: values.expires === undefined ? null : whenOption(values.expires as string, now(), ctx),
        note: values.note === undefined || values.note === '' ? null : (values.note as string),
      };
      const link = values.link === true;
      action = async (h) => {
        const created = await h.create(req);
        if (json) return toJson(created);
        // --link: just the invite URL, for pasting into a message (or a script).
        return link ? `${created.invite_url}\n` : tokenDetails(created, now());
      };
      break;
    }
    case 'show': {
      allowed();
      const token = oneToken();
      action = async (h) => {
        const found = await h.get(token, { registrations: true });
        return json ? toJson(found) : tokenDetails(found, now()) + registrationTable(found.registrations ?? []);
      };
      break;
    }
    case 'update': {
      allowed('uses', 'unlimited', 'expires', 'never', 'note');
      const token = oneToken();
      if (values.uses !== undefined && values.unlimited) ctx.fail('tokens update: give --uses or --unlimited, not both');
      if (values.expires !== undefined && values.never) ctx.fail('tokens update: give --expires or --never, not both');
      const changes: TokenUpdate = {};
      if (values.unlimited) changes.usesAllowed = null;
      if (values.uses !== undefined) changes.usesAllowed = integerOption('--uses', values.uses as string, ctx);
      if (values.never) changes.expiryTime = null;
      if (values.expires !== undefined) changes.expiryTime = whenOption(values.expires as string, now(), ctx);
      if (values.note !== undefined) changes.note = values.note === '' ? null : (values.note as string);
      if (Object.keys(changes).length === 0) ctx.fail('tokens update: nothing to change (--uses, --unlimited, --expires, --never, --note)');
      action = async (h) => {
        const updated = await h.update(token, changes);
        return json ? toJson(updated) : tokenDetails(updated, now());
      };
      break;
    }
    case 'delete': {
      allowed();
      const token = oneToken();
      action = async (h) => {
        const done = await h.delete(token);
        return json ? toJson(done) : `deleted ${token}\n`;
      };
      break;
    }
    default:
      return ctx.fail(`tokens: unknown command "${command}"\n\n${TOKENS_USAGE}`);
  }

  const config = ctx.readConfig(values.config as string | undefined);
  // Checked before anything is created: an invite link needs the address people reach the server at.
  if (values.link && config.public_baseurl === null) ctx.fail('tokens new --link: set public_baseurl in the config; the invite link is {public_baseurl}_gatehouse/invite/{token}');
  const db = await openMigratedDatabase(config, ctx);
  let output: string;
  try {
    output = await action(new RegistrationTokenAdminHandler(db, config.public_baseurl, now));
  } catch (e) {
    if (e instanceof MatrixError) return ctx.fail(e.message);
    throw e;
  } finally {
    await db.destroy();
  }
  ctx.out(output);
}

function integerOption(flag: string, value: string, ctx: TokensCommandContext): number {
  if (!/^\d{1,15}$/.test(value)) ctx.fail(`${flag}: "${value}" is not a non-negative integer`);
  return Number(value);
}


/** WHEN: milliseconds since the epoch, a duration from now ("7d"), or an ISO 8601 date or time (see parseWhen). */
function whenOption(value: string, now: number, ctx: TokensCommandContext): number {
  return (
    parseWhen(value, now) ??
    ctx.fail(`--expires: "${value}" is not a date (2026-12-31, 2026-12-31T18:00:00Z), a time from now (7d) or milliseconds since the epoch`)
  );
}

const toJson = (value: unknown) => `${JSON.stringify(value, null, 2)}\n`;

/** Whether the token can register an account at `now`, and if not why (pending uses count, as the stage counts them). */
function stateOf(t: TokenView, now: number): string {
  if (t.expiry_time !== null && t.expiry_time <= now) return 'expired';
  if (t.uses_allowed !== null && t.pending + t.completed >= t.uses_allowed) return 'used up';
  return 'valid';
}

function tokenTable(tokens: TokenView[], now: number): string {
  if (tokens.length === 0) return 'no registration tokens\n';
  const rows = tokens.map((t) => [
    t.token,
    stateOf(t, now),
    String(t.completed),
    String(t.pending),
    t.uses_allowed === null ? 'unlimited' : String(t.uses_allowed),
    t.expiry_time === null ? 'never' : formatTime(t.expiry_time),
    oneLine(t.note),
  ]);
  return table(['TOKEN', 'STATE', 'USED', 'PENDING', 'ALLOWED', 'EXPIRES', 'NOTE'], rows);
}

function tokenDetails(t: TokenView, now: number): string {
  const rows: [string, string][] = [
    ['token', t.token],
    ['state', stateOf(t, now)],
    ['used', String(t.completed)],
    ['pending', String(t.pending)],
    ['allowed', t.uses_allowed === null ? 'unlimited' : String(t.uses_allowed)],
    ['expires', t.expiry_time === null ? 'never' : formatTime(t.expiry_time)],
    ['note', oneLine(t.note)],
  ];
  if (t.invite_url !== undefined) rows.push(['invite', t.invite_url]);
  return rows.map(([k, v]) => `${`${k}:`.padEnd(9)}${v}`.trimEnd()).join('\n') + '\n';
}

function registrationTable(registrations: TokenRegistration[]): string {
  if (registrations.length === 0) return '\nno accounts registered with this token\n';
  return `\n${table(['REGISTERED', 'USER'], registrations.map((r) => [formatTime(r.registered_at), r.user_id]))}`;
}
