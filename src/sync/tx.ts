// Transmit plumbing shared by FTFW and NOTRACK: the sender's sequence counter
// and the datagram batcher (ftfw.md §1.6, §3.1).
import type { Clock } from '../util/clock.js';
import { CtsyncError, WireError } from '../errors.js';
import { settleFields } from '../util/shape.js';

/**
 * One 32-bit counter for every outgoing message, seeded lazily with the Unix
 * time of the first stamp (as conntrackd does), wrapping mod 2^32.
 */
export class SeqCounter {
  /**
   * The counter's word, as int32: its own, or a word of the state block the
   * addon's fast path shares (share()), which numbers its messages from it.
   */
  private cell: Int32Array = new Int32Array(1);
  private at = 0;
  private seeded = false;

  constructor(private readonly clock: Clock) {
    // share() moves the counter after the start-up warm-up has compiled peek and advance: see settleFields.
    settleFields(this, { mutable: ['cell', 'at'] });
  }

  /** The number the next message will carry (seeds the counter on first use). */
  peek(): number {
    if (!this.seeded) {
      this.seeded = true;
      this.cell[this.at] = this.clock.unixSeconds() | 0;
    }
    return this.cell[this.at]! >>> 0;
  }

  /** Consumes the number returned by peek(): call once the message is really written. */
  advance(): void {
    this.cell[this.at] = (this.cell[this.at]! + 1) | 0;
  }

  /** Moves the counter into cell[at] (the fast path's state block), keeping its value; null moves it back. */
  share(cell: Int32Array | null, at = 0): void {
    const v = this.cell[this.at]!;
    this.cell = cell ?? new Int32Array(1);
    this.at = cell === null ? 0 : at;
    this.cell[this.at] = v;
  }
}

/** Writes one message at buf[off], not past `limit`; returns its length or throws. */
export interface MessageSource<T> {
  writeMessage(buf: Buffer, off: number, limit: number, item: T): number;
}

/**
 * Packs messages back to back into one reusable buffer of `max` bytes. A
 * message is kept only while `buffered + len < max` (strictly, as conntrackd);
 * otherwise what was buffered goes out first. flush() ends a transmit round.
 *
 * The buffer is twice `max` long and messages are encoded against its whole
 * length: one that ends past `max` is still written completely, then moved to
 * the front of the next datagram. So a full datagram costs one copy, not an
 * exception and a second encode (every datagram of a burst ends that way).
 */
export class DatagramWriter {
  private readonly buf: Buffer;
  private used = 0;
  datagramsSent = 0;
  sendErrors = 0;

  /**
   * `lend`: the sink is done with each datagram when it returns (the daemon's
   * channels are), so it gets a view of the reused buffer, not a copy. Measured
   * on a bulk resync, a copy per datagram was a fresh 1.4 KB slice of Node's
   * buffer pool, and the pool's 8 KB blocks, freed only by the next GCs, kept
   * the sender's C heap growing into fresh pages (clear_page_erms: 8% of its
   * samples).
   */
  constructor(readonly max: number, private readonly sink: (datagram: Buffer) => void, private readonly lend = false) {
    // Must hold at least one 16-byte control message under the strict rule.
    if (!Number.isInteger(max) || max <= 16) throw new CtsyncError('CTSYNC_ERR', `maxDatagram too small: ${max}`, { max });
    this.buf = Buffer.alloc(2 * max);
  }

  get buffered(): number {
    return this.used;
  }

  /**
   * Appends the message `src` writes for `item`. Returns its length. Throws
   * (WireError) if the message cannot be encoded even into an empty buffer;
   * the buffered messages are untouched then.
   */
  put<T>(src: MessageSource<T>, item: T): number {
    const off = this.used;
    // From any off < max, more than max bytes are left: a message that does
    // not fit them is too large for any datagram.
    const len = src.writeMessage(this.buf, off, this.buf.length, item);
    if (off + len < this.max) {
      this.used = off + len;
      return len;
    }
    if (len >= this.max) {
      throw new WireError('CTSYNC_ERR_WIRE_ENCODE', `message of ${len} bytes does not fit a ${this.max}-byte datagram`,
        'too-large', { len, max: this.max });
    }
    // It fits only alone: send what came before, then move it to the front.
    this.flush();
    this.buf.copyWithin(0, off, off + len);
    this.used = len;
    return len;
  }

  /** Sends the buffered messages as one datagram: a view of the buffer when lent, else a copy the sink may keep. */
  flush(): void {
    if (this.used === 0) return;
    let d: Buffer;
    if (this.lend) {
      d = this.buf.subarray(0, this.used);
    } else {
      d = Buffer.allocUnsafe(this.used);
      this.buf.copy(d, 0, 0, this.used);
    }
    this.used = 0;
    this.datagramsSent++;
    try {
      this.sink(d);
    } catch {
      this.sendErrors++;
    }
  }
}
