// Sync filters (spec: "Filtering", filter.yaml): validation of a stored or
// inline filter, and the event matching /sync applies where there is something
// to filter (account data and presence, until rooms arrive).

import { badJson } from '../errors.js';

export interface EventFilter {
  limit?: number;
  types?: string[];
  not_types?: string[];
  senders?: string[];
  not_senders?: string[];
}

export interface Filter {
  event_fields?: string[];
  event_format?: 'client' | 'federation';
  presence?: EventFilter;
  account_data?: EventFilter;
  room?: Record<string, unknown>;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function stringArray(v: unknown, where: string, prefix?: string): void {
  if (v === undefined) return;
  if (!Array.isArray(v) || !v.every((s) => typeof s === 'string')) throw badJson(`${where} must be an array of strings`);
  // As Synapse's filter schema: room IDs start with "!", user IDs with "@".
  if (prefix && !v.every((s: string) => s.startsWith(prefix))) throw badJson(`${where} must hold IDs starting with "${prefix}"`);
}

function bool(v: unknown, where: string): void {
  if (v !== undefined && typeof v !== 'boolean') throw badJson(`${where} must be a boolean`);
}

function eventFilter(v: unknown, where: string, roomEvents = false): void {
  if (v === undefined) return;
  if (!isObject(v)) throw badJson(`${where} must be an object`);
  if (v.limit !== undefined && !(Number.isSafeInteger(v.limit) && (v.limit as number) >= 0)) throw badJson(`${where}.limit must be a non-negative integer`);
  stringArray(v.types, `${where}.types`);
  stringArray(v.not_types, `${where}.not_types`);
  stringArray(v.senders, `${where}.senders`, '@');
  stringArray(v.not_senders, `${where}.not_senders`, '@');
  if (roomEvents) {
    stringArray(v.rooms, `${where}.rooms`, '!');
    stringArray(v.not_rooms, `${where}.not_rooms`, '!');
    for (const b of ['contains_url', 'lazy_load_members', 'include_redundant_members', 'unread_thread_notifications']) bool(v[b], `${where}.${b}`);
  }
}

/**
 * Checks a filter against filter.yaml: 400 M_BAD_JSON when it is not an
 * object or a known key has the wrong type. Unknown keys are kept (as Synapse).
 */
export function validateFilter(v: unknown): Filter {
  if (!isObject(v)) throw badJson('A filter must be a JSON object');
  stringArray(v.event_fields, 'event_fields');
  if (v.event_format !== undefined && v.event_format !== 'client' && v.event_format !== 'federation')
    throw badJson('event_format must be "client" or "federation"');
  eventFilter(v.presence, 'presence');
  eventFilter(v.account_data, 'account_data');
  if (v.room !== undefined) {
    const room = v.room;
    if (!isObject(room)) throw badJson('room must be an object');
    stringArray(room.rooms, 'room.rooms', '!');
    stringArray(room.not_rooms, 'room.not_rooms', '!');
    bool(room.include_leave, 'room.include_leave');
    for (const part of ['ephemeral', 'state', 'timeline', 'account_data']) eventFilter(room[part], `room.${part}`, true);
  }
  return v as Filter;
}

/** Spec: `*` in a type matches any sequence of characters. */
function globMatch(pattern: string, value: string): boolean {
  if (!pattern.includes('*')) return pattern === value;
  const re = new RegExp(`^${pattern.split('*').map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`);
  return re.test(value);
}

/** Events that pass `filter` (types, not_types, senders, not_senders; then limit, keeping the newest). */
export function applyEventFilter<T extends { type: string; sender?: string }>(filter: EventFilter | undefined, events: T[]): T[] {
  if (!filter) return events;
  let out = events.filter((e) => {
    if (filter.not_types?.some((p) => globMatch(p, e.type))) return false;
    if (filter.types && !filter.types.some((p) => globMatch(p, e.type))) return false;
    if (e.sender !== undefined) {
      if (filter.not_senders?.includes(e.sender)) return false;
      if (filter.senders && !filter.senders.includes(e.sender)) return false;
    }
    return true;
  });
  if (filter.limit !== undefined) out = filter.limit === 0 ? [] : out.slice(-filter.limit);
  return out;
}
