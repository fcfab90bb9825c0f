// Reading typed fields out of a parsed JSON body: a missing required field is
// M_MISSING_PARAM, a field of the wrong type is M_BAD_JSON.

import type { Context } from 'koa';
import { badJson, missingParam } from '../errors.js';

/**
 * The request body as a JSON object, for routes that read one; any other JSON
 * value (null, an array, a number) is 400 M_BAD_JSON. Routes whose request has
 * no body never call this, so they accept whatever valid JSON a client sends.
 */
export function jsonObject(ctx: Context): Record<string, unknown> {
  const body = ctx.request.body as unknown;
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw badJson('Content must be a JSON object.');
  return body as Record<string, unknown>;
}

export class Fields {
  constructor(private readonly body: Record<string, unknown>) {}

  raw(name: string): unknown {
    return this.body[name];
  }

  has(name: string): boolean {
    return this.body[name] !== undefined && this.body[name] !== null;
  }

  string(name: string, opts: { maxLength?: number } = {}): string {
    const v = this.body[name];
    if (v === undefined || v === null) throw missingParam(`Missing parameter: ${name}`);
    return this.checkString(name, v, opts.maxLength);
  }

  optionalString(name: string, opts: { maxLength?: number } = {}): string | null {
    const v = this.body[name];
    if (v === undefined || v === null) return null;
    return this.checkString(name, v, opts.maxLength);
  }

  boolean(name: string, fallback: boolean): boolean {
    const v = this.body[name];
    if (v === undefined || v === null) return fallback;
    if (typeof v !== 'boolean') throw badJson(`${name} must be a boolean`);
    return v;
  }

  stringArray(name: string, opts: { maxItems?: number; maxLength?: number } = {}): string[] {
    const v = this.body[name];
    if (v === undefined || v === null) throw missingParam(`Missing parameter: ${name}`);
    if (!Array.isArray(v)) throw badJson(`${name} must be an array of strings`);
    if (opts.maxItems !== undefined && v.length > opts.maxItems) throw badJson(`${name} may hold at most ${opts.maxItems} items`);
    return v.map((item) => this.checkString(name, item, opts.maxLength));
  }

  private checkString(name: string, v: unknown, maxLength: number | undefined): string {
    if (typeof v !== 'string') throw badJson(`${name} must be a string`);
    // PostgreSQL cannot store U+0000 in text, and no Matrix identifier or name needs it.
    if (v.includes('\u0000')) throw badJson(`${name} must not contain NUL characters`);
    if (maxLength !== undefined && v.length > maxLength) throw badJson(`${name} must be at most ${maxLength} characters`);
    return v;
  }
}
