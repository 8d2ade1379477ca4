import { readFile } from 'node:fs/promises';
import { type CasExpectation, OmniClient, OmniError, parseAddresses } from '@omnidict/client';
import { embedRouter } from '@omnidict/router';
import { type Command, Option } from 'commander';
import type { CliContext } from '../cliContext.js';
import { bytesField, bytesText, formatExpiry, type GlobalOptions, printJson, printTable } from '../output.js';
import { parsePositiveDuration, parsePositiveInt, parseUint } from '../parsers.js';

/** Opens a client for the global --router/--timeout flags, runs `fn`, closes it. */
export async function withClient<T>(cmd: Command, fn: (client: OmniClient, g: GlobalOptions) => Promise<T>) {
  const g = cmd.optsWithGlobals<GlobalOptions>();
  const embedded = g.embedded ? embedRouter({ pdAddresses: parseAddresses('pd', g.pd) }) : null;
  const client =
    embedded?.client({ defaultTimeoutMs: g.timeout }) ??
    new OmniClient({ routers: g.router, defaultTimeoutMs: g.timeout, maxRetries: 2 });
  try {
    return await fn(client, g);
  } finally {
    client.close();
    embedded?.close();
  }
}

interface ValueOptions {
  file?: string;
}

/**
 * readValue takes a value from the argument, `--file PATH`, or stdin when the argument is `-`;
 * exactly one source must be given.
 */
async function readValue(ctx: CliContext, arg: string | undefined, opts: ValueOptions): Promise<Buffer> {
  if (arg !== undefined && opts.file !== undefined) {
    throw new OmniError('INVALID_ARGUMENT', 'give the value as an argument or with --file, not both');
  }
  if (opts.file !== undefined) {
    try {
      return opts.file === '-' ? await ctx.readStdin() : await readFile(opts.file);
    } catch (err) {
      throw new OmniError('INVALID_ARGUMENT', `cannot read --file ${opts.file}: ${(err as Error).message}`);
    }
  }
  if (arg === undefined) {
    throw new OmniError('INVALID_ARGUMENT', 'missing value: give it as an argument, with --file PATH, or - for stdin');
  }
  return arg === '-' ? ctx.readStdin() : Buffer.from(arg, 'utf8');
}

function ttlOption(): Option {
  return new Option('--ttl <duration>', 'time to live (500, 250ms, 10s, 5m, 2h)').argParser(parsePositiveDuration);
}

function printWrite(ctx: CliContext, g: GlobalOptions, modIndex: number): void {
  if (g.json) printJson(ctx, { ok: true, modIndex });
  else ctx.stdout(`OK (modIndex ${modIndex})\n`);
}

function printFlag(ctx: CliContext, g: GlobalOptions, name: string, value: boolean): void {
  if (g.json) printJson(ctx, { [name]: value });
  else ctx.stdout(value ? '1\n' : '0\n');
}

export function addKvCommands(program: Command, ctx: CliContext): void {
  program
    .command('put')
    .description('write a value (creates or replaces the key)')
    .argument('<key>')
    .argument('[value]', 'the value; - reads stdin')
    .addOption(ttlOption())
    .option('--file <path>', 'read the value from a file (- for stdin)')
    .addHelpText(
      'after',
      '\nExamples:\n  omnictl put greeting hello\n  omnictl put session:1 "{...}" --ttl 30m\n  cat blob.bin | omnictl put blob -',
    )
    .action(async (key: string, value: string | undefined, opts: ValueOptions & { ttl?: number }, cmd: Command) => {
      const bytes = await readValue(ctx, value, opts);
      await withClient(cmd, async (c, g) => {
        const r = await c.put(key, bytes, opts.ttl === undefined ? {} : { ttlMs: opts.ttl });
        printWrite(ctx, g, r.modIndex);
      });
    });

  program
    .command('get')
    .description('print a value; exit 3 when the key does not exist')
    .argument('<key>')
    .option('--stale', 'allow a possibly stale read from any replica')
    .action(async (key: string, opts: { stale?: boolean }, cmd: Command) => {
      await withClient(cmd, async (c, g) => {
        const r = await c.get(key, { stale: opts.stale === true });
        if (!r) throw new OmniError('NOT_FOUND', `key ${JSON.stringify(key)} not found`);
        if (g.json) {
          printJson(ctx, { key, ...bytesField('value', r.value), modIndex: r.modIndex, expireAtMs: r.expireAtMs });
        } else {
          ctx.stdout(r.value);
          ctx.stdout('\n');
        }
      });
    });

  program
    .command('mget')
    .description('read several keys in one request (BatchGet); missing keys print as (nil)')
    .argument('<keys...>')
    .option('--stale', 'allow possibly stale reads from any replica')
    .addHelpText('after', '\nExamples:\n  omnictl mget user:1 user:2 user:3\n  omnictl --json mget a b')
    .action(async (keys: string[], opts: { stale?: boolean }, cmd: Command) => {
      await withClient(cmd, async (c, g) => {
        const rs = await c.batchGet(keys, { stale: opts.stale === true });
        if (g.json) {
          printJson(
            ctx,
            rs.map((r, i) =>
              r
                ? {
                    key: keys[i],
                    found: true,
                    ...bytesField('value', r.value),
                    modIndex: r.modIndex,
                    expireAtMs: r.expireAtMs,
                  }
                : { key: keys[i], found: false },
            ),
          );
          return;
        }
        printTable(
          ctx,
          ['KEY', 'VALUE', 'MOD INDEX', 'EXPIRES'],
          rs.map((r, i) =>
            r ? [keys[i]!, bytesText(r.value), r.modIndex, formatExpiry(r.expireAtMs)] : [keys[i]!, '(nil)', '', ''],
          ),
        );
      });
    });

  program
    .command('mput')
    .description(
      'write several key=value pairs in one request (BatchPut; not atomic: after an error some may be written)',
    )
    .argument('<pairs...>', 'key=value (split at the first =)')
    .addOption(ttlOption())
    .addHelpText('after', '\nExamples:\n  omnictl mput user:1=ann user:2=bob\n  omnictl mput a=1 b=2 --ttl 10m')
    .action(async (pairs: string[], opts: { ttl?: number }, cmd: Command) => {
      const items = pairs.map((pair) => {
        const eq = pair.indexOf('=');
        if (eq <= 0) throw new OmniError('INVALID_ARGUMENT', `expected key=value, got ${JSON.stringify(pair)}`);
        return {
          key: pair.slice(0, eq),
          value: Buffer.from(pair.slice(eq + 1), 'utf8'),
          ...(opts.ttl === undefined ? {} : { ttlMs: opts.ttl }),
        };
      });
      await withClient(cmd, async (c, g) => {
        const modIndexes = await c.batchPut(items);
        if (g.json) printJson(ctx, { ok: true, modIndexes });
        else ctx.stdout(`OK (${items.length} keys)\n`);
      });
    });

  program
    .command('update')
    .description('replace the value of an existing key; exit 3 when it does not exist')
    .argument('<key>')
    .argument('[value]', 'the value; - reads stdin')
    .addOption(ttlOption())
    .option('--keep-ttl', "keep the key's current expiry")
    .option('--file <path>', 'read the value from a file (- for stdin)')
    .action(
      async (
        key: string,
        value: string | undefined,
        opts: ValueOptions & { ttl?: number; keepTtl?: boolean },
        cmd: Command,
      ) => {
        const bytes = await readValue(ctx, value, opts);
        const updateOptions = {
          keepTtl: opts.keepTtl === true,
          ...(opts.ttl === undefined ? {} : { ttlMs: opts.ttl }),
        };
        await withClient(cmd, async (c, g) => {
          const r = await c.update(key, bytes, updateOptions).catch((err: unknown) => {
            // The node's message does not name the key; the user's one error line should.
            if (!(err instanceof OmniError) || err.code !== 'NOT_FOUND') throw err;
            throw new OmniError('NOT_FOUND', `key ${JSON.stringify(key)} not found`);
          });
          printWrite(ctx, g, r.modIndex);
        });
      },
    );

  program
    .command('delete')
    .alias('del')
    .description('delete a key; prints 1 when it existed, 0 otherwise')
    .argument('<key>')
    .action(async (key: string, _opts: object, cmd: Command) => {
      await withClient(cmd, async (c, g) => printFlag(ctx, g, 'deleted', await c.delete(key)));
    });

  program
    .command('exists')
    .description('prints 1 when the key exists, 0 otherwise')
    .argument('<key>')
    .option('--stale', 'allow a possibly stale read from any replica')
    .action(async (key: string, opts: { stale?: boolean }, cmd: Command) => {
      await withClient(cmd, async (c, g) =>
        printFlag(ctx, g, 'exists', await c.exists(key, { stale: opts.stale === true })),
      );
    });

  program
    .command('ttl')
    .description('remaining time to live in ms: -2 when the key does not exist, -1 when it has no expiry')
    .argument('<key>')
    .action(async (key: string, _opts: object, cmd: Command) => {
      await withClient(cmd, async (c, g) => {
        const ttlMs = await c.ttl(key);
        if (g.json) printJson(ctx, { ttlMs });
        else ctx.stdout(`${ttlMs}\n`);
      });
    });

  program
    .command('expire')
    .description('set a time to live; prints 1 when set, 0 when the key does not exist')
    .argument('<key>')
    .argument('<ttl>', 'duration (500, 250ms, 10s, 5m, 2h)', parsePositiveDuration)
    .action(async (key: string, ttlMs: number, _opts: object, cmd: Command) => {
      await withClient(cmd, async (c, g) => printFlag(ctx, g, 'applied', await c.expire(key, ttlMs)));
    });

  program
    .command('persist')
    .description('remove the expiry; prints 1 when one was removed, 0 otherwise')
    .argument('<key>')
    .action(async (key: string, _opts: object, cmd: Command) => {
      await withClient(cmd, async (c, g) => printFlag(ctx, g, 'applied', await c.persist(key)));
    });

  program
    .command('keys')
    .description('list every key matching a glob (walks all pages)')
    .argument('[pattern]', 'glob: * ? [abc] [a-z] and \\ escapes', '*')
    .action(async (pattern: string, _opts: object, cmd: Command) => {
      await withClient(cmd, async (c, g) => {
        const keys: Buffer[] = [];
        for await (const k of c.keys(pattern)) {
          if (g.json) keys.push(k);
          else ctx.stdout(`${bytesText(k)}\n`);
        }
        if (g.json) printJson(ctx, keys.map(bytesText));
      });
    });

  program
    .command('scan')
    .description('one page of keys and values; continue with --cursor')
    .option('--pattern <glob>', 'glob over keys', '*')
    .option('--cursor <cursor>', 'cursor printed by the previous page')
    .option('--limit <n>', 'page size', parsePositiveInt, 100)
    .option('--keys-only', 'omit values')
    .addHelpText(
      'after',
      '\nExamples:\n  omnictl scan --pattern "user:*" --limit 50\n  omnictl scan --cursor dXNlcjo0OQ',
    )
    .action(async (opts: { pattern: string; cursor?: string; limit: number; keysOnly?: boolean }, cmd: Command) => {
      const cursor = opts.cursor === undefined ? null : decodeCursor(opts.cursor);
      await withClient(cmd, async (c, g) => {
        const page = await c.scan({
          pattern: opts.pattern,
          cursor,
          limit: opts.limit,
          keysOnly: opts.keysOnly === true,
        });
        const next = page.nextCursor ? page.nextCursor.toString('base64url') : null;
        if (g.json) {
          printJson(ctx, {
            items: page.items.map((it) => ({
              ...bytesField('key', it.key),
              ...(opts.keysOnly ? {} : bytesField('value', it.value)),
              modIndex: it.modIndex,
              expireAtMs: it.expireAtMs,
            })),
            nextCursor: next,
          });
          return;
        }
        const head = opts.keysOnly ? ['KEY', 'MOD INDEX', 'EXPIRES'] : ['KEY', 'VALUE', 'MOD INDEX', 'EXPIRES'];
        printTable(
          ctx,
          head,
          page.items.map((it) =>
            opts.keysOnly
              ? [bytesText(it.key), it.modIndex, formatExpiry(it.expireAtMs)]
              : [bytesText(it.key), bytesText(it.value), it.modIndex, formatExpiry(it.expireAtMs)],
          ),
        );
        ctx.stdout(next ? `next cursor: ${next}\n` : '(end of scan)\n');
      });
    });

  program
    .command('flush')
    .description('delete EVERY key in the cluster (needs --yes)')
    .option('-y, --yes', 'confirm')
    .action(async (opts: { yes?: boolean }, cmd: Command) => {
      if (!opts.yes)
        throw new OmniError('INVALID_ARGUMENT', 'flush deletes every key in the cluster; pass --yes to confirm');
      await withClient(cmd, async (c, g) => {
        const deleted = await c.flush();
        if (g.json) printJson(ctx, { deleted });
        else ctx.stdout(`OK (${deleted} keys deleted)\n`);
      });
    });

  program
    .command('cas')
    .description('compare-and-swap; exit 6 when the expectation does not hold')
    .argument('<key>')
    .argument('[value]', 'the new value; - reads stdin')
    .option('--expect-mod-index <n>', "swap only if the key's mod index equals n", parseUint)
    .option('--expect-value <value>', "swap only if the key's value equals this")
    .option('--expect-absent', 'swap only if the key does not exist')
    .addOption(ttlOption())
    .option('--file <path>', 'read the new value from a file (- for stdin)')
    .addHelpText(
      'after',
      '\nExamples:\n  omnictl cas lock:a me --expect-absent --ttl 10s\n  omnictl cas counter 2 --expect-value 1\n  omnictl cas config v2 --expect-mod-index 41',
    )
    .action(
      async (
        key: string,
        value: string | undefined,
        opts: ValueOptions & { expectModIndex?: number; expectValue?: string; expectAbsent?: boolean; ttl?: number },
        cmd: Command,
      ) => {
        const expectations: CasExpectation[] = [];
        if (opts.expectModIndex !== undefined) expectations.push({ expectedModIndex: opts.expectModIndex });
        if (opts.expectValue !== undefined) expectations.push({ expectedValue: opts.expectValue });
        if (opts.expectAbsent) expectations.push({ expectAbsent: true });
        if (expectations.length !== 1) {
          throw new OmniError(
            'INVALID_ARGUMENT',
            'cas needs exactly one of --expect-mod-index, --expect-value or --expect-absent',
          );
        }
        const bytes = await readValue(ctx, value, opts);
        await withClient(cmd, async (c, g) => {
          const r = await c.cas(key, expectations[0]!, bytes, opts.ttl === undefined ? {} : { ttlMs: opts.ttl });
          if (g.json) {
            printJson(ctx, {
              swapped: r.swapped,
              modIndex: r.modIndex,
              current: r.current
                ? {
                    ...bytesField('value', r.current.value),
                    modIndex: r.current.modIndex,
                    expireAtMs: r.current.expireAtMs,
                  }
                : null,
            });
          } else if (r.swapped) ctx.stdout(`OK (modIndex ${r.modIndex})\n`);
          if (!r.swapped) {
            const now = r.current
              ? `current value ${JSON.stringify(bytesText(r.current.value))} at modIndex ${r.current.modIndex}`
              : 'the key does not exist';
            throw new OmniError('CONFLICT', `cas on ${JSON.stringify(key)} did not swap: ${now}`);
          }
        });
      },
    );
}

function decodeCursor(text: string): Buffer {
  if (!/^[A-Za-z0-9_-]+$/.test(text))
    throw new OmniError('INVALID_ARGUMENT', `malformed --cursor ${JSON.stringify(text)}`);
  return Buffer.from(text, 'base64url');
}
