// `gatehouse users ...`: accounts from the command line. Like `gatehouse
// tokens`, it works on the config's database through the same handlers as
// Synapse's user admin API (and the account-state and approval handlers), so
// the rules are the same, and it needs neither a running server nor an admin
// account (a running server, or several, sees every change at once).

import type { Knex } from 'knex';
import type { Config } from '../config/types.js';
import { PasswordHasher } from '../crypto/passwords.js';
import { MatrixError } from '../errors.js';
import { AccountStateHandler, type AccountStateView, type RestrictionView } from '../handlers/account-state.js';
import { AccountApprovalHandler } from '../handlers/admin/account-approval.js';
import { type AdminDeviceView, UserSessionsAdminHandler } from '../handlers/admin/user-sessions.js';
import { MAX_LIST_LIMIT, type UserChanges, type UserDetails, type UserList, type UserListItem, UserAdminHandler } from '../handlers/admin/users.js';
import { SessionHandler } from '../handlers/sessions.js';
import { ACCOUNT_ORDERS, type AccountOrder } from '../repositories/user-admin.js';
import { formatTime, oneLine, openMigratedDatabase, parseCommandLine, parseWhen, readFirstLine, table } from './common.js';

export const USERS_USAGE = `Usage: gatehouse users <command> [options]

Accounts, read and written in the database of the config (the server need not
run; a running one sees changes at once), under the rules of the user admin API.
USER_ID is a full user ID (@alice:example.org).

Commands:
  list [--name TEXT] [--deactivated] [--no-guests] [--admins] [--waiting]
       [--order-by FIELD] [--reverse]
                          Accounts (deactivated ones only with --deactivated); --name
                          matches part of the localpart or display name, --waiting
                          lists only accounts waiting for approval
  show USER_ID            One account: profile, state, devices
  create USER_ID [--password-stdin] [--admin] [--displayname NAME] [--user-type TYPE]
                 [--email ADDRESS]...
                          Create an account (no password unless given: it cannot
                          sign in until it gets one; display name: the localpart),
                          with these email addresses
  modify USER_ID [--displayname NAME | --no-displayname] [--avatar-url MXC | --no-avatar]
                 [--admin | --no-admin] [--user-type TYPE | --no-user-type] [--activate]
                 [--email ADDRESS]... [--remove-email ADDRESS]...
                          Change an account (--activate reactivates a deactivated one;
                          give it a password with reset-password); --email adds an
                          address, --remove-email removes one (the others stay)
  reset-password USER_ID --password-stdin [--keep-sessions]
                          Set the password (the first line of standard input); every
                          session of the account ends unless --keep-sessions
  deactivate USER_ID [--erase]
                          Sessions end, the password is removed, the user ID stays
                          taken for ever; --erase also clears the display name and avatar
  lock USER_ID [--reason TEXT] [--until WHEN]
  unlock USER_ID          Lock: the account is signed out of its clients until unlocked
  suspend USER_ID [--reason TEXT] [--until WHEN]
  unsuspend USER_ID       Suspend: the account may read but not act
  pending                 Accounts waiting for approval (registration_requires_approval)
  approve USER_ID...      Let these accounts sign in and use the server
  unapprove USER_ID...    Withdraw approval (their requests are refused until approved again)

Options:
  -c, --config PATH   Configuration file (default: $GATEHOUSE_CONFIG or ./homeserver.yaml)
  --json              Print JSON (the admin API's, for list and show) instead of text
  -h, --help          Show this help

FIELD is one of ${ACCOUNT_ORDERS.join(', ')} (default name).
TYPE is bot or support. WHEN is a date or time in ISO 8601 (2026-12-31,
2026-12-31T18:00:00Z), a time from now (30m, 12h, 7d, 2w), or milliseconds
since the epoch; without --until a lock or suspension holds until lifted.
`;

export interface UsersCommandContext {
  readConfig(given: string | undefined): Config;
  out(text: string): void;
  fail(message: string): never;
  /** Where --password-stdin reads (default: the process's standard input). */
  stdin?: NodeJS.ReadableStream;
  now?: () => number;
}

interface Handlers {
  users: UserAdminHandler;
  sessions: UserSessionsAdminHandler;
  state: AccountStateHandler;
  approval: AccountApprovalHandler;
}

const COMMON = ['config', 'json', 'help'];

export async function usersCommand(args: string[], ctx: UsersCommandContext): Promise<void> {
  const parsed = parseCommandLine(
    args,
    {
      config: { type: 'string', short: 'c' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
      name: { type: 'string' },
      deactivated: { type: 'boolean' },
      'no-guests': { type: 'boolean' },
      admins: { type: 'boolean' },
      waiting: { type: 'boolean' },
      'order-by': { type: 'string' },
      reverse: { type: 'boolean' },
      'password-stdin': { type: 'boolean' },
      'keep-sessions': { type: 'boolean' },
      admin: { type: 'boolean' },
      'no-admin': { type: 'boolean' },
      displayname: { type: 'string' },
      'no-displayname': { type: 'boolean' },
      'avatar-url': { type: 'string' },
      'no-avatar': { type: 'boolean' },
      'user-type': { type: 'string' },
      'no-user-type': { type: 'boolean' },
      activate: { type: 'boolean' },
      erase: { type: 'boolean' },
      reason: { type: 'string' },
      until: { type: 'string' },
      email: { type: 'string', multiple: true },
      'remove-email': { type: 'string', multiple: true },
    },
    USERS_USAGE,
    ctx,
  );
  const { values, positionals } = parsed;
  if (values.help) return ctx.out(USERS_USAGE);
  const [command, ...rest] = positionals;
  if (!command) return ctx.fail(`users: which command?\n\n${USERS_USAGE}`);
  const now = ctx.now ?? Date.now;
  const json = values.json === true;

  // Everything about the arguments is checked before the database is opened.
  const allowed = (...names: string[]) => {
    for (const name of Object.keys(values)) if (!COMMON.includes(name) && !names.includes(name)) ctx.fail(`users ${command}: --${name} does not apply here`);
  };
  const oneUser = (): string => {
    if (rest.length !== 1) ctx.fail(`users ${command}: give one USER_ID\n\n${USERS_USAGE}`);
    return rest[0]!;
  };
  const noPositionals = () => {
    if (rest.length > 0) ctx.fail(`users ${command}: unexpected argument "${rest[0]}"`);
  };
  const either = (a: string, b: string) => {
    if (values[a as keyof typeof values] !== undefined && values[b as keyof typeof values] !== undefined) ctx.fail(`users ${command}: give --${a} or --${b}, not both`);
  };
  const userType = (): string => {
    const t = values['user-type'] as string;
    if (t !== 'bot' && t !== 'support') ctx.fail(`users ${command}: --user-type must be bot or support`);
    return t;
  };
  /** The new password from standard input, when --password-stdin asks for it. */
  const password = async (): Promise<string | undefined> => {
    if (!values['password-stdin']) return undefined;
    const line = await readFirstLine(ctx.stdin ?? process.stdin);
    if (line === '') ctx.fail(`users ${command}: no password on standard input`);
    return line;
  };

  let action: (h: Handlers) => Promise<string>;
  switch (command) {
    case 'list': {
      allowed('name', 'deactivated', 'no-guests', 'admins', 'waiting', 'order-by', 'reverse');
      noPositionals();
      const orderBy = (values['order-by'] as string | undefined) ?? 'name';
      if (!(ACCOUNT_ORDERS as readonly string[]).includes(orderBy)) ctx.fail(`users list: --order-by must be one of ${ACCOUNT_ORDERS.join(', ')}`);
      action = async (h) => {
        const all: UserList = { users: [], total: 0 };
        for (let from = 0; ; ) {
          const page = await h.users.list({
            from,
            limit: MAX_LIST_LIMIT,
            userId: null,
            name: (values.name as string | undefined) ?? null,
            guests: !values['no-guests'],
            deactivated: values.deactivated === true,
            // Unlike the API's default, locked accounts are listed (their state says so).
            locked: true,
            admins: values.admins ? true : null,
            approved: !values.waiting,
            notUserTypes: [],
            orderBy: orderBy as AccountOrder,
            backwards: values.reverse === true,
          });
          all.users.push(...page.users);
          all.total = page.total;
          if (page.next_token === undefined) break;
          from = Number(page.next_token);
        }
        return json ? toJson(all) : userTable(all.users);
      };
      break;
    }
    case 'show': {
      allowed();
      const userId = oneUser();
      action = async (h) => {
        const user = await h.users.get(userId);
        if (json) return toJson(user);
        const [state, devices] = await Promise.all([h.state.state(userId), h.sessions.devices(userId)]);
        return userDetails(user, state) + deviceTable(devices.devices);
      };
      break;
    }
    case 'create': {
      allowed('password-stdin', 'admin', 'displayname', 'user-type', 'email');
      const userId = oneUser();
      const changes: UserChanges = { admin: values.admin === true };
      if (values.email !== undefined) changes.threepids = emails(values.email);
      if (values.displayname !== undefined) changes.displayname = values.displayname as string;
      if (values['user-type'] !== undefined) changes.userType = userType();
      action = async (h) => {
        // create never changes an existing account (the API's PUT would).
        if (await exists(h, userId)) throw new MatrixError(400, 'M_USER_IN_USE', `${userId} exists already (change it with "gatehouse users modify")`);
        const pw = await password();
        if (pw !== undefined) changes.password = pw;
        const { user } = await h.users.put(null, userId, changes);
        return json ? toJson(user) : `created ${user.name}${user.admin ? ' (server admin)' : ''}${pw === undefined ? ', without a password' : ''}\n`;
      };
      break;
    }
    case 'modify': {
      allowed('displayname', 'no-displayname', 'avatar-url', 'no-avatar', 'admin', 'no-admin', 'user-type', 'no-user-type', 'activate', 'email', 'remove-email');
      const userId = oneUser();
      either('displayname', 'no-displayname');
      either('avatar-url', 'no-avatar');
      either('admin', 'no-admin');
      either('user-type', 'no-user-type');
      const changes: UserChanges = {};
      if (values.displayname !== undefined) changes.displayname = values.displayname as string;
      if (values['no-displayname']) changes.displayname = null;
      if (values['avatar-url'] !== undefined) changes.avatarUrl = values['avatar-url'] as string;
      if (values['no-avatar']) changes.avatarUrl = null;
      if (values.admin) changes.admin = true;
      if (values['no-admin']) changes.admin = false;
      if (values['user-type'] !== undefined) changes.userType = userType();
      if (values['no-user-type']) changes.userType = null;
      if (values.activate) changes.deactivated = false;
      if (values.email !== undefined || values['remove-email'] !== undefined)
        changes.threepidEdits = { add: emails(values.email ?? []), remove: emails(values['remove-email'] ?? []) };
      if (Object.keys(changes).length === 0)
        ctx.fail(
          'users modify: nothing to change (--displayname, --no-displayname, --avatar-url, --no-avatar, --admin, --no-admin, --user-type, --no-user-type, --activate, --email, --remove-email)',
        );
      action = async (h) => {
        await mustExist(h, userId);
        const { user } = await h.users.put(null, userId, changes);
        return json ? toJson(user) : userDetails(user, await h.state.state(userId));
      };
      break;
    }
    case 'reset-password': {
      allowed('password-stdin', 'keep-sessions');
      const userId = oneUser();
      if (!values['password-stdin']) ctx.fail('users reset-password: give the new password on standard input with --password-stdin');
      action = async (h) => {
        await mustExist(h, userId);
        const pw = (await password())!;
        await h.users.resetPassword(null, userId, pw, !values['keep-sessions']);
        return json ? toJson({}) : `${userId}: password set${values['keep-sessions'] ? '' : '; every session has ended'}\n`;
      };
      break;
    }
    case 'deactivate': {
      allowed('erase');
      const userId = oneUser();
      action = async (h) => {
        const done = await h.users.deactivate(userId, values.erase === true);
        return json ? toJson(done) : `${userId}: deactivated${values.erase ? ' and erased' : ''}\n`;
      };
      break;
    }
    case 'lock':
    case 'suspend':
    case 'unlock':
    case 'unsuspend': {
      const on = command === 'lock' || command === 'suspend';
      if (on) allowed('reason', 'until');
      else allowed();
      const userId = oneUser();
      let until: number | null = null;
      if (values.until !== undefined) {
        until = parseWhen(values.until as string, now());
        if (until === null) ctx.fail(`--until: "${values.until}" is not a date (2026-12-31, 2026-12-31T18:00:00Z), a time from now (7d) or milliseconds since the epoch`);
      }
      const change = { on, reason: (values.reason as string | undefined) ?? null, until };
      action = async (h) => {
        const state = command === 'lock' || command === 'unlock' ? await h.state.setLocked(userId, change) : await h.state.setSuspended(userId, change);
        if (json) return toJson(state);
        const r = command === 'lock' || command === 'unlock' ? state.locked : state.suspended;
        const word = command === 'lock' || command === 'unlock' ? 'locked' : 'suspended';
        return `${userId}: ${r.active ? restriction(word, r) : `not ${word}`}\n`;
      };
      break;
    }
    case 'pending': {
      allowed();
      noPositionals();
      action = async (h) => {
        const pending = await h.approval.pending();
        if (json) return toJson({ users: pending });
        return pending.length === 0
          ? 'No accounts are waiting for approval.\n'
          : table(['USER ID', 'REGISTERED'], pending.map((p) => [p.user_id, formatTime(p.created_ts)]));
      };
      break;
    }
    case 'approve':
    case 'unapprove': {
      allowed();
      if (rest.length === 0) ctx.fail(`users ${command}: give at least one USER_ID`);
      action = async (h) => {
        // Each ID is checked before any is changed, so that a typo changes nothing.
        for (const id of rest) await h.approval.check(id);
        const done = [];
        for (const id of rest) done.push(await h.approval.setApproved(id, command === 'approve'));
        return json ? toJson({ users: done }) : done.map((d) => `${d.user_id}: ${d.approved ? 'approved' : 'waiting for approval'}\n`).join('');
      };
      break;
    }
    default:
      return ctx.fail(`users: unknown command "${command}"\n\n${USERS_USAGE}`);
  }

  const config = ctx.readConfig(values.config as string | undefined);
  const db = await openMigratedDatabase(config, ctx);
  let output: string;
  try {
    output = await action(handlers(db, config, now));
  } catch (e) {
    if (e instanceof MatrixError) return ctx.fail(`users ${command}: ${e.message}`);
    throw e;
  } finally {
    await db.destroy();
  }
  ctx.out(output);
}

function handlers(db: Knex, config: Config, now: () => number): Handlers {
  const sessions = new SessionHandler(db, config);
  // On PostgreSQL, the sessions handler announces each change to the running servers' token caches.
  const state = new AccountStateHandler(db, config.server_name, now, sessions);
  const approval = new AccountApprovalHandler(db, config.server_name, sessions);
  return {
    users: new UserAdminHandler(db, config, new PasswordHasher(config.argon2), sessions, state, approval, now),
    sessions: new UserSessionsAdminHandler(db, config.server_name, sessions),
    state,
    approval,
  };
}

async function exists(h: Handlers, userId: string): Promise<boolean> {
  try {
    await h.users.get(userId);
    return true;
  } catch (e) {
    if (e instanceof MatrixError && e.errcode === 'M_NOT_FOUND') return false;
    throw e;
  }
}

async function mustExist(h: Handlers, userId: string): Promise<void> {
  if (!(await exists(h, userId))) throw new MatrixError(404, 'M_NOT_FOUND', `No such user ${userId} (create it with "gatehouse users create")`);
}

/** --email / --remove-email values as the admin API's threepids (canonicalised, and checked, by the handler). */
const emails = (addresses: string[]) => addresses.map((address) => ({ medium: 'email', address }));

const toJson = (value: unknown) => `${JSON.stringify(value, null, 2)}\n`;

/** "locked until 2026-12-31T00:00:00Z: spam", or without the parts it lacks. */
function restriction(word: string, r: RestrictionView): string {
  return `${word}${r.until === null ? '' : ` until ${formatTime(r.until)}`}${r.reason === null ? '' : `: ${oneLine(r.reason)}`}`;
}

/** What stands out about an account, in a few words ("active" when nothing does). */
function stateOf(u: UserListItem | UserDetails): string {
  const words: string[] = [];
  if (u.deactivated) words.push(u.erased ? 'deactivated (erased)' : 'deactivated');
  if (u.locked) words.push('locked');
  if (u.suspended) words.push('suspended');
  if (!u.approved) words.push('waiting for approval');
  return words.length === 0 ? 'active' : words.join(', ');
}

const typeOf = (u: UserListItem | UserDetails) => (u.is_guest ? 'guest' : (u.user_type ?? ''));

function userTable(users: UserListItem[]): string {
  if (users.length === 0) return 'no accounts\n';
  const rows = users.map((u) => [
    u.name,
    oneLine(u.displayname),
    u.admin ? 'admin' : '',
    typeOf(u),
    stateOf(u),
    formatTime(u.creation_ts),
    u.last_seen_ts === null ? 'never' : formatTime(u.last_seen_ts),
  ]);
  return table(['USER ID', 'DISPLAY NAME', 'ADMIN', 'TYPE', 'STATE', 'CREATED', 'LAST SEEN'], rows);
}

function userDetails(u: UserDetails, s: AccountStateView): string {
  const rows: [string, string][] = [
    ['user', u.name],
    ['name', oneLine(u.displayname)],
    ['avatar', oneLine(u.avatar_url)],
    ['admin', u.admin ? 'yes' : 'no'],
    ['type', typeOf(u) || 'person'],
    ['state', stateOf(u)],
  ];
  if (s.locked.active) rows.push(['lock', restriction('locked', s.locked)]);
  if (s.suspended.active) rows.push(['suspension', restriction('suspended', s.suspended)]);
  for (const t of u.threepids) rows.push([t.medium, oneLine(t.address)]);
  rows.push(['created', formatTime(u.creation_ts * 1000)], ['last seen', u.last_seen_ts === null ? 'never' : formatTime(u.last_seen_ts)]);
  return rows.map(([k, v]) => `${`${k}:`.padEnd(12)}${v}`.trimEnd()).join('\n') + '\n';
}

function deviceTable(devices: AdminDeviceView[]): string {
  if (devices.length === 0) return '\nno devices\n';
  const rows = devices.map((d) => [d.device_id, oneLine(d.display_name), d.last_seen_ts === null ? 'never' : formatTime(d.last_seen_ts), d.last_seen_ip ?? '']);
  return `\n${table(['DEVICE', 'NAME', 'LAST SEEN', 'ADDRESS'], rows)}`;
}
