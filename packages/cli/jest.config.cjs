// commander 15 is ESM-only: let @swc/jest compile it to CommonJS like our own sources.
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
