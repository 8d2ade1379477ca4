export { RaftError, type RaftErrorCode } from './core/errors.js';
export * from './core/types.js';
