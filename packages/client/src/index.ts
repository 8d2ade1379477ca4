/**
 * @omnidict/client: the Node SDK for OmniDict. `OmniClient` is the typed promise API over the
 * router (with a pipelined mode), `PdClient` the placement driver's admin API. Every failure is an
 * `OmniError` with a string `code` (re-exported from @omnidict/proto).
 */
export { type ErrorCode, OmniError } from '@omnidict/proto';
export { parseAddresses } from './addresses.js';
export { type Bytes, MAX_KEY_BYTES } from './bytes.js';
export {
  type BatchPutItem,
  OmniClient,
  type OmniClientOptions,
  type ScanOptions,
  type ScanPage,
} from './omniClient.js';
export { PdClient, type PdClientOptions } from './pdClient.js';
export { Pipeline, type PipelineOptions } from './pipeline.js';
export type {
  CallOptions,
  CasExpectation,
  CasResult,
  Entry,
  GetResult,
  PutOptions,
  ReadOptions,
  UpdateOptions,
  WriteResult,
} from './results.js';
export { globToRegExp, KvTwin } from './testing/kvTwin.js';
export { PdTwin } from './testing/pdTwin.js';
