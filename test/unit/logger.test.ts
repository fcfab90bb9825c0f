// The logger's batched writer (src/logger.ts): every line arrives, in order,
// whether the process flushes, exits at once, or dies of an uncaught error.

import { execFile } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { createLogger, logFlatInfo } from '../../src/logger.js';

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

describe('logFlatInfo: the same line pino writes', () => {
  /** A destination that keeps every line written to it. */
  const capture = () => {
    const lines: string[] = [];
    return { lines, stream: { write: (s: string) => void lines.push(s) } };
  };
  const samples: Record<string, string | number | boolean | null | undefined>[] = [
    { method: 'GET', path: '/_matrix/client/v3/account/whoami', status: 200, ms: 0.37, ip: '127.0.0.1', user: '@alice:example.org' },
    { method: 'POST', path: '/a"b\\c/\u0001\u001f\u2028/é/😀/\ud800', status: 404, ms: 12, ip: '::ffff:10.0.0.1', user: undefined },
    { flag: true, off: false, nothing: null, inf: Infinity, nan: Number.NaN, big: 1e21, neg: -0.5, empty: '' },
    {},
  ];

  it.each(samples.map((fields, i) => [i, fields] as const))('sample %i: same keys in the same order, same values, same framing', (_i, fields) => {
    const fast = capture();
    const reference = capture();
    logFlatInfo(createLogger('info', fast.stream), fields, 'request');
    createLogger('info', reference.stream).info(fields, 'request');
    expect(fast.lines).toHaveLength(1);
    expect(reference.lines).toHaveLength(1);
    const [a, b] = [fast.lines[0]!, reference.lines[0]!];
    expect(a.endsWith('}\n')).toBe(true);
    expect(a.split('\n')).toHaveLength(2); // one line: control characters are escaped
    const [pa, pb] = [JSON.parse(a) as Record<string, unknown>, JSON.parse(b) as Record<string, unknown>];
    expect(Object.keys(pa)).toEqual(Object.keys(pb));
    expect(typeof pa.time).toBe('number');
    expect(Math.abs((pa.time as number) - (pb.time as number))).toBeLessThan(1000);
    expect({ ...pa, time: 0 }).toEqual({ ...pb, time: 0 });
    // Byte for byte, apart from the time, for everything but a lone surrogate (pino writes it raw, JSON.stringify escapes it).
    if (!JSON.stringify(fields).includes('\\ud800')) expect(a.replace(/"time":\d+/, '')).toBe(b.replace(/"time":\d+/, ''));
  });

  it('writes nothing below the logger level', () => {
    const out = capture();
    logFlatInfo(createLogger('warn', out.stream), { a: 1 }, 'request');
    expect(out.lines).toEqual([]);
  });

  it('hands any other logger to its own info (its formatters, bindings and level apply)', () => {
    const out = capture();
    const own = pino({ level: 'info', base: { name: 'mine' }, formatters: { level: (label) => ({ severity: label }) } }, out.stream);
    logFlatInfo(own.child({ component: 'http' }), { path: '/x', status: 200 }, 'request');
    const line = JSON.parse(out.lines[0]!) as Record<string, unknown>;
    expect(line).toMatchObject({ severity: 'info', name: 'mine', component: 'http', path: '/x', status: 200, msg: 'request' });
    expect(line.level).toBeUndefined();
  });

  it('takes a logger whose stream needs pino metadata (a multistream) the slow way, so that each stream gets its level', () => {
    const info = capture();
    const errors = capture();
    const logger = createLogger('info', pino.multistream([{ level: 'info', stream: info.stream }, { level: 'error', stream: errors.stream }]));
    logFlatInfo(logger, { status: 200 }, 'request');
    expect(info.lines).toHaveLength(1);
    expect(errors.lines).toEqual([]);
  });
});
