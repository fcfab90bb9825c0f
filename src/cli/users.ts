// `gatehouse users ...`: the accounts waiting for an admin's approval
// (registration_requires_approval). Like `gatehouse tokens`, it works on the
// config's database through the same handler an admin API would use, so it
// needs neither a running server nor an admin account.

import { parseArgs } from 'node:util';
import type { Config } from '../config/types.js';
import { MatrixError } from '../errors.js';
import { AccountApprovalHandler } from '../handlers/admin/account-approval.js';
import { formatTime, openMigratedDatabase, table } from './common.js';

export const USERS_USAGE = `Usage: gatehouse users <command> [options]

Accounts waiting for approval (registration_requires_approval), read and
written in the database of the config (a running server sees changes at once).

Commands:
  pending                 Accounts waiting for approval, oldest first
  approve USER_ID...      Let these accounts sign in and use the server
  unapprove USER_ID...    Withdraw approval (their requests are refused until approved again)

Options:
  -c, --config PATH   Configuration file (default: $GATEHOUSE_CONFIG or ./homeserver.yaml)
  --json              Print JSON instead of a table
  -h, --help          Show this help
`;

export interface UsersCommandContext {
  readConfig(given: string | undefined): Config;
  out(text: string): void;
  fail(message: string): never;
}

export async function usersCommand(args: string[], ctx: UsersCommandContext): Promise<void> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      options: { config: { type: 'string', short: 'c' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
    });
  } catch (e) {
    return ctx.fail(`${(e as Error).message}\n\n${USERS_USAGE}`);
  }
  const { values, positionals } = parsed;
  if (values.help) return ctx.out(USERS_USAGE);
  const [command, ...userIds] = positionals;
  if (command !== 'pending' && command !== 'approve' && command !== 'unapprove') return ctx.fail(`users: which command?\n\n${USERS_USAGE}`);
  if (command === 'pending' && userIds.length > 0) ctx.fail(`users pending: unexpected argument "${userIds[0]}"`);
  if (command !== 'pending' && userIds.length === 0) ctx.fail(`users ${command}: give at least one USER_ID`);

  const config = ctx.readConfig(values.config as string | undefined);
  const db = await openMigratedDatabase(config, ctx);
  const handler = new AccountApprovalHandler(db, config.server_name);
  let output: string;
  try {
    if (command === 'pending') {
      const pending = await handler.pending();
      output = values.json
        ? `${JSON.stringify({ users: pending }, null, 2)}\n`
        : pending.length === 0
          ? 'No accounts are waiting for approval.\n'
          : table(['USER ID', 'REGISTERED'], pending.map((p) => [p.user_id, formatTime(p.created_ts)]));
    } else {
      // Each ID is checked before any is changed, so that a typo changes nothing.
      for (const id of userIds) await handler.check(id);
      const done = [];
      for (const id of userIds) done.push(await handler.setApproved(id, command === 'approve'));
      output = values.json ? `${JSON.stringify({ users: done }, null, 2)}\n` : done.map((d) => `${d.user_id}: ${d.approved ? 'approved' : 'waiting for approval'}\n`).join('');
    }
  } catch (e) {
    await db.destroy();
    if (e instanceof MatrixError) return ctx.fail(`users ${command}: ${e.message}`);
    throw e;
  }
  await db.destroy();
  ctx.out(output);
}
