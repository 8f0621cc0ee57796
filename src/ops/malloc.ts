// The C heap's share of the daemon's memory. V8's optimizing compiler builds
// each function in zones of up to 32 KiB segments, malloc'd on its helper
// threads; glibc keeps freed segments in those threads' arenas, where
// fragmentation left them resident after the compiles were done. Measured on
// the sync bench's 100k burst (peak RSS, VmHWM), with the start-up JIT warm-up
// (which compiles most of the hot path before the daemon starts): sender
// 101-104 MiB, receiver 79-82; with allocations from 32 KiB up in mappings of
// their own, returned to the kernel when freed: 96-97 and 74-77 (without the
// warm-up, 94-95 → 93-95 and 73-76 → 69-73). See bench/README.md.
import type { Logger } from '../log/logger.js';

/** Allocations of at least this many bytes get their own mapping (mallopt M_MMAP_THRESHOLD). */
export const MMAP_THRESHOLD = 32 * 1024;

export interface MallocSys {
  /** Absent in an addon built before it: then nothing changes. */
  mallocMmapThreshold?(bytes: number): boolean;
}

/** Sets the mmap threshold; false when the addon or glibc cannot (logged at debug: the daemon runs on). */
export function tuneMalloc(sys: MallocSys, log: Logger): boolean {
  let ok = false;
  try {
    ok = sys.mallocMmapThreshold?.(MMAP_THRESHOLD) ?? false;
  } catch (e) {
    log.debug({ err: e }, 'malloc tuning failed');
    return false;
  }
  if (!ok) log.debug({ threshold: MMAP_THRESHOLD }, 'malloc mmap threshold not set (addon or C library without it)');
  return ok;
}
