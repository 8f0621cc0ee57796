// CtClient against the real kernel in a private namespace, with conntrack(8)
// as the oracle: dump equals `conntrack -L -o extended,id`, and what the
// client writes is what `conntrack -L` then shows.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AF_INET, AF_INET6, IPPROTO, IPS, TCP_STATE_NAMES, type Conntrack, type Expectation } from '../../src/model/conntrack.js';
import { CtClient } from '../../src/netlink/client.js';
import { isRoot, Lab, waitFor, type Netns } from '../helpers/netns.js';

interface CliFlow {
  family: string;
  proto: number;
  timeout: number;
  state?: string;
  orig: Record<string, string>;
  reply: Record<string, string>;
  flags: Set<string>;
  mark: number;
  use: number;
  id: number;
  zone?: number;
}

/** Parses `conntrack -L -o extended,id` lines. */
function parseList(text: string): CliFlow[] {
  const out: CliFlow[] = [];
  for (const line of text.split('\n')) {
    const t = line.trim().split(/\s+/);
    if (t.length < 6 || (t[0] !== 'ipv4' && t[0] !== 'ipv6')) continue;
    const f: CliFlow = { family: t[0], proto: Number(t[3]), timeout: Number(t[4]), orig: {}, reply: {}, flags: new Set(), mark: 0, use: 0, id: 0 };
    let i = 5;
    if (!t[i]!.includes('=') && !t[i]!.startsWith('[')) f.state = t[i++];
    let dir: Record<string, string> | null = null;
    for (; i < t.length; i++) {
      const tok = t[i]!;
      if (tok.startsWith('[')) {
        f.flags.add(tok.slice(1, -1));
        continue;
      }
      const [k, v] = tok.split('=') as [string, string];
      if (k === 'src') dir = dir === null ? f.orig : f.reply;
      if (k === 'mark') f.mark = Number(v);
      else if (k === 'use') f.use = Number(v);
      else if (k === 'zone') f.zone = Number(v);
      else if (dir) dir[k] = v;
    }
    out.push(f);
  }
  return out;
}

/** The fields conntrack(8) prints for one direction, from our model. */
function cliTuple(t: Conntrack['orig']): Record<string, string> {
  const r: Record<string, string> = { src: t.src, dst: t.dst };
  if (t.sport !== undefined) r.sport = String(t.sport);
  if (t.dport !== undefined) r.dport = String(t.dport);
  if (t.icmpType !== undefined) {
    r.type = String(t.icmpType);
    r.code = String(t.icmpCode);
    r.id = String(t.icmpId);
  }
  return r;
}

function expectSameAsCli(ct: Conntrack, f: CliFlow): void {
  expect(ct.orig.l3).toBe(f.family === 'ipv4' ? AF_INET : AF_INET6);
  expect(ct.orig.proto).toBe(f.proto);
  expect(cliTuple(ct.orig)).toEqual(f.orig);
  expect(cliTuple(ct.reply!)).toEqual(f.reply);
  expect(Math.abs(ct.timeout! - f.timeout)).toBeLessThanOrEqual(2);
  expect(ct.mark ?? 0).toBe(f.mark);
  expect(ct.use).toBe(f.use);
  expect(ct.zone ?? 0).toBe(f.zone ?? 0);
  if (f.state !== undefined) expect(TCP_STATE_NAMES[ct.tcp!.state]).toBe(f.state);
  expect(Boolean(ct.status! & IPS.ASSURED)).toBe(f.flags.has('ASSURED'));
  expect(!(ct.status! & IPS.SEEN_REPLY)).toBe(f.flags.has('UNREPLIED'));
}

/** Entries as conntrack(8) lists them; the entry id is the last id= (ICMP tuples print id= too). */
function cliList(ns: Netns, extra: string[] = []): CliFlow[] {
  const text = ns.run('conntrack', ['-L', '-o', 'extended,id', ...extra], { allowFail: true }).stdout;
  const flows = parseList(text);
  const lines = text.split('\n').filter((l) => l.startsWith('ipv'));
  flows.forEach((f, i) => {
    const m = /id=(\d+)\s*$/.exec(lines[i]!);
    f.id = Number(m![1]);
    // the trailing id= was parsed into the reply tuple for ICMP: restore the tuple id
    const ids = [...lines[i]!.matchAll(/\bid=(\d+)/g)].map((x) => x[1]!);
    if (f.proto === 1 || f.proto === 58) {
      f.orig.id = ids[0]!;
      f.reply.id = ids[1]!;
    } else {
      delete f.reply.id;
    }
  });
  return flows;
}

function count(ns: Netns): number {
  return Number(ns.run('conntrack', ['-C']).stdout.trim());
}

function tcpEntry(i: number, over: Partial<Conntrack> = {}): Conntrack {
  return {
    orig: { l3: AF_INET, src: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, dst: '192.0.2.1', proto: IPPROTO.TCP, sport: 1024 + (i % 50000), dport: 443 },
    status: IPS.SEEN_REPLY | IPS.ASSURED, timeout: 600, tcp: { state: 3 }, ...over,
  };
}

describe.skipIf(!isRoot)('CtClient vs the kernel', () => {
  const lab = new Lab('c');
  let ns: Netns;
  let client: CtClient;

  beforeAll(() => {
    ns = lab.netns('ct');
    client = new CtClient({ netns: ns.path });
  });

  afterAll(async () => {
    client?.close();
    await lab.cleanup();
  });

  it('dump equals `conntrack -L -o extended,id`, field by field (v4/v6, TCP/UDP/ICMP, SNAT, real loopback flows)', async () => {
    const I = (args: string) => ns.run('conntrack', ['-I', ...args.split(' ')]);
    I('-s 10.0.0.1 -d 10.0.0.2 -p tcp --sport 1000 --dport 80 --state ESTABLISHED -t 300 -u SEEN_REPLY,ASSURED -m 7');
    I('-s 10.0.0.1 -d 10.0.0.2 -p udp --sport 53 --dport 5353 -t 100');
    I('-s 10.0.0.1 -d 10.0.0.3 -p icmp --icmp-type 8 --icmp-code 0 --icmp-id 99 -t 30');
    I('-s fd00::1 -d fd00::2 -p tcp --sport 2000 --dport 22 --state SYN_SENT -t 100');
    I('-s fd00::1 -d fd00::2 -p udp --sport 2000 --dport 53 -t 100 -u SEEN_REPLY');
    I('-s fd00::1 -d fd00::3 -p icmpv6 --icmpv6-type 128 --icmpv6-code 0 --icmpv6-id 5 -t 30');
    I('-s 10.0.0.9 -d 8.8.8.8 -p tcp --sport 3000 --dport 443 --state ESTABLISHED -t 300 -u SEEN_REPLY --src-nat 198.51.100.1');
    lab.enableConntrack(ns);
    ns.run('ping', ['-c', '1', '-W', '1', '127.0.0.1']);
    ns.run('ping', ['-6', '-c', '1', '-W', '1', '::1']);
    const cli = cliList(ns);
    expect(cli.length).toBeGreaterThanOrEqual(9);
    const dumped = await client.dump();
    expect(dumped.length).toBe(cli.length);
    const byId = new Map(dumped.map((c) => [c.id, c]));
    for (const f of cli) {
      const ct = byId.get(f.id);
      expect(ct, `entry id ${f.id}`).toBeDefined();
      expectSameAsCli(ct!, f);
    }
    const snat = dumped.find((c) => c.orig.src === '10.0.0.9')!;
    expect(snat.reply!.dst).toBe('198.51.100.1');
    // family filter
    expect((await client.dump(AF_INET6)).every((c) => c.orig.l3 === AF_INET6)).toBe(true);
    let streamed = 0;
    const r = await client.dumpEach(() => streamed++);
    expect(r).toEqual({ count: cli.length, interrupted: false });
    expect(streamed).toBe(cli.length);
  });

  it('get finds an entry by tuple and returns null for an absent one', async () => {
    const ct = await client.get({ l3: AF_INET, src: '10.0.0.1', dst: '10.0.0.2', proto: IPPROTO.TCP, sport: 1000, dport: 80 });
    expect(ct?.mark).toBe(7);
    expect(await client.get({ l3: AF_INET, src: '10.0.0.1', dst: '10.0.0.2', proto: IPPROTO.TCP, sport: 1001, dport: 80 })).toBeNull();
  });

  it('flush empties the table', async () => {
    await client.flush();
    expect(count(ns)).toBe(0);
  });

  it('create / update / updateTimeout / remove show up in `conntrack -L`', async () => {
    const v4 = tcpEntry(1, { mark: 11, snatAddr: '198.51.100.7' });
    const v6: Conntrack = { orig: { l3: AF_INET6, src: 'fd00::10', dst: 'fd00::20', proto: IPPROTO.UDP, sport: 4000, dport: 53 }, status: IPS.SEEN_REPLY, timeout: 200, mark: 12 };
    const icmp: Conntrack = { orig: { l3: AF_INET, src: '10.0.0.5', dst: '10.0.0.6', proto: IPPROTO.ICMP, icmpType: 8, icmpCode: 0, icmpId: 77 }, timeout: 50 };
    const res = await client.create([v4, v6, icmp]);
    expect(res).toEqual({ ok: 3, failed: [] });
    let cli = cliList(ns);
    expect(cli.length).toBe(3);
    const f4 = cli.find((f) => f.orig.src === '10.0.0.1')!;
    expect(f4).toMatchObject({ state: 'ESTABLISHED', mark: 11 });
    expect(f4.reply).toEqual({ src: '192.0.2.1', dst: '198.51.100.7', sport: '443', dport: '1025' });
    expect(f4.flags.has('ASSURED')).toBe(true);
    expect(f4.timeout).toBeGreaterThan(590);
    const f6 = cli.find((f) => f.family === 'ipv6')!;
    expect(f6).toMatchObject({ mark: 12, orig: { src: 'fd00::10', dst: 'fd00::20', sport: '4000', dport: '53' } });
    const fi = cli.find((f) => f.proto === 1)!;
    expect(fi.orig).toEqual({ src: '10.0.0.5', dst: '10.0.0.6', type: '8', code: '0', id: '77' });

    // creating again: EEXIST per entry; createOrReplace recreates
    const again = await client.create([v4, v6]);
    expect(again.failed.map((f) => f.errno)).toEqual([17, 17]);
    expect(await client.createOrReplace([v4, { ...v6, mark: 13 }])).toEqual({ ok: 2, failed: [] });
    expect(cliList(ns).find((f) => f.family === 'ipv6')!.mark).toBe(13);

    expect(await client.update([{ orig: v4.orig, mark: 99, timeout: 1000 }])).toEqual({ ok: 1, failed: [] });
    cli = cliList(ns);
    expect(cli.find((f) => f.orig.src === '10.0.0.1')).toMatchObject({ mark: 99 });
    expect(cli.find((f) => f.orig.src === '10.0.0.1')!.timeout).toBeGreaterThan(990);
    await client.updateTimeout(icmp, 400);
    expect(cliList(ns).find((f) => f.proto === 1)!.timeout).toBeGreaterThan(390);

    // update of an absent entry: ENOENT, input index kept
    const upd = await client.update([{ orig: v4.orig, mark: 1 }, { orig: { ...v4.orig, sport: 9 }, mark: 1 }]);
    expect(upd.failed).toMatchObject([{ index: 1, errno: 2 }]);

    expect(await client.remove([v6, icmp])).toEqual({ ok: 2, failed: [] });
    cli = cliList(ns);
    expect(cli.map((f) => f.orig.src)).toEqual(['10.0.0.1']);
    await client.flush(AF_INET6);
    expect(count(ns)).toBe(1);
    await client.flush();
    expect(count(ns)).toBe(0);
  });

  it('creates 100k entries in batches', async () => {
    const cts = Array.from({ length: 100_000 }, (_, i) => tcpEntry(i));
    const t0 = performance.now();
    const res = await client.create(cts);
    const createMs = performance.now() - t0;
    expect(res.failed.slice(0, 3)).toEqual([]);
    expect(res.ok).toBe(100_000);
    expect(count(ns)).toBe(100_000);
    const t1 = performance.now();
    let n = 0;
    const d = await client.dumpEach(() => n++);
    const dumpMs = performance.now() - t1;
    expect(d.count).toBe(100_000);
    expect(n).toBe(100_000);
    console.log(`100k create ${createMs.toFixed(0)} ms (${(100_000 / createMs * 1000).toFixed(0)}/s), dump ${dumpMs.toFixed(0)} ms`);
    await client.flush();
    expect(count(ns)).toBe(0);
  });
});

describe.skipIf(!isRoot)('expectations vs the kernel (FTP helper)', () => {
  const lab = new Lab('x');
  let ns: Netns;
  let client: CtClient;

  beforeAll(() => {
    ns = lab.netns('ftp');
    ns.run('nft', ['-f', '-'], {
      input: `table inet ftph {
  ct helper ftp-std {
    type "ftp" protocol tcp;
  }
  chain out {
    type filter hook output priority 0;
    tcp dport 21 ct helper set "ftp-std";
  }
}
`,
    });
    client = new CtClient({ netns: ns.path });
  });

  afterAll(async () => {
    client?.close();
    await lab.cleanup();
  });

  it('dumps the expectation the FTP helper created, deletes it, re-creates it and flushes', async () => {
    // A fake FTP server: banner first (the helper parses only packets that start after a newline it saw),
    // then a 227 reply, which the helper turns into an expectation.
    const server = `const s=require('net').createServer((c)=>{c.write('220 ready\\r\\n');c.once('data',()=>c.write('227 Entering Passive Mode (127,0,0,1,100,1)\\r\\n'))});s.listen(21,'127.0.0.1');setTimeout(()=>process.exit(0),60000)`;
    lab.spawn(ns, process.execPath, ['-e', server]);
    await waitFor(() => ns.run('ss', ['-ltn'], { allowFail: true }).stdout.includes('127.0.0.1:21'), 'ftp listener');
    lab.spawn(ns, 'sh', ['-c', '(sleep 0.3; printf "PASV\\r\\n"; sleep 60) | socat - TCP4:127.0.0.1:21']);
    const exps = (await waitFor(async () => {
      const e = await client.dumpExpectations();
      return e.length > 0 ? e : null;
    }, 'FTP expectation', 10_000))!;
    expect(exps.length).toBe(1);
    const exp = exps[0]!;
    const cliText = ns.run('conntrack', ['-L', 'expect']).stdout;
    expect(cliText).toMatch(/dport=25601/);
    expect(exp.tuple).toMatchObject({ l3: AF_INET, src: '127.0.0.1', dst: '127.0.0.1', proto: IPPROTO.TCP, dport: 25601 });
    expect(exp.master).toMatchObject({ proto: IPPROTO.TCP, dport: 21 });
    expect(exp.helper).toBe('ftp');
    expect(Math.abs(Number(/^(\d+) proto=/m.exec(cliText)![1]) - exp.timeout!)).toBeLessThanOrEqual(2);

    expect(await client.removeExpectations([exp])).toEqual({ ok: 1, failed: [] });
    expect(await client.dumpExpectations()).toEqual([]);

    const res = await client.createExpectations([{ master: exp.master, tuple: exp.tuple, mask: exp.mask, timeout: 100, helper: 'ftp' } as Expectation]);
    expect(res).toEqual({ ok: 1, failed: [] });
    const back = await client.dumpExpectations();
    expect(back.length).toBe(1);
    expect(back[0]!.tuple).toEqual(exp.tuple);
    expect(back[0]!.timeout).toBeGreaterThan(95);
    expect(ns.run('conntrack', ['-L', 'expect']).stdout).toMatch(/dport=25601/);

    await client.flushExpectations();
    expect(await client.dumpExpectations()).toEqual([]);
  });
});
