// The configurations operators actually have: Debian's shipped examples (read
// from the installed conntrackd package, never copied into the repo), the
// spec's captured-vector config, and one file using every keyword.

import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadConfig, parseConfig } from '../../src/config/index.js';

const EX = '/usr/share/doc/conntrackd/examples';
const fixture = (name: string) => fileURLToPath(new URL(`../fixtures/config/${name}`, import.meta.url));
const haveExamples = existsSync(`${EX}/sync/ftfw/conntrackd.conf`);

// The examples' General/Filter part is shared by ftfw, notrack and alarm.
function expectSharedGeneral(cfg: ReturnType<typeof loadConfig>['config']) {
  expect(cfg.general.hashSize).toBe(32768);
  expect(cfg.general.hashLimit).toBe(131072);
  expect(cfg.general.logFile).toBe('/var/log/conntrackd.log');
  expect(cfg.general.syslog).toBeNull();
  expect(cfg.general.lockFile).toBe('/var/lock/conntrack.lock');
  expect(cfg.general.unix.path).toBe('/var/run/conntrackd.ctl');
  expect(cfg.general.netlinkBufferSize).toBe(2097152);
  expect(cfg.general.netlinkBufferSizeMaxGrowth).toBe(8388608);
  expect(cfg.general.filter?.from).toBe('userspace');
  expect(cfg.general.filter?.protocol).toMatchObject({ policy: 'accept', protocols: [6, 132, 33] });
  expect(cfg.general.filter?.address?.policy).toBe('ignore');
  expect(cfg.general.filter?.address?.ipv4.map((e) => `${e.address}/${e.prefix}`)).toEqual([
    '127.0.0.1/32', '192.168.0.100/32', '192.168.1.100/32', '192.168.0.1/32', '192.168.1.1/32', '192.168.100.100/32',
  ]);
  const link = cfg.sync!.links[0]!;
  expect(cfg.sync!.links).toHaveLength(1);
  expect(link).toMatchObject({
    kind: 'multicast', isDefault: false, ipv4Address: '225.0.0.50', port: 3780, ipv4Interface: '192.168.100.100',
    interface: 'eth2', sndBuf: 1249280, rcvBuf: 1249280, checksum: true,
  });
  expect(cfg.sync!.defaultLink).toBe(0);
}

describe.skipIf(!haveExamples)('Debian conntrackd 1.4.7 examples', () => {
  it('sync/ftfw parses with FTFW defaults', () => {
    const { config, warnings } = loadConfig(`${EX}/sync/ftfw/conntrackd.conf`);
    expect(config.role).toBe('sync');
    expect(config.sync!.mode).toBe('ftfw');
    expect(config.sync!.modeLine).toBeGreaterThan(0);
    expect(config.sync).toMatchObject({
      resendQueueSize: 131072, ackWindowSize: 300, purgeTimeout: 60, disableExternalCache: false,
      startupResync: false, tcpWindowTracking: false, expectationSync: { enabled: false, helpers: null },
    });
    expect(config.sync!.commitTimeout).toBeUndefined();
    expect(config.general.netlinkOverrunResync).toBe(30);
    expect(config.general.eventIterationLimit).toBe(100);
    expectSharedGeneral(config);
    // HashSize is the only keyword there ctsync does not act on.
    expect(warnings.map((w) => w.keyword)).toEqual(['HashSize']);
    const text = readFileSync(`${EX}/sync/ftfw/conntrackd.conf`, 'latin1').split('\n');
    expect(text[warnings[0]!.line - 1]).toMatch(/^\s*HashSize 32768/);
  });

  it('sync/notrack parses', () => {
    const { config } = loadConfig(`${EX}/sync/notrack/conntrackd.conf`);
    expect(config.sync!.mode).toBe('notrack');
    expect(config.sync!.disableInternalCache).toBe(false);
    expectSharedGeneral(config);
  });

  it('sync/alarm parses with its timers', () => {
    const { config } = loadConfig(`${EX}/sync/alarm/conntrackd.conf`);
    expect(config.sync!.mode).toBe('alarm');
    expect(config.sync!.refreshTime).toBe(15);
    expect(config.sync!.cacheTimeout).toBe(180);
    expectSharedGeneral(config);
  });

  it('stats parses as a Stats-mode config', () => {
    const { config, warnings } = loadConfig(`${EX}/stats/conntrackd.conf`);
    expect(config.role).toBe('stats');
    expect(config.sync).toBeNull();
    expect(config.stats).toMatchObject({ logFile: '/var/log/conntrackd-stats.log', syslog: null });
    expect(config.general).toMatchObject({ hashSize: 8192, hashLimit: 65535, netlinkBufferSize: 262142,
      netlinkBufferSizeMaxGrowth: 655355, lockFile: '/var/lock/conntrack.lock' });
    expect(config.general.filter).toMatchObject({ from: 'userspace', protocol: { policy: 'accept', protocols: [6] } });
    expect(warnings.map((w) => w.keyword).sort()).toEqual(['HashSize', 'Stats']);
  });

  it('/etc/conntrackd/conntrackd.conf (Debian default) parses, aliases included', () => {
    const { config, warnings } = loadConfig('/etc/conntrackd/conntrackd.conf');
    expect(config.role).toBe('stats');
    expect(config.general).toMatchObject({
      hashSize: 8192, hashLimit: 65535, syslog: 'daemon', lockFile: '/var/lock/conntrackd.lock',
      unix: { path: '/var/run/conntrackd.sock', backlog: 20 }, netlinkBufferSize: 262142,
      netlinkBufferSizeMaxGrowth: 655355, systemd: true,
    });
    expect(warnings.map((w) => w.keyword).sort()).toEqual(['Backlog', 'HashSize', 'Stats']);
  });
});

// The ftfw example documents every option in comments; switch them on (the
// options, the Options/ExpectationSync/State blocks) and parse the result.
function uncommentOptions(text: string): string {
  const single = /^(ResendQueueSize|CommitTimeout|PurgeTimeout|ACKWindowSize|DisableExternalCache|TCPWindowTracking|Systemd|Syslog|NetlinkOverrunResync|NetlinkEventsReliable|PollSecs|EventIterationLimit) \S+$|^IPv4_address 192\.168\.0\.0\/24$|^IPv6_address ::1$|^(ftp|ras|q\.931|h\.245|sip)$|^ESTABLISHED CLOSED TIME_WAIT CLOSE_WAIT for TCP$/;
  const opener = /^(Options|ExpectationSync|State Accept) \{$/;
  let open = 0;
  return text.split('\n').map((line) => {
    const m = /^(\s*)#\s*(.*?)\s*$/.exec(line);
    if (!m) return line;
    const body = m[2]!;
    if (single.test(body)) return `${m[1]}${body}`;
    if (opener.test(body)) { open++; return `${m[1]}${body}`; }
    if (body === '}' && open > 0) { open--; return `${m[1]}}`; }
    return line;
  }).join('\n');
}

describe.skipIf(!haveExamples)('Debian ftfw example with its commented options enabled', () => {
  it('parses every documented option', () => {
    const text = uncommentOptions(readFileSync(`${EX}/sync/ftfw/conntrackd.conf`, 'latin1'));
    const { config, warnings } = parseConfig(text, 'ftfw-all.conf');
    expect(config.sync).toMatchObject({
      mode: 'ftfw', resendQueueSize: 131072, commitTimeout: 180, purgeTimeout: 60, ackWindowSize: 300,
      disableExternalCache: false, tcpWindowTracking: false,
      expectationSync: { enabled: true, helpers: ['ftp', 'ras', 'q.931', 'h.245', 'sip'] },
    });
    expect(config.general).toMatchObject({ systemd: true, syslog: 'daemon', netlinkOverrunResync: 30,
      netlinkEventsReliable: false, pollSecs: 15, eventIterationLimit: 100 });
    const f = config.general.filter!;
    expect(f.address!.ipv4.at(-1)).toMatchObject({ address: '192.168.0.0', prefix: 24 });
    expect(f.address!.ipv6).toMatchObject([{ address: '::1', prefix: 128 }]);
    expect(f.state).toMatchObject({ policy: 'accept', tcpStates: ['ESTABLISHED', 'CLOSE', 'TIME_WAIT', 'CLOSE_WAIT'] });
    expect(warnings.map((w) => w.keyword).sort()).toEqual(['HashSize', 'PollSecs']);
  });
});

describe('spec vectors config (node A)', () => {
  it('parses with the values the README gives', () => {
    const { config, warnings } = loadConfig(fixture('vectors-node-a.conf'));
    expect(config.sync).toMatchObject({ mode: 'ftfw', resendQueueSize: 131072, purgeTimeout: 5, ackWindowSize: 300,
      disableExternalCache: false });
    expect(config.sync!.links).toEqual([{
      kind: 'udp', isDefault: false, line: 10, ipv4Address: '172.30.1.1', destination: '172.30.1.2', port: 3780,
      interface: 'veth-ab', sndBuf: 1249280, rcvBuf: 1249280, checksum: true,
    }]);
    expect(config.general).toMatchObject({
      systemd: false, hashSize: 8192, hashLimit: 65535, logFile: '/run/ctsync-test/conntrackd.log', syslog: null,
      lockFile: '/run/ctsync-test/conntrackd.lock', unix: { path: '/run/ctsync-test/conntrackd.ctl' },
      netlinkBufferSize: 2097152, netlinkBufferSizeMaxGrowth: 8388608,
    });
    expect(config.general.filter!.address!.ipv4.map((e) => [e.address, e.prefix])).toEqual([
      ['127.0.0.1', 32], ['172.30.1.0', 24],
    ]);
    expect(warnings.map((w) => [w.keyword, w.line])).toEqual([['HashSize', 22]]);
    expect(config.ctsync).toEqual({ metrics: null, ignoreOwnAddresses: false, keyFile: null, tls: null,
      acceptOnlyPeer: true, readyFile: null, notifyFifo: null, peerTimeout: 5, reconcileInterval: 300, sendWindow: 4096, fastPath: true });
  });

  it('the README text itself, <run> replaced, parses', () => {
    const readme = readFileSync('/work/shared/spec/vectors/README.md', 'utf8');
    const m = /## Setup[\s\S]*?```\n([\s\S]*?)```/.exec(readme);
    expect(m).not.toBeNull();
    const { config } = parseConfig(m![1]!.replaceAll('<run>', '/run/x'), 'README.conf');
    expect(config.sync!.links[0]!.interface).toBe('veth-ab');
    expect(config.general.unix.path).toBe('/run/x/conntrackd.ctl');
  });
});

describe('every keyword', () => {
  it('full.conf fills every field', () => {
    const { config, warnings } = loadConfig(fixture('full.conf'));
    const s = config.sync!;
    expect(s).toMatchObject({
      mode: 'ftfw', resendQueueSize: 65536, commitTimeout: 180, purgeTimeout: 30, ackWindowSize: 100,
      disableExternalCache: false, startupResync: true, refreshTime: 10, cacheTimeout: 200,
      tcpWindowTracking: true, expectationSync: { enabled: true, helpers: ['ftp', 'sip', 'ras'] }, defaultLink: 0,
    });
    expect(s.links).toEqual([
      { kind: 'tcp', isDefault: true, line: 14, ipv6Address: 'fd00::1', destination: 'fd00::2', port: 3781,
        interface: 'eth1', sndBuf: 1000, rcvBuf: 2000, checksum: false, errorQueueLength: 64 },
      { kind: 'tcp', isDefault: false, line: 24, ipv4Address: '10.0.0.1', destination: '10.0.0.2', port: 3782,
        interface: 'eth2', checksum: true, errorQueueLength: 128 },
    ]);
    expect(config.general).toMatchObject({
      systemd: true, nice: -20, hashSize: 1024, hashLimit: 4096, logFile: null, syslog: 'local3',
      lockFile: '/var/lock/ct.lock', unix: { path: '/run/ct.ctl', backlog: 20 }, netlinkBufferSize: 1000000,
      netlinkBufferSizeMaxGrowth: 2000000, netlinkOverrunResync: null, netlinkEventsReliable: true, pollSecs: 15,
      eventIterationLimit: 200, scheduler: { type: 'FIFO', priority: 99 },
    });
    expect(config.general.filter).toMatchObject({
      from: 'kernelspace',
      protocol: { policy: 'ignore', protocols: [17, 1, 2] },
      address: { policy: 'accept', ipv4: [{ address: '192.168.0.0', prefix: 16 }],
        ipv6: [{ address: 'fd00::', prefix: 8 }, { address: '::1', prefix: 128 }] },
      state: { policy: 'accept', tcpStates: ['ESTABLISHED', 'CLOSE', 'TIME_WAIT', 'CLOSE_WAIT'] },
    });
    expect(config.helper).toMatchObject({ setup: true, types: [{ name: 'ftp', l3: 'inet', l4: 'tcp', queueNum: 0,
      queueLen: 10240, policies: [{ name: 'ftp', expectMax: 1, expectTimeout: 300 }] }] });
    expect(config.ctsync).toEqual({
      metrics: { address: '::1', port: 9500 }, ignoreOwnAddresses: true, keyFile: null,
      tls: { caFile: '/etc/ctsync/ca.pem', certFile: '/etc/ctsync/cert.pem', keyFile: '/etc/ctsync/key.pem' },
      acceptOnlyPeer: false, readyFile: '/run/ctsync/ready', notifyFifo: null, peerTimeout: 5, reconcileInterval: 300,
      sendWindow: 2048,
      fastPath: false,
    });
    const kw = warnings.map((w) => `${w.keyword}@${w.line}`);
    // Deprecated mode alias, ignored keywords, RefreshTime/CacheTimeout outside ALARM.
    expect(kw).toEqual(['Mode@4', 'Nice@41', 'HashSize@42', 'Backlog@49', 'PollSecs@55',
      'Helper@77', 'RefreshTime@12', 'CacheTimeout@13']);
  });

  it('applies defaults when a section is minimal', () => {
    const { config, warnings } = parseConfig(
      'Sync {\n UDP {\n IPv4_Destination_Address 10.0.0.2\n Port 3780\n Interface eth0\n }\n}\n', 'min.conf');
    expect(config.sync).toMatchObject({ mode: 'ftfw', resendQueueSize: 131072, ackWindowSize: 300,
      purgeTimeout: 60, refreshTime: 60, cacheTimeout: 180 });
    expect(config.general).toMatchObject({ hashSize: 65536, hashLimit: 262144, netlinkOverrunResync: 30,
      eventIterationLimit: 100, lockFile: '/var/lock/conntrackd.lock', logFile: null, syslog: null, filter: null });
    expect(config.sync!.links[0]!.checksum).toBe(true);
    expect(warnings).toEqual([{ file: 'min.conf', line: 1, keyword: 'Mode',
      message: 'no synchronization Mode given in Sync; defaulting to FTFW' }]);
  });
});
