// Adapters from the ctnetlink client and event listener (src/netlink/) to the
// daemon's ports. Kept thin: policy (origins, filters, reconcile) lives in
// the daemon, socket work in the netlink layer.
import { CtClient } from '../netlink/client.js';
import { CtEventListener } from '../netlink/events.js';
import type { Conntrack, Expectation } from '../model/conntrack.js';
import type { NlWriter } from '../netlink/nlattr.js';
import type { ConntrackTable, EventSourceStats, KernelEventHandler, KernelEventSource, WriteResult } from './ports.js';

const ENOENT = 2;

export class NetlinkTable implements ConntrackTable {
  private readonly client: CtClient;

  constructor(opts: { netns?: string } = {}) {
    this.client = new CtClient(opts.netns ? { netns: opts.netns } : {});
  }

  get portId(): number {
    return this.client.portid;
  }

  dump(): Promise<Conntrack[]> {
    return this.client.dump();
  }

  createOrReplace(entries: Conntrack[]): Promise<WriteResult> {
    return this.client.createOrReplace(entries);
  }

  createOrReplaceEncoded<T>(items: readonly T[], family: (item: T) => number, encode: (w: NlWriter, item: T) => void,
    toConntrack: (item: T) => Conntrack | null): Promise<WriteResult> {
    return this.client.createOrReplaceEncoded(items, family, encode, toConntrack);
  }

  async updateOrCreate(entries: Conntrack[]): Promise<WriteResult> {
    const r = await this.client.update(entries);
    if (r.failed.length === 0) return r;
    // conntrackd (DisableExternalCache): an update that fails is retried as a create.
    const retry = r.failed.map((f) => entries[f.index]!);
    const r2 = await this.client.createOrReplace(retry);
    return {
      ok: r.ok + r2.ok,
      failed: r2.failed.map((f) => ({ ...f, index: r.failed[f.index]!.index })),
    };
  }

  async remove(entries: Conntrack[]): Promise<WriteResult> {
    const r = await this.client.remove(entries);
    // Already gone is what we wanted.
    const failed = r.failed.filter((f) => f.errno !== ENOENT);
    return { ok: r.ok + (r.failed.length - failed.length), failed };
  }

  dumpExpectations(): Promise<Expectation[]> {
    return this.client.dumpExpectations();
  }

  createExpectations(entries: Expectation[]): Promise<WriteResult> {
    return this.client.createExpectations(entries);
  }

  removeExpectations(entries: Expectation[]): Promise<WriteResult> {
    return this.client.removeExpectations(entries);
  }

  close(): void {
    this.client.close();
  }
}

export interface NetlinkEventsOptions {
  netns?: string;
  bufferSize?: number;
  maxBufferSize?: number;
  expectations?: boolean;
  reliable?: boolean;
  /** Join the conntrack event groups (default). Off: nothing arrives but what feed() hands over. */
  subscribe?: boolean;
}

export class NetlinkEvents implements KernelEventSource {
  private readonly listener: CtEventListener;
  private target: KernelEventHandler | null = null;
  /** Exceptions from the daemon's handlers: counted, never allowed back into the native callback. */
  private handlerErrors = 0;

  constructor(opts: NetlinkEventsOptions = {}) {
    this.listener = new CtEventListener({
      // The direct handler skips EventEmitter dispatch on the per-event path.
      handler: {
        onEvent: (kind, ct, portid) => {
          try {
            this.target?.onConntrack(kind, ct, portid);
          } catch {
            this.handlerErrors++;
          }
        },
        onExpectation: (kind, exp, portid) => {
          try {
            this.target?.onExpectation(kind, exp, portid);
          } catch {
            this.handlerErrors++;
          }
        },
        onBatchStart: () => this.target?.onBatchStart?.(),
        onFastSent: (seq) => {
          try {
            this.target?.onFastSent?.(seq);
          } catch {
            this.handlerErrors++;
          }
        },
        onBatchEnd: () => {
          try {
            this.target?.onBatchEnd?.();
          } catch {
            this.handlerErrors++;
          }
        },
      },
      ...(opts.netns ? { netns: opts.netns } : {}),
      ...(opts.bufferSize ? { bufferSize: opts.bufferSize } : {}),
      ...(opts.maxBufferSize ? { maxBufferSize: opts.maxBufferSize } : {}),
      conntrack: opts.subscribe !== false,
      // The internal cache keeps no plain reply tuple: the decoder need not build one.
      dropPlainReply: true,
      expectations: opts.subscribe !== false && (opts.expectations ?? false),
      reliable: opts.reliable ?? false,
    });
  }

  start(handler: KernelEventHandler): void {
    this.target = handler;
    this.listener.on('overrun', () => handler.onOverrun());
    // Decode errors are counted by the listener; an 'error' without a listener would throw.
    this.listener.on('error', () => undefined);
    this.listener.start();
  }

  stop(): void {
    this.listener.close();
  }

  /**
   * Decodes `read` (packed ctnetlink messages) as if the kernel had sent it: the warm-up's synthetic
   * events; `fastSeq` as if the addon's fast path had sent its one event under that number.
   */
  feed(read: Buffer, fastSeq = -1): void {
    this.listener.onData(read, 0, undefined, fastSeq);
  }

  muteNew(): boolean {
    return this.listener.muteNew();
  }

  fastPath(state: Buffer | null, conf?: Buffer): boolean {
    return this.listener.fastPath(state, conf);
  }

  unmuteNew(): void {
    this.listener.unmuteNew();
  }

  stats(): EventSourceStats {
    const s = this.listener.stats;
    return {
      events: s.events + s.expEvents, overruns: s.overruns, decodeErrors: s.decodeErrors, bufferSize: s.bufferSize,
      handlerErrors: this.handlerErrors,
    };
  }
}
