// The caches: a bounded hash table (table.ts) keyed on the flow identity
// (hash.ts), the internal cache mirroring the kernel (internal.ts) and the
// external cache holding the peer's state until commit (external.ts).
export * from './types.js';
export {
  hashTuple, tupleEquals, ctZone, hashConntrack, conntrackIdentityEquals, hashExpectation,
  expectationIdentityEquals, conntrackIdentity, expectationIdentity, type IdentityOps,
} from './hash.js';
export {
  CacheTable, CacheEntry, emptyStats, DEFAULT_HASH_SIZE, DEFAULT_HASH_LIMIT, type NoSpaceHandler, type TableOptions,
} from './table.js';
export {
  InternalCache, ORIGIN, mergeConntrack, mergeExpectation, conntrackSameState, expectationSameState,
  type Origin, type InternalCacheOptions, type ReconcileResult,
} from './internal.js';
export { ExternalCache, commitTimeout, COMMIT_FALLBACK_TIMEOUT, type ExternalCacheOptions } from './external.js';
