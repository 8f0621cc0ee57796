// Keywords ctsync accepts but does not act on, unknown and removed keywords,
// deprecated spellings: each gives a warning naming its line, and parsing goes on.

import { describe, expect, it } from 'vitest';
import { IGNORED, parseConfig } from '../../src/config/index.js';

const SYNC = 'Sync {\n Mode FTFW { }\n UDP {\n IPv4_Destination_Address 10.0.0.2\n Port 3780\n Interface eth0\n }\n}\n';

function warningsOf(text: string) {
  return parseConfig(text, 'c.conf').warnings.map((w) => ({ keyword: w.keyword, line: w.line, message: w.message }));
}

describe('warnings', () => {
  it('ignored General keywords name their line and the reason', () => {
    const w = warningsOf(`${SYNC}General {\n Nice -1\n HashSize 10\n PollSecs 2\n Systemd off\n`
      + ' Scheduler {\n Type rr\n Priority 5\n }\n UNIX {\n Path /run/x\n Backlog 5\n }\n}\n');
    expect(w.map((x) => [x.keyword, x.line])).toEqual([
      ['Nice', 10], ['HashSize', 11], ['PollSecs', 12], ['Backlog', 20],
    ]);
    expect(w[0]!.message).toBe(`'Nice' is accepted but not acted on by ctsync: ${IGNORED['General.Nice']}`);
  });

  it('unknown keywords are skipped with their line or block', () => {
    const text = `${SYNC}General {\n Frobnicate 1 2 3\n Gizmo {\n a b\n { nested }\n }\n HashLimit 7\n}\n`;
    const { config, warnings } = parseConfig(text, 'c.conf');
    expect(warnings.map((x) => [x.keyword, x.line, x.message])).toEqual([
      ['Frobnicate', 10, "unknown keyword 'Frobnicate' in General; ignored"],
      ['Gizmo', 11, "unknown keyword 'Gizmo' in General; ignored"],
    ]);
    expect(config.general.hashLimit).toBe(7);
  });

  it('an unknown keyword just before a closing brace does not swallow it', () => {
    const { config, warnings } = parseConfig(`${SYNC}General { Wibble 3 }\nGeneral { HashLimit 9 }\n`, 'c.conf');
    expect(warnings).toHaveLength(1);
    expect(config.general.hashLimit).toBe(9);
  });

  it('an unknown keyword with its brace on the next line skips the block', () => {
    const { config, warnings } = parseConfig(`${SYNC}General {\n Gizmo\n {\n a { b }\n }\n HashLimit 8\n}\n`, 'c.conf');
    expect(warnings.map((x) => [x.keyword, x.line])).toEqual([['Gizmo', 10]]);
    expect(config.general.hashLimit).toBe(8);
  });

  it('keywords removed before 1.4.7 are named as such', () => {
    const w = warningsOf(`${SYNC}General {\n StripNAT on\n}\n`);
    expect(w).toEqual([{ keyword: 'StripNAT', line: 10, message: "'StripNAT' was removed from conntrackd before 1.4.7; ignored" }]);
  });

  it('deprecated mode aliases warn and map (case-insensitive)', () => {
    const persistent = parseConfig(SYNC.replace('Mode FTFW', 'Mode Persistent'), 'c.conf');
    expect(persistent.config.sync!.mode).toBe('alarm');
    expect(persistent.warnings).toEqual([{ file: 'c.conf', line: 2, keyword: 'Mode',
      message: "mode 'PERSISTENT' is now called 'ALARM'; please update the configuration" }]);
    const nack = parseConfig(SYNC.replace('Mode FTFW', 'Mode NACK'), 'c.conf');
    expect(nack.config.sync!.mode).toBe('ftfw');
    expect(parseConfig(SYNC.replace('Mode FTFW', 'Mode notrack'), 'c.conf').config.sync!.mode).toBe('notrack');
  });

  it('IPv6_interface in Multicast is ignored with a warning', () => {
    const text = 'Sync {\n Mode FTFW {}\n Multicast {\n IPv6_address ff02::1:3\n IPv6_interface fe80::1\n'
      + ' Group 3780\n Interface eth0\n }\n}\n';
    expect(warningsOf(text).map((x) => [x.keyword, x.line])).toEqual([['IPv6_interface', 5]]);
  });

  it('an unknown syslog facility is ignored with a warning, like conntrackd', () => {
    const { config, warnings } = parseConfig(`${SYNC}General {\n Syslog local9\n}\n`, 'c.conf');
    expect(config.general.syslog).toBeNull();
    expect(warnings[0]).toMatchObject({ keyword: 'Syslog', line: 10 });
  });

  it('an unknown protocol name is ignored with a warning', () => {
    const { config, warnings } = parseConfig(`${SYNC}General {\n Filter {\n Protocol Accept {\n TCP\n quic\n }\n }\n}\n`, 'c.conf');
    expect(config.general.filter!.protocol!.protocols).toEqual([6]);
    expect(warnings).toEqual([{ file: 'c.conf', line: 13, keyword: 'quic',
      message: "unknown protocol 'quic' (not in the protocol table); ignored" }]);
  });

  it('CommitTimeout with DisableExternalCache warns', () => {
    const w = warningsOf(SYNC.replace('Mode FTFW { }', 'Mode FTFW {\n CommitTimeout 5\n DisableExternalCache on\n }'));
    expect(w).toEqual([expect.objectContaining({ keyword: 'CommitTimeout', line: 3 })]);
  });

  it('lexical details: comments, booleans in any case, # after a value, keywords case-sensitive', () => {
    const text = '# top\nSync { # c\n Mode ftfw { DisableExternalCache YeS#c\n StartupResync oN }\n'
      + ' UDP { IPv4_Destination_Address 10.0.0.2#peer\n Port 1 Interface eth0 Checksum OFF }\n}\n';
    const { config } = parseConfig(text, 'c.conf');
    expect(config.sync).toMatchObject({ disableExternalCache: true, startupResync: true });
    expect(config.sync!.links[0]).toMatchObject({ destination: '10.0.0.2', checksum: false });
    // "sync" is not "Sync": an unknown top-level word, skipped with its block; then no Sync section at all.
    expect(() => parseConfig('sync {\n}\n', 'c.conf')).toThrow(/c\.conf:1: no 'Sync' section/);
  });

  it('ExpectationSync on/off and NetlinkOverrunResync seconds', () => {
    const on = parseConfig(SYNC.replace('}\n', '}\n Options { ExpectationSync On }\n'), 'c.conf').config;
    expect(on.sync!.expectationSync).toEqual({ enabled: true, helpers: null });
    const g = parseConfig(`${SYNC}General { NetlinkOverrunResync 12 }\n`, 'c.conf').config.general;
    expect(g.netlinkOverrunResync).toBe(12);
    const off = parseConfig(`${SYNC}General { NetlinkOverrunResync no }\n`, 'c.conf').config.general;
    expect(off.netlinkOverrunResync).toBeNull();
  });
});
