// SQL for the one-time nonces of shared-secret registration.

import type { Knex } from 'knex';

export async function insertNonce(q: Knex, nonce: string, expiresTs: number): Promise<void> {
  await q('registration_nonces').insert({ nonce, expires_ts: expiresTs });
}

/** Consumes a nonce: true only for the one request that deletes it while still valid. */
export async function consumeNonce(q: Knex, nonce: string, now: number): Promise<boolean> {
  return (await q('registration_nonces').where({ nonce }).andWhere('expires_ts', '>', now).delete()) > 0;
}

export async function deleteExpiredNonces(q: Knex, now: number): Promise<void> {
  await q('registration_nonces').where('expires_ts', '<=', now).delete();
}
