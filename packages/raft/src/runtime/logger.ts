/** Logger is the pino-compatible subset the runtime uses; pass a pino logger or `noopLogger`. */
export interface Logger {
  child(bindings: Record<string, unknown>): Logger;
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
  /** pino exposes `isLevelEnabled`; when present, hot paths skip building log objects. */
  isLevelEnabled?(level: string): boolean;
}

export const noopLogger: Logger = {
  child: () => noopLogger,
  debug: () => {},
  info: () => {},
  warn: () => {},
  error: () => {},
  isLevelEnabled: () => false,
};
