// The notifier for several processes on one PostgreSQL database: a change is
// announced with pg_notify on one channel, and every process LISTENs on a
// dedicated connection (outside the pool) and wakes its own waiting syncs.
// While that connection is down, every waiting sync is woken (it re-reads and
// misses nothing), and it reconnects.
//
// The same connection listens on a second channel for the access-token cache
// (issue 15): writers that end or change what a user's tokens may do announce
// the user IDs there, in their own transaction (delivered on commit), and
// every process drops those users' cached tokens. While the connection is down
// (and until it has LISTENed again) the token cache is off: nothing announced
// meanwhile can be missed.

import type { Knex } from 'knex';
import type { Logger } from 'pino';
import type { TokenCache } from '../cache/token-cache.js';
import { LocalNotifier, type Notifier } from './notifier.js';

const CHANNEL = 'gatehouse_sync';
/** Payload: a JSON array of user IDs whose cached tokens go, or "*" for every cached token. */
export const TOKENS_CHANNEL = 'gatehouse_tokens';
/** PostgreSQL's NOTIFY payload limit is 8000 bytes; user IDs are at most 255 characters. */
const USERS_PER_NOTIFY = 25;
const RECONNECT_MS = 1000;

interface PgClient {
  query(sql: string): Promise<unknown>;
  on(event: 'notification', cb: (msg: { channel: string; payload?: string }) => void): void;
  on(event: 'error' | 'end', cb: (err?: Error) => void): void;
  removeAllListeners(): void;
}

export class PgNotifier implements Notifier {
  private readonly local = new LocalNotifier();
  /** How many syncs of each user wait in this process. */
  private readonly waiting = new Map<string, number>();
  private client: PgClient | null = null;
  private closed = false;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly db: Knex,
    private readonly logger: Logger,
    /** This process's access-token cache: emptied on every announcement, and off while not listening. */
    private readonly tokenCache?: TokenCache,
  ) {
    tokenCache?.disable();
  }

  /** Connects the listening connection (the first time; later ones reconnect on their own). */
  async start(): Promise<void> {
    await this.connect();
  }

  private async connect(): Promise<void> {
    if (this.closed) return;
    const knexClient = this.db.client as { acquireRawConnection(): Promise<PgClient>; destroyRawConnection(c: PgClient): Promise<void> };
    try {
      const client = await knexClient.acquireRawConnection();
      client.on('notification', (msg) => {
        if (msg.channel === TOKENS_CHANNEL) return this.dropTokens(msg.payload);
        if (msg.channel !== CHANNEL || !msg.payload) return;
        try {
          const users = JSON.parse(msg.payload) as unknown;
          if (Array.isArray(users)) this.local.notify(users.filter((u): u is string => typeof u === 'string'));
        } catch {
          this.logger.warn('unreadable sync notification');
        }
      });
      const lost = (err?: Error) => {
        if (this.client !== client) return;
        this.client = null;
        // Announcements may be missed from now on: every lookup reads the database until re-LISTENed.
        this.tokenCache?.disable();
        client.removeAllListeners();
        knexClient.destroyRawConnection(client).catch(() => undefined);
        if (!this.closed) {
          this.logger.warn({ err }, 'sync notification connection lost; reconnecting');
          this.wakeAll();
          this.schedule();
        }
      };
      client.on('error', lost);
      client.on('end', lost);
      await client.query(`LISTEN ${CHANNEL}; LISTEN ${TOKENS_CHANNEL}`);
      this.client = client;
      if (this.closed) await knexClient.destroyRawConnection(client);
      else {
        // Anything announced while no connection listened is re-read by every waiting sync,
        // and the token cache starts again empty.
        this.wakeAll();
        this.tokenCache?.enable();
      }
    } catch (err) {
      this.logger.warn({ err }, 'could not listen for sync notifications; retrying');
      this.schedule();
    }
  }

  private dropTokens(payload: string | undefined): void {
    const cache = this.tokenCache;
    if (!cache) return;
    try {
      const users = JSON.parse(payload ?? '') as unknown;
      if (users === '*') return cache.clear();
      if (!Array.isArray(users)) throw new Error('not a list');
      cache.invalidateUsers(users.filter((u): u is string => typeof u === 'string'));
    } catch {
      // On any doubt, forget everything.
      cache.clear();
      this.logger.warn('unreadable token cache notification; cache cleared');
    }
  }

  private schedule(): void {
    if (this.closed || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.connect();
    }, RECONNECT_MS);
    this.timer.unref();
  }

  private wakeAll(): void {
    this.local.notify([...this.waiting.keys()]);
  }

  notify(userIds: string[]): void {
    const users = [...new Set(userIds)];
    if (users.length === 0) return;
    // This process's syncs at once; the others through PostgreSQL.
    this.local.notify(users);
    for (const payload of userPayloads(users))
      this.db.raw('SELECT pg_notify(?, ?)', [CHANNEL, payload]).catch((err: unknown) => this.logger.error({ err }, 'sync notification failed'));
  }

  async waitFor(userId: string, timeoutMs: number, signal?: AbortSignal): Promise<boolean> {
    this.waiting.set(userId, (this.waiting.get(userId) ?? 0) + 1);
    try {
      return await this.local.waitFor(userId, timeoutMs, signal);
    } finally {
      const left = (this.waiting.get(userId) ?? 1) - 1;
      if (left > 0) this.waiting.set(userId, left);
      else this.waiting.delete(userId);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    const client = this.client;
    this.client = null;
    if (client) {
      client.removeAllListeners();
      await (this.db.client as { destroyRawConnection(c: PgClient): Promise<void> }).destroyRawConnection(client).catch(() => undefined);
    }
  }
}

/**
 * Announces to every process on this PostgreSQL database that these users'
 * cached access tokens must go (`'*'`: all of them). Run it on the writer's
 * transaction: PostgreSQL delivers the notification on commit, and not at all
 * on rollback. Rejects as the query does.
 */
export async function announceTokenInvalidation(q: Knex, userIds: string[] | '*'): Promise<void> {
  if (userIds === '*') {
    await q.raw('SELECT pg_notify(?, ?)', [TOKENS_CHANNEL, '"*"']);
    return;
  }
  for (const payload of userPayloads([...new Set(userIds)])) await q.raw('SELECT pg_notify(?, ?)', [TOKENS_CHANNEL, payload]);
}

/** The NOTIFY payloads announcing `users` (distinct): JSON arrays of at most USERS_PER_NOTIFY user IDs each. */
function userPayloads(users: string[]): string[] {
  const payloads: string[] = [];
  for (let i = 0; i < users.length; i += USERS_PER_NOTIFY) payloads.push(JSON.stringify(users.slice(i, i + USERS_PER_NOTIFY)));
  return payloads;
}
