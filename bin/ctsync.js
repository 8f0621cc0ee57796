#!/usr/bin/env -S node --max-semi-space-size=4
// Thin launcher: the CLI is compiled TypeScript in dist/ (npm run build).
// The V8 flag caps each young-generation semi-space at 4 MiB (default 16):
// the daemon's per-event garbage dies young either way, and at 100k entries
// the peak RSS is ~30 MiB lower with no measurable CPU cost (bench/README.md).
// V8 reads heap sizes only at start, so the flag must be on the command line;
// test and bench launchers read it from this line (daemonNodeFlags()).
import('../dist/src/cli/main.js').then((m) => m.main(process.argv.slice(2))).then(
  (code) => { process.exitCode = code; },
  (err) => { console.error(err?.stack ?? String(err)); process.exitCode = 1; },
);
