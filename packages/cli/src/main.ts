#!/usr/bin/env node
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { processContext } from './cliContext.js';
import { runCli } from './program.js';

const ctx = processContext(path.dirname(fileURLToPath(import.meta.url)));
const code = await runCli(process.argv.slice(2), ctx);
process.exitCode = code;
