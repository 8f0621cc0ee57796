// The installed conntrackd 1.4.7 binary, run in client mode against a
// ControlServer, is the oracle for parseArgs: for each command line, the code
// conntrackd sends (or its refusal) must be what parseArgs computes. Skipped
// where conntrackd is not installed. Only client-mode and error lines are
// run: anything else would start a real conntrackd daemon.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFile } from 'node:child_process';
import { ControlServer } from '../../src/control/server.js';
import { parseArgs } from '../../src/cli/args.js';
import { silentLogger } from '../../src/log/logger.js';

const CONNTRACKD = ['/usr/sbin/conntrackd', '/usr/bin/conntrackd'].find((p) => fs.existsSync(p));

let dir: string;
let conf: string;
let server: ControlServer;
const received: number[] = [];
const bigReply = Array.from({ length: 500 }, (_, i) => `PID=${i} type=line-${'x'.repeat(i % 40)}\n`).join('');

function run(args: string[]): Promise<{ rc: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(CONNTRACKD!, args, { timeout: 5000 }, (err, stdout, stderr) => {
      const rc = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      resolve({ rc, stdout, stderr });
    });
  });
}

describe.skipIf(!CONNTRACKD)('parseArgs agrees with the real conntrackd 1.4.7 client', () => {
  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ctsync-oracle-'));
    conf = path.join(dir, 'c.conf');
    fs.writeFileSync(conf, `Sync {\n\tMode FTFW {\n\t}\n\tUDP {\n\t\tIPv4_address 127.0.0.1\n\t\tIPv4_Destination_Address 127.0.0.2\n\t\tPort 3780\n\t\tInterface lo\n\t}\n}\n` +
      `General {\n\tLockFile ${dir}/lock\n\tUNIX {\n\t\tPath ${dir}/ctl\n\t}\n\tFilter From Userspace {\n\t\tProtocol Accept { TCP }\n\t}\n}\n`);
    // The socket protocol carries raw codes, so the server must see unknown ones too: record every request word.
    server = new ControlServer({
      path: path.join(dir, 'ctl'), log: silentLogger, peerCred: () => ({ uid: 0, pid: 0 }),
      handler: async (code, reply) => {
        received.push(code);
        if (code === 35) reply.write(bigReply); // -s process: stands in for any long reply
      },
    });
    await server.listen();
  });
  afterAll(async () => {
    await server?.close();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  const cases: string[][] = [
    ['-c'], ['-c', 'ct'], ['-c', 'exp'], ['-f'], ['-f', 'int'], ['-f', 'e'], ['-F'], ['-F', 'ct'], ['-F', 'expect'],
    ['-R'], ['-R', 'c'], ['-R', 'e'], ['-i'], ['-i', 'ct'], ['-i', 'expect'], ['-e'], ['-e', 'e'], ['-i', '-x'],
    ['-e', '-x'], ['-i', 'expect', '-x'], ['-e', 'expect', '-x'], ['-k'], ['-B'], ['-n'], ['-t'], ['-s'], ['-s', 'ct'],
    ['-s', 'expect'], ['-s', 'net'], ['-s', 'c'], ['-s', 'r'], ['-s', 'link'], ['-s', 'm'], ['-s', 'rs'], ['-s', 'p'],
    ['-s', 'q'], ['-s', ''], ['-f', ''], ['-stats'], ['stats'], ['-commit'], ['+k'], ['-c', 'zk'], ['-s', '-i', 'ak'],
    ['-F', 'xB'], ['-s', '-i'], ['-i', '-x', '-s', 'cache'], ['-R', '-k'],
    // errors
    ['-s', 'foo'], ['-f', 'all'], ['-x'], ['-s', '-x'], ['-i', '-x', '-x'], ['-i', 'zx'], ['-k', '-d'], ['-s', '-d'],
    ['-i', 'foo'], ['-k', '-z'],
  ];

  it.each(cases.map((c) => [c.join(' ') || '(none)', c] as const))('%s', async (_name, args) => {
    const argv = ['-C', conf, ...args];
    const ours = parseArgs(argv);
    expect(['client', 'error']).toContain(ours.mode);
    received.length = 0;
    const before = server.stats.unknownCodes;
    const theirs = await run(argv);
    await new Promise((r) => setTimeout(r, 20));
    if (ours.mode === 'client') {
      expect(theirs.rc).toBe(0);
      expect(received).toEqual([ours.code]);
    } else if (ours.mode === 'error') {
      expect(received).toEqual([]);
      expect(server.stats.unknownCodes).toBe(before);
      if (ours.message.startsWith('Unknown option')) {
        expect(theirs.rc).toBe(0); // conntrackd's exit status; ctsync deliberately exits 1
      } else {
        expect(theirs.rc).toBe(1);
      }
      expect(theirs.stderr).toContain(ours.message);
      expect(theirs.stdout.length > 0).toBe(ours.showUsage);
    }
  });

  it('the conntrackd client prints a long ctsync reply verbatim', async () => {
    const r = await run(['-C', conf, '-s', 'process']);
    expect(r.rc).toBe(0);
    expect(r.stdout).toBe(bigReply);
  });
});
