// Integer reads and writes at an index of a Buffer, for the per-message paths
// (sync wire framing and fields, netlink framing and attributes, the UDP
// record reader).
//
// Why not Buffer's readUInt32BE() and friends: on Node 20 TurboFan does not
// fold the method load from Buffer.prototype, so each call is a generic
// LoadIC plus a call that is not inlined: 7-9 ns against ~2 ns for the byte
// arithmetic below, which inlines to a few loads (measured in a loop of u32
// reads; `perf` of the receiver showed Builtins_LoadIC at 6-9% of its CPU,
// called from scanConntrackFields and readHeader).
//
// No bounds checks: a read past the end yields 0 bytes rather than a
// RangeError, so every caller reads only inside a region it has checked
// (a validated attribute, a header whose size it has compared). Writes store
// the low bits of the value, as a typed array does.

export function rdU16BE(b: Buffer, p: number): number {
  return (b[p]! << 8) | b[p + 1]!;
}

export function rdU16LE(b: Buffer, p: number): number {
  return b[p]! | (b[p + 1]! << 8);
}

export function rdU32BE(b: Buffer, p: number): number {
  return ((b[p]! << 24) | (b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!) >>> 0;
}

export function rdU32LE(b: Buffer, p: number): number {
  return (b[p]! | (b[p + 1]! << 8) | (b[p + 2]! << 16) | (b[p + 3]! << 24)) >>> 0;
}

export function rdI32BE(b: Buffer, p: number): number {
  return (b[p]! << 24) | (b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!;
}

export function rdI32LE(b: Buffer, p: number): number {
  return b[p]! | (b[p + 1]! << 8) | (b[p + 2]! << 16) | (b[p + 3]! << 24);
}

export function wrU16BE(b: Buffer, p: number, v: number): void {
  b[p] = v >>> 8;
  b[p + 1] = v;
}

export function wrU16LE(b: Buffer, p: number, v: number): void {
  b[p] = v;
  b[p + 1] = v >>> 8;
}

export function wrU32BE(b: Buffer, p: number, v: number): void {
  b[p] = v >>> 24;
  b[p + 1] = v >>> 16;
  b[p + 2] = v >>> 8;
  b[p + 3] = v;
}

export function wrU32LE(b: Buffer, p: number, v: number): void {
  b[p] = v;
  b[p + 1] = v >>> 8;
  b[p + 2] = v >>> 16;
  b[p + 3] = v >>> 24;
}
