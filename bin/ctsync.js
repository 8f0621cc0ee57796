#!/usr/bin/env -S node --max-semi-space-size=1 --concurrent-recompilation-queue-length=64 --initial-old-space-size=64
// Thin launcher: the CLI is compiled TypeScript in dist/ (npm run build).
// The first V8 flag lowers the daemon's peak RSS without costing CPU (bench/README.md):
// --max-semi-space-size=1 keeps each young-generation semi-space at its 1 MiB
// minimum (V8's default grows it to 16): the per-event garbage dies young
// either way; at 100k entries the peak is 5-7 MiB lower than with 4 and
// ~25 MiB lower than with the default.
// Not --no-concurrent-recompilation (another 1.5-3 MiB): TurboFan on the main
// thread stalls a fresh daemon's first burst, whose tail behind the kernel
// went from ~30 ms to 340-400 ms in the 10k replication bench.
// --concurrent-recompilation-queue-length=64 (default 8): the start-up warm-up
// (src/daemon/warmup.ts) marks more functions hot at once than 8; one marked
// while the queue is full is not compiled, and was compiled in the first real
// burst instead (--trace-opt). Cold 100k burst, sender + receiver CPU per
// event, interleaved: the warm-up's changes alone 9.7-12.0 µs, with this flag
// 9.3-10.3 (the previous build 10.9-11.7); peak RSS +2-4 MiB.
// --initial-old-space-size=64: the first major GC waits until the old
// generation holds 64 MiB, so a first burst of 100k entries (~40 MiB of
// them) is not marked over and over while it grows. Cold 100k burst,
// interleaved pairs: 9.2-10.3 -> 8.2-9.6 µs per event; no half-speed run
// (bench/README.md) in 18 with it, 2 in the 12 interleaved without (chance
// would give 0 in 18 about one time in 20); peak RSS at 100k +2-3 MiB.
// V8 reads heap sizes and this queue's length only at start, so the flags must be on the command line;
// test and bench launchers read them from this line (daemonNodeFlags()).
import('../dist/src/cli/main.js').then((m) => m.main(process.argv.slice(2))).then(
  (code) => { process.exitCode = code; },
  (err) => { console.error(err?.stack ?? String(err)); process.exitCode = 1; },
);
