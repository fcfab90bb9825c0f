// Invite links: a registration token as a URL a person can open in a browser
// (the invite page, served at /_gatehouse/invite/{token}).

/** The invite page's path for `token` (percent-encoded; MSC3231 tokens need none, but a path segment must never break). */
export function invitePath(token: string): string {
  return `/_gatehouse/invite/${encodeURIComponent(token)}`;
}

/**
 * The invite URL of a registration token: `{public_baseurl}_gatehouse/invite/{token}`
 * (`public_baseurl` ends with "/" once the config is loaded), or null when
 * `public_baseurl` is not configured (the server cannot know the address people
 * reach it at). For the token admin API and `gatehouse tokens new --link`.
 */
export function inviteUrl(publicBaseurl: string | null, token: string): string | null {
  if (publicBaseurl === null) return null;
  return new URL(invitePath(token).slice(1), publicBaseurl.endsWith('/') ? publicBaseurl : `${publicBaseurl}/`).toString();
}
