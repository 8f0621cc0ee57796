// The lock file conntrackd keeps (General { LockFile }), with one difference:
// a lock left by a crashed daemon is taken over, but only after checking that
// no daemon answers on the control socket.
import { closeSync, openSync, unlinkSync, writeSync, constants } from 'node:fs';
import { CtsyncError } from '../errors.js';

export class LockFile {
  private held = false;

  constructor(readonly path: string) {}

  /** `isDaemonAlive` probes the control socket; it decides whether an existing lock is stale. */
  async acquire(isDaemonAlive: () => Promise<boolean>): Promise<{ recoveredStale: boolean }> {
    try {
      this.create();
      return { recoveredStale: false };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new CtsyncError('CTSYNC_ERR_DAEMON', `cannot create lock file ${this.path}: ${(e as Error).message}`, { path: this.path });
      }
    }
    if (await isDaemonAlive()) {
      throw new CtsyncError('CTSYNC_ERR_DAEMON', `lock file ${this.path} exists and a daemon answers on the control socket: already running`, { path: this.path });
    }
    unlinkSync(this.path);
    this.create();
    return { recoveredStale: true };
  }

  release(): void {
    if (!this.held) return;
    this.held = false;
    try {
      unlinkSync(this.path);
    } catch {
      // Already gone: nothing to release.
    }
  }

  private create(): void {
    const fd = openSync(this.path, constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY, 0o600);
    writeSync(fd, `${process.pid}\n`);
    closeSync(fd);
    this.held = true;
  }
}
