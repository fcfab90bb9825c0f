// inflation ships no types: the one function Gatehouse calls.
declare module 'inflation' {
  import type { IncomingMessage } from 'node:http';
  import type { Readable } from 'node:stream';

  /**
   * The request's body stream, decompressed per its Content-Encoding (gzip,
   * deflate, br, identity). Throws an error with `status: 415` for another coding.
   */
  export default function inflate(stream: IncomingMessage, options?: { encoding?: string }): Readable;
}
