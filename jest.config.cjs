// Root jest config: one run over every package, so `.ci/run` reads one --json result.
module.exports = {
  projects: ['<rootDir>/packages/*/jest.config.cjs'],
};
