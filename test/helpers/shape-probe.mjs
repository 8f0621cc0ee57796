// Runs the start-up warm-up's scratch pair (two daemons in process, the real
// decoder and sync engine, an in-memory link) under `node
// --trace-generalization` and marks V8's trace as each of the pair's phases
// begins (test/system/kernel-daemon-field-shapes.test.ts). The marker is a
// generalization of its own, a field named phase_<name> turning from integer
// to fraction, so that it goes through V8's buffered output in order with the
// lines it separates (a console.log would not). Needs the build (dist/).
import { readFileSync } from 'node:fs';
import { parseConfig } from '../../dist/src/config/index.js';
import { warmUp } from '../../dist/src/daemon/warmup.js';

// argv: the configuration file (test/helpers/warmup-config.ts writes it), the number of flows.
const [file, flowsArg] = process.argv.slice(2);
const flows = Number(flowsArg ?? 2048);
const { config } = parseConfig(readFileSync(file, 'utf8'), file);
const mark = (phase) => {
  const o = {};
  o[`phase_${phase}`] = 1;
  o[`phase_${phase}`] = 0.5;
};
const r = await warmUp(config, { flows, onPhase: mark });
console.log(`--- done ${JSON.stringify(r)}`);
