// Minimal typing of the `hashring` package (ketama consistent hashing), the subset PD uses.
declare module 'hashring' {
  export default class HashRing {
    constructor(servers: string[] | Record<string, unknown>, algorithm?: string, options?: Record<string, unknown>);
    /** Up to `size` distinct servers clockwise from the key's point on the continuum. */
    range(key: string, size?: number, unique?: boolean): string[];
    get(key: string): string | undefined;
  }
}
