// Public entry point of the configuration module: read a conntrackd.conf as
// conntrackd 1.4.7 would, return the typed config and the warnings to log.

import { readFileSync, statSync } from 'node:fs';
import { ConfigError } from '../errors.js';
import { MAX_CONFIG_BYTES } from './lexer.js';
import { parseConfig } from './parser.js';
import type { ConfigWarning, CtsyncConfig } from './schema.js';

export { parseConfig } from './parser.js';
export { checkHost, systemProbe, type HostProbe } from './host-check.js';
export { IGNORED, CONNTRACKD_KEYWORDS, CTSYNC_KEYWORDS } from './keywords.js';
export * from './schema.js';

/** Reads and parses `path`. Throws ConfigError: CTSYNC_ERR_CONFIG_IO when the file cannot be read. */
export function loadConfig(path: string): { config: CtsyncConfig; warnings: ConfigWarning[] } {
  let text: string;
  try {
    // Check the size first so a wrong path (a disk image, /dev/zero) is never read whole.
    const st = statSync(path);
    if (!st.isFile()) throw new ConfigError('CTSYNC_ERR_CONFIG_IO', 'not a regular file', path, undefined);
    if (st.size > MAX_CONFIG_BYTES) {
      throw new ConfigError('CTSYNC_ERR_CONFIG_IO',
        `file is ${st.size} bytes, more than the ${MAX_CONFIG_BYTES} a configuration may have`, path, undefined);
    }
    text = readFileSync(path, 'latin1');
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    const code = (err as NodeJS.ErrnoException).code ?? 'EIO';
    throw new ConfigError('CTSYNC_ERR_CONFIG_IO', `cannot read configuration file (${code})`, path, undefined,
      { errno: code });
  }
  return parseConfig(text, path);
}
