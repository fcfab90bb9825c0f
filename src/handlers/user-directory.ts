// The user directory (spec: POST /user_directory/search), over local users'
// localparts and display names, with Synapse's `user_directory` options.

import type { Knex } from 'knex';
import type { Config } from '../config/types.js';
import * as Profiles from '../repositories/profiles.js';

/** Words of a search that count; more only narrow it further, and each costs a scan condition. */
const MAX_WORDS = 10;

export interface DirectoryResult {
  limited: boolean;
  results: { user_id: string; display_name?: string; avatar_url?: string }[];
}

export class UserDirectoryHandler {
  constructor(
    private readonly db: Knex,
    private readonly config: Config,
    private readonly clock: () => number = Date.now,
  ) {}

  /**
   * Searches for users (`limit` already clamped to 0–50 by the route):
   * `{limited, results: [{user_id, display_name?, avatar_url?}]}`, best
   * first, `limited` when more matched. Every word of `term` (split on
   * spaces; `@alice:server` reads as `alice`) must occur in the user's
   * localpart or display name, ignoring case. Who can be found follows
   * Synapse's `user_directory`: nobody when `enabled` is false; every local
   * user when `search_all_users` is true; otherwise users who share a room
   * with the searcher or sit in a public room, which is nobody until rooms
   * exist. Never the searcher (as Synapse), deactivated accounts, guests,
   * accounts awaiting approval, support users, nor (unless
   * `show_locked_users`) locked accounts.
   */
  async search(searcher: string, term: string, limit: number): Promise<DirectoryResult> {
    const ud = this.config.user_directory;
    if (!ud.enabled || !ud.search_all_users) return { limited: false, results: [] };
    const typed = searchWords(term);
    if (typed.length === 0) return { limited: false, results: [] };
    const rows = await Profiles.searchDirectory(this.db, {
      words: typed.map((w) => w.toLowerCase()),
      typed,
      whole: term.trim().toLowerCase(),
      excludeUserId: searcher,
      includeLocked: ud.show_locked_users,
      now: this.clock(),
      // One more than asked for tells whether the list was cut (as Synapse).
      limit: limit + 1,
    });
    return {
      limited: rows.length > limit,
      results: rows.slice(0, limit).map((r) => {
        const entry: DirectoryResult['results'][number] = { user_id: r.user_id };
        if (r.displayname !== null) entry.display_name = r.displayname;
        if (r.avatar_url !== null) entry.avatar_url = r.avatar_url;
        return entry;
      }),
    };
  }
}

/** The words of a search: split on white space; a user ID (`@alice:example.org`, `@alice`) counts as its localpart. */
function searchWords(term: string): string[] {
  const words: string[] = [];
  for (let word of term.trim().split(/\s+/)) {
    if (word.startsWith('@')) word = word.slice(1);
    const colon = word.indexOf(':');
    if (colon >= 0) word = word.slice(0, colon);
    if (word !== '') words.push(word);
    if (words.length === MAX_WORDS) break;
  }
  return words;
}
