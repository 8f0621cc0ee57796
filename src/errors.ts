// One error hierarchy with stable codes (in the manner of undici and fastify):
// callers branch on `code`, logs carry it, and `context` holds the facts an
// operator needs (file and line, errno, peer address...).

const kBrand = Symbol.for('ctsync.error');

export type ErrorCode =
  | 'CTSYNC_ERR'
  | 'CTSYNC_ERR_CONFIG_SYNTAX'
  | 'CTSYNC_ERR_CONFIG_INVALID'
  | 'CTSYNC_ERR_CONFIG_IO'
  | 'CTSYNC_ERR_NETLINK_NATIVE'
  | 'CTSYNC_ERR_NETLINK_REQUEST'
  | 'CTSYNC_ERR_NETLINK_DECODE'
  | 'CTSYNC_ERR_NETLINK_OVERRUN'
  | 'CTSYNC_ERR_NETLINK_TIMEOUT'
  | 'CTSYNC_ERR_WIRE_DECODE'
  | 'CTSYNC_ERR_WIRE_ENCODE'
  | 'CTSYNC_ERR_CHANNEL'
  | 'CTSYNC_ERR_CACHE_FULL'
  | 'CTSYNC_ERR_CTL_CONNECT'
  | 'CTSYNC_ERR_CTL_PROTOCOL'
  | 'CTSYNC_ERR_CTL_BUSY'
  | 'CTSYNC_ERR_DAEMON';

export class CtsyncError extends Error {
  readonly code: ErrorCode;
  readonly context: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, context: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
    this.context = context;
  }

  // instanceof holds across duplicated copies of the module (undici does the same).
  static override [Symbol.hasInstance](obj: unknown): boolean {
    return typeof obj === 'object' && obj !== null && (obj as Record<symbol, unknown>)[kBrand] === true &&
      (this === CtsyncError || Object.prototype.isPrototypeOf.call(this.prototype, obj));
  }

  get [kBrand](): boolean {
    return true;
  }
}

/** A conntrackd.conf problem; `file` and `line` always set when known. */
export class ConfigError extends CtsyncError {
  constructor(code: 'CTSYNC_ERR_CONFIG_SYNTAX' | 'CTSYNC_ERR_CONFIG_INVALID' | 'CTSYNC_ERR_CONFIG_IO', message: string,
    readonly file: string, readonly line: number | undefined, context: Record<string, unknown> = {}) {
    super(code, line !== undefined ? `${file}:${line}: ${message}` : `${file}: ${message}`, { file, line, ...context });
  }
}

/** A failed netlink operation; `errno` is positive (e.g. 17 for EEXIST). */
export class NetlinkError extends CtsyncError {
  constructor(code: 'CTSYNC_ERR_NETLINK_NATIVE' | 'CTSYNC_ERR_NETLINK_REQUEST' | 'CTSYNC_ERR_NETLINK_DECODE' |
    'CTSYNC_ERR_NETLINK_OVERRUN' | 'CTSYNC_ERR_NETLINK_TIMEOUT', message: string, readonly errno = 0,
    context: Record<string, unknown> = {}) {
    super(code, message, { errno, ...context });
  }
}

/** A sync datagram or message that does not decode. Counted, never thrown out of a receive path. */
export class WireError extends CtsyncError {
  constructor(code: 'CTSYNC_ERR_WIRE_DECODE' | 'CTSYNC_ERR_WIRE_ENCODE', message: string, readonly reason: string,
    context: Record<string, unknown> = {}) {
    super(code, message, { reason, ...context });
  }
}

export class ChannelError extends CtsyncError {
  constructor(message: string, context: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super('CTSYNC_ERR_CHANNEL', message, context, options);
  }
}

export class ControlError extends CtsyncError {
  constructor(code: 'CTSYNC_ERR_CTL_CONNECT' | 'CTSYNC_ERR_CTL_PROTOCOL' | 'CTSYNC_ERR_CTL_BUSY', message: string,
    context: Record<string, unknown> = {}) {
    super(code, message, context);
  }
}
