// Synapse keys that restrict who may register, sign in (or stay signed in),
// reach the client API, or read data about accounts (profiles, whether an
// account exists, the user directory), and that Gatehouse does not implement.
// A server must never be more open than its config says, so a restricting
// value here makes the server refuse to start, naming the key; a value that
// restricts nothing (false, [], enabled: false...) is an ordinary ignored key.
//
// Keys that only widen or tune (SSO providers, password providers, auto-join
// rooms, rate limits of absent features...) are not here: ignoring them leaves
// the server closer, never more open. Keys that restrict rooms, events,
// media, presence or federation traffic are not here either: Gatehouse serves
// none of those yet, and each such feature must bring its keys along.
// Implementing one of the restrictions below means parsing the key in load.ts
// and taking its entry out of this table.

type Raw = Record<string, unknown>;

const isObject = (v: unknown): v is Raw => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Set to something other than the "off" value; any other shape counts as set (fail closed). */
const isSet = (v: unknown) => v !== undefined && v !== null && v !== false;

export interface RestrictiveKey {
  /** The key's path in homeserver.yaml; `[]` steps into every entry of a list (`listeners[].tls`). */
  key: string;
  /**
   * Whether the configured value asks for the restriction. Called only for
   * values that are present and not null (YAML's empty value means the
   * default). Values of an unexpected type restrict: fail closed.
   */
  restricts: (value: unknown) => boolean;
  /** Why Gatehouse cannot honour it, and how to start without it. */
  why: string;
  /** A verification step for registration: its refusal stands in for "open registration without verification". */
  gatesRegistration?: boolean;
}

/** A boolean that defaults to false: anything but false restricts. */
const unlessFalse = (v: unknown) => v !== false;
/** A boolean that defaults to true: anything but true restricts. */
const unlessTrue = (v: unknown) => v !== true;
/** A list that restricts nothing when empty. */
const unlessEmptyList = (v: unknown) => !(Array.isArray(v) && v.length === 0);
/** A section switched on by `enabled: true` (off by default). */
const enabledSection = (v: unknown) => !isObject(v) || isSet(v.enabled);

export const RESTRICTIVE_KEYS: readonly RestrictiveKey[] = [
  // Registration.
  {
    key: 'enable_registration_captcha',
    restricts: unlessFalse,
    why: 'Gatehouse has no CAPTCHA stage (m.login.recaptcha), so registration would ask for none. Remove the key or set it to false.',
    gatesRegistration: true,
  },
  {
    key: 'app_service_config_files',
    restricts: unlessEmptyList,
    why: "Gatehouse has no application services, so their exclusive user namespaces would not be reserved: anyone could register IDs in them. Remove the key or set it to [].",
  },

  // Signing in and staying signed in.
  {
    key: 'password_config.enabled',
    // true and false are implemented (load.ts); Synapse's third value is not.
    restricts: (v) => v === 'only_for_reauth',
    why: 'Gatehouse cannot keep passwords for re-authentication only (only_for_reauth). Use true or false.',
  },
  {
    key: 'password_config.localdb_enabled',
    restricts: unlessTrue,
    why: "Gatehouse has no password providers, so false would mean checking no password against its own accounts, which it cannot switch off separately yet. Remove the key or set it to true (password_config.enabled: false turns password login off).",
  },
  {
    key: 'matrix_authentication_service',
    restricts: enabledSection,
    why: 'Gatehouse cannot delegate sign-in to the Matrix Authentication Service, so its own password login and registration would stay open. Remove the section or set enabled: false.',
  },
  {
    key: 'experimental_features.msc3861',
    restricts: enabledSection,
    why: 'Gatehouse cannot delegate sign-in to an OAuth 2.0 server (MSC3861), so its own password login and registration would stay open. Remove it or set enabled: false.',
  },
  {
    key: 'account_validity',
    restricts: enabledSection,
    why: 'Gatehouse does not expire accounts, so they would stay usable past their validity period. Remove the section or set enabled: false.',
  },
  {
    key: 'hs_disabled',
    restricts: unlessFalse,
    why: 'Gatehouse would go on serving every user. Remove the key or set it to false (or stop the server).',
  },
  {
    key: 'limit_usage_by_mau',
    restricts: unlessFalse,
    why: 'Gatehouse does not count monthly active users, so it would not refuse sign-ins and registrations over max_mau_value. Remove the key or set it to false.',
  },
  {
    key: 'delete_stale_devices_after',
    restricts: () => true,
    why: 'Gatehouse does not sign out devices left unused, so their sessions would go on. Remove the key (session_lifetime caps every sign-in instead).',
  },
  {
    key: 'modules',
    restricts: unlessEmptyList,
    why: 'Synapse modules cannot run in Gatehouse, and a module may refuse registrations or sign-ins (spam checkers, account validity, auth providers). Remove the modules or set modules: [].',
  },
  {
    key: 'spam_checker',
    restricts: unlessEmptyList,
    why: 'Synapse spam checker modules cannot run in Gatehouse, and they may refuse registrations. Remove the key.',
  },

  // Reaching the client API.
  {
    key: 'listeners[].tls',
    restricts: unlessFalse,
    why: 'Gatehouse serves plain HTTP only, and would serve it where clients expect TLS. Terminate TLS in a reverse proxy and set tls: false.',
  },
  {
    key: 'listeners[].resources',
    // Synapse serves the client API (registration, login) only on listeners naming `client`.
    restricts: (v) =>
      !Array.isArray(v) || !v.some((r) => isObject(r) && Array.isArray(r.names) && r.names.includes('client')),
    why: 'Gatehouse serves the client API (registration, login) on every listener, and this one does not name the client resource. Add client to its names, or remove the listener.',
  },
  {
    key: 'listeners[].path',
    restricts: () => true,
    why: 'Gatehouse listens on TCP only, and would open a port instead of this Unix socket (whose file permissions restrict who may connect). Use port and bind_addresses.',
  },

  // Reading data about accounts.
  {
    key: 'include_profile_data_on_invite',
    restricts: unlessTrue,
    why: 'Gatehouse cannot yet keep profiles out of invites. Remove the key or set it to true.',
  },
  {
    key: 'allow_profile_lookup_over_federation',
    restricts: unlessTrue,
    why: 'Gatehouse cannot yet refuse profile lookups from other servers. Remove the key or set it to true.',
  },
];

export interface Refusals {
  /** One problem per restricting value found, `<path>: not supported yet: <why>`. */
  problems: string[];
  /** Whether one of them is a verification step for registration. */
  gatesRegistration: boolean;
}

/** Every value found at `path` in `raw` (several for `[]` steps), with its concrete path (`listeners[1].tls`). */
function valuesAt(raw: unknown, path: string): { path: string; value: unknown }[] {
  let found: { path: string; value: unknown }[] = [{ path: '', value: raw }];
  for (const step of path.split('.')) {
    const list = step.endsWith('[]');
    const name = list ? step.slice(0, -2) : step;
    const next: typeof found = [];
    for (const f of found) {
      // A wrongly shaped parent is the loader's to report.
      if (!isObject(f.value)) continue;
      const p = f.path ? `${f.path}.${name}` : name;
      const v = f.value[name];
      if (!list) next.push({ path: p, value: v });
      else if (Array.isArray(v)) v.forEach((item, i) => next.push({ path: `${p}[${i}]`, value: item }));
    }
    found = next;
  }
  return found.filter((f) => f.value !== undefined && f.value !== null);
}

/** Checks a raw (parsed, unvalidated) config against RESTRICTIVE_KEYS. */
export function refuseRestrictiveKeys(raw: unknown): Refusals {
  const refusals: Refusals = { problems: [], gatesRegistration: false };
  for (const entry of RESTRICTIVE_KEYS) {
    for (const { path, value } of valuesAt(raw, entry.key)) {
      if (!entry.restricts(value)) continue;
      refusals.problems.push(`${path}: not supported yet: ${entry.why}`);
      if (entry.gatesRegistration) refusals.gatesRegistration = true;
    }
  }
  return refusals;
}
