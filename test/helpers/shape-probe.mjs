// Runs the start-up warm-up's scratch pair (two daemons in process, the real
// decoder and sync engine, an in-memory link) under `node
// --trace-generalization` and marks V8's trace as each of the pair's phases
// begins (test/system/kernel-daemon-field-shapes.test.ts). The marker is a
// generalization of its own, a field named phase_<name> turning from integer
// to fraction, so that it goes through V8's buffered output in order with the
// lines it separates (a console.log would not). Needs the build (dist/).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../../dist/src/config/index.js';
import { warmUp } from '../../dist/src/daemon/warmup.js';

const flows = Number(process.argv[2] ?? 2048);
const dir = mkdtempSync(join(tmpdir(), 'ctsync-shape-'));
try {
  const { config } = parseConfig(`Sync {
  Mode FTFW { }
  UDP { IPv4_address 192.0.2.1 IPv4_Destination_Address 192.0.2.2 Port 3780 Interface lo }
}
General {
  HashSize 65536
  HashLimit 262144
  LockFile ${dir}/probe.lock
  UNIX { Path ${dir}/probe.ctl }
}
`, 'probe.conf');
  const mark = (phase) => {
    const o = {};
    o[`phase_${phase}`] = 1;
    o[`phase_${phase}`] = 0.5;
  };
  const r = await warmUp(config, { flows, onPhase: mark });
  console.log(`--- done ${JSON.stringify(r)}`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
