// Reading typed fields out of a parsed JSON body: a missing required field is
// M_MISSING_PARAM, a field of the wrong type is M_BAD_JSON.

import type { Context } from 'koa';
import { badJson, invalidParam, MatrixError, missingParam } from '../errors.js';

/** Longest device display name (Synapse's MAX_DEVICE_DISPLAY_NAME_LEN). */
const MAX_DEVICE_DISPLAY_NAME = 100;
/** Longest client-chosen device ID (the size of the device_id columns). */
const MAX_DEVICE_ID = 255;

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

  /**
   * A device display name (`initial_device_display_name` at login and
   * registration, `display_name` of PUT /devices/{deviceId}), or null when
   * absent. Over 100 characters, counted in code points as Synapse does, is
   * 400 M_TOO_LARGE (as Synapse).
   */
  deviceDisplayName(name: string): string | null {
    const v = this.optionalString(name);
    // A UTF-16 length of at most 100 is at most 100 code points; only longer ones need counting.
    if (v !== null && v.length > MAX_DEVICE_DISPLAY_NAME && [...v].length > MAX_DEVICE_DISPLAY_NAME)
      throw new MatrixError(400, 'M_TOO_LARGE', `${name} must be at most ${MAX_DEVICE_DISPLAY_NAME} characters`);
    return v;
  }

  /**
   * A device ID chosen by the client (`device_id` at login and registration),
   * or null when absent. 400 M_INVALID_PARAM for one over 255 characters (as
   * Synapse for its own limit), and for one that could never be named as the
   * {deviceId} of /devices/{deviceId}: "" (an empty path segment), "." and ".."
   * (URL parsers remove those segments, even percent-encoded as %2E). Any
   * other string is fine: percent-encoding carries it through the path.
   */
  deviceId(name: string): string | null {
    const v = this.optionalString(name);
    if (v === null) return null;
    if (v === '' || v === '.' || v === '..') throw invalidParam(`${name} cannot be empty, "." or ".."`);
    if (v.length > MAX_DEVICE_ID) throw invalidParam(`${name} must be at most ${MAX_DEVICE_ID} characters`);
    return v;
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
