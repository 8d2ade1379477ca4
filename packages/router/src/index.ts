/**
 * @omnidict/router: the stateless gRPC front door of OmniDict. `startRouter` runs one (tests, the
 * local launcher); the pieces are exported for embedding and for tests of their own.
 */

export { type EmbeddedRouter, type EmbeddedRouterOptions, embedRouter } from './embedded.js';
export {
  createKvHandlers,
  createKvService,
  type KvHandlerOptions,
  type KvHandlers,
  type KvServiceOptions,
} from './kvService.js';
export { type Logger, silentLogger } from './logger.js';
export { RouterMetrics } from './metrics.js';
export { ChannelError, NodeChannel, type NodeChannelOptions } from './nodeChannel.js';
export { PdWatcher, type PdWatcherOptions } from './pdWatcher.js';
export {
  type CallContext,
  DEFAULT_SCAN_LIMIT,
  MAX_SCAN_LIMIT,
  Router,
  type RouterCoreOptions,
} from './router.js';
export { RING_END, type Route, RouteTable } from './routeTable.js';
export { decodeCursor, encodeCursor, type ScanCursor } from './scanCursor.js';
export { KV_SERVICE_NAME, type RouterHandle, type RouterOptions, startRouter } from './startRouter.js';
export { DEFAULT_MAX_VALUE_BYTES, MAX_KEY_BYTES } from './validation.js';
