// Builds native/ with node-gyp against the headers installed with this Node.
// npm 11 skips dependencies' install scripts and nothing outside the registries
// is reachable, so node-gyp must never try to download headers.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const candidates = [process.env.CTSYNC_NODEDIR, dirname(dirname(process.execPath)), '/usr', '/usr/local'];
const nodedir = candidates.find((d) => d && existsSync(join(d, 'include', 'node', 'node_api.h')));
if (!nodedir) {
  console.error('build-native: no Node headers found (looked for include/node/node_api.h under ' +
    candidates.filter(Boolean).join(', ') + '); set CTSYNC_NODEDIR');
  process.exit(1);
}
const require = createRequire(import.meta.url);
let gyp;
try {
  gyp = require.resolve('node-gyp/bin/node-gyp.js');
} catch {
  // First `npm ci` runs this before devDependencies exist only if npm orders it so; fall back to npm's bundled copy.
  gyp = join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
}
const r = spawnSync(process.execPath, [gyp, 'rebuild', `--nodedir=${nodedir}`, '--directory=native'], {
  cwd: root,
  stdio: 'inherit',
});
process.exit(r.status ?? 1);
