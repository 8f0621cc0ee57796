#!/usr/bin/env node
// ctsync demo: an HA firewall pair under keepalived, in network namespaces on
// this machine, keeping a TCP connection alive through a failover.
//
//   sudo npm run demo        (= npm run build && node scripts/demo.mjs)
//
// Builds client — fw1/fw2 — server (see scripts/lib/topology.mjs), starts
// ctsync and keepalived on both firewalls, shows flows made through fw1
// arriving in fw2's external cache, fails fw1 and shows the TCP stream
// carrying on through fw2. Everything it creates (namespaces, processes,
// temp files) is removed at the end, on Ctrl-C and on error. Needs root,
// keepalived, conntrack, iptables and iproute2. Takes about 20 s.
import { existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { ADDR, HaTopology, REPO_ROOT, sleep, waitFor } from './lib/topology.mjs';

const started = Date.now();
const bold = (s) => (process.stdout.isTTY ? `\x1b[1m${s}\x1b[0m` : s);
const dim = (s) => (process.stdout.isTTY ? `\x1b[2m${s}\x1b[0m` : s);
const step = (s) => process.stdout.write(`\n${bold(`== ${s}`)}\n`);
const say = (s) => process.stdout.write(`   ${s}\n`);
const show = (lines) => { for (const l of lines) process.stdout.write(`     ${dim(l)}\n`); };

function preflight() {
  if (process.getuid?.() !== 0) {
    process.stderr.write('demo: needs root (network namespaces, iptables, keepalived): run `sudo npm run demo`\n');
    process.exit(1);
  }
  const missing = ['ip', 'keepalived', 'conntrack', 'iptables-restore', 'sysctl']
    .filter((c) => spawnSync('sh', ['-c', `command -v ${c}`]).status !== 0);
  if (missing.length) {
    process.stderr.write(`demo: missing tools: ${missing.join(', ')}\n`);
    process.exit(1);
  }
  if (!existsSync(join(REPO_ROOT, 'dist', 'src', 'cli', 'main.js'))) {
    process.stderr.write('demo: ctsync is not built: run `npm run build` first (sudo npm run demo does)\n');
    process.exit(1);
  }
}

preflight();
const topo = new HaTopology({ tag: 'demo', log: say });
let cleaning = null;
function cleanup() {
  cleaning ??= topo.cleanup().then(() => topo.removeDir());
  return cleaning;
}
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    process.stdout.write(`\n${sig}: cleaning up…\n`);
    cleanup().finally(() => process.exit(130));
  });
}
// Hard stop: never leave the demo running for more than a minute.
const watchdog = setTimeout(() => {
  process.stderr.write('demo: taking too long, giving up\n');
  cleanup().finally(() => process.exit(1));
}, 55_000);
watchdog.unref();

const ms = (t, t0) => `${String(t - t0).padStart(5)} ms`;

async function main() {
  step('1. Building the network (namespaces on this machine)');
  say(`client ${ADDR.client} ── outside LAN (VIP ${ADDR.outVip}) ── fw1 / fw2 ── inside LAN (VIP ${ADDR.inVip}) ── server ${ADDR.server}`);
  say('fw1 and fw2 also share a dedicated sync link (172.30.1.1 ↔ 172.30.1.2) for ctsync.');
  say(`Each firewall: stateful iptables (drops INVALID, strict TCP tracking), port forward ${ADDR.outVip}:${ADDR.dnatPort} → ${ADDR.server}:${ADDR.serverPort}.`);
  await topo.start();
  say(`fw1 won the VRRP election: it holds both VIPs and forwards all traffic. fw2 is BACKUP.`);

  step('2. Flows through fw1 are replicated to fw2');
  say(`The client opens a long-lived TCP stream to ${ADDR.outVip}:${ADDR.dnatPort} (DNAT to the server) and pings the server.`);
  const stream = await topo.startStream();
  topo.exec(topo.ns.client, 'ping', ['-c', '3', '-i', '0.2', '-W', '1', ADDR.server], { allowFail: true });
  const sport = /:(\d+)$/.exec(String(stream.sendEvents.find((e) => e.ev === 'connected')?.local))?.[1];
  const ours = (text) => text.split('\n').filter((l) => l.includes(ADDR.client));
  await waitFor(() => ours(topo.ctsync(1, ['-e'], true).stdout).some((l) => l.includes(`sport=${sport} `)), 'the stream in fw2 external cache', 10_000);
  say(`fw1's kernel conntrack table (conntrack -L):`);
  show(ours(topo.exec(topo.ns.fw[0], 'conntrack', ['-L'], { allowFail: true }).stdout));
  say(`fw2's external cache, received from fw1 over the sync link (ctsync -e on fw2):`);
  show(ours(topo.ctsync(1, ['-e'], true).stdout));
  say(`fw2's own kernel table has none of them yet: they are committed only if fw2 takes over.`);
  await sleep(800);
  const before = stream.status();
  say(`The stream has delivered ${before.bytes} bytes so far, checked byte by byte at the server.`);

  step('3. fw1 fails (its LAN links go down)');
  const t0 = Date.now();
  topo.failLinks(0);
  await waitFor(() => topo.notifyEvent(1, /MASTER: end/, t0), 'fw2 to take over', 15_000, 20);
  await waitFor(() => (stream.status()?.lastReadAt ?? 0) > t0 + 50, 'the stream to resume', 10_000, 20)
    .catch(() => null);
  await sleep(1000);
  const fault = topo.notifyEvent(0, /FAULT: begin/, t0);
  const begin = topo.notifyEvent(1, /MASTER: begin/, t0);
  const end = topo.notifyEvent(1, /MASTER: end/, t0);
  const committed = topo.notifyEvent(1, /committed \d+ entries/, t0);
  const st = stream.status();
  const gap = st.gaps.filter((g) => g.end >= t0).reduce((m, g) => Math.max(m, g.ms), 0);
  const resumed = st.gaps.find((g) => g.end >= t0);
  const what = committed ? ` (${committed.text.replace(/^.*ctsync: /, '')})` : '';
  const timeline = [
    fault && [fault.t, 'fw1 keepalived: FAULT → ctsync notify fault (flush its own kernel table later)'],
    begin && [begin.t, 'fw2 keepalived: MASTER, the VIPs move to fw2 → ctsync notify master'],
    end && [end.t, `fw2 ctsync notify master finished: commit${what}, flush, resync, bulk to fw1`],
    resumed && [resumed.end, "the server receives the stream's next bytes (TCP retransmission through fw2)"],
  ].filter(Boolean).sort((x, y) => x[0] - y[0]);
  say('Timeline (from the moment fw1 failed):');
  for (const [t, text] of timeline) say(`${ms(t, t0)}  ${text}`);
  say(dim('(the commit is the first step of notify master, so the stream may resume before the script ends)'));
  say(`The stream stalled for ${gap || st.maxGapMs} ms and carried on: ${stream.error() ? `ERROR ${stream.error().code}` : 'no reset'}.`);
  say(`fw2's kernel table now holds the committed connection (with its DNAT):`);
  show(topo.exec(topo.ns.fw[1], 'conntrack', ['-L', '-p', 'tcp', '--orig-port-src', String(sport)], { allowFail: true }).stdout.split('\n').filter(Boolean));

  step('4. Closing the stream');
  const { sent, end: fin } = await stream.finish();
  if (fin && fin.ev === 'end' && fin.ok && fin.bytes === sent.bytes) {
    say(`All ${fin.bytes} bytes arrived, in order, across the failover (largest gap between reads: ${fin.maxGapMs} ms).`);
  } else {
    say(`Stream check FAILED: sent ${sent.bytes}, received ${fin?.bytes ?? '?'}${fin && !fin.ok ? `, first wrong byte at ${fin.firstBad}` : ''}.`);
    process.exitCode = 1;
  }
}

try {
  await main();
} catch (e) {
  process.stderr.write(`\ndemo failed: ${e?.stack ?? e}\n`);
  process.exitCode = 1;
} finally {
  step('5. Cleaning up (namespaces, keepalived, ctsync, temp files)');
  await cleanup();
  clearTimeout(watchdog);
  say(`done in ${((Date.now() - started) / 1000).toFixed(1)} s.`);
}
