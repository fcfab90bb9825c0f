// PasswordHasher.verify gives argon2.verify's answer for every stored string
// (false where argon2.verify throws: a damaged or foreign string), and its
// gate caps the hashes in flight, in order, freeing a slot after a failure.

import argon2 from 'argon2';
import { describe, expect, it } from 'vitest';
import { PasswordHasher } from '../../src/crypto/passwords.js';

// Small parameters: the answers, not the cost, are under test.
const params = { memory_cost: 1024, time_cost: 1, parallelism: 1 };
const opts = { memoryCost: 1024, timeCost: 1, parallelism: 1 };

/** The verdicts of PasswordHasher and of argon2.verify (false when it throws) for each password. */
async function both(stored: string, passwords: string[]): Promise<{ ours: boolean[]; theirs: boolean[] }> {
  const hasher = new PasswordHasher(params, 2);
  const ours = await Promise.all(passwords.map((p) => hasher.verify(stored, p)));
  const theirs = await Promise.all(passwords.map((p) => argon2.verify(stored, p).catch(() => false)));
  return { ours, theirs };
}

describe('PasswordHasher.verify', () => {
  it('accepts the right password and refuses others, for a hash it made', async () => {
    const hasher = new PasswordHasher(params, 2);
    const stored = await hasher.hash('correct horse');
    expect(await hasher.verify(stored, 'correct horse')).toBe(true);
    expect(await hasher.verify(stored, 'correct hors')).toBe(false);
    expect(await hasher.verify(stored, 'correct horse ')).toBe(false);
    expect(await hasher.verify(stored, '')).toBe(false);
    expect(await hasher.verify(null, 'correct horse')).toBe(false);
  });

  it.each([
    ['argon2id', argon2.argon2id],
    ['argon2i', argon2.argon2i],
    ['argon2d', argon2.argon2d],
  ] as const)('agrees with argon2.verify on %s hashes', async (_name, type) => {
    const stored = await argon2.hash('pässwörd ✓', { ...opts, type });
    expect(await both(stored, ['pässwörd ✓', 'passwörd ✓', 'pässwörd'])).toEqual({ ours: [true, false, false], theirs: [true, false, false] });
  });

  it('reads the parameters in any order, a version 16 hash, and other hash and salt lengths', async () => {
    const made = await argon2.hash('pw', { ...opts, hashLength: 16, salt: Buffer.alloc(24, 7) });
    const [, id, v, ps, salt, hash] = made.split('$');
    const reordered = `$${id}$${v}$${ps!.split(',').reverse().join(',')}$${salt}$${hash}`;
    expect(reordered).not.toBe(made);
    expect(await both(reordered, ['pw', 'pW'])).toEqual({ ours: [true, false], theirs: [true, false] });
    const v16 = await argon2.hash('pw', { ...opts, version: 0x10 });
    expect(v16).toContain('$v=16$');
    expect(await both(v16, ['pw', 'px'])).toEqual({ ours: [true, false], theirs: [true, false] });
  });

  it('leaves strings it does not split to argon2.verify (associated data, no version), with its answers', async () => {
    const withData = await argon2.hash('pw', { ...opts, associatedData: Buffer.from('ad') });
    expect(withData).toContain('data=');
    expect(await both(withData, ['pw', 'px'])).toEqual({ ours: [true, false], theirs: [true, false] });
    const noVersion = (await argon2.hash('pw', { ...opts, version: 0x10 })).replace('$v=16', '');
    const r = await both(noVersion, ['pw', 'px']);
    expect(r.ours).toEqual(r.theirs);
    expect(r.ours).toEqual([true, false]);
  });

  it('answers false (never throws) for stored strings that are not argon2 hashes or are damaged', async () => {
    const good = await argon2.hash('pw', opts);
    const [, id, v, ps, salt, hash] = good.split('$');
    const damaged = [
      '',
      'plain',
      '$2b$12$abcdefghijklmnopqrstuuJ7bE1Zm1sWmM3o3R5w5c3Z8Y1s8kV5y',
      `$argon2x$${v}$${ps}$${salt}$${hash}`,
      `$${id}$${v}$${ps}$${salt}$${hash!.slice(0, -4)}`, // a shorter hash: a different result
      `$${id}$${v}$${ps}$${salt}$${hash}A`,
      `$${id}$${v}$m=1024,t=1,t=1$${salt}$${hash}`, // a parameter twice, one missing
      `$${id}$${v}$m=99999999999,t=1,p=1$${salt}$${hash}`,
      `$${id}$${v}$m=1024,t=0,p=1$${salt}$${hash}`,
      `$${id}$${v}$${ps}$${salt!.slice(0, 4)}$${hash}`, // a salt too short
      `$${id}$${v}$${ps}$${salt}$${hash}$`,
      `$${id}$v=99$${ps}$${salt}$${hash}`,
    ];
    const hasher = new PasswordHasher(params, 2);
    for (const stored of damaged) {
      expect(await hasher.verify(stored, 'pw'), stored).toBe(false);
      expect(await argon2.verify(stored, 'pw').catch(() => false), stored).toBe(false);
    }
  });

  it('runs at most `concurrency` hashes at once, first come first served, and frees the slot after a failure', async () => {
    const hasher = new PasswordHasher(params, 1);
    const stored = await hasher.hash('pw');
    const order: number[] = [];
    const all = await Promise.all(
      [0, 1, 2, 3].map((i) =>
        hasher.verify(i === 1 ? 'not a hash' : stored, i === 2 ? 'px' : 'pw').then((ok) => {
          order.push(i);
          return ok;
        }),
      ),
    );
    expect(all).toEqual([true, false, false, true]);
    expect(order).toEqual([0, 1, 2, 3]);
  });
});
