// Import-graph rules, checked by `pnpm cycles` as part of the test command.
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'Import cycles make initialisation order fragile; grpc-node forbids them too.',
      from: {},
      to: { circular: true },
    },
    {
      name: 'raft-core-is-pure',
      severity: 'error',
      comment: 'The Raft core never imports the runtime, the testing harness or any I/O module.',
      from: { path: '^packages/raft/src/core' },
      to: { path: ['^packages/raft/src/(runtime|testing|bench)', '^node:', 'node_modules'] },
    },
    {
      name: 'no-generated-edits-outside-proto',
      severity: 'error',
      comment: 'Generated code is reached through @omnidict/proto, never by deep path.',
      from: { pathNot: '^packages/proto' },
      to: { path: '^packages/proto/src/gen' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '(^|/)(dist|node_modules)/' },
    tsPreCompilationDeps: false,
    parser: 'swc',
  },
};
