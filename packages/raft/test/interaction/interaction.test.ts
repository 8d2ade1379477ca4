import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { InteractionEnv, parseCommand, parseScript, renderScript } from './interactionEnv.js';

/*
 * Runs every testdata/*.txt interaction script and compares each command's output with the
 * transcript stored under it. `UPDATE_TRANSCRIPTS=1` rewrites the files with the actual output
 * instead; review the diff by eye: the transcripts are the specification of correct behaviour.
 */
const dir = join(__dirname, 'testdata');
const update = process.env.UPDATE_TRANSCRIPTS === '1';
const files = readdirSync(dir)
  .filter((f) => f.endsWith('.txt'))
  .sort();

test('there are interaction scripts', () => {
  expect(files.length).toBeGreaterThan(0);
});

describe.each(files)('%s', (file) => {
  test('transcript matches', () => {
    const path = join(dir, file);
    const { blocks, trailer } = parseScript(readFileSync(path, 'utf8'));
    const env = new InteractionEnv();
    const outputs = blocks.map((b) => env.run(parseCommand(b.command)));
    if (update) {
      writeFileSync(path, renderScript(blocks, outputs, trailer));
      return;
    }
    blocks.forEach((b, k) => {
      const actual = (outputs[k] ?? []).join('\n');
      const expected = b.expected.join('\n');
      if (actual !== expected) {
        throw new Error(
          `${file}:${b.line}: output of "${b.command}" differs (rerun with UPDATE_TRANSCRIPTS=1 and review)\n` +
            `--- expected\n${expected}\n--- actual\n${actual}`,
        );
      }
    });
  });
});
