// The notifier for several processes on one PostgreSQL database: a change is
// announced with pg_notify on one channel, and every process LISTENs on a
// dedicated connection (outside the pool) and wakes its own waiting syncs.
// While that connection is down, every waiting sync is woken (it re-reads and
// misses nothing), and it reconnects.

import type { Knex } from 'knex';
import type { Logger } from 'pino';
import { LocalNotifier, type Notifier } from './notifier.js';

const CHANNEL = 'gatehouse_sync';
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
  ) {}

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
      await client.query(`LISTEN ${CHANNEL}`);
      this.client = client;
      if (this.closed) await knexClient.destroyRawConnection(client);
      // Anything announced while no connection listened is re-read by every waiting sync.
      else this.wakeAll();
    } catch (err) {
      this.logger.warn({ err }, 'could not listen for sync notifications; retrying');
      this.schedule();
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
    for (let i = 0; i < users.length; i += USERS_PER_NOTIFY) {
      const payload = JSON.stringify(users.slice(i, i + USERS_PER_NOTIFY));
      this.db.raw('SELECT pg_notify(?, ?)', [CHANNEL, payload]).catch((err: unknown) => this.logger.error({ err }, 'sync notification failed'));
    }
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
