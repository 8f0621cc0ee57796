// Public surface of the sync layer.
export { Ftfw, DEFAULT_ACK_WINDOW_SIZE, DEFAULT_RESEND_QUEUE_SIZE, type FtfwOptions } from './ftfw.js';
export { Notrack, type NotrackOptions } from './notrack.js';
export { ALIVE_INTERVAL_MS, type EngineOptions, type EngineStats } from './engine.js';
export { msgTypeOf, type ObjectCodec } from './codec.js';
export { createWireCodec, type WireCodecOptions } from './wire-codec.js';
export type { StallGuardOptions } from './recv-seq.js';
export type { SyncHost, SyncMode, SyncStats } from './types.js';
