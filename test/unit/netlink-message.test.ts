// Netlink framing, the message walker, error parsing, and the request/event
// engines over a fake NativeBinding (no kernel needed).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { NetlinkError } from '../../src/errors.js';
import { AF_INET, EVENT, IPPROTO, type Conntrack, type EventKind } from '../../src/model/conntrack.js';
import { CtClient } from '../../src/netlink/client.js';
import { readConntrack, writeConntrackAttrs } from '../../src/netlink/ct-codec.js';
import { CtEventListener, type OverrunInfo } from '../../src/netlink/events.js';
import { beginMessage, endMessage, MessageReader, parseErrorPayload } from '../../src/netlink/message.js';
import type { NativeBinding, NativeHandle, NativeReadCallback, NativeStats } from '../../src/netlink/native.js';
import {
  CT_DELETE, CT_GET, CT_NEW, ERRNO, EXP_NEW, NETLINK_CAP_ACK, NFGENMSG_LEN, NLMSG_DONE, NLMSG_ERROR, NLMSG_HDRLEN,
  NLM_F_ACK, NLM_F_ACK_TLVS, NLM_F_CAPPED, NLM_F_CREATE, NLM_F_DUMP, NLM_F_DUMP_INTR, NLM_F_EXCL, NLM_F_MULTI,
  NLM_F_REQUEST, SOL_NETLINK, SOL_SOCKET, SO_RCVBUFFORCE, NETLINK_BROADCAST_ERROR, NETLINK_NO_ENOBUFS, EXP_DELETE,
  CT_EVENT_GROUPS, EXP_EVENT_GROUPS, NETLINK_ADD_MEMBERSHIP, NETLINK_DROP_MEMBERSHIP, NFNLGRP_CONNTRACK_NEW,
} from '../../src/netlink/nl-constants.js';
import { writeExpectationAttrs } from '../../src/netlink/exp-codec.js';
import type { Expectation } from '../../src/model/conntrack.js';
import { NlWriter } from '../../src/netlink/nlattr.js';

function tcp(i: number): Conntrack {
  return {
    orig: { l3: AF_INET, src: `10.0.${(i >> 8) & 255}.${i & 255}`, dst: '10.9.0.1', proto: IPPROTO.TCP, sport: 1024 + (i % 60000), dport: 80 },
    status: 0xe, timeout: 300, mark: i, tcp: { state: 3 },
  };
}

/** A kernel-side message: nlmsghdr + nfgenmsg + ctnetlink attributes. */
function ctMessage(w: NlWriter, type: number, flags: number, seq: number, pid: number, ct: Conntrack): void {
  const at = beginMessage(w, type, flags, seq, AF_INET);
  writeConntrackAttrs(w, ct, 'create');
  endMessage(w, at);
  w.buf.writeUInt32LE(pid, at + 12);
}

/** NLMSG_ERROR as the kernel writes it with NETLINK_CAP_ACK (no echoed payload), optional ext-ack text. */
function errMessage(w: NlWriter, seqOfReq: number, pid: number, errno: number, origType = CT_NEW, extack?: string): void {
  const at = w.raw(NLMSG_HDRLEN);
  let flags = NLM_F_CAPPED;
  w.raw(4);
  w.buf.writeInt32LE(-errno, at + 16);
  const orig = w.raw(NLMSG_HDRLEN);
  w.buf.writeUInt32LE(NLMSG_HDRLEN + 40, orig);
  w.buf.writeUInt16LE(origType, orig + 4);
  w.buf.writeUInt16LE(NLM_F_REQUEST, orig + 6);
  w.buf.writeUInt32LE(seqOfReq, orig + 8);
  w.buf.writeUInt32LE(pid, orig + 12);
  if (extack !== undefined) {
    flags |= NLM_F_ACK_TLVS;
    w.cstring(1, extack);
  }
  w.buf.writeUInt32LE(w.off - at, at);
  w.buf.writeUInt16LE(NLMSG_ERROR, at + 4);
  w.buf.writeUInt16LE(flags, at + 6);
  w.buf.writeUInt32LE(seqOfReq, at + 8);
  w.buf.writeUInt32LE(pid, at + 12);
}

function doneMessage(w: NlWriter, seq: number, pid: number, flags = NLM_F_MULTI, status = 0): void {
  const at = w.raw(NLMSG_HDRLEN + 4);
  w.buf.writeUInt32LE(NLMSG_HDRLEN + 4, at);
  w.buf.writeUInt16LE(NLMSG_DONE, at + 4);
  w.buf.writeUInt16LE(flags, at + 6);
  w.buf.writeUInt32LE(seq, at + 8);
  w.buf.writeUInt32LE(pid, at + 12);
  w.buf.writeInt32LE(status, at + 16);
}

interface FakeSock {
  portid: number;
  groups: number;
  sockopts: Map<string, number>;
  sent: Buffer[];
  rx: Buffer[];
  cb: NativeReadCallback | null;
  closed: boolean;
}

/** A kernel stand-in: `onSend` sees each request buffer and returns the reply bytes to queue. */
class FakeBinding implements NativeBinding {
  socks: FakeSock[] = [];
  onSend: (req: Buffer, sock: FakeSock) => Buffer | null = () => null;

  private s(h: NativeHandle): FakeSock {
    return h as FakeSock;
  }

  open(): NativeHandle {
    const s: FakeSock = { portid: 0, groups: 0, sockopts: new Map(), sent: [], rx: [], cb: null, closed: false };
    this.socks.push(s);
    return s;
  }
  bind(h: NativeHandle, groups: number): number {
    this.s(h).groups = groups;
    return (this.s(h).portid = 4000 + this.socks.length);
  }
  setsockopt(h: NativeHandle, level: number, name: number, value: number | Buffer): void {
    this.s(h).sockopts.set(`${level}/${name}`, Number(value));
  }
  getsockopt(h: NativeHandle, level: number, name: number): number {
    return this.s(h).sockopts.get(`${level}/${name}`) ?? 0;
  }
  send(h: NativeHandle, buf: Buffer): number {
    const s = this.s(h);
    const copy = Buffer.from(buf);
    s.sent.push(copy);
    const reply = this.onSend(copy, s);
    if (reply) s.rx.push(reply);
    return buf.length;
  }
  drain(h: NativeHandle): Buffer | null {
    return this.s(h).rx.shift() ?? null;
  }
  start(h: NativeHandle, cb: NativeReadCallback): void {
    this.s(h).cb = cb;
  }
  stop(h: NativeHandle): void {
    this.s(h).cb = null;
  }
  close(h: NativeHandle): void {
    this.s(h).closed = true;
  }
  stats(): NativeStats {
    return { datagrams: 0, wakeups: 0, enobufs: 0, pollRestarts: 0, bytes: 0, truncated: 0, fd: -1 };
  }
  setsockoptFd(): void {}
  getsockoptFd(): never {
    throw new Error('not in fake');
  }
  sendUnixDatagram(): number {
    return 0;
  }
  setScheduler(): void {
    throw new Error('not in fake');
  }
}

/** Requests of one send: type, flags, seq of each message. */
function requests(buf: Buffer): { type: number; flags: number; seq: number; start: number; end: number }[] {
  const r = new MessageReader().reset(buf);
  const out = [];
  while (r.next()) out.push({ type: r.type, flags: r.flags, seq: r.seq, start: r.attrsStart(), end: r.msgEnd });
  return out;
}

describe('framing', () => {
  it('writes nlmsghdr + nfgenmsg and patches the aligned length', () => {
    const w = new NlWriter(64);
    const at = beginMessage(w, CT_NEW, NLM_F_REQUEST | NLM_F_ACK, 0x01020304, AF_INET, 0x1234);
    w.u8(1, 7); // 5-byte attribute: forces padding
    endMessage(w, at);
    const b = w.view();
    expect(b.length).toBe(NLMSG_HDRLEN + NFGENMSG_LEN + 8);
    expect(b.readUInt32LE(0)).toBe(b.length);
    expect(b.readUInt16LE(4)).toBe(0x0100);
    expect(b.readUInt16LE(6)).toBe(NLM_F_REQUEST | NLM_F_ACK);
    expect(b.readUInt32LE(8)).toBe(0x01020304);
    expect(b.readUInt32LE(12)).toBe(0);
    expect([...b.subarray(16, 20)]).toEqual([AF_INET, 0, 0x12, 0x34]);
  });

  it('walks several messages and exposes the attribute region', () => {
    const w = new NlWriter(256);
    ctMessage(w, CT_NEW, NLM_F_CREATE | NLM_F_EXCL, 0, 0, tcp(1));
    ctMessage(w, CT_DELETE, 0, 0, 0, tcp(2));
    doneMessage(w, 9, 0);
    const r = new MessageReader().reset(w.view());
    const seen: number[] = [];
    while (r.next()) {
      seen.push(r.type);
      if (r.type === CT_NEW) expect(readConntrack(r.buf, r.attrsStart(), r.msgEnd).mark).toBe(1);
      if (r.type === CT_DELETE) expect(readConntrack(r.buf, r.attrsStart(), r.msgEnd).orig.src).toBe('10.0.0.2');
    }
    expect(seen).toEqual([CT_NEW, CT_DELETE, NLMSG_DONE]);
  });
});

describe('malformed input', () => {
  const decodeErr = (fn: () => void): NetlinkError => {
    try {
      fn();
    } catch (e) {
      expect(e).toBeInstanceOf(NetlinkError);
      expect((e as NetlinkError).code).toBe('CTSYNC_ERR_NETLINK_DECODE');
      return e as NetlinkError;
    }
    throw new Error('no error thrown');
  };
  const walk = (b: Buffer) => () => {
    const r = new MessageReader().reset(b);
    while (r.next()) { /* walk */ }
  };

  it('rejects a truncated header, a length below the header and a length past the end', () => {
    expect(decodeErr(walk(Buffer.alloc(10))).message).toMatch(/truncated header/);
    const short = Buffer.alloc(16);
    short.writeUInt32LE(8, 0);
    expect(decodeErr(walk(short)).message).toMatch(/below header size/);
    const long = Buffer.alloc(20);
    long.writeUInt32LE(400, 0);
    expect(decodeErr(walk(long)).context.offset).toBe(0);
  });

  it('reports the offset of the bad message after good ones', () => {
    const w = new NlWriter(256);
    ctMessage(w, CT_NEW, 0, 0, 0, tcp(1));
    const good = w.off;
    w.raw(8).toString();
    expect(decodeErr(walk(w.view())).context.offset).toBe(good);
  });

  it('rejects an nfnetlink message without nfgenmsg, and a short NLMSG_ERROR', () => {
    const b = Buffer.alloc(16);
    b.writeUInt32LE(16, 0);
    b.writeUInt16LE(CT_NEW, 4);
    const r = new MessageReader().reset(b);
    expect(r.next()).toBe(true);
    decodeErr(() => r.attrsStart());
    const e = Buffer.alloc(20);
    e.writeUInt32LE(20, 0);
    e.writeUInt16LE(NLMSG_ERROR, 4);
    decodeErr(() => parseErrorPayload(e, 0, 20, 0));
  });

  it('never throws anything but a DECODE error on random bytes', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
      const b = Buffer.from(bytes);
      const r = new MessageReader().reset(b);
      try {
        while (r.next()) {
          if (r.type === NLMSG_ERROR || r.type === NLMSG_DONE) r.error();
          else if (r.type >= 0x10) readConntrack(b, r.attrsStart(), r.msgEnd);
        }
      } catch (e) {
        return (e as NetlinkError).code === 'CTSYNC_ERR_NETLINK_DECODE';
      }
      return true;
    }), { numRuns: 2000 });
  });
});

describe('NLMSG_ERROR parsing', () => {
  it('gives errno, original seq/type and the ext-ack message', () => {
    const w = new NlWriter(128);
    errMessage(w, 77, 5, ERRNO.EEXIST, CT_NEW, 'conntrack exists');
    const r = new MessageReader().reset(w.view());
    expect(r.next()).toBe(true);
    expect(r.error()).toEqual({ errno: 17, origType: CT_NEW, origSeq: 77, extack: 'conntrack exists' });
  });

  it('treats error 0 as an ACK and reads NLMSG_DONE status', () => {
    const w = new NlWriter(128);
    errMessage(w, 5, 1, 0);
    doneMessage(w, 5, 1, NLM_F_MULTI, -ERRNO.EINVAL);
    const r = new MessageReader().reset(w.view());
    r.next();
    expect(r.error().errno).toBe(0);
    r.next();
    expect(r.error().errno).toBe(ERRNO.EINVAL);
  });

  it('keeps the errno when the ext-ack TLVs are garbage', () => {
    const w = new NlWriter(128);
    errMessage(w, 5, 1, ERRNO.ENOENT, CT_NEW, 'x');
    const b = Buffer.from(w.view());
    b.writeUInt16LE(200, 36); // TLV length past the end
    const r = new MessageReader().reset(b);
    r.next();
    expect(r.error()).toMatchObject({ errno: ERRNO.ENOENT, origSeq: 5 });
  });
});

describe('CtClient over a fake binding', () => {
  /** Kernel model: fails messages whose mark is in `failMarks` with errno; acks the NLM_F_ACK ones. */
  function kernel(fake: FakeBinding, failMarks: Map<number, number>): void {
    fake.onSend = (req, sock) => {
      const w = new NlWriter(4096);
      for (const m of requests(req)) {
        const ct = readConntrack(req, m.start, m.end);
        const e = failMarks.get(ct.mark ?? -1) ?? 0;
        if (e !== 0 || m.flags & NLM_F_ACK) errMessage(w, m.seq, sock.portid, e, m.type);
      }
      return w.off ? Buffer.from(w.view()) : null;
    };
  }

  it('sets up the request socket: CAP_ACK and a forced receive buffer', () => {
    const fake = new FakeBinding();
    const c = new CtClient({ binding: fake, rcvbuf: 1 << 20 });
    const s = fake.socks[0]!;
    expect(s.sockopts.get(`${SOL_NETLINK}/${NETLINK_CAP_ACK}`)).toBe(1);
    expect(s.sockopts.get(`${SOL_SOCKET}/${SO_RCVBUFFORCE}`)).toBe(1 << 20);
    expect(c.portid).toBe(s.portid);
    c.close();
    expect(s.closed).toBe(true);
  });

  it('batches, acks only the last message of each batch and maps errors by seq to input indices', async () => {
    const fake = new FakeBinding();
    kernel(fake, new Map([[3, ERRNO.EEXIST], [250, ERRNO.EBUSY], [599, ERRNO.EEXIST]]));
    const c = new CtClient({ binding: fake, batchSize: 256 });
    const cts = Array.from({ length: 600 }, (_, i) => tcp(i));
    const res = await c.create(cts);
    expect(res.ok).toBe(597);
    expect(res.failed.map((f) => [f.index, f.errno])).toEqual([[3, 17], [250, 16], [599, 17]]);
    const sent = fake.socks[0]!.sent;
    expect(sent.length).toBe(3);
    const all = sent.flatMap(requests);
    expect(all.length).toBe(600);
    expect(all.filter((m) => m.flags & NLM_F_ACK).length).toBe(3);
    for (const batch of sent) {
      const ms = requests(batch);
      expect(ms.at(-1)!.flags & NLM_F_ACK).toBe(NLM_F_ACK);
      expect(ms[0]!.flags).toBe(NLM_F_REQUEST | NLM_F_CREATE | NLM_F_EXCL);
      for (let i = 1; i < ms.length; i++) expect(ms[i]!.seq).toBe(ms[i - 1]!.seq + 1);
    }
    // seqs never repeat across batches
    expect(new Set(all.map((m) => m.seq)).size).toBe(600);
  });

  it('rejects an entry the codec cannot encode without losing the rest of the batch', async () => {
    const fake = new FakeBinding();
    kernel(fake, new Map());
    const c = new CtClient({ binding: fake });
    const bad = tcp(1);
    bad.orig.src = 'not-an-ip';
    const res = await c.create([tcp(0), bad, tcp(2)]);
    expect(res.ok).toBe(2);
    expect(res.failed).toMatchObject([{ index: 1, errno: ERRNO.EINVAL }]);
  });

  it('ignores replies for other ports and stale seqs', async () => {
    const fake = new FakeBinding();
    fake.onSend = (req, sock) => {
      const w = new NlWriter(1024);
      const ms = requests(req);
      errMessage(w, ms[0]!.seq, sock.portid + 1, ERRNO.EPERM); // someone else's port
      errMessage(w, ms[0]!.seq - 100, sock.portid, ERRNO.EPERM); // stale
      errMessage(w, ms.at(-1)!.seq, sock.portid, 0);
      return Buffer.from(w.view());
    };
    const c = new CtClient({ binding: fake });
    expect(await c.update([tcp(1), tcp(2)])).toEqual({ ok: 2, failed: [] });
  });

  it('createOrReplace deletes and recreates entries that exist', async () => {
    const fake = new FakeBinding();
    const existing = new Set(['10.0.0.1', '10.0.0.4']); // delete messages carry only the tuple
    fake.onSend = (req, sock) => {
      const w = new NlWriter(4096);
      for (const m of requests(req)) {
        const src = readConntrack(req, m.start, m.end).orig.src;
        let e = 0;
        if (m.type === CT_NEW && existing.has(src)) e = ERRNO.EEXIST;
        if (m.type === CT_DELETE) existing.delete(src);
        if (e || m.flags & NLM_F_ACK) errMessage(w, m.seq, sock.portid, e, m.type);
      }
      return w.off ? Buffer.from(w.view()) : null;
    };
    const c = new CtClient({ binding: fake });
    const res = await c.createOrReplace([0, 1, 2, 3, 4].map(tcp));
    expect(res).toEqual({ ok: 5, failed: [] });
    const types = fake.socks[0]!.sent.flatMap(requests).map((m) => m.type);
    expect(types).toEqual([CT_NEW, CT_NEW, CT_NEW, CT_NEW, CT_NEW, CT_DELETE, CT_DELETE, CT_NEW, CT_NEW]);
  });

  it('times out with a typed error when no ACK ever comes', async () => {
    const fake = new FakeBinding();
    const c = new CtClient({ binding: fake, replyTimeoutMs: 30 });
    await expect(c.update([tcp(1)])).rejects.toMatchObject({ code: 'CTSYNC_ERR_NETLINK_TIMEOUT' });
  });

  it('dumps in several chunks, restarts once on NLM_F_DUMP_INTR, counts and skips a malformed entry', async () => {
    const fake = new FakeBinding();
    let dumps = 0;
    fake.onSend = (req, sock) => {
      const [m] = requests(req);
      expect(m!.type).toBe(CT_GET);
      expect(m!.flags).toBe(NLM_F_REQUEST | NLM_F_DUMP);
      dumps++;
      const intr = dumps === 1 ? NLM_F_DUMP_INTR : 0;
      for (let chunk = 0; chunk < 3; chunk++) {
        const w = new NlWriter(4096);
        for (let i = 0; i < 10; i++) ctMessage(w, CT_NEW, NLM_F_MULTI | intr, m!.seq, sock.portid, tcp(chunk * 10 + i));
        if (chunk === 1) {
          // a message whose attributes are garbage
          const at = beginMessage(w, CT_NEW, NLM_F_MULTI, m!.seq, AF_INET);
          w.raw(4).toString();
          w.buf.writeUInt32LE(0xffff0008, at + 20);
          endMessage(w, at);
          w.buf.writeUInt32LE(sock.portid, at + 12);
        }
        if (chunk === 2) doneMessage(w, m!.seq, sock.portid);
        sock.rx.push(Buffer.from(w.view()));
      }
      return null;
    };
    const c = new CtClient({ binding: fake });
    const all = await c.dump();
    expect(all.map((ct) => ct.mark)).toEqual(Array.from({ length: 30 }, (_, i) => i));
    expect(dumps).toBe(2);
    expect(c.stats.dumpRestarts).toBe(1);
    expect(c.stats.decodeErrors).toBe(2);
  });

  it('a dump abandoned by a throwing callback is drained, so the next dump works', async () => {
    const fake = new FakeBinding();
    fake.onSend = (req, sock) => {
      const [m] = requests(req);
      for (let chunk = 0; chunk < 3; chunk++) {
        const w = new NlWriter(4096);
        for (let i = 0; i < 5; i++) ctMessage(w, CT_NEW, NLM_F_MULTI, m!.seq, sock.portid, tcp(chunk * 5 + i));
        if (chunk === 2) doneMessage(w, m!.seq, sock.portid);
        sock.rx.push(Buffer.from(w.view()));
      }
      return null;
    };
    const c = new CtClient({ binding: fake });
    await expect(c.dumpEach(() => {
      throw new Error('consumer failed');
    })).rejects.toThrow('consumer failed');
    expect(fake.socks[0]!.rx.length).toBe(0);
    expect((await c.dump()).length).toBe(15);
  });

  it('a dump cut short by close() fails at once, without spinning on the closed socket', async () => {
    const fake = new FakeBinding();
    fake.onSend = (req, sock) => {
      const [m] = requests(req);
      const w = new NlWriter(4096);
      for (let i = 0; i < 5; i++) ctMessage(w, CT_NEW, NLM_F_MULTI, m!.seq, sock.portid, tcp(i));
      return Buffer.from(w.view()); // no NLMSG_DONE: the dump is still running
    };
    const c = new CtClient({ binding: fake });
    const sock = (c as unknown as { sock: { drain: (n?: number) => Buffer | null } }).sock;
    const drain = sock.drain.bind(sock);
    let drains = 0;
    sock.drain = (n?: number) => {
      drains++;
      return drain(n);
    };
    const dump = c.dump();
    await new Promise((r) => setTimeout(r, 20));
    c.close();
    await expect(dump).rejects.toThrow(/closed/);
    expect(drains).toBeLessThan(100);
  });

  it('get returns null on ENOENT and the entry otherwise', async () => {
    const fake = new FakeBinding();
    fake.onSend = (req, sock) => {
      const [m] = requests(req);
      const ct = readConntrack(req, m!.start, m!.end);
      const w = new NlWriter(1024);
      if (ct.orig.src === '10.0.0.1') {
        ctMessage(w, CT_NEW, 0, m!.seq, sock.portid, { ...tcp(1), id: 42 });
        errMessage(w, m!.seq, sock.portid, 0, CT_GET);
      } else {
        errMessage(w, m!.seq, sock.portid, ERRNO.ENOENT, CT_GET);
      }
      return Buffer.from(w.view());
    };
    const c = new CtClient({ binding: fake });
    expect((await c.get(tcp(1).orig))?.mark).toBe(1);
    expect(await c.get(tcp(2).orig)).toBeNull();
  });

  it('flush sends a bare CT_DELETE and surfaces a kernel error', async () => {
    const fake = new FakeBinding();
    let errno = 0;
    fake.onSend = (req, sock) => {
      const [m] = requests(req);
      expect(m!.type).toBe(CT_DELETE);
      expect(m!.end - m!.start).toBe(0);
      const w = new NlWriter(128);
      errMessage(w, m!.seq, sock.portid, errno, CT_DELETE);
      return Buffer.from(w.view());
    };
    const c = new CtClient({ binding: fake });
    await c.flush();
    errno = ERRNO.EPERM;
    await expect(c.flush()).rejects.toMatchObject({ code: 'CTSYNC_ERR_NETLINK_REQUEST', errno: ERRNO.EPERM });
  });
});

describe('CtEventListener over a fake binding', () => {
  it('classifies NEW/UPDATE/DESTROY, ignores other subsystems, counts garbage', () => {
    const fake = new FakeBinding();
    const l = new CtEventListener({ binding: fake, bufferSize: 1 << 20 });
    const seen: [EventKind, number][] = [];
    l.on('event', (kind, ct) => seen.push([kind, ct.mark!]));
    l.start();
    const s = fake.socks[0]!;
    expect(s.groups).toBe(0x7);
    const w = new NlWriter(4096);
    ctMessage(w, CT_NEW, NLM_F_CREATE | NLM_F_EXCL, 0, 0, tcp(1));
    ctMessage(w, CT_NEW, 0, 0, 0, tcp(1));
    const at = beginMessage(w, EXP_NEW, 0, 0, AF_INET); // not subscribed to expectations: no listener, still decoded safely
    endMessage(w, at);
    ctMessage(w, CT_DELETE, 0, 0, 0, tcp(1));
    s.cb!(Buffer.from(w.view()), 0);
    expect(seen).toEqual([[EVENT.NEW, 1], [EVENT.UPDATE, 1], [EVENT.DESTROY, 1]]);
    expect(l.stats.decodeErrors).toBe(1); // the empty expectation body
    s.cb!(Buffer.from([1, 2, 3]), 0);
    expect(l.stats.decodeErrors).toBe(2);
    expect(l.stats.events).toBe(3);
  });

  it('tells a direct handler where each read\'s batch of events starts and ends, also when decoding throws', () => {
    const fake = new FakeBinding();
    const calls: string[] = [];
    const l = new CtEventListener({
      binding: fake,
      handler: {
        onEvent: (kind, ct) => {
          calls.push(`event ${kind} ${ct.mark}`);
          if (ct.mark === 9) throw new Error('handler bug');
        },
        onBatchStart: () => calls.push('start'),
        onBatchEnd: () => calls.push('end'),
      },
    });
    l.start();
    const w = new NlWriter(4096);
    ctMessage(w, CT_NEW, NLM_F_CREATE | NLM_F_EXCL, 0, 0, tcp(1));
    ctMessage(w, CT_NEW, NLM_F_CREATE | NLM_F_EXCL, 0, 0, tcp(2));
    fake.socks[0]!.cb!(Buffer.from(w.view()), 0);
    expect(calls).toEqual(['start', `event ${EVENT.NEW} 1`, `event ${EVENT.NEW} 2`, 'end']);
    calls.length = 0;
    fake.socks[0]!.cb!(null, 105); // an overrun without data: no batch
    expect(calls).toEqual([]);
    const w2 = new NlWriter(4096);
    ctMessage(w2, CT_NEW, NLM_F_CREATE | NLM_F_EXCL, 0, 0, tcp(9));
    expect(() => fake.socks[0]!.cb!(Buffer.from(w2.view()), 0)).toThrow('handler bug');
    expect(calls).toEqual(['start', `event ${EVENT.NEW} 9`, 'end']);
  });

  it('decodes only the used part of the addon\'s persistent buffer, and keeps no reference into it', () => {
    const fake = new FakeBinding();
    const l = new CtEventListener({ binding: fake });
    const seen: Conntrack[] = [];
    l.on('event', (_kind, ct) => seen.push(ct));
    l.start();
    const w = new NlWriter(4096);
    ctMessage(w, CT_NEW, NLM_F_CREATE | NLM_F_EXCL, 0, 0, { ...tcp(5), labels: Buffer.from([1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]) });
    const persistent = Buffer.alloc(64 * 1024, 0xee); // garbage after the used part
    const len = w.view().copy(persistent);
    fake.socks[0]!.cb!(persistent, 0, len); // the addon's third argument: the length used
    expect(seen).toHaveLength(1);
    expect(l.stats.decodeErrors).toBe(0);
    persistent.fill(0); // the addon reuses the buffer for the next wakeup
    expect(seen[0]!.mark).toBe(5);
    expect([...seen[0]!.labels!]).toEqual([1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
  });

  it('signals an overrun and grows the buffer up to the maximum', () => {
    const fake = new FakeBinding();
    const l = new CtEventListener({ binding: fake, bufferSize: 1 << 20, maxBufferSize: 3 << 20 });
    const overruns: OverrunInfo[] = [];
    l.on('overrun', (o) => overruns.push(o));
    l.start();
    const s = fake.socks[0]!;
    for (let i = 0; i < 3; i++) s.cb!(null, ERRNO.ENOBUFS);
    expect(overruns.map((o) => o.bufferSize)).toEqual([2 << 20, 3 << 20, 3 << 20]);
    expect(s.sockopts.get(`${SOL_SOCKET}/${SO_RCVBUFFORCE}`)).toBe(3 << 20);
    expect(l.stats.overruns).toBe(3);
  });

  it('reports a fatal socket error as an error event', () => {
    const fake = new FakeBinding();
    const l = new CtEventListener({ binding: fake });
    const errs: Error[] = [];
    l.on('error', (e) => errs.push(e));
    l.start();
    fake.socks[0]!.cb!(null, 9);
    expect(errs[0]).toMatchObject({ code: 'CTSYNC_ERR_NETLINK_NATIVE', errno: 9 });
  });

  it('reliable mode sets NETLINK_BROADCAST_ERROR; NETLINK_NO_ENOBUFS is never set', () => {
    const fake = new FakeBinding();
    new CtEventListener({ binding: fake, reliable: true, expectations: true });
    new CtEventListener({ binding: fake });
    const [a, b] = fake.socks;
    expect(a!.sockopts.get(`${SOL_NETLINK}/${NETLINK_BROADCAST_ERROR}`)).toBe(1);
    expect(b!.sockopts.has(`${SOL_NETLINK}/${NETLINK_BROADCAST_ERROR}`)).toBe(false);
    for (const s of fake.socks) expect(s.sockopts.has(`${SOL_NETLINK}/${NETLINK_NO_ENOBUFS}`)).toBe(false);
    expect(a!.groups).toBe(CT_EVENT_GROUPS | EXP_EVENT_GROUPS);
  });

  it('muteNew leaves only the NEW group and unmuteNew joins it again', () => {
    const fake = new FakeBinding();
    const l = new CtEventListener({ binding: fake });
    const s = fake.socks[0]!;
    const opt = (name: number) => s.sockopts.get(`${SOL_NETLINK}/${name}`);
    expect(l.muteNew()).toBe(true);
    expect(opt(NETLINK_DROP_MEMBERSHIP)).toBe(NFNLGRP_CONNTRACK_NEW);
    expect(l.isNewMuted).toBe(true);
    expect(l.muteNew()).toBe(false);
    l.unmuteNew();
    expect(opt(NETLINK_ADD_MEMBERSHIP)).toBe(NFNLGRP_CONNTRACK_NEW);
    expect(l.isNewMuted).toBe(false);
    // Nothing to mute without the conntrack groups.
    expect(new CtEventListener({ binding: fake, conntrack: false, expectations: true }).muteNew()).toBe(false);
  });

  it('delivers to a direct handler, expectations included', () => {
    const fake = new FakeBinding();
    const got: string[] = [];
    const l = new CtEventListener({
      binding: fake, expectations: true,
      handler: {
        onEvent: (kind, ct) => got.push(`ct ${kind} ${ct.mark}`),
        onExpectation: (kind, exp) => got.push(`exp ${kind} ${exp.tuple.dport}`),
      },
    });
    let emitted = 0;
    l.on('event', () => emitted++);
    l.start();
    const exp: Expectation = {
      master: tcp(1).orig,
      tuple: { l3: AF_INET, src: '10.0.0.1', dst: '10.9.0.1', proto: IPPROTO.TCP, sport: 0, dport: 2121 },
      mask: { l3: AF_INET, src: '255.255.255.255', dst: '255.255.255.255', proto: IPPROTO.TCP, sport: 0, dport: 0xffff },
      timeout: 30,
    };
    const w = new NlWriter(4096);
    ctMessage(w, CT_NEW, NLM_F_CREATE, 0, 0, tcp(5));
    for (const [type, flags] of [[EXP_NEW, NLM_F_CREATE], [EXP_DELETE, 0]] as const) {
      const at = beginMessage(w, type, flags, 0, AF_INET);
      writeExpectationAttrs(w, exp, 'create');
      endMessage(w, at);
    }
    fake.socks[0]!.cb!(Buffer.from(w.view()), 0);
    expect(got).toEqual([`ct ${EVENT.NEW} 5`, `exp ${EVENT.NEW} 2121`, `exp ${EVENT.DESTROY} 2121`]);
    expect(emitted).toBe(0);
    expect(l.stats).toMatchObject({ events: 1, expEvents: 2, decodeErrors: 0 });
  });
});
