// The logger's batched writer (src/logger.ts): every line arrives, in order,
// whether the process flushes, exits at once, or dies of an uncaught error.

import { execFile } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/logger.js';

const run = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), 'gatehouse-logger-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const linesOf = (text: string) =>
  text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);

/** Runs `body` in a fresh node process, `createLogger` imported from the build (dist/: run `npm run build` first, as for the black-box suites). */
async function child(body: string): Promise<{ stdout: string; code: number }> {
  const src = new URL('../../dist/src/logger.js', import.meta.url).href;
  const script = `const { createLogger } = await import(${JSON.stringify(src)});\n${body}`;
  try {
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script]);
    return { stdout, code: 0 };
  } catch (e) {
    const err = e as { stdout: string; code: number };
    return { stdout: err.stdout, code: err.code };
  }
}

describe('createLogger to a file descriptor', () => {
  it('writes every line, in order, by the time flush calls back', async () => {
    const path = join(dir, 'flush.log');
    const fd = openSync(path, 'w');
    const logger = createLogger('info', fd);
    for (let i = 0; i < 5000; i++) logger.info({ i }, 'request');
    logger.debug('below the level: not written');
    await new Promise<void>((resolve, reject) => logger.flush((err) => (err ? reject(err) : resolve())));
    closeSync(fd);
    const lines = linesOf(readFileSync(path, 'utf8'));
    expect(lines.map((l) => l.i)).toEqual(Array.from({ length: 5000 }, (_, i) => i));
    expect(lines.every((l) => l.msg === 'request' && l.name === 'gatehouse' && l.level === 30)).toBe(true);
  });

  it('writes a line within a short wait without any flush (a quiet server still logs promptly)', async () => {
    const path = join(dir, 'prompt.log');
    const fd = openSync(path, 'w');
    const logger = createLogger('info', fd);
    logger.info({ n: 1 }, 'one');
    let text = '';
    for (let waited = 0; waited < 2000 && !text.includes('"one"'); waited += 20) {
      await new Promise((r) => setTimeout(r, 20));
      text = readFileSync(path, 'utf8');
    }
    closeSync(fd);
    expect(linesOf(text).map((l) => l.msg)).toEqual(['one']);
  });

  it('writes the lines logged just before process.exit()', async () => {
    const { stdout, code } = await child(`const l = createLogger('info', 1); for (let i = 0; i < 100; i++) l.info({ i }, 'line'); process.exit(3);`);
    expect(code).toBe(3);
    expect(linesOf(stdout).map((l) => l.i)).toEqual(Array.from({ length: 100 }, (_, i) => i));
  });

  it('writes the lines logged before an uncaught exception kills the process', async () => {
    const { stdout, code } = await child(`const l = createLogger('info', 1); l.info('before'); setTimeout(() => { l.error('failing'); throw new Error('boom'); }, 1);`);
    expect(code).not.toBe(0);
    expect(linesOf(stdout).map((l) => l.msg)).toEqual(['before', 'failing']);
  });
});
