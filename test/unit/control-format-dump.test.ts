import { describe, expect, it } from 'vitest';
import fs from 'node:fs';
import { AF_INET, AF_INET6, IPS, type Conntrack, type Tuple } from '../../src/model/conntrack.js';
import { formatConntrackPlain, formatConntrackXml, formatExpectPlain, formatExpectXml } from '../../src/control/format/dump.js';

const OUT = '/work/shared/spec/vectors/outputs';

/** Reply lines of a golden dump: without the "$ …" line, "... omitted ..." markers and "[exit status]". */
function goldenLines(name: string): string[] {
  const lines = fs.readFileSync(`${OUT}/${name}`, 'utf8').split('\n');
  expect(lines[0]!.startsWith('$ conntrackd')).toBe(true);
  return lines.slice(1).filter((l) => l !== '' && !l.startsWith('[exit status') && !/^\.\.\. \(\d+ further lines omitted\) \.\.\.$/.test(l));
}

/** Test-only reader of the XML layout, so the golden objects come from the real capture, not from our formatter. */
function fromXml(line: string): Conntrack {
  const metas = [...line.matchAll(/<meta direction="(\w+)">(.*?)<\/meta>/g)].map((m) => [m[1], m[2]] as const);
  const tuple = (body: string): Tuple | undefined => {
    const l3 = Number(/<layer3 protonum="(\d+)"/.exec(body)![1]);
    if (l3 === 0) return undefined;
    const t: Tuple = {
      l3: l3 as typeof AF_INET | typeof AF_INET6,
      src: /<src>(.*?)<\/src>/.exec(body)![1]!,
      dst: /<dst>(.*?)<\/dst>/.exec(body)![1]!,
      proto: Number(/<layer4 protonum="(\d+)"/.exec(body)![1]),
    };
    const sp = /<sport>(\d+)<\/sport>/.exec(body);
    const dp = /<dport>(\d+)<\/dport>/.exec(body);
    if (sp) t.sport = Number(sp[1]);
    if (dp) t.dport = Number(dp[1]);
    return t;
  };
  const get = (dir: string): string => metas.find(([d]) => d === dir)?.[1] ?? '';
  const ct: Conntrack = { orig: tuple(get('original'))! };
  const reply = tuple(get('reply'));
  if (reply) ct.reply = reply;
  const ind = get('independent');
  const state = /<state>(\w+)<\/state>/.exec(ind);
  if (state) ct.tcp = { state: ['NONE', 'SYN_SENT', 'SYN_RECV', 'ESTABLISHED'].indexOf(state[1]!) };
  const mark = /<mark>(\d+)<\/mark>/.exec(ind);
  if (mark) ct.mark = Number(mark[1]);
  const id = /<id>(\d+)<\/id>/.exec(ind);
  if (id) ct.id = Number(id[1]);
  ct.status = (ind.includes('<unreplied/>') ? 0 : IPS.SEEN_REPLY) | (ind.includes('<assured/>') ? IPS.ASSURED : 0) | IPS.CONFIRMED;
  // Fields the kernel/wire also carry but the dump leaves out must not change the output.
  ct.timeout = 120;
  if (ct.reply) ct.use = 1;
  return ct;
}

const key = (t: Tuple): string => `${t.src}|${t.dst}|${t.sport}|${t.dport}|${t.proto}`;
const plainKey = (line: string): string => {
  const m = /^(\w+)\s+(\d+) .*?src=(\S+) dst=(\S+) sport=(\d+) dport=(\d+)/.exec(line)!;
  return `${m[3]}|${m[4]}|${m[5]}|${m[6]}|${m[2]}`;
};

describe('-i/-e dumps: golden files, byte for byte', () => {
  for (const node of ['node-a', 'node-b']) {
    for (const cache of ['internal', 'external']) {
      it(`${node} ${cache} XML`, () => {
        const lines = goldenLines(`${node}.dump-${cache}-xml.txt`);
        expect(lines.length).toBeGreaterThan(2);
        for (const line of lines) {
          const ct = fromXml(line);
          expect(formatConntrackXml(ct, { hasReply: cache === 'internal' })).toBe(`${line}\n`);
          expect(formatConntrackXml(ct)).toBe(`${line}\n`);
        }
      });

      it(`${node} ${cache} plain`, () => {
        const objects = new Map(goldenLines(`${node}.dump-${cache}-xml.txt`).map((l) => {
          const ct = fromXml(l);
          return [key(ct.orig), ct] as const;
        }));
        const lines = goldenLines(`${node}.dump-${cache}.txt`);
        let matched = 0;
        for (const line of lines) {
          const ct = objects.get(plainKey(line));
          if (!ct) continue; // the captures are truncated differently; compare what both show
          matched++;
          const since = Number(/\[active since (\d+)s\]$/.exec(line)![1]);
          expect(formatConntrackPlain(ct, since, { hasReply: cache === 'internal' })).toBe(`${line}\n`);
        }
        expect(matched).toBeGreaterThanOrEqual(3);
      });
    }
  }
});

describe('-i/-e dumps: spec §7.9 examples and other protocols', () => {
  const tcpOrig: Tuple = { l3: AF_INET, src: '10.99.0.2', dst: '10.99.0.1', proto: 6, sport: 40000, dport: 80 };
  const tcpReply: Tuple = { l3: AF_INET, src: '10.99.0.1', dst: '10.99.0.2', proto: 6, sport: 80, dport: 40000 };
  it('internal TCP, unreplied yet assured, with mark', () => {
    const ct: Conntrack = { orig: tcpOrig, reply: tcpReply, status: IPS.ASSURED, tcp: { state: 3 }, mark: 9 };
    expect(formatConntrackPlain(ct, 63)).toBe(
      'tcp      6 ESTABLISHED src=10.99.0.2 dst=10.99.0.1 sport=40000 dport=80 [UNREPLIED] src=10.99.0.1 dst=10.99.0.2 sport=80 dport=40000 [ASSURED] mark=9 [active since 63s]\n');
    expect(formatConntrackPlain(ct, 24, { hasReply: false })).toBe(
      'tcp      6 ESTABLISHED src=10.99.0.2 dst=10.99.0.1 sport=40000 dport=80 [UNREPLIED] [ASSURED] mark=9 [active since 24s]\n');
  });
  it('external UDP with zone, ICMP', () => {
    expect(formatConntrackPlain({ orig: { l3: AF_INET, src: '10.99.0.2', dst: '10.99.0.1', proto: 17, sport: 5000, dport: 53 }, status: 0, mark: 0, zone: 5 }, 13)).toBe(
      'udp      17 src=10.99.0.2 dst=10.99.0.1 sport=5000 dport=53 [UNREPLIED] mark=0 zone=5 [active since 13s]\n');
    expect(formatConntrackPlain({ orig: { l3: AF_INET, src: '10.99.0.2', dst: '10.99.0.1', proto: 1, icmpType: 8, icmpCode: 0, icmpId: 5550 } }, 1)).toBe(
      'icmp     1 src=10.99.0.2 dst=10.99.0.1 type=8 code=0 id=5550 [active since 1s]\n');
  });
  it('counters, offload, helper, GRE, unknown protocol', () => {
    const ct: Conntrack = {
      orig: tcpOrig, reply: tcpReply, status: IPS.SEEN_REPLY | IPS.ASSURED | IPS.OFFLOAD, tcp: { state: 3 },
      countersOrig: { packets: 3n, bytes: 180n }, countersReply: { packets: 2n, bytes: 120n }, mark: 0, helper: 'ftp',
    };
    expect(formatConntrackPlain(ct, 5)).toBe(
      'tcp      6 ESTABLISHED src=10.99.0.2 dst=10.99.0.1 sport=40000 dport=80 packets=3 bytes=180 src=10.99.0.1 dst=10.99.0.2 sport=80 dport=40000 packets=2 bytes=120 [OFFLOAD] mark=0 helper=ftp [active since 5s]\n');
    expect(formatConntrackXml(ct)).toBe(
      '<flow><meta direction="original"><layer3 protonum="2" protoname="ipv4"><src>10.99.0.2</src><dst>10.99.0.1</dst></layer3><layer4 protonum="6" protoname="tcp"><sport>40000</sport><dport>80</dport></layer4><counters><packets>3</packets><bytes>180</bytes></counters></meta>' +
      '<meta direction="reply"><layer3 protonum="2" protoname="ipv4"><src>10.99.0.1</src><dst>10.99.0.2</dst></layer3><layer4 protonum="6" protoname="tcp"><sport>80</sport><dport>40000</dport></layer4><counters><packets>2</packets><bytes>120</bytes></counters></meta>' +
      '<meta direction="independent"><state>ESTABLISHED</state><mark>0</mark><assured/></meta><helper>ftp</helper></flow>\n');
    expect(formatConntrackPlain({ orig: { l3: AF_INET, src: '1.1.1.1', dst: '2.2.2.2', proto: 47, greKeySrc: 0x10, greKeyDst: 0xab } }, 0)).toBe(
      'gre      47 src=1.1.1.1 dst=2.2.2.2 srckey=0x10 dstkey=0xab [active since 0s]\n');
    expect(formatConntrackPlain({ orig: { l3: AF_INET6, src: 'fd00::1', dst: 'fd00::2', proto: 2 } }, 0)).toBe(
      'unknown  2 src=fd00::1 dst=fd00::2 [active since 0s]\n');
    expect(formatConntrackXml({ orig: { l3: AF_INET, src: '1.1.1.1', dst: '2.2.2.2', proto: 1, icmpType: 8 } })).toBe(
      '<flow><meta direction="original"><layer3 protonum="2" protoname="ipv4"><src>1.1.1.1</src><dst>2.2.2.2</dst></layer3><layer4 protonum="1" protoname="icmp"></layer4></meta>' +
      '<meta direction="reply"><layer3 protonum="0" protoname="unknown"><src></src><dst></dst></layer3><layer4 protonum="0" protoname="unknown"></layer4></meta></flow>\n');
  });
});

describe('-i expect / -e expect plain', () => {
  it('renders an FTP expectation as conntrack -L expect does, minus the timeout', () => {
    const exp = {
      master: { l3: AF_INET, src: '192.168.1.2', dst: '192.168.1.1', proto: 6, sport: 36390, dport: 21 } as Tuple,
      tuple: { l3: AF_INET, src: '192.168.1.1', dst: '192.168.1.2', proto: 6, sport: 0, dport: 41895 } as Tuple,
      mask: { l3: AF_INET, src: '255.255.255.255', dst: '255.255.255.255', proto: 6, sport: 0, dport: 65535 } as Tuple,
      timeout: 300, flags: 0, class: 0, helper: 'ftp',
    };
    expect(formatExpectPlain(exp, 3)).toBe(
      'proto=6 src=192.168.1.1 dst=192.168.1.2 sport=0 dport=41895 mask-src=255.255.255.255 mask-dst=255.255.255.255 sport=0 dport=65535 ' +
      'master-src=192.168.1.2 master-dst=192.168.1.1 sport=36390 dport=21 class=0 helper=ftp [active since 3s]\n');
    expect(formatExpectPlain({ ...exp, flags: 0x3, class: undefined, helper: undefined, zone: 4 }, 0)).toBe(
      'proto=6 src=192.168.1.1 dst=192.168.1.2 sport=0 dport=41895 mask-src=255.255.255.255 mask-dst=255.255.255.255 sport=0 dport=65535 ' +
      'master-src=192.168.1.2 master-dst=192.168.1.1 sport=36390 dport=21 zone=4 PERMANENT,INACTIVE [active since 0s]\n');
  });
  it('XML layout', () => {
    const exp = {
      master: { l3: AF_INET, src: '192.168.0.2', dst: '192.168.1.2', proto: 6, sport: 36390, dport: 21 } as Tuple,
      tuple: { l3: AF_INET, src: '192.168.0.2', dst: '192.168.1.2', proto: 6, sport: 0, dport: 41739 } as Tuple,
      mask: { l3: AF_INET, src: '255.255.255.255', dst: '255.255.255.255', proto: 6, sport: 0, dport: 65535 } as Tuple,
      timeout: 300, flags: 1, helper: 'ftp', zone: 0,
    };
    expect(formatExpectXml(exp)).toBe('<flow><layer3 protonum="2" protoname="ipv4"><expected><src>192.168.0.2</src><dst>192.168.1.2</dst></expected>' +
      '<mask><src>255.255.255.255</src><dst>255.255.255.255</dst></mask><master><src>192.168.0.2</src><dst>192.168.1.2</dst></master></layer3>' +
      '<layer4 protonum="6" protoname="tcp"><expected><sport>0</sport><dport>41739</dport></expected><mask><sport>0</sport><dport>65535</dport></mask>' +
      '<master><sport>36390</sport><dport>21</dport></master></layer4><meta><helper-name>ftp</helper-name><zone>0</zone><permanent/></meta></flow>\n');
  });
});
