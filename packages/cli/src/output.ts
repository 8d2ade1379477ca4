import Table from 'cli-table3';
import type { CliContext } from './cliContext.js';

/** Options every command sees (the program's global flags). */
export interface GlobalOptions {
  router: string;
  pd: string;
  timeout: number;
  json: boolean;
  embedded: boolean;
}

export function printJson(ctx: CliContext, value: unknown): void {
  ctx.stdout(`${JSON.stringify(value, null, 2)}\n`);
}

/** A plain table (no colours, so piped output stays clean). */
export function printTable(ctx: CliContext, head: string[], rows: (string | number)[][]): void {
  const table = new Table({ head, style: { head: [], border: [] } });
  table.push(...rows.map((r) => r.map(String)));
  ctx.stdout(`${table.toString()}\n`);
}

/** Key/value pairs as a two-column table. */
export function printFields(ctx: CliContext, fields: [string, string | number][]): void {
  const table = new Table({ style: { head: [], border: [] } });
  for (const [k, v] of fields) table.push({ [k]: String(v) });
  ctx.stdout(`${table.toString()}\n`);
}

/** True when `buf` is valid UTF-8 (round-trips unchanged). */
export function isUtf8(buf: Buffer): boolean {
  return Buffer.from(buf.toString('utf8'), 'utf8').equals(buf);
}

/** Bytes for JSON: `{ [name]: string }` when UTF-8, else `{ [name + 'Base64']: base64 }`. */
export function bytesField(name: string, buf: Buffer): Record<string, string> {
  return isUtf8(buf) ? { [name]: buf.toString('utf8') } : { [`${name}Base64`]: buf.toString('base64') };
}

/** Bytes for a table cell or a line: UTF-8 text, or a hex dump of binary data. */
export function bytesText(buf: Buffer): string {
  return isUtf8(buf) ? buf.toString('utf8') : `0x${buf.toString('hex')}`;
}

export function formatExpiry(expireAtMs: number): string {
  if (expireAtMs === 0) return '-';
  const left = expireAtMs - Date.now();
  return left <= 0 ? 'expired' : `in ${formatMs(left)}`;
}

export function formatMs(ms: number): string {
  if (ms < 1000) return `${ms} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  if (ms < 3_600_000) return `${(ms / 60_000).toFixed(1)} min`;
  return `${(ms / 3_600_000).toFixed(1)} h`;
}

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${v} B` : `${v.toFixed(1)} ${units[i]}`;
}
