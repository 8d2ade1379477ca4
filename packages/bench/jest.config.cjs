// commander 15 is ESM-only (used by the options parsers and by @omnidict/cli): let @swc/jest compile it to CommonJS.
const base = require('../../jest.preset.cjs')(__dirname);

module.exports = {
  ...base,
  transform: {
    ...base.transform,
    '/node_modules/(\\.pnpm/[^/]+/node_modules/)?commander/.+\\.js$': [
      '@swc/jest',
      { jsc: { parser: { syntax: 'ecmascript' }, target: 'es2022' }, module: { type: 'commonjs' } },
    ],
  },
  transformIgnorePatterns: ['/node_modules/(?!(\\.pnpm/commander@[^/]+/node_modules/)?commander/)'],
};
