import { OmniError } from '@omnidict/proto';

/**
 * A scan resume point: continue strictly after (pos, key) in (ring position, key) order. An empty
 * key means "from `pos` inclusive" (empty keys are never stored). `rangeStart` is the start of the
 * shard range the cursor was produced in; it is informational (logs, debugging): on resume the
 * router routes by `pos`, never by shard id, so a cursor survives splits and moves.
 */
export interface ScanCursor {
  rangeStart: number;
  pos: number;
  key: Buffer;
}

const CURSOR_VERSION = 1;

/** Wire form: version u8 ‖ rangeStart u32 BE ‖ pos u32 BE ‖ key bytes. */
export function encodeCursor(c: ScanCursor): Buffer {
  const b = Buffer.alloc(9 + c.key.length);
  b.writeUInt8(CURSOR_VERSION, 0);
  b.writeUInt32BE(c.rangeStart, 1);
  b.writeUInt32BE(c.pos, 5);
  c.key.copy(b, 9);
  return b;
}

/** decodeCursor parses a client-supplied cursor; a malformed one is INVALID_ARGUMENT. */
export function decodeCursor(b: Uint8Array): ScanCursor {
  const buf = Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  if (buf.length < 9 || buf.readUInt8(0) !== CURSOR_VERSION) {
    throw new OmniError('INVALID_ARGUMENT', 'malformed scan cursor (pass back next_cursor unchanged)');
  }
  return { rangeStart: buf.readUInt32BE(1), pos: buf.readUInt32BE(5), key: Buffer.from(buf.subarray(9)) };
}
