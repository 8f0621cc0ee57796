// The ctsync binary: daemon or client, chosen by the arguments exactly as
// conntrackd chooses (cli/args.ts). Returns the process exit status.
import { closeSync, openSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { parseArgs, type CliAction } from './args.js';
import { usageText, versionText, formatLogLine, CANT_CONNECT_MESSAGE } from './help.js';
import { loadConfig, checkHost, type CtsyncConfig, type ConfigWarning } from '../config/index.js';
import { sendRequest } from '../control/client.js';
import { CTL } from '../control/codes.js';
import { createReopenableLogger } from '../log/logger.js';
import { Daemon } from '../daemon/daemon.js';
import { SecureChannel } from '../channel/secure.js';
import { startOps, type Ops } from '../daemon/ops.js';
import { CtsyncError } from '../errors.js';

/** A commit of a full table can take a few seconds; dumps of 250k entries too. */
const CLIENT_TIMEOUT_MS = 120_000;

function printWarnings(ws: ConfigWarning[]): void {
  for (const w of ws) process.stderr.write(`${w.file}:${w.line}: warning: ${w.message}\n`);
}

function load(path: string): { config: CtsyncConfig; warnings: ConfigWarning[] } | null {
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

async function runDaemon(action: Extract<CliAction, { mode: 'daemon' }>): Promise<number> {
  const loaded = load(action.config);
  if (!loaded) return 1;
  const { config, warnings } = loaded;
  if (action.check) {
    printWarnings(warnings);
    printWarnings(checkHost(config));
    process.stdout.write(`${action.config}: configuration OK\n`);
    return 0;
  }
  if (action.daemonize && !process.env.CTSYNC_DAEMONIZED) {
    // Node cannot fork(); re-exec detached, as conntrackd -d forks and setsid()s.
    const args = process.argv.slice(1).filter((a) => a !== '-d');
    const devnull = openSync('/dev/null', 'r+');
    const child = spawn(process.execPath, args, {
      detached: true, stdio: [devnull, devnull, devnull], env: { ...process.env, CTSYNC_DAEMONIZED: '1' },
    });
    child.unref();
    closeSync(devnull);
    return 0;
  }
  const { log, reopen: reopenLog } = createReopenableLogger({
    ...(config.general.logFile ? { file: config.general.logFile } : {}),
    ...(config.general.syslog ? { syslog: config.general.syslog } : {}),
  });
  for (const w of warnings) log.warn({ file: w.file, line: w.line, keyword: w.keyword }, w.message);
  let daemon: Daemon;
  let ops: Ops;
  try {
    daemon = new Daemon(config, { log });
    await daemon.start();
    ops = await startOps(daemon, log).catch(async (e: unknown) => {
      await daemon.stop();
      throw e;
    });
  } catch (e) {
    const msg = e instanceof CtsyncError ? e.message : (e as Error).stack ?? String(e);
    log.error({ err: e }, 'ctsync failed to start');
    process.stderr.write(`ctsync: ${msg}\n`);
    log.flush?.();
    return 1;
  }
  return await new Promise<number>((resolve) => {
    // STOPPING=1 and the not-ready track file before the daemon goes down.
    const shutdown = (): void => void ops.stop().finally(() => daemon.requestExit(0));
    process.once('SIGTERM', shutdown);
    process.once('SIGINT', shutdown);
    process.on('SIGHUP', () => {
      ops.notifier?.reloading();
      reopenLog();
      const again = load(action.config);
      if (again) {
        daemon.reloadFilter(again.config);
        log.info('configuration reloaded (filters)');
      }
      if (daemon.channel instanceof SecureChannel) {
        try {
          daemon.channel.reloadKeys();
        } catch (e) {
          log.error({ err: e }, 'key file reload failed; old keys kept');
        }
      }
      ops.notifier?.ready();
    });
    daemon.once('exit', (code) => {
      // KILL (-k) reaches here without shutdown(); ops.stop() is idempotent.
      void ops.stop().finally(() => {
        log.flush?.();
        resolve(code);
      });
    });
  });
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
      return runDaemon(action);
  }
}
