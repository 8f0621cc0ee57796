import { describe, expect, it } from 'vitest';
import { DEFAULT_CONFIG, parseArgs, type CliAction } from '../../src/cli/args.js';

const client = (code: number, extra: Partial<Extract<CliAction, { mode: 'client' }>> = {}): CliAction =>
  ({ mode: 'client', config: DEFAULT_CONFIG, code, json: false, warnings: [], showUsage: false, ...extra });
const daemon = (extra: Partial<Extract<CliAction, { mode: 'daemon' }>> = {}): CliAction =>
  ({ mode: 'daemon', config: DEFAULT_CONFIG, daemonize: false, check: false, warnings: [], showUsage: false, ...extra });
const err = (message: string, showUsage: boolean): CliAction => ({ mode: 'error', message, exitCode: 1, showUsage });
const words = (s: string): string[] => (s === '' ? [] : s.split(' '));

describe('parseArgs: conntrackd 1.4.7 client options and their codes', () => {
  const table: Array<[string, number]> = [
    ['-c', 46], ['-c ct', 18], ['-c expect', 42], ['-c c', 18], ['-c e', 42], ['-c exp', 42],
    ['-f', 45], ['-f internal', 33], ['-f external', 34], ['-f int', 33], ['-f i', 33], ['-f e', 34],
    ['-F', 43], ['-F ct', 0], ['-F expect', 38],
    ['-R', 44], ['-R ct', 1], ['-R expect', 39], ['-R exp', 39],
    ['-i', 16], ['-i ct', 16], ['-i expect', 40],
    ['-e', 17], ['-e ct', 17], ['-e expect', 41],
    ['-i -x', 24], ['-e -x', 25], ['-i expect -x', 47], ['-e expect -x', 48], ['-i ct -x', 24],
    ['-k', 20], ['-B', 22], ['-n', 23], ['-t', 26],
    ['-s', 21], ['-s ct', 21], ['-s expect', 37], ['-s network', 28], ['-s net', 28], ['-s n', 28],
    ['-s cache', 29], ['-s c', 29], ['-s runtime', 30], ['-s r', 30], ['-s link', 31], ['-s l', 31],
    ['-s multicast', 31], ['-s rsqueue', 32], ['-s rs', 32], ['-s process', 35], ['-s p', 35],
    ['-s queue', 36], ['-s q', 36], ['-s e', 37],
  ];
  it.each(table)('%s -> %i', (args, code) => {
    const a = parseArgs(words(args));
    expect(a).toMatchObject({ mode: 'client', code, config: DEFAULT_CONFIG, json: false });
  });

  it('only the second character counts', () => {
    expect(parseArgs(['-stats'])).toEqual(client(21));
    expect(parseArgs(['-stats', 'cache'])).toEqual(client(29));
    expect(parseArgs(['-commit'])).toEqual(client(46));
    expect(parseArgs(['-kill'])).toEqual(client(20));
    expect(parseArgs(['+k'])).toEqual(client(20));
    expect(parseArgs(['stats'])).toEqual(client(26)); // a bare word: its second character is 't'
    expect(parseArgs(['-ix'])).toEqual(client(16));
  });

  it('the empty sub-argument matches the first candidate (strncmp with length 0)', () => {
    expect(parseArgs(['-s', ''])).toEqual(client(28));
    expect(parseArgs(['-f', ''])).toEqual(client(33));
    expect(parseArgs(['-c', ''])).toEqual(client(18));
  });

  it('-s and -f reject an unknown word', () => {
    expect(parseArgs(['-s', 'foo'])).toEqual(err("unknown parameter `foo' for option `-s'", false));
    expect(parseArgs(['-s', 'networks'])).toEqual(err("unknown parameter `networks' for option `-s'", false));
    expect(parseArgs(['-f', 'all'])).toEqual(err("unknown parameter `all' for option `-f'", false));
  });

  it('-s multicast warns about the deprecated word', () => {
    expect(parseArgs(['-s', 'multicast'])).toEqual(client(31, { warnings: ["use `link' instead of `multicast' as parameter."] }));
    expect(parseArgs(['-s', 'm'])).toMatchObject({ code: 31 });
  });

  it('-c/-i/-e/-F/-R leave a non-matching word to be parsed as an option', () => {
    expect(parseArgs(['-i', 'foo'])).toEqual(err('Unknown option: foo', true));
    expect(parseArgs(['-c', 'zk'])).toEqual(client(20)); // "zk" parses as -k
    expect(parseArgs(['-s', '-i', 'ak'])).toEqual(client(20)); // -i leaves the action alone, "ak" is -k
    expect(parseArgs(['-i', 'zx'])).toEqual(err('Invalid parameters', true)); // -i set nothing, so -x has no dump
    expect(parseArgs(['-F', 'xB'])).toEqual(client(22));
    expect(parseArgs(['-i', 'zC', '/x.conf'])).toEqual(client(-1, { config: '/x.conf' }));
  });

  it('the next word starting with "-" gives the default code', () => {
    expect(parseArgs(['-c', '-C', '/a.conf'])).toEqual(client(46, { config: '/a.conf' }));
    expect(parseArgs(['-R', '-k'])).toEqual(client(20));
  });

  it('-x only after -i/-e', () => {
    expect(parseArgs(['-x'])).toEqual(err('Invalid parameters', true));
    expect(parseArgs(['-s', '-x'])).toEqual(err('Invalid parameters', true));
    expect(parseArgs(['-x', '-i'])).toEqual(err('Invalid parameters', true));
    expect(parseArgs(['-i', '-x', '-x'])).toEqual(err('Invalid parameters', true));
    expect(parseArgs(['-d', '-x'])).toEqual(err('Invalid parameters', true));
  });

  it('the last client option wins', () => {
    expect(parseArgs(['-s', '-i'])).toEqual(client(16));
    expect(parseArgs(['-i', '-x', '-s', 'cache'])).toEqual(client(29));
  });

  it('-C takes the next word whatever it is', () => {
    expect(parseArgs(['-C', '/etc/a.conf', '-s'])).toEqual(client(21, { config: '/etc/a.conf' }));
    expect(parseArgs(['-s', '-C', '-k'])).toEqual(client(21, { config: '-k' }));
    expect(parseArgs(['-Config', 'x.conf', '-k'])).toEqual(client(20, { config: 'x.conf' }));
    expect(parseArgs(['-C', '/a', '-C', '/b', '-k'])).toEqual(client(20, { config: '/b' }));
  });

  it('-C without a file prints the usage, warns and goes on with the default', () => {
    expect(parseArgs(['-k', '-C'])).toEqual(client(20, { warnings: ['Missing config filename'], showUsage: true }));
  });

  it('truncates a -C path longer than PATH_MAX', () => {
    const a = parseArgs(['-C', 'a'.repeat(5000), '-k']);
    expect(a).toMatchObject({ mode: 'client', code: 20 });
    expect((a as { config: string }).config).toHaveLength(4095);
  });
});

describe('parseArgs: daemon mode and mixing', () => {
  it('no arguments: foreground daemon with the default config', () => {
    expect(parseArgs([])).toEqual(daemon());
  });
  it('-d daemonizes, -C sets the config', () => {
    expect(parseArgs(['-d'])).toEqual(daemon({ daemonize: true }));
    expect(parseArgs(['-d', '-C', '/etc/c.conf'])).toEqual(daemon({ daemonize: true, config: '/etc/c.conf' }));
    expect(parseArgs(['-C', '/etc/c.conf'])).toEqual(daemon({ config: '/etc/c.conf' }));
    expect(parseArgs(['-d', '-d'])).toEqual(daemon({ daemonize: true }));
  });
  it('daemon and client options cannot be mixed', () => {
    expect(parseArgs(['-d', '-s'])).toEqual(err('Invalid parameters', true));
    expect(parseArgs(['-k', '-d'])).toEqual(err('Invalid parameters', true));
    expect(parseArgs(['-i', 'ct', '-d'])).toEqual(err('Invalid parameters', true));
  });
  it('--check validates the config (daemon side only)', () => {
    expect(parseArgs(['--check', '-C', '/x'])).toEqual(daemon({ check: true, config: '/x' }));
    expect(parseArgs(['-C', '/x', '--check'])).toEqual(daemon({ check: true, config: '/x' }));
    expect(parseArgs(['-s', '--check'])).toEqual(err('Invalid parameters', true));
  });
});

describe('parseArgs: -v, -h, unknown options', () => {
  it('-v and -h act where they appear', () => {
    expect(parseArgs(['-v'])).toEqual({ mode: 'version' });
    expect(parseArgs(['-h'])).toEqual({ mode: 'help' });
    expect(parseArgs(['-help'])).toEqual({ mode: 'help' });
    expect(parseArgs(['-s', '-v'])).toEqual({ mode: 'version' });
    expect(parseArgs(['-d', '-h', '-s'])).toEqual({ mode: 'help' });
    expect(parseArgs(['-s', 'foo', '-h'])).toMatchObject({ mode: 'error' });
  });
  it('unknown options exit 1 (conntrackd exits 0: deliberate difference)', () => {
    expect(parseArgs(['-z'])).toEqual(err('Unknown option: -z', true));
    expect(parseArgs(['-'])).toEqual(err('Unknown option: -', true));
    expect(parseArgs(['--'])).toEqual(err('Unknown option: --', true));
    expect(parseArgs([''])).toEqual(err('Unknown option: ', true));
    expect(parseArgs(['-S'])).toEqual(err('Unknown option: -S', true));
    expect(parseArgs(['-k', '-Q'])).toEqual(err('Unknown option: -Q', true));
  });
});

describe('parseArgs: ctsync long options (commander)', () => {
  it('--json marks a client request', () => {
    expect(parseArgs(['-s', '--json'])).toEqual(client(21, { json: true }));
    expect(parseArgs(['--json', '-i'])).toEqual(client(16, { json: true }));
    expect(parseArgs(['--json'])).toEqual(err('Invalid parameters', true));
  });
  it('--version and --help', () => {
    expect(parseArgs(['--version'])).toEqual({ mode: 'version' });
    expect(parseArgs(['--help'])).toEqual({ mode: 'help' });
    expect(parseArgs(['-s', '--help'])).toEqual({ mode: 'help' });
  });
  it('an unknown long option is an error', () => {
    const a = parseArgs(['--frobnicate']);
    expect(a).toMatchObject({ mode: 'error', exitCode: 1 });
    expect((a as { message: string }).message).toContain('--frobnicate');
  });
});

describe('parseArgs: notify subcommand', () => {
  it('accepts the three states, any case, and -C', () => {
    expect(parseArgs(['notify', 'master'])).toEqual({ mode: 'notify', config: DEFAULT_CONFIG, state: 'master' });
    expect(parseArgs(['notify', 'BACKUP', '-C', '/c'])).toEqual({ mode: 'notify', config: '/c', state: 'backup' });
    expect(parseArgs(['notify', '-C', '/c', 'Fault'])).toEqual({ mode: 'notify', config: '/c', state: 'fault' });
    expect(parseArgs(['notify', '--config', '/d', 'master'])).toEqual({ mode: 'notify', config: '/d', state: 'master' });
  });
  it('rejects a bad or missing state and extra words', () => {
    expect(parseArgs(['notify', 'stop'])).toMatchObject({ mode: 'error', exitCode: 1 });
    expect(parseArgs(['notify'])).toMatchObject({ mode: 'error', exitCode: 1 });
    expect(parseArgs(['notify', 'master', 'extra'])).toMatchObject({ mode: 'error', exitCode: 1 });
  });
});

describe('notify with the config first', () => {
  it('ctsync -C file notify master is the same as ctsync notify master -C file', async () => {
    const { parseArgs } = await import('../../src/cli/args.js');
    expect(parseArgs(['-C', '/etc/x.conf', 'notify', 'master'])).toEqual(parseArgs(['notify', 'master', '-C', '/etc/x.conf']));
    expect(parseArgs(['-C', '/etc/x.conf', 'notify', 'MASTER'])).toMatchObject({ mode: 'notify', config: '/etc/x.conf', state: 'master' });
  });
});
