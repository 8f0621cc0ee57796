// `ctsync -d`. Node cannot fork(), so the daemon is started again, detached
// (setsid), as conntrackd -d forks. conntrackd forks once it is initialised:
// when `conntrackd -d` returns, its control socket answers, and keepalived
// notify scripts rely on that (primary-backup.sh's backup branch runs `-d`,
// then `-t` and `-n` at once). So the detached daemon reports on an inherited
// pipe once it is up, and `ctsync -d` returns then: 0, or the daemon's exit
// code if it stopped first (a start that fails is no longer reported as 0).
import { closeSync, openSync, writeSync } from 'node:fs';
import { spawn } from 'node:child_process';
import type { Readable } from 'node:stream';

/** The child's end of the pipe. */
const READY_FD = 3;
/** Bound on the wait: past it (a huge initial kernel dump), `-d` returns 0 and the daemon starts on. */
export const DETACH_WAIT_MS = 60_000;

/** Starts `node args…` detached; resolves with 0 once it is up, or its exit code. */
export async function detachDaemon(args: readonly string[], waitMs = DETACH_WAIT_MS): Promise<number> {
  const devnull = openSync('/dev/null', 'r+');
  const child = spawn(process.execPath, [...args], {
    detached: true,
    stdio: [devnull, devnull, devnull, 'pipe'],
    env: { ...process.env, CTSYNC_DAEMONIZED: '1', CTSYNC_READY_FD: String(READY_FD) },
  });
  closeSync(devnull);
  const pipe = child.stdio[READY_FD] as Readable;
  const code = await new Promise<number>((resolve) => {
    let got = '';
    const done = (c: number): void => {
      clearTimeout(timer);
      pipe.removeAllListeners('data');
      child.removeAllListeners('exit');
      resolve(c);
    };
    const timer = setTimeout(() => {
      process.stderr.write(`ctsync: the daemon is still starting after ${waitMs / 1000} s; not waiting for it\n`);
      done(0);
    }, waitMs);
    pipe.on('data', (b: Buffer) => {
      got += b.toString('latin1');
      if (got.includes('ready')) done(0);
    });
    pipe.on('error', () => undefined); // the daemon closing its end early is told by 'exit'
    child.once('exit', (c) => done(c ?? 1));
    child.once('error', () => done(1));
  });
  pipe.destroy();
  child.unref();
  // Its stderr is /dev/null: its log file or syslog has the reason.
  if (code !== 0) process.stderr.write(`ctsync: the daemon stopped while starting (exit ${code}); see its log\n`);
  return code;
}

/** In the detached daemon, once it is up: tells the waiting `ctsync -d` (no-op when not started by it). */
export function tellDetachParent(): void {
  const fd = Number(process.env.CTSYNC_READY_FD ?? '');
  delete process.env.CTSYNC_READY_FD;
  if (!Number.isInteger(fd) || fd < 3) return;
  try {
    writeSync(fd, 'ready\n');
  } catch {
    // The parent stopped waiting (its bound passed): nothing to tell.
  }
  try {
    closeSync(fd);
  } catch {
    // Already closed.
  }
}
