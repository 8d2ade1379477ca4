// Root jest config: one run over every package, so `.ci/run` reads one --json result.
// `testTimeout` is a global option: jest ignores it inside `projects`, so it is set here too.
module.exports = {
  projects: ['<rootDir>/packages/*/jest.config.cjs'],
  testTimeout: 60_000,
};
