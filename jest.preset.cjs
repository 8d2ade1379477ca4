// Shared jest preset: tests run from TypeScript sources through @swc/jest (TypeScript 7 has no
// compiler API, so ts-jest cannot be used). ESM-style `.js` import suffixes map back to sources,
// and workspace packages resolve to their `src/` so tests never need a build of their deps.
const path = require('node:path');

const packages = path.join(__dirname, 'packages');

module.exports = (dir) => ({
  displayName: path.basename(dir),
  rootDir: dir,
  testEnvironment: 'node',
  testMatch: ['<rootDir>/test/**/*.test.ts'],
  transform: {
    '^.+\\.ts$': [
      '@swc/jest',
      {
        jsc: { parser: { syntax: 'typescript' }, target: 'es2022' },
        module: { type: 'commonjs' },
        sourceMaps: 'inline',
      },
    ],
    // commander 15 is ESM-only: compile it to CommonJS like our own sources.
    '/node_modules/(\\.pnpm/[^/]+/node_modules/)?commander/.+\\.js$': [
      '@swc/jest',
      { jsc: { parser: { syntax: 'ecmascript' }, target: 'es2022' }, module: { type: 'commonjs' } },
    ],
  },
  transformIgnorePatterns: ['/node_modules/(?!(\\.pnpm/commander@[^/]+/node_modules/)?commander/)'],
  moduleNameMapper: {
    '^@omnidict/raft/testing$': `${packages}/raft/src/testing/index.ts`,
    '^@omnidict/raft/runtime$': `${packages}/raft/src/runtime/index.ts`,
    '^@omnidict/([a-z-]+)$': `${packages}/$1/src/index.ts`,
    '^(\\.{1,2}/.*)\\.js$': '$1',
  },
  testTimeout: 60_000,
});
