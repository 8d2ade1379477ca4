import { OmniError } from '@omnidict/proto';

/**
 * parseAddresses accepts `host:port`, a comma-separated list of them, or an array, and rejects
 * anything else with INVALID_ARGUMENT so a typo fails before any connection attempt.
 */
export function parseAddresses(what: string, input: string[] | string): string[] {
  const list = (Array.isArray(input) ? input : [input])
    .flatMap((s) => s.split(','))
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  if (list.length === 0) throw new OmniError('INVALID_ARGUMENT', `no ${what} address given`);
  for (const addr of list) {
    const m = /^(\[[0-9a-fA-F:.]+\]|[^:\s]+):(\d{1,5})$/.exec(addr);
    const port = m ? Number(m[2]) : 0;
    if (!m || port < 1 || port > 65535) {
      throw new OmniError('INVALID_ARGUMENT', `malformed ${what} address "${addr}" (want host:port)`);
    }
  }
  return list;
}
