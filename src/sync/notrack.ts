// NOTRACK sync (spec ftfw.md §3.8): fire-and-forget. Data, RESYNC and an
// ALIVE every second; no ACK/NACK/HELLO and no resend queue. The peer's
// sequence numbers are tracked for the statistics only.
import type { CacheObject } from '../cache/types.js';
import { FLAG, MSG, isDataType, type NetHdr } from '../wire/header.js';
import { RECV, SyncEngine, type EngineOptions, type EngineStats, type RecvResult } from './engine.js';
import type { SyncItem } from './queue.js';
import type { SyncMode } from './types.js';

export type NotrackOptions = EngineOptions;

export class Notrack extends SyncEngine implements SyncMode {
  readonly name = 'notrack' as const;

  constructor(opts: NotrackOptions) {
    super(opts);
  }

  protected queueObject(obj: CacheObject): void {
    const it = this.items.of(obj);
    if (it.owner === this.tx) return;
    this.pin(it);
    this.tx.push(it);
    this.entered(it);
  }

  stats(): EngineStats {
    return this.baseStats(0, 0, 0, 0);
  }

  rsQueueLines(): string[] {
    return [];
  }

  protected extraFlags(): number {
    return 0;
  }

  protected afterSend(it: SyncItem): void {
    // Nothing is kept: an object is done once on the wire.
    if (it.kind === 'obj') this.unpin(it, true);
  }

  protected onAlive(): void {
    this.queueCtl(FLAG.ALIVE, 0, 0);
  }

  protected dropAll(): void {
    for (let it = this.tx.shift(); it !== null; it = this.tx.shift()) if (it.kind === 'obj') this.unpin(it, true);
  }

  protected recvMessage(hdr: NetHdr): RecvResult {
    this.recvSeq.track(hdr.seq);
    const ret = this.digest(hdr);
    if (ret !== RECV.BAD) this.recvSeq.update(hdr.seq);
    return ret;
  }

  private digest(hdr: NetHdr): RecvResult {
    if (isDataType(hdr.type) && (hdr.flags & ~(FLAG.HELLO | FLAG.HELLO_BACK)) === 0) return RECV.DATA;
    if (hdr.type !== MSG.CTL) return RECV.BAD;
    if (hdr.flags & FLAG.RESYNC) {
      this.resyncRequested();
      return RECV.CTL;
    }
    if (hdr.flags & FLAG.ALIVE) return RECV.CTL;
    return RECV.BAD; // ACK/NACK mean nothing here
  }
}
