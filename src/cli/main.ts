// The ctsync binary: daemon or client, chosen by the arguments exactly as
// conntrackd chooses (cli/args.ts). Returns the process exit status.
//
// Client mode is what keepalived's notify script runs on every failover, so
// it loads only the config parser and the control client: the daemon's
// modules (netlink, sync, logging, metrics) are imported in daemon mode only
// (cli/daemon-main.ts), which keeps `ctsync notify master` ~0.2 s shorter.
import { parseArgs } from './args.js';
import { usageText, versionText, formatLogLine, CANT_CONNECT_MESSAGE } from './help.js';
import { loadConfig, type CtsyncConfig, type ConfigWarning } from '../config/index.js';
import { sendRequest } from '../control/client.js';
import { CTL } from '../control/codes.js';

/** A commit of a full table can take a few seconds; dumps of 250k entries too. */
const CLIENT_TIMEOUT_MS = 120_000;

export function printWarnings(ws: ConfigWarning[]): void {
  for (const w of ws) process.stderr.write(`${w.file}:${w.line}: warning: ${w.message}\n`);
}

export function load(path: string): { config: CtsyncConfig; warnings: ConfigWarning[] } | null {
  try {
    return loadConfig(path);
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n`);
    return null;
  }
}

async function runClient(configPath: string, code: number, json: boolean): Promise<number> {
  const loaded = load(configPath);
  if (!loaded) return 1;
  const path = loaded.config.general.unix.path;
  if (!path) {
    process.stderr.write(`${configPath}: General { UNIX { Path } } is required\n`);
    return 1;
  }
  try {
    const out = await sendRequest(path, code, { timeoutMs: CLIENT_TIMEOUT_MS, json });
    process.stdout.write(out);
    return 0;
  } catch (e) {
    process.stderr.write(formatLogLine('ERROR', CANT_CONNECT_MESSAGE));
    if (process.env.CTSYNC_DEBUG) process.stderr.write(`${(e as Error).message}\n`);
    return 1;
  }
}

/** `ctsync notify master|backup|fault`: the whole primary-backup.sh sequence in one call. */
async function runNotify(configPath: string, state: 'master' | 'backup' | 'fault'): Promise<number> {
  const loaded = load(configPath);
  if (!loaded?.config.general.unix.path) return 1;
  const path = loaded.config.general.unix.path;
  const steps: number[] = state === 'master'
    ? [CTL.ALL_COMMIT, CTL.ALL_FLUSH_CACHE, CTL.ALL_RESYNC_MASTER, CTL.SEND_BULK]
    : state === 'backup'
      ? [CTL.RESET_TIMERS, CTL.REQUEST_DUMP]
      : [CTL.RESET_TIMERS];
  let status = 0;
  for (const code of steps) {
    try {
      const out = await sendRequest(path, code, { timeoutMs: CLIENT_TIMEOUT_MS });
      if (out) process.stdout.write(out);
    } catch (e) {
      process.stderr.write(formatLogLine('ERROR', `${CANT_CONNECT_MESSAGE} (${(e as Error).message})`));
      status = 1;
      // A failed commit must not stop the rest: the caches still need flushing and a bulk send.
    }
  }
  return status;
}

export async function main(argv: string[]): Promise<number> {
  const action = parseArgs(argv);
  switch (action.mode) {
    case 'version':
      process.stdout.write(versionText());
      return 0;
    case 'help':
      process.stdout.write(usageText());
      return 0;
    case 'error':
      if (action.showUsage) process.stdout.write(usageText());
      process.stderr.write(formatLogLine('ERROR', action.message));
      return action.exitCode;
    case 'notify':
      return runNotify(action.config, action.state);
    case 'client':
      if (action.showUsage) process.stdout.write(usageText());
      for (const w of action.warnings) process.stderr.write(formatLogLine('WARNING', w));
      if (action.code < 0) return 0;
      return runClient(action.config, action.code, action.json);
    case 'daemon':
      if (action.showUsage) process.stdout.write(usageText());
      for (const w of action.warnings) process.stderr.write(formatLogLine('WARNING', w));
      return (await import('./daemon-main.js')).runDaemon(action);
  }
}
