// Client-Server API paths: the stable v3 prefix, plus r0 where older clients
// (matrix-nio, older SDKs) still call it.

export function clientPaths(path: string): string[] {
  return [`/_matrix/client/v3${path}`, `/_matrix/client/r0${path}`];
}

/** The body of a request as a plain object (the body middleware guarantees one). */
export type JsonObject = Record<string, unknown>;
