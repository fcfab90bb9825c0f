// The `gatehouse` command: start, generate-config, migrate, tokens, users, register-user
// (loaded by src/main.ts, the executable).

import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { Logger } from 'pino';
import { ConfigError, loadConfigFile } from '../config/load.js';
import { configTemplate } from '../config/template.js';
import type { Config } from '../config/types.js';
import { migrateToLatest, openDatabase } from '../db/database.js';
import { launchEphemeral } from '../ephemeral.js';
import { createLogger } from '../logger.js';
import { createPrivateFile, openToOthers } from '../private-files.js';
import { resumeAfterStart } from './start-flags.js';

const USAGE = `Usage: gatehouse <command> [options]

Commands:
  start             Run the homeserver
  generate-config   Write a new homeserver.yaml with fresh secrets
  migrate           Bring the database schema up to date and exit
  tokens            Manage registration tokens (gatehouse tokens --help)
  users             Manage accounts: list, create, modify, deactivate, lock, suspend,
                    approve (gatehouse users --help)
  register-user     Create an account on a running server with the shared secret
                    (as register_new_matrix_user; gatehouse register-user --help)

Options:
  -c, --config PATH     Configuration file (default: $GATEHOUSE_CONFIG or ./homeserver.yaml)
  --ephemeral           start: in-memory database, open registration, no rate limits,
                        and an admin account whose token is printed
  --server-name NAME    start --ephemeral / generate-config: the server name
  --port N              start --ephemeral: the port (default 8008; 0 picks a free one)
  --output PATH         generate-config: where to write (default: stdout)
  -h, --help            Show this help
`;

const out = (s: string) => process.stdout.write(s);
const fail = (s: string): never => {
  process.stderr.write(`gatehouse: ${s}\n`);
  process.exit(1);
};

function configPath(given: string | undefined): string {
  return given ?? process.env.GATEHOUSE_CONFIG ?? 'homeserver.yaml';
}

function readConfig(path: string): Config {
  try {
    const { config, warnings } = loadConfigFile(path);
    for (const w of warnings) process.stderr.write(`gatehouse: warning: ${path}: ${w}\n`);
    return config;
  } catch (e) {
    if (e instanceof ConfigError) return fail(`${path}: ${e.message}`);
    throw e;
  }
}

async function start(values: Record<string, string | boolean | undefined>) {
  const ephemeral = values.ephemeral === true;
  const port = values.port === undefined ? 8008 : Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) fail(`--port: "${String(values.port)}" is not a port number`);
  const serverName = (values['server-name'] as string | undefined) ?? process.env.SERVER_NAME ?? 'localhost';
  if (ephemeral) return startEphemeralCommand(serverName, port);
  const config = readConfig(configPath(values.config as string | undefined));
  const logger = createLogger(config.log_level);
  warnAboutOpenFiles(config, logger);
  // Loaded here, not at the top, so that --help and generate-config answer at once.
  const { createGatehouse } = await import('../app.js');
  const gatehouse = await createGatehouse(config, { logger });
  const addresses = await gatehouse.listen();
  const urls = addresses.map((a) => `http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`);
  logger.info({ server_name: config.server_name, listening: urls }, 'Gatehouse is ready');
  stopOnSignals(logger, async () => {
    await gatehouse.close();
    // The log is written asynchronously: let the last lines out before exiting.
    await new Promise<void>((resolve) => logger.flush(() => resolve()));
  });
}

/** `start --ephemeral`: the server of src/ephemeral.ts, its admin credentials printed on stdout. */
async function startEphemeralCommand(serverName: string, port: number) {
  let hs;
  try {
    // Logs on stdout, as the configured server's.
    hs = await launchEphemeral({ serverName, port }, 1);
  } catch (e) {
    resumeAfterStart();
    if (e instanceof ConfigError) return fail(`--server-name: ${e.message}`);
    throw e;
  }
  // It serves: V8 optimizes again what gets hot under load (main.ts paused it for the start).
  resumeAfterStart();
  out(
    `Gatehouse (ephemeral) serving ${hs.serverName} at ${hs.baseUrl}/\n` +
      `admin user: ${hs.adminUserId}\nadmin password: ${hs.adminPassword}\nadmin access token: ${hs.adminToken}\n` +
      `registration shared secret: ${hs.sharedSecret}\n`,
  );
  stopOnSignals(hs.logger, hs.close);
}

function stopOnSignals(logger: Logger, close: () => Promise<void>) {
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    logger.info('shutting down');
    await close();
    process.exit(0);
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

/**
 * Gatehouse creates its database and signing key 0600; files made some other
 * way are used as they are (an admin's choice is not undone silently), with a
 * warning when other users may read them.
 */
function warnAboutOpenFiles(config: Config, logger: Logger) {
  const files = [{ path: config.signing_key_path, what: 'signing key' }];
  if (config.database.name === 'sqlite3' && config.database.args.database !== ':memory:')
    files.push({ path: config.database.args.database, what: 'SQLite database' });
  for (const { path, what } of files) {
    const mode = openToOthers(path);
    if (mode !== null)
      logger.warn({ path, mode: `0${mode.toString(8)}` }, `the ${what} is readable or writable by other users; chmod 600 it`);
  }
}

async function migrate(values: Record<string, string | boolean | undefined>) {
  const config = readConfig(configPath(values.config as string | undefined));
  const db = openDatabase(config.database);
  try {
    const applied = await migrateToLatest(db);
    out(applied.length ? `applied: ${applied.join(', ')}\n` : 'database is up to date\n');
  } finally {
    await db.destroy();
  }
}

function generateConfig(values: Record<string, string | boolean | undefined>) {
  const serverName = (values['server-name'] as string | undefined) ?? 'localhost';
  const text = configTemplate({ serverName, sharedSecret: randomBytes(24).toString('base64url'), openRegistration: false });
  const output = values.output as string | undefined;
  if (!output) return out(text);
  // It holds the registration shared secret: readable by its owner only.
  if (!createPrivateFile(output, text)) fail(`${output} exists; not overwriting it`);
  out(`wrote ${output}\n`);
}

async function main() {
  // These commands have options of their own (src/cli/).
  if (process.argv[2] === 'tokens') {
    const { tokensCommand } = await import('./tokens.js');
    return tokensCommand(process.argv.slice(3), { readConfig: (given) => readConfig(configPath(given)), out, fail });
  }
  if (process.argv[2] === 'users') {
    const { usersCommand } = await import('./users.js');
    return usersCommand(process.argv.slice(3), { readConfig: (given) => readConfig(configPath(given)), out, fail });
  }
  if (process.argv[2] === 'register-user') {
    const { registerUserCommand } = await import('./register-user.js');
    return registerUserCommand(process.argv.slice(3), {
      // Without a config file, flags must give the secret and the URL.
      readConfig: (given) => (given === undefined && !process.env.GATEHOUSE_CONFIG && !existsSync('homeserver.yaml') ? null : readConfig(configPath(given))),
      out,
      fail,
      stdin: process.stdin,
      interactive: Boolean(process.stdin.isTTY && process.stderr.isTTY),
    });
  }
  let parsed;
  try {
    parsed = parseArgs({
      allowPositionals: true,
      options: {
        config: { type: 'string', short: 'c' },
        ephemeral: { type: 'boolean' },
        'server-name': { type: 'string' },
        port: { type: 'string' },
        output: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (e) {
    return fail(`${(e as Error).message}\n\n${USAGE}`);
  }
  const { values, positionals } = parsed;
  const command = positionals[0] ?? 'start';
  if (values.help) return out(USAGE);
  switch (command) {
    case 'start':
      return start(values);
    case 'migrate':
      return migrate(values);
    case 'generate-config':
      return generateConfig(values);
    default:
      return fail(`unknown command "${command}"\n\n${USAGE}`);
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`gatehouse: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
