// Wakes waiting /sync requests when something for their user changes. Every
// writer calls `notify` after its transaction commits. In one process this is
// an in-memory event; with several processes on PostgreSQL, the sync
// implementation adds LISTEN/NOTIFY behind the same interface.

import { EventEmitter } from 'node:events';

export interface Notifier {
  /** Something for these users changed (call after the change is committed). */
  notify(userIds: string[]): void;
  /**
   * Resolves when `notify` names `userId`, or after `timeoutMs`, or when
   * `signal` aborts. Returns true when woken by a change.
   */
  waitFor(userId: string, timeoutMs: number, signal?: AbortSignal): Promise<boolean>;
}

/** The in-process notifier (SQLite, or one process). */
export class LocalNotifier implements Notifier {
  private readonly events = new EventEmitter();

  constructor() {
    // One listener per waiting sync: thousands of idle clients are expected.
    this.events.setMaxListeners(0);
  }

  notify(userIds: string[]): void {
    for (const u of new Set(userIds)) this.events.emit(u);
  }

  waitFor(userId: string, timeoutMs: number, signal?: AbortSignal): Promise<boolean> {
    return new Promise((resolve) => {
      if (signal?.aborted) return resolve(false);
      const done = (woken: boolean) => {
        clearTimeout(timer);
        this.events.off(userId, onChange);
        signal?.removeEventListener('abort', onAbort);
        resolve(woken);
      };
      const onChange = () => done(true);
      const onAbort = () => done(false);
      const timer = setTimeout(() => done(false), Math.max(0, timeoutMs));
      this.events.on(userId, onChange);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }
}
