// Readiness rule, the keepalived track file, and notify_fifo reading through
// a real FIFO (mkfifo) in a temp dir.
import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync, unlinkSync, writeSync, constants as fsc } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { MetricsSnapshot } from '../../src/metrics/types.js';
import {
  evaluateReadiness, LineSplitter, NotifyFifoReader, parseNotifyLine, ReadinessTracker, type VrrpTransition,
} from '../../src/ops/readiness.js';
import { FakeClock } from '../../src/util/clock.js';

function synced(): MetricsSnapshot {
  return {
    running: true,
    initialDumpDone: true,
    uptimeSeconds: 60,
    sync: {
      mode: 'ftfw', oldestUnackedAgeMs: 0, lastRecvAgeMs: 300, lastAliveAgeMs: 300, helloDone: true, resyncPending: false,
      rsQueueLen: 0, rsQueueMax: 0, rsQueueOverflow: 0, txQueueLen: 0, msgsSent: 0, msgsRecv: 0, nacksSent: 0, nacksRecv: 0,
      acksSent: 0, acksRecv: 0, resends: 0, seqLost: 0, seqLostActual: 0, seqBefore: 0, peerRestarts: 0, malformed: {},
      sendMalformed: 0, fastPath: {},
    },
    netlink: { events: {}, eventsFiltered: 0, overruns: 0, resyncs: 0 },
    cache: { internal: { active: 0, limit: 0, noSpace: 0 }, external: { active: 0, limit: 0, noSpace: 0 } },
    links: [],
  };
}

const until = async (cond: () => boolean, ms = 3000): Promise<void> => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 10));
  }
};

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ctsync-ops-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('evaluateReadiness', () => {
  it('is ready only with dump done, peer heard recently, hello done and no resync', () => {
    expect(evaluateReadiness(synced())).toEqual({ ready: true, reasons: [] });
    const s = synced();
    s.initialDumpDone = false;
    s.sync.resyncPending = true;
    expect(evaluateReadiness(s).reasons).toEqual(['initial-dump-pending', 'resync-pending']);
  });

  it('treats helloDone undefined as "not tracked" and honours the peer timeout and lag bound', () => {
    const s = synced();
    delete s.sync.helloDone;
    expect(evaluateReadiness(s).ready).toBe(true);
    s.sync.lastRecvAgeMs = 6000;
    expect(evaluateReadiness(s).reasons).toEqual(['peer-silent']);
    expect(evaluateReadiness(s, { peerTimeoutMs: 10_000 }).ready).toBe(true);
    s.sync.oldestUnackedAgeMs = 2500;
    expect(evaluateReadiness(s, { peerTimeoutMs: 10_000, maxUnackedAgeMs: 2000 }).reasons).toEqual(['unacked-too-old']);
  });
});

describe('ReadinessTracker and the keepalived track file', () => {
  it('flips the file between -253 and 0 as the snapshot changes, writing only on change', () => {
    const clock = new FakeClock();
    const s = synced();
    s.sync.resyncPending = true;
    const file = join(dir, 'keepalived.track');
    const t = new ReadinessTracker({ source: () => s, trackFile: file, clock, intervalMs: 1000 });
    t.start();
    expect(readFileSync(file, 'utf8')).toBe('-253\n');
    expect(t.current().reasons).toEqual(['resync-pending']);
    const ino = statSync(file).ino;

    clock.advance(3000); // unchanged: not rewritten
    expect(statSync(file).ino).toBe(ino);

    s.sync.resyncPending = false;
    clock.advance(1000);
    expect(readFileSync(file, 'utf8')).toBe('0\n');
    expect(t.current().ready).toBe(true);

    s.sync.lastRecvAgeMs = 60_000; // the peer died
    clock.advance(1000);
    expect(readFileSync(file, 'utf8')).toBe('-253\n');
    // No temp files left behind by the atomic replace.
    expect(readdirSync(dir)).toEqual(['keepalived.track']);
    t.stop();
    expect(clock.pending()).toBe(0);
  });

  it('honours custom values (hard FAULT with -254)', () => {
    const s = synced();
    s.initialDumpDone = false;
    const file = join(dir, 't');
    new ReadinessTracker({ source: () => s, trackFile: file, notReadyValue: -254, readyValue: 5 }).update();
    expect(readFileSync(file, 'utf8')).toBe('-254\n');
    s.initialDumpDone = true;
    new ReadinessTracker({ source: () => s, trackFile: file, notReadyValue: -254, readyValue: 5 }).update();
    expect(readFileSync(file, 'utf8')).toBe('5\n');
  });

  it('keeps a MASTER node ready when its peer disappears (unless masterIsReady is false)', () => {
    const s = synced();
    s.sync.lastRecvAgeMs = null;
    const file = join(dir, 't');
    const t = new ReadinessTracker({ source: () => s, trackFile: file });
    t.update();
    expect(readFileSync(file, 'utf8')).toBe('-253\n');
    t.noteTransition({ kind: 'INSTANCE', name: 'VI_1', state: 'MASTER', priority: 100 });
    expect(readFileSync(file, 'utf8')).toBe('0\n');
    expect(t.current().ready).toBe(false); // /readyz still tells the truth
    t.noteTransition({ kind: 'INSTANCE', name: 'VI_1', state: 'BACKUP', priority: 100 });
    expect(readFileSync(file, 'utf8')).toBe('-253\n');

    const strict = new ReadinessTracker({ source: () => s, trackFile: join(dir, 'u'), masterIsReady: false });
    strict.noteTransition({ kind: 'INSTANCE', name: 'VI_1', state: 'MASTER', priority: 100 });
    expect(readFileSync(join(dir, 'u'), 'utf8')).toBe('-253\n');
  });

  it('reports a throwing snapshot as not ready instead of crashing', () => {
    const t = new ReadinessTracker({ source: () => { throw new Error('boom'); }, trackFile: join(dir, 't') });
    expect(t.update()).toEqual({ ready: false, reasons: ['snapshot-failed'] });
    expect(readFileSync(join(dir, 't'), 'utf8')).toBe('-253\n');
  });
});

describe('notify_fifo parsing', () => {
  it('parses INSTANCE and GROUP lines and rejects others', () => {
    expect(parseNotifyLine('INSTANCE "VI_1" MASTER 100')).toEqual({ kind: 'INSTANCE', name: 'VI_1', state: 'MASTER', priority: 100 });
    expect(parseNotifyLine('GROUP "G1" BACKUP 0')).toEqual({ kind: 'GROUP', name: 'G1', state: 'BACKUP', priority: 0 });
    expect(parseNotifyLine('INSTANCE "VI 2" FAULT')).toEqual({ kind: 'INSTANCE', name: 'VI 2', state: 'FAULT', priority: null });
    expect(parseNotifyLine('RS "10.0.0.1:80" UP')).toBeNull();
    expect(parseNotifyLine('INSTANCE VI_1 MASTER 100')).toBeNull();
    expect(parseNotifyLine('')).toBeNull();
  });

  it('splits lines across chunks and bounds runaway lines', () => {
    const s = new LineSplitter(32);
    expect(s.push('INSTANCE "VI_1" MAS')).toEqual([]);
    expect(s.push('TER 100\nGROUP "G1" BACKUP 0\r\nINST')).toEqual(['INSTANCE "VI_1" MASTER 100', 'GROUP "G1" BACKUP 0']);
    expect(s.push('x'.repeat(100))).toEqual([]); // dropped: longer than 32
    expect(s.push('ANCE "a" STOP 0\n')).toEqual(['ANCE "a" STOP 0']);
  });
});

describe('NotifyFifoReader over a real FIFO', () => {
  let reader: NotifyFifoReader | null = null;
  afterEach(() => {
    reader?.stop();
    reader = null;
  });

  function mkfifo(path: string): void {
    execFileSync('mkfifo', [path]);
  }

  /** Opens the FIFO as keepalived does (write-only), writes the pieces with pauses, closes. */
  async function writer(path: string, pieces: string[]): Promise<void> {
    const fd = openSync(path, fsc.O_WRONLY | fsc.O_NONBLOCK);
    try {
      for (const p of pieces) {
        writeSync(fd, p);
        await new Promise((r) => setTimeout(r, 30));
      }
    } finally {
      closeSync(fd);
    }
  }

  it('emits transitions from split writes, survives the writer closing, and reopens a recreated FIFO', async () => {
    const path = join(dir, 'notify.fifo');
    mkfifo(path);
    const got: VrrpTransition[] = [];
    const other: string[] = [];
    let opens = 0;
    reader = new NotifyFifoReader({ path, checkIntervalMs: 50 });
    reader.on('transition', (t) => got.push(t));
    reader.on('other', (l) => other.push(l));
    reader.on('open', () => opens++);
    reader.start();
    expect(opens).toBe(1);

    await writer(path, ['INSTANCE "VI_1" BA', 'CKUP 100\nGROUP "G1" ', 'BACKUP 0\nVS "x" UP\n']);
    await until(() => got.length === 2 && other.length === 1);
    expect(got).toEqual([
      { kind: 'INSTANCE', name: 'VI_1', state: 'BACKUP', priority: 100 },
      { kind: 'GROUP', name: 'G1', state: 'BACKUP', priority: 0 },
    ]);

    // keepalived closed its end (reload); a new writer must still be heard.
    await writer(path, ['INSTANCE "VI_1" MASTER 100\n']);
    await until(() => got.length === 3);
    expect(got[2]!.state).toBe('MASTER');

    // keepalived restarted: the FIFO is removed and created anew.
    unlinkSync(path);
    await new Promise((r) => setTimeout(r, 120));
    mkfifo(path);
    await until(() => opens === 2);
    await writer(path, ['INSTANCE "VI_1" FAULT 0\n']);
    await until(() => got.length === 4);
    expect(got[3]).toEqual({ kind: 'INSTANCE', name: 'VI_1', state: 'FAULT', priority: 0 });
  });

  it('waits for a FIFO that does not exist yet, and ignores a regular file', async () => {
    const path = join(dir, 'late.fifo');
    const got: VrrpTransition[] = [];
    reader = new NotifyFifoReader({ path, checkIntervalMs: 30 });
    reader.on('transition', (t) => got.push(t));
    reader.start();
    await new Promise((r) => setTimeout(r, 80));
    mkfifo(path);
    await new Promise((r) => setTimeout(r, 100));
    await writer(path, ['GROUP "G1" MASTER 0\n']);
    await until(() => got.length === 1);
    reader.stop();

    const plain = join(dir, 'plain');
    closeSync(openSync(plain, 'w'));
    let opened = false;
    reader = new NotifyFifoReader({ path: plain, checkIntervalMs: 30 });
    reader.on('open', () => (opened = true));
    reader.start();
    await new Promise((r) => setTimeout(r, 80));
    expect(opened).toBe(false);
  });
});
