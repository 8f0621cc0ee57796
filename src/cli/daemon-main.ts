// Daemon mode of the ctsync binary (`ctsync -C file`, `-d`, `--check`):
// loaded by cli/main.ts only when the arguments ask for a daemon.
import type { CliAction } from './args.js';
import { detachDaemon, tellDetachParent } from './detach.js';
import { load, printWarnings } from './main.js';
import { checkHost } from '../config/index.js';
import { createReopenableLogger } from '../log/logger.js';
import { Daemon } from '../daemon/daemon.js';
import { warmUp, warmupFlowsFromEnv } from '../daemon/warmup.js';
import { SecureChannel } from '../channel/secure.js';
import { startOps, type Ops } from '../daemon/ops.js';
import { CtsyncError } from '../errors.js';
import { tuneMalloc } from '../ops/malloc.js';
import { applyScheduler } from '../ops/scheduler.js';
import { loadNative } from '../netlink/native.js';

export async function runDaemon(action: Extract<CliAction, { mode: 'daemon' }>): Promise<number> {
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
    return await detachDaemon(process.argv.slice(1).filter((a) => a !== '-d'));
  }
  const { log, reopen: reopenLog } = createReopenableLogger({
    ...(config.general.logFile ? { file: config.general.logFile } : {}),
    ...(config.general.syslog ? { syslog: config.general.syslog } : {}),
  });
  for (const w of warnings) log.warn({ file: w.file, line: w.line, keyword: w.keyword }, w.message);
  applyScheduler(config.general.scheduler, loadNative(), log);
  tuneMalloc(loadNative(), log);
  let warmupFlows: number;
  try {
    warmupFlows = warmupFlowsFromEnv(process.env.CTSYNC_WARMUP);
  } catch (e) {
    process.stderr.write(`ctsync: ${(e as Error).message}\n`);
    return 1;
  }
  if (config.role === 'sync' && warmupFlows > 0) {
    try {
      const r = await warmUp(config, { flows: warmupFlows });
      log.info({ ...r }, 'JIT warm-up done');
    } catch (e) {
      log.warn({ err: e }, 'JIT warm-up failed; starting cold');
    }
  }
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
  tellDetachParent();
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
      try {
        daemon.channel.reloadFiles?.();
      } catch (e) {
        log.error({ err: e }, 'sync link certificate reload failed; old certificates kept');
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
