import { OmniError } from '@omnidict/proto';

/**
 * A compiled glob pattern over key BYTES (Redis KEYS/SCAN semantics):
 *
 * | syntax | matches |
 * | --- | --- |
 * | `*` | any run of bytes, including none |
 * | `?` | exactly one byte |
 * | `[abc]` | one byte from the set; `[a-z]` a byte range (bounds in either order) |
 * | `[!x]`, `[^x]` | one byte NOT in the set |
 * | `\c` | the byte `c` literally (also inside a class); a trailing `\` is a literal backslash |
 *
 * The pattern string is encoded as UTF-8 and matched byte by byte against the key. So literal
 * non-ASCII text matches itself, but `?` and classes see single bytes: `?` does not match a whole
 * multi-byte character, and a class should list ASCII (or latin1 < 0x80) bytes only. An empty
 * pattern matches everything. An unterminated class is INVALID_ARGUMENT.
 */
export interface GlobMatcher {
  readonly pattern: string;
  /** True when the matcher accepts every key (lets a scan skip matching). */
  readonly matchesAll: boolean;
  matches(key: Uint8Array): boolean;
}

type Token =
  | { readonly t: 'lit'; readonly b: number }
  | { readonly t: 'any' }
  | { readonly t: 'star' }
  | { readonly t: 'class'; readonly negate: boolean; readonly ranges: ReadonlyArray<readonly [number, number]> };

const STAR = 0x2a;
const QUESTION = 0x3f;
const OPEN = 0x5b;
const CLOSE = 0x5d;
const BACKSLASH = 0x5c;
const BANG = 0x21;
const CARET = 0x5e;
const DASH = 0x2d;

export function compileGlob(pattern: string): GlobMatcher {
  const tokens = parse(pattern);
  const matchesAll = tokens.length === 0 || tokens.every((t) => t.t === 'star');
  return {
    pattern,
    matchesAll,
    matches: matchesAll ? () => true : (key) => matchTokens(tokens, key),
  };
}

function parse(pattern: string): Token[] {
  const p = Buffer.from(pattern, 'utf8');
  const tokens: Token[] = [];
  let i = 0;
  while (i < p.length) {
    const c = p[i] as number;
    if (c === STAR) {
      // Consecutive stars are one star.
      if (tokens.at(-1)?.t !== 'star') tokens.push({ t: 'star' });
      i++;
    } else if (c === QUESTION) {
      tokens.push({ t: 'any' });
      i++;
    } else if (c === BACKSLASH) {
      if (i + 1 < p.length) {
        tokens.push({ t: 'lit', b: p[i + 1] as number });
        i += 2;
      } else {
        tokens.push({ t: 'lit', b: BACKSLASH });
        i++;
      }
    } else if (c === OPEN) {
      i = parseClass(p, i, tokens, pattern);
    } else {
      tokens.push({ t: 'lit', b: c });
      i++;
    }
  }
  return tokens;
}

/** Parses the class starting at p[start] === '['; returns the index after its ']'. */
function parseClass(p: Buffer, start: number, tokens: Token[], pattern: string): number {
  let i = start + 1;
  let negate = false;
  if (p[i] === BANG || p[i] === CARET) {
    negate = true;
    i++;
  }
  const ranges: Array<readonly [number, number]> = [];
  let first = true;
  for (;;) {
    if (i >= p.length) {
      throw new OmniError('INVALID_ARGUMENT', `invalid glob pattern ${JSON.stringify(pattern)}: unterminated '['`);
    }
    let c = p[i] as number;
    // A ']' right after '[' (or '[!') is a member, as in POSIX.
    if (c === CLOSE && !first) {
      tokens.push({ t: 'class', negate, ranges });
      return i + 1;
    }
    first = false;
    if (c === BACKSLASH && i + 1 < p.length) {
      i++;
      c = p[i] as number;
    }
    i++;
    // `a-z`: a range unless the '-' is the last character before ']'.
    if (p[i] === DASH && i + 1 < p.length && p[i + 1] !== CLOSE) {
      let hi = p[i + 1] as number;
      i += 2;
      if (hi === BACKSLASH && i < p.length) {
        hi = p[i] as number;
        i++;
      }
      ranges.push(c <= hi ? [c, hi] : [hi, c]);
    } else {
      ranges.push([c, c]);
    }
  }
}

function matchOne(token: Token, b: number): boolean {
  switch (token.t) {
    case 'lit':
      return token.b === b;
    case 'any':
      return true;
    case 'class': {
      let inSet = false;
      for (const [lo, hi] of token.ranges) {
        if (b >= lo && b <= hi) {
          inSet = true;
          break;
        }
      }
      return inSet !== token.negate;
    }
    case 'star':
      return false;
  }
}

/**
 * Classic wildcard matching with backtracking to the most recent star: O(pattern × key) worst
 * case, no recursion, so hostile patterns cannot blow the stack.
 */
function matchTokens(tokens: readonly Token[], key: Uint8Array): boolean {
  let ti = 0;
  let ki = 0;
  let starTi = -1;
  let starKi = 0;
  while (ki < key.length) {
    const tok = tokens[ti];
    if (tok !== undefined && tok.t === 'star') {
      starTi = ti++;
      starKi = ki;
    } else if (tok !== undefined && matchOne(tok, key[ki] as number)) {
      ti++;
      ki++;
    } else if (starTi >= 0) {
      ti = starTi + 1;
      ki = ++starKi;
    } else {
      return false;
    }
  }
  while (ti < tokens.length && tokens[ti]?.t === 'star') ti++;
  return ti === tokens.length;
}
