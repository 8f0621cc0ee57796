// A long-lived TCP counter stream for failover tests and the demo.
//
//   node stream.mjs recv <bindAddr> <port>
//   node stream.mjs send <host> <port> [bytesPerTick=4] [tickMs=10]
//
// The sender writes the stream uint32BE(0), uint32BE(1), … a few bytes per
// tick. The receiver checks every byte in order and records the gaps between
// reads. Both print one JSON object per line on stdout:
//   recv: {"ev":"listening"} {"ev":"accepted"} {"ev":"status",…} every 100 ms,
//         {"ev":"end",…} on FIN, {"ev":"error","code":…} on a reset.
//   send: {"ev":"connected"} {"ev":"sent","bytes":N} on SIGTERM (after a clean
//         FIN), {"ev":"error","code":…} on a reset or timeout.
// A "status"/"end" object: bytes, ok (every byte as expected so far),
// firstBad (offset of the first wrong byte or null), maxGapMs, gaps (every
// gap ≥ 150 ms between reads: {start, end, ms}, epoch ms), lastReadAt.
//
// Small writes with Nagle on keep the stream "thin" (< 4 segments in flight),
// which is what lets net.ipv4.tcp_thin_linear_timeouts keep the retransmission
// timer linear during an outage (see topology.mjs).
import net from 'node:net';

const [mode, host, portStr, a4, a5] = process.argv.slice(2);
const port = Number(portStr);
const out = (o) => process.stdout.write(`${JSON.stringify({ t: Date.now(), ...o })}\n`);

function expectedByte(offset) {
  const counter = Math.floor(offset / 4);
  return (counter >>> (8 * (3 - (offset % 4)))) & 0xff;
}

if (mode === 'recv') {
  const server = net.createServer((s) => {
    out({ ev: 'accepted', from: s.remoteAddress });
    server.close();
    let bytes = 0;
    let firstBad = null;
    let last = Date.now();
    let maxGapMs = 0;
    const gaps = [];
    const status = (ev) => out({ ev, bytes, ok: firstBad === null, firstBad, maxGapMs, gaps, lastReadAt: last });
    s.on('data', (buf) => {
      const now = Date.now();
      const gap = now - last;
      if (gap > maxGapMs) maxGapMs = gap;
      if (gap >= 150) gaps.push({ start: last, end: now, ms: gap });
      last = now;
      if (firstBad === null) {
        for (let i = 0; i < buf.length; i++) {
          if (buf[i] !== expectedByte(bytes + i)) { firstBad = bytes + i; break; }
        }
      }
      bytes += buf.length;
    });
    const timer = setInterval(() => status('status'), 100);
    s.on('end', () => { clearInterval(timer); status('end'); s.end(); setTimeout(() => process.exit(0), 50); });
    s.on('error', (e) => { clearInterval(timer); out({ ev: 'error', code: e.code ?? e.message }); status('status'); process.exit(2); });
  });
  server.listen(port, host, () => out({ ev: 'listening' }));
  process.on('SIGTERM', () => process.exit(0));
} else if (mode === 'send') {
  const per = Math.max(1, Number(a4 ?? 4));
  const tickMs = Number(a5 ?? 10);
  let offset = 0;
  let timer = null;
  const s = net.connect({ host, port }, () => {
    out({ ev: 'connected', local: `${s.localAddress}:${s.localPort}` });
    timer = setInterval(() => {
      const b = Buffer.alloc(per);
      for (let i = 0; i < per; i++) b[i] = expectedByte(offset + i);
      offset += per;
      s.write(b);
    }, tickMs);
  });
  s.setNoDelay(false);
  s.on('error', (e) => { if (timer) clearInterval(timer); out({ ev: 'error', code: e.code ?? e.message, sent: offset }); process.exit(2); });
  process.on('SIGTERM', () => {
    if (timer) clearInterval(timer);
    s.end(() => {});
    s.on('close', () => { out({ ev: 'sent', bytes: offset }); process.exit(0); });
    // The peer may never acknowledge the FIN (negative control): give up after a while.
    setTimeout(() => { out({ ev: 'sent', bytes: offset, unfinished: true }); process.exit(3); }, 8000).unref();
  });
} else {
  process.stderr.write('usage: stream.mjs recv <addr> <port> | send <host> <port> [bytesPerTick] [tickMs]\n');
  process.exit(1);
}
