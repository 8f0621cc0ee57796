// Hostile input: random token soups and random bytes must end in a parsed
// config or a ConfigError, never another exception, and quickly.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/errors.js';
import { CONNTRACKD_KEYWORDS, CTSYNC_KEYWORDS, parseConfig } from '../../src/config/index.js';

const keywords = [...CONNTRACKD_KEYWORDS, ...CTSYNC_KEYWORDS];
const token = fc.oneof(
  fc.constantFrom(...keywords),
  fc.constantFrom('{', '}', '{', '}', '\n', '#', 'on', 'off', 'FTFW', 'ALARM', 'NOTRACK', 'Default', '/run/x',
    '10.0.0.1', 'fd00::1/64', '225.0.0.50', '3780', '-5', '0', '99999999999', 'eth0', 'veth-ab', 'inet', 'tcp'),
  fc.string({ maxLength: 6 }),
);
const soup = fc.array(token, { maxLength: 120 }).chain((toks) =>
  fc.array(fc.constantFrom(' ', '\n', '\t'), { minLength: toks.length, maxLength: toks.length })
    .map((seps) => toks.map((t, i) => t + seps[i]).join('')));

/** Parses and checks that only ConfigError escapes, with file and line set. */
function tryParse(text: string): void {
  const started = performance.now();
  try {
    parseConfig(text, 'fuzz.conf');
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    expect(err.file).toBe('fuzz.conf');
    expect(err.line).toBeGreaterThanOrEqual(1);
    expect(err.message).toMatch(/^fuzz\.conf:\d+: /);
  }
  expect(performance.now() - started).toBeLessThan(1000);
}

describe('config fuzz', () => {
  it('random token soups', () => {
    fc.assert(fc.property(soup, tryParse), { numRuns: 1500 });
  });

  it('random token soups inside a valid Sync section', () => {
    const wrap = soup.map((s) => `Sync {\n Mode FTFW {\n${s}\n}\n UDP { IPv4_Destination_Address 10.0.0.2 Port 1 Interface e }\n}\n`);
    fc.assert(fc.property(wrap, tryParse), { numRuns: 800 });
  });

  it('random bytes', () => {
    const bytes = fc.uint8Array({ maxLength: 512 }).map((b) => Buffer.from(b).toString('latin1'));
    fc.assert(fc.property(bytes, tryParse), { numRuns: 1500 });
  });

  it('random unicode', () => {
    fc.assert(fc.property(fc.string({ unit: 'binary', maxLength: 300 }), tryParse), { numRuns: 800 });
  });

  it('a large valid-looking file parses in linear time', () => {
    const lines = Array.from({ length: 20000 }, (_, i) => `  IPv4_address 10.${(i >> 8) & 255}.${i & 255}.1`);
    const text = `Sync {\n UDP { IPv4_Destination_Address 10.0.0.2 Port 1 Interface e }\n}\n`
      + `General {\n Filter {\n Address Ignore {\n${lines.join('\n')}\n }\n }\n}\n`;
    const started = performance.now();
    const { config } = parseConfig(text, 'big.conf');
    expect(config.general.filter!.address!.ipv4).toHaveLength(20000);
    expect(performance.now() - started).toBeLessThan(2000);
  });
});
