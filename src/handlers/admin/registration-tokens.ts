// Registration tokens for server admins: Synapse's admin API
// (/_synapse/admin/v1/registration_tokens, which synadm speaks) and the
// `gatehouse tokens` command, both through this handler so they keep the same
// rules. Beyond Synapse: a free-text note per token, a paginated list, and the
// accounts each token registered.

import type { Knex } from 'knex';
import { randomString } from '../../crypto/tokens.js';
import { invalidParam, notFound } from '../../errors.js';
import * as Tokens from '../../repositories/registration-tokens.js';
import { inviteUrl } from '../../domain/invite-links.js';
import { REGISTRATION_TOKEN_RE } from '../../uia/stages/registration-token.js';

/** The characters of MSC3231's grammar; generated tokens draw from all of them. */
export const TOKEN_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._~-';
/** As Synapse: the length of a generated token when none is asked for. */
export const DEFAULT_TOKEN_LENGTH = 16;
export const MAX_TOKEN_LENGTH = 64;
/** uses_allowed is a 32-bit integer column on PostgreSQL. */
export const MAX_USES_ALLOWED = 2 ** 31 - 1;
/** Longest note, in characters (code points). */
export const MAX_NOTE_LENGTH = 1000;
export const DEFAULT_LIST_LIMIT = 100;
export const MAX_LIST_LIMIT = 1000;
/** Tries at drawing an unused token before giving up (only short lengths can run out). */
const GENERATE_ATTEMPTS = 10;

/** A token as the admin API shows it: Synapse's fields, plus `note`. */
export interface TokenView {
  token: string;
  /** null = unlimited. */
  uses_allowed: number | null;
  pending: number;
  completed: number;
  /** Milliseconds since the epoch; null = never. */
  expiry_time: number | null;
  note: string | null;
  /** Beyond Synapse: the token's invite page, `{public_baseurl}_gatehouse/invite/{token}`; only when public_baseurl is set. */
  invite_url?: string;
}

/** One account registered with a token. */
export interface TokenRegistration {
  user_id: string;
  /** Milliseconds since the epoch. */
  registered_at: number;
}

export interface TokenList {
  registration_tokens: TokenView[];
  /** The `from` of the next page; absent on the last page. A string, as in Synapse's paginated admin APIs. */
  next_token?: string;
}

export interface NewTokenRequest {
  /** The token to create; null generates one of `length` characters. */
  token: string | null;
  /** null = DEFAULT_TOKEN_LENGTH. Checked even when `token` is given (synadm always sends it). */
  length: number | null;
  usesAllowed: number | null;
  expiryTime: number | null;
  note: string | null;
}

/** What PUT may change; an absent (undefined) field is left as it is, null clears it. */
export interface TokenUpdate {
  usesAllowed?: number | null;
  expiryTime?: number | null;
  note?: string | null;
}

export interface ListRequest {
  valid: boolean | null;
  /** Offset into the list. */
  from: number;
  limit: number;
}

function view(row: Tokens.RegistrationTokenRow, publicBaseurl: string | null): TokenView {
  const v: TokenView = {
    token: row.token,
    uses_allowed: row.uses_allowed,
    pending: row.pending,
    completed: row.completed,
    expiry_time: row.expiry_time,
    note: row.note,
  };
  const url = inviteUrl(publicBaseurl, row.token);
  if (url !== null) v.invite_url = url;
  return v;
}

const noSuchToken = (token: string) => notFound(`No such registration token: ${token}`);

/**
 * A token that could be named in the admin API's path. "." and ".." fit the
 * grammar but URL parsers remove such path segments (even as %2E), so they
 * could never be looked at, changed or deleted: they are refused.
 */
function isAddressable(token: string): boolean {
  return REGISTRATION_TOKEN_RE.test(token) && token !== '.' && token !== '..';
}

export class RegistrationTokenAdminHandler {
  constructor(
    private readonly db: Knex,
    /** For the tokens' invite URLs (none without it). */
    private readonly publicBaseurl: string | null = null,
    private readonly clock: () => number = Date.now,
  ) {}

  /**
   * GET /_synapse/admin/v1/registration_tokens: tokens oldest first, `limit`
   * from offset `from`, only the valid (`valid` true) or invalid (false) ones
   * at this moment. A pending use counts as used (as Synapse). Errors: 400
   * M_INVALID_PARAM for a `limit` outside 1–1000 or a negative `from`.
   */
  async list(req: ListRequest): Promise<TokenList> {
    if (!Number.isSafeInteger(req.limit) || req.limit < 1 || req.limit > MAX_LIST_LIMIT)
      throw invalidParam(`limit must be an integer from 1 to ${MAX_LIST_LIMIT}`);
    if (!Number.isSafeInteger(req.from) || req.from < 0) throw invalidParam('from must be a non-negative integer');
    // One row more than asked tells whether there is a next page.
    const rows = await Tokens.listTokens(this.db, { valid: req.valid, now: this.clock(), offset: req.from, limit: req.limit + 1 });
    const page: TokenList = { registration_tokens: rows.slice(0, req.limit).map((r) => view(r, this.publicBaseurl)) };
    if (rows.length > req.limit) page.next_token = String(req.from + req.limit);
    return page;
  }

  /**
   * POST /_synapse/admin/v1/registration_tokens/new. Returns the new token.
   * Errors (400 M_INVALID_PARAM, nothing created): a token outside MSC3231's
   * grammar (or "." / ".."), a length outside 1–64, uses_allowed negative or
   * over 2^31-1, expiry_time in the past, a note over 1000 characters or with
   * a NUL, a token that exists already ("Token already exists", as Synapse),
   * no unused token of that length found.
   */
  async create(req: NewTokenRequest): Promise<TokenView> {
    const length = req.length ?? DEFAULT_TOKEN_LENGTH;
    if (!Number.isSafeInteger(length) || length < 1 || length > MAX_TOKEN_LENGTH)
      throw invalidParam(`length must be an integer from 1 to ${MAX_TOKEN_LENGTH}`);
    if (req.token !== null) checkToken(req.token);
    const now = this.clock();
    checkUsesAllowed(req.usesAllowed);
    checkExpiryTime(req.expiryTime, now);
    checkNote(req.note);
    const row = (token: string): Tokens.RegistrationTokenRow => ({
      token,
      uses_allowed: req.usesAllowed,
      pending: 0,
      completed: 0,
      expiry_time: req.expiryTime,
      note: req.note,
      created_ts: now,
    });

    if (req.token !== null) {
      if (!(await Tokens.insertToken(this.db, row(req.token)))) throw invalidParam(`Token already exists: ${req.token}`);
      return view(row(req.token), this.publicBaseurl);
    }
    for (let attempt = 0; attempt < GENERATE_ATTEMPTS; attempt++) {
      // crypto.randomBytes underneath, uniformly over the alphabet.
      const token = randomString(length, TOKEN_ALPHABET);
      if (!isAddressable(token)) continue;
      if (await Tokens.insertToken(this.db, row(token))) return view(row(token), this.publicBaseurl);
    }
    throw invalidParam(`Could not find an unused token of length ${length}; ask for a longer one`);
  }

  /**
   * GET /_synapse/admin/v1/registration_tokens/{token}; with `registrations`,
   * also the accounts registered with it (this token, not an earlier one of
   * the same name that was deleted), oldest first. 404 M_NOT_FOUND for an
   * unknown token (or one that no token can be).
   */
  async get(token: string, opts: { registrations: boolean } = { registrations: false }): Promise<TokenView & { registrations?: TokenRegistration[] }> {
    if (!isAddressable(token)) throw noSuchToken(token);
    const row = await Tokens.findToken(this.db, token);
    if (!row) throw noSuchToken(token);
    if (!opts.registrations) return view(row, this.publicBaseurl);
    const uses = await Tokens.listTokenUses(this.db, token, row.created_ts);
    return { ...view(row, this.publicBaseurl), registrations: uses.map((u) => ({ user_id: u.user_id, registered_at: u.used_ts })) };
  }

  /**
   * PUT /_synapse/admin/v1/registration_tokens/{token}: changes uses_allowed,
   * expiry_time and note (null clears each: unlimited, never, none); nothing
   * given returns the token unchanged. As Synapse, the values are checked
   * before the token is looked up: 400 M_INVALID_PARAM as for create (an
   * expiry_time in the past too), then 404 M_NOT_FOUND.
   */
  async update(token: string, changes: TokenUpdate): Promise<TokenView> {
    const set: Tokens.TokenChanges = {};
    if (changes.usesAllowed !== undefined) set.uses_allowed = checkUsesAllowed(changes.usesAllowed);
    if (changes.expiryTime !== undefined) set.expiry_time = checkExpiryTime(changes.expiryTime, this.clock());
    if (changes.note !== undefined) set.note = checkNote(changes.note);
    if (!isAddressable(token)) throw noSuchToken(token);
    const row = Object.keys(set).length === 0 ? await Tokens.findToken(this.db, token) : await Tokens.updateToken(this.db, token, set);
    if (!row) throw noSuchToken(token);
    return view(row, this.publicBaseurl);
  }

  /**
   * DELETE /_synapse/admin/v1/registration_tokens/{token}: `{}`. Registrations
   * holding a pending use of it fail; its registrations stay on record. 404
   * M_NOT_FOUND for an unknown token.
   */
  async delete(token: string): Promise<Record<string, never>> {
    if (!isAddressable(token) || !(await Tokens.deleteToken(this.db, token))) throw noSuchToken(token);
    return {};
  }
}

function checkToken(token: string): void {
  if (!REGISTRATION_TOKEN_RE.test(token))
    throw invalidParam(`token must be 1 to ${MAX_TOKEN_LENGTH} characters of A-Z, a-z, 0-9, ".", "_", "~" and "-"`);
  if (!isAddressable(token)) throw invalidParam('token cannot be "." or ".." (it could not be named in a URL)');
}

function checkUsesAllowed(uses: number | null): number | null {
  if (uses !== null && (!Number.isSafeInteger(uses) || uses < 0 || uses > MAX_USES_ALLOWED))
    throw invalidParam(`uses_allowed must be a non-negative integer up to ${MAX_USES_ALLOWED}, or null`);
  return uses;
}

/** As Synapse: a time before now is refused (on creation and on update). */
function checkExpiryTime(expiry: number | null, now: number): number | null {
  if (expiry === null) return null;
  if (!Number.isSafeInteger(expiry)) throw invalidParam('expiry_time must be an integer (milliseconds since the epoch) or null');
  if (expiry < now) throw invalidParam('expiry_time must not be in the past');
  return expiry;
}

function checkNote(note: string | null): string | null {
  if (note === null) return null;
  // PostgreSQL cannot store U+0000 in text.
  if (note.includes('\u0000')) throw invalidParam('note must not contain NUL characters');
  if (note.length > MAX_NOTE_LENGTH && [...note].length > MAX_NOTE_LENGTH) throw invalidParam(`note must be at most ${MAX_NOTE_LENGTH} characters`);
  return note;
}
