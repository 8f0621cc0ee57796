// Malformed and inconsistent configurations: each must fail with a ConfigError
// whose message names the file, the line and what was expected there.

import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/errors.js';
import { loadConfig, parseConfig } from '../../src/config/index.js';

const LINK = 'UDP {\n IPv4_Destination_Address 10.0.0.2\n Port 3780\n Interface eth0\n}\n';
/** A valid Sync section with `extra` inserted before its closing brace (extra starts on line 8; what follows, on line 10). */
const sync = (extra: string, mode = 'Mode FTFW { }') => `Sync {\n${mode}\n${LINK}${extra}\n}\n`;

function fail(text: string): ConfigError {
  try {
    parseConfig(text, 'conntrackd.conf');
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

type Row = [name: string, text: string, code: 'SYNTAX' | 'INVALID', message: string];

const rows: Row[] = [
  ['missing { after UDP', 'Sync {\n Mode FTFW {}\n\n\n\n\n\n\n\n\n\n UDP\n Port 3780\n}\n', 'SYNTAX',
    "conntrackd.conf:13: expected '{' after 'UDP', found 'Port'"],
  ['unclosed block', 'General {\n HashLimit 10\n', 'SYNTAX',
    "conntrackd.conf:2: expected '}' to close 'General' opened at line 1, found end of file"],
  ['stray }', '}\n', 'SYNTAX', "conntrackd.conf:1: unexpected '}' with no open block"],
  ['number expected', 'General {\n HashLimit lots\n}', 'SYNTAX',
    "conntrackd.conf:2: expected a number after 'HashLimit', found 'lots'"],
  ['value missing at eof', 'General {\n HashLimit', 'SYNTAX',
    "conntrackd.conf:2: expected a number after 'HashLimit', found end of file"],
  ['value is a brace', 'General {\n LockFile }', 'SYNTAX',
    "conntrackd.conf:2: expected an absolute path (starting with '/') after 'LockFile', found '}'"],
  ['relative path', 'General {\n LockFile var/lock/x\n}', 'SYNTAX',
    "conntrackd.conf:2: expected an absolute path (starting with '/') after 'LockFile', found 'var/lock/x'"],
  ['bad boolean', sync(' Options { TCPWindowTracking maybe }'), 'SYNTAX',
    "conntrackd.conf:8: expected on/off (or yes/no) after 'TCPWindowTracking', found 'maybe'"],
  ['bad mode', 'Sync {\n Mode FAST { }\n}', 'SYNTAX',
    "conntrackd.conf:2: expected FTFW, ALARM or NOTRACK after 'Mode', found 'FAST'"],
  ['keyword in wrong section', 'General {\n Port 3780\n}', 'SYNTAX',
    "conntrackd.conf:2: 'Port' is not valid in General; expected one of"],
  ['FTFW option in ALARM', 'Sync {\n Mode ALARM {\n ACKWindowSize 10\n }\n}', 'SYNTAX',
    "conntrackd.conf:3: 'ACKWindowSize' is not valid in Mode ALARM; expected one of RefreshTime, CacheTimeout"],
  ['Port in Multicast', 'Sync {\n Multicast {\n Port 3780\n }\n}', 'SYNTAX',
    "conntrackd.conf:3: 'Port' is not valid in Multicast block; expected one of"],
  ['bad IPv4', 'Sync {\n UDP {\n IPv4_address 300.1.1.1\n }\n}', 'SYNTAX',
    "conntrackd.conf:3: expected an IPv4 address after 'IPv4_address', found '300.1.1.1'"],
  ['IPv6 where IPv4 expected', 'Sync {\n UDP {\n IPv4_address fd00::1\n }\n}', 'INVALID',
    'conntrackd.conf:3: IPv4_address: fd00::1 is not an IPv4 address'],
  ['cidr on a link address', 'Sync {\n UDP {\n IPv4_address 10.0.0.1/24\n }\n}', 'INVALID',
    'conntrackd.conf:3: IPv4_address: expected a plain address, found the network 10.0.0.1/24'],
  ['cidr too long', 'General {\n Filter {\n Address Ignore {\n IPv4_address 10.0.0.0/33\n }\n }\n}', 'INVALID',
    'conntrackd.conf:4: IPv4_address: 10.0.0.0/33 has an invalid prefix length, expected /0../32'],
  ['binary junk', 'General {\n\u0000\n}', 'SYNTAX',
    "conntrackd.conf:2: unexpected byte 0x00; expected a keyword, a value, '{', '}' or '#'"],
  ['quote', 'General {\n LockFile "/x"\n}', 'SYNTAX', "conntrackd.conf:2: unexpected '\"'"],
  ['missing Interface', 'Sync {\n Mode FTFW { }\n UDP Default {\n IPv4_Destination_Address 10.0.0.2\n Port 1\n }\n}',
    'INVALID', 'conntrackd.conf:3: UDP block has no Interface (required'],
  ['both address families', sync(' UDP {\n IPv4_address 10.0.0.1\n IPv6_address fd00::1\n'
    + ' IPv4_Destination_Address 10.0.0.2\n Port 1\n Interface eth0\n }'), 'INVALID',
  'conntrackd.conf:8: UDP block has both IPv4_address and IPv6_address; expected one of them'],
  ['mixed link kinds', sync(' TCP {\n IPv4_Destination_Address 10.0.0.2\n Port 1\n Interface eth0\n }'), 'INVALID',
    'conntrackd.conf:8: cannot mix dedicated link kinds: tcp here, udp at line 3'],
  ['five links', sync(LINK + LINK + LINK + LINK), 'INVALID',
    'conntrackd.conf:23: too many dedicated links (maximum 4)'],
  ['two Default links', sync('UDP Default {\n IPv4_Destination_Address 10.0.0.3\n Port 1\n Interface eth0\n}\n'
    + 'UDP Default {\n IPv4_Destination_Address 10.0.0.4\n Port 1\n Interface eth0\n}'), 'INVALID',
  'conntrackd.conf:13: second Default link; the first is at line 8'],
  ['port out of range', 'Sync {\n UDP {\n IPv4_Destination_Address 10.0.0.2\n Port 70000\n Interface eth0\n }\n}',
    'INVALID', 'conntrackd.conf:2: UDP block: Port 70000 is out of range, expected 1..65535'],
  ['no port', 'Sync {\n UDP {\n IPv4_Destination_Address 10.0.0.2\n Interface eth0\n }\n}', 'INVALID',
    'conntrackd.conf:2: UDP block has no Port (expected a port number 1..65535)'],
  ['no destination', 'Sync {\n UDP {\n Port 1\n Interface eth0\n }\n}', 'INVALID',
    'conntrackd.conf:2: UDP block has no IPv4_Destination_Address or IPv6_Destination_Address'],
  ['unicast multicast group', 'Sync {\n Multicast {\n IPv4_address 10.0.0.1\n Group 3780\n Interface eth0\n }\n}',
    'INVALID', 'conntrackd.conf:2: Multicast block: 10.0.0.1 is not a multicast group address'],
  ['ACKWindowSize 0', sync('', 'Mode FTFW {\n ACKWindowSize 0 }'), 'INVALID',
    'conntrackd.conf:3: ACKWindowSize must be at least 1'],
  ['number overflow', 'General {\n HashLimit 99999999999\n}', 'INVALID',
    'conntrackd.conf:2: HashLimit 99999999999 is out of range, expected 0..2147483647'],
  ['Sync and Stats', `${sync('')}Stats {\n LogFile on\n}\n`, 'INVALID',
    "conntrackd.conf:10: cannot use both 'Sync' and 'Stats' sections; expected one of them"],
  ['no Sync', 'General {\n HashLimit 10\n}\n', 'INVALID', "conntrackd.conf:1: no 'Sync' section (nor 'Stats')"],
  ['empty file', '', 'INVALID', "conntrackd.conf:1: no 'Sync' section"],
  ['no links', 'Sync {\n Mode FTFW { }\n}', 'INVALID',
    'conntrackd.conf:1: Sync section has no dedicated link; expected a UDP, Multicast or TCP block'],
  ['two different modes', 'Sync {\n Mode FTFW { }\n Mode ALARM { }\n}', 'INVALID',
    'conntrackd.conf:3: second synchronization Mode ALARM (Mode FTFW at line 2)'],
  ['PollSecs 0', 'General {\n PollSecs 0\n}', 'INVALID', "conntrackd.conf:2: 'PollSecs' must be > 0"],
  ['scheduler priority', 'General {\n Scheduler { Priority 100 }\n}', 'INVALID',
    'conntrackd.conf:2: Priority 100 is out of range, expected 0..99'],
  ['scheduler type', 'General {\n Scheduler { Type BATCH }\n}', 'INVALID',
    "conntrackd.conf:2: unknown scheduler 'BATCH', expected RR, FIFO or OTHER"],
  ['filter policy', 'General {\n Filter {\n Protocol Drop { TCP }\n }\n}', 'SYNTAX',
    "conntrackd.conf:3: expected Accept or Ignore after 'Protocol', found 'Drop'"],
  ['conflicting filter policies', 'General {\n Filter {\n Protocol Accept { TCP }\n Protocol Ignore { UDP }\n }\n}',
    'INVALID', 'conntrackd.conf:4: Protocol Ignore conflicts with Protocol Accept at line 3'],
  ['bad tcp state', 'General {\n Filter {\n State Accept { OPEN for TCP }\n }\n}', 'SYNTAX',
    "conntrackd.conf:3: expected a TCP state (SYN_SENT"],
  ['for UDP', 'General {\n Filter {\n State Accept { ESTABLISHED for UDP }\n }\n}', 'SYNTAX',
    "conntrackd.conf:3: expected 'TCP' after 'for', found 'UDP'"],
  ['bad From', 'General {\n Filter From Nowhere { }\n}', 'SYNTAX',
    "conntrackd.conf:2: expected Userspace or Kernelspace after 'From', found 'Nowhere'"],
  ['ExpectationSync junk', sync(' Options {\n ExpectationSync 5\n }'), 'SYNTAX',
    "conntrackd.conf:9: expected on/off or '{' after 'ExpectationSync', found '5'"],
  ['helper l3', 'Helper {\n Type ftp ipx tcp { }\n}', 'SYNTAX',
    "conntrackd.conf:2: expected inet or inet6 after 'Type ftp', found 'ipx'"],
  ['empty helper policy', 'Helper {\n Type ftp inet tcp {\n Policy ftp { }\n }\n}', 'INVALID',
    'conntrackd.conf:3: Policy ftp is empty; expected ExpectMax and/or ExpectTimeout'],
  ['interface name too long', 'Sync {\n UDP {\n Interface abcdefghijklmnopq\n }\n}', 'INVALID',
    "conntrackd.conf:3: interface name 'abcdefghijklmnopq' is longer than 15 characters"],
  ['TLS incomplete', `${sync('')}Ctsync {\n TLS {\n CAFile /ca\n }\n}`, 'INVALID',
    'conntrackd.conf:11: TLS block is missing CertFile, KeyFile'],
  ['KeyFile and TLS', `${sync('')}Ctsync {\n KeyFile /k\n TLS { CAFile /a CertFile /b KeyFile /c }\n}`, 'INVALID',
    "conntrackd.conf:11: Ctsync: use either 'KeyFile' or 'TLS' to secure the sync link, not both"],
  ['metrics port', `${sync('')}Ctsync {\n Metrics { Port 0 }\n}`, 'INVALID',
    'conntrackd.conf:11: Port 0 is out of range, expected 1..65535'],
  ['unknown block never closed', 'General {\n Frobnicate {\n', 'SYNTAX',
    "conntrackd.conf:2: expected '}' to close the block of unknown keyword 'Frobnicate' (line 2), found end of file"],
  ['brace where keyword expected', 'General {\n {\n}', 'SYNTAX',
    "conntrackd.conf:2: expected a keyword in General, found '{'"],
];

describe('malformed configurations', () => {
  it.each(rows)('%s', (_name, text, code, message) => {
    const err = fail(text);
    expect(err.code).toBe(`CTSYNC_ERR_CONFIG_${code}`);
    expect(err.message.slice(0, message.length)).toBe(message);
    expect(err.file).toBe('conntrackd.conf');
    expect(err.line).toBe(Number(/^conntrackd\.conf:(\d+):/.exec(message)![1]));
  });

  it('a huge input is refused, not parsed', () => {
    const err = fail('#'.repeat(2 * 1024 * 1024));
    expect(err.code).toBe('CTSYNC_ERR_CONFIG_SYNTAX');
    expect(err.message).toMatch(/more than the 1048576/);
  });

  it('deep nesting inside an unknown block is skipped without recursion', () => {
    const depth = 100_000;
    const text = `${sync('')}Junk ${'{'.repeat(depth)}${'}'.repeat(depth)}\n`;
    const { warnings } = parseConfig(text, 'conntrackd.conf');
    expect(warnings.at(-1)).toMatchObject({ keyword: 'Junk', line: 10 });
  });

  it('deep nesting of known blocks fails cleanly', () => {
    const err = fail(`Sync ${'{'.repeat(50_000)}`);
    expect(err.code).toBe('CTSYNC_ERR_CONFIG_SYNTAX');
    expect(err.message).toBe("conntrackd.conf:1: expected a keyword in Sync, found '{'");
  });
});

describe('loadConfig I/O errors', () => {
  it('missing file → CTSYNC_ERR_CONFIG_IO naming the file', () => {
    try {
      loadConfig('/nonexistent/conntrackd.conf');
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).code).toBe('CTSYNC_ERR_CONFIG_IO');
      expect((err as ConfigError).message).toBe('/nonexistent/conntrackd.conf: cannot read configuration file (ENOENT)');
    }
  });

  it('a directory → CTSYNC_ERR_CONFIG_IO', () => {
    expect(() => loadConfig('/tmp')).toThrow(expect.objectContaining({ code: 'CTSYNC_ERR_CONFIG_IO' }));
  });
});
