// Assertions the black-box suites share: Matrix errors, and "this request
// changed nothing in the database".

import { expect } from 'vitest';
import type { TestServer } from './server.js';

/** Rows of `table` (matching `where`) in the server's own database. */
export async function countRows(hs: TestServer, table: string, where: Record<string, unknown> = {}): Promise<number> {
  const row = await hs.db()(table).where(where).count<{ n: number | string }[]>({ n: '*' }).first();
  return Number(row?.n ?? 0);
}

/** The tables an account request could write to. */
export const ACCOUNT_TABLES = ['users', 'profiles', 'devices', 'access_tokens', 'refresh_tokens'];

/** Runs `act` and checks that the row counts of `tables` are the same afterwards. */
export async function expectNoChange(hs: TestServer, act: () => Promise<void>, tables = ACCOUNT_TABLES): Promise<void> {
  const snapshot = async () => Promise.all(tables.map((t) => countRows(hs, t)));
  const before = await snapshot();
  await act();
  expect(await snapshot()).toEqual(before);
}

/** Expects a Matrix error answer: this status and errcode, and an `error` message. */
export function expectMatrixError(res: { status: number; body: any }, status: number, errcode: string): void {
  expect({ status: res.status, errcode: res.body?.errcode }).toEqual({ status, errcode });
  expect(typeof res.body.error).toBe('string');
}
