import { describe, expect, it } from 'vitest';
import { MMAP_THRESHOLD, tuneMalloc } from '../../src/ops/malloc.js';
import { silentLogger } from '../../src/log/logger.js';
import { loadNative } from '../../src/netlink/native.js';

describe('malloc tuning (ops/malloc.ts)', () => {
  it('asks for the 32 KiB mmap threshold, and runs on without it', () => {
    const asked: number[] = [];
    expect(tuneMalloc({ mallocMmapThreshold: (b) => { asked.push(b); return true; } }, silentLogger)).toBe(true);
    expect(asked).toEqual([MMAP_THRESHOLD]);
    expect(MMAP_THRESHOLD).toBe(32768);
    expect(tuneMalloc({}, silentLogger)).toBe(false); // an addon built before it
    expect(tuneMalloc({ mallocMmapThreshold: () => false }, silentLogger)).toBe(false);
    expect(tuneMalloc({ mallocMmapThreshold: () => { throw new Error('no'); } }, silentLogger)).toBe(false);
  });

  it('the addon sets it through glibc, and refuses a threshold below a page', () => {
    const b = loadNative();
    expect(b.mallocMmapThreshold?.(MMAP_THRESHOLD)).toBe(true);
    expect(() => b.mallocMmapThreshold?.(16)).toThrow(/bytes must be a number >= 4096/);
  });
});
