// argon2id password hashing. The argon2 binding runs hashing on libuv's thread
// pool, so the event loop keeps serving requests while a hash is computed.
//
// That pool is shared with everything else asynchronous (SQLite queries among
// them). If every pool thread held a 30 ms argon2 job, a token lookup would
// queue behind them and signed-in users would wait on other people's logins,
// so at most `pool size - 1` hashes run at once, one pool thread always left
// for the rest; the rest wait their turn here. Within that, one hash more than
// there are cores: with exactly one per core, a core idles each time a hash
// ends until the event loop has handed its slot to the next login (logins at
// 0.80-0.84 of raw argon2 verify; with one more, 0.87-0.92, and whoami's p99
// during logins 9 -> 12 ms, within issue 15's 25 ms: docs/benchmarks.md).

import { availableParallelism } from 'node:os';
import argon2 from 'argon2';

export interface Argon2Params {
  memory_cost: number;
  time_cost: number;
  parallelism: number;
}

/** libuv's thread pool size (UV_THREADPOOL_SIZE, default 4). */
function threadPoolSize(): number {
  const n = Number(process.env.UV_THREADPOOL_SIZE);
  return Number.isInteger(n) && n > 0 ? n : 4;
}

/** Hashes run at once by default: min(pool size - 1, cores + 1), at least 1 (see the top of this file). */
export function defaultHashConcurrency(): number {
  return Math.max(1, Math.min(threadPoolSize() - 1, availableParallelism() + 1));
}

/**
 * A first-in, first-out limit on how many tasks run at once. Plain promise
 * chaining rather than an async function: on the login path every extra
 * promise hop is paid in V8's slow tiers (docs/benchmarks.md).
 */
class Gate {
  private running = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(private readonly limit: number) {}

  run<T>(task: () => Promise<T>): Promise<T> {
    if (this.running < this.limit) {
      this.running++;
      return this.started(task);
    }
    return new Promise<void>((resolve) => this.waiting.push(resolve)).then(() => this.started(task));
  }

  /** Runs `task` in a slot already counted; the slot goes to the next waiting task (or is freed) once it settles. */
  private started<T>(task: () => Promise<T>): Promise<T> {
    let p: Promise<T>;
    try {
      p = task();
    } catch (err) {
      p = Promise.reject(err);
    }
    const done = () => {
      const next = this.waiting.shift();
      // Hand the slot straight to the next task; `running` stays the same.
      if (next) next();
      else this.running--;
    };
    p.then(done, done);
    return p;
  }
}

export class PasswordHasher {
  private readonly gate: Gate;

  constructor(
    private readonly params: Argon2Params,
    concurrency = defaultHashConcurrency(),
  ) {
    this.gate = new Gate(concurrency);
  }

  hash(password: string): Promise<string> {
    return this.gate.run(() =>
      argon2.hash(password, {
        type: argon2.argon2id,
        memoryCost: this.params.memory_cost,
        timeCost: this.params.time_cost,
        parallelism: this.params.parallelism,
      }),
    );
  }

  /**
   * Whether `password` matches the stored PHC string `hash` (null: none stored, then checked against a
   * dummy hash for the same time). A string that is no argon2 hash, or is damaged, answers false.
   */
  verify(hash: string | null, password: string): Promise<boolean> {
    if (!hash) {
      // Spend the same time as a real check so that "no such user" and
      // "wrong password" cannot be told apart by timing.
      return this.dummyHash().then((dummy) =>
        this.gate.run(() => argon2.verify(dummy, password)).then(
          () => false,
          () => false,
        ),
      );
    }
    return this.gate.run(() => argon2.verify(hash, password)).catch(() => false);
  }

  private dummy: Promise<string> | null = null;
  private dummyHash(): Promise<string> {
    this.dummy ??= this.hash('gatehouse-timing-equaliser');
    return this.dummy;
  }
}
