// What the database-backed commands (tokens, users) share: opening the
// config's database as it stands, printing tables for people, and reading
// times and passwords given on the command line.

import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { type ParseArgsOptionsConfig, parseArgs } from 'node:util';
import type { Knex } from 'knex';
import { migrationSource } from '../../migrations/index.js';
import type { Config } from '../config/types.js';
import { parseDuration } from '../config/units.js';
import { openDatabase } from '../db/database.js';

export interface CliFailure {
  /** Prints the message and exits 1. */
  fail(message: string): never;
}

/**
 * The config's database, once its schema is known to be this version's. A
 * missing SQLite file is not created, and a schema behind is not migrated
 * here: both are `gatehouse migrate`'s (or the server's) to do.
 */
export async function openMigratedDatabase(config: Config, ctx: CliFailure): Promise<Knex> {
  if (config.database.name === 'sqlite3') {
    const file = config.database.args.database;
    if (file === ':memory:') ctx.fail('the database is in memory (":memory:"): there is nothing to manage outside the server');
    if (!existsSync(file)) ctx.fail(`the database ${file} does not exist; start the server or run "gatehouse migrate" first`);
  }
  const db = openDatabase(config.database);
  try {
    const [, pending] = (await db.migrate.list({ migrationSource })) as [unknown[], unknown[]];
    if (pending.length > 0) throw new Error('the database schema is not up to date; run "gatehouse migrate" first');
  } catch (e) {
    await db.destroy();
    return ctx.fail((e as Error).message);
  }
  return db;
}

export /** A time for people: UTC, to the second. */
function formatTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd();
  return [line(header), ...rows.map(line)].join('\n') + '\n';
}

/** Notes are free text: one line, control characters shown as spaces, so a note cannot break (or forge) a table. */
export function oneLine(text: string | null): string {
  return text === null ? '' : text.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, ' ');
}


const ISO_DATE_TIME = /^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,3})?)?(?:Z|[+-]\d{2}:?\d{2})?)?$/i;

/**
 * A time given on the command line (WHEN): milliseconds since the epoch, a
 * time from now ("30m", "12h", "7d", "2w"), or an ISO 8601 date or time (a
 * date alone is UTC midnight; a time without a zone is local time). Null when
 * it is none of those.
 */
export function parseWhen(value: string, now: number): number | null {
  if (/^\d{1,15}$/.test(value)) return Number(value);
  if (/^\d+(?:\.\d+)?(?:ms|s|m|h|d|w|y)$/.test(value)) return now + parseDuration(value)!;
  if (ISO_DATE_TIME.test(value)) {
    const ms = Date.parse(value.replace(' ', 'T'));
    if (Number.isFinite(ms)) return ms;
  }
  return null;
}

/** The first line of `input` (without its line end), or "" when it ends before one: for --password-stdin. */
export function readFirstLine(input: NodeJS.ReadableStream): Promise<string> {
  return new Promise((resolve) => {
    const rl = createInterface({ input, terminal: false });
    let done = false;
    rl.once('line', (line) => {
      done = true;
      rl.close();
      resolve(line);
    });
    rl.once('close', () => {
      if (!done) resolve('');
    });
  });
}

/**
 * A subcommand's arguments, parsed with node:util's parseArgs (positionals
 * allowed); an unknown option or a missing value ends the command with the
 * message and `usage`.
 */
export function parseCommandLine<T extends ParseArgsOptionsConfig>(args: string[], options: T, usage: string, ctx: CliFailure) {
  try {
    return parseArgs({ args, allowPositionals: true, options });
  } catch (e) {
    return ctx.fail(`${(e as Error).message}\n\n${usage}`);
  }
}
