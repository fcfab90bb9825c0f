// argon2id password hashing. The argon2 binding runs hashing on libuv's thread
// pool, so the event loop keeps serving requests while a hash is computed.

import argon2 from 'argon2';

export interface Argon2Params {
  memory_cost: number;
  time_cost: number;
  parallelism: number;
}

export class PasswordHasher {
  constructor(private readonly params: Argon2Params) {}

  hash(password: string): Promise<string> {
    return argon2.hash(password, {
      type: argon2.argon2id,
      memoryCost: this.params.memory_cost,
      timeCost: this.params.time_cost,
      parallelism: this.params.parallelism,
    });
  }

  async verify(hash: string | null, password: string): Promise<boolean> {
    if (!hash) {
      // Spend the same time as a real check so that "no such user" and
      // "wrong password" cannot be told apart by timing.
      await argon2.verify(await this.dummyHash(), password).catch(() => false);
      return false;
    }
    try {
      return await argon2.verify(hash, password);
    } catch {
      return false;
    }
  }

  private dummy: Promise<string> | null = null;
  private dummyHash(): Promise<string> {
    this.dummy ??= this.hash('gatehouse-timing-equaliser');
    return this.dummy;
  }
}
