import { describe, expect, it } from 'vitest';
import fs from 'node:fs';
import { CANT_CONNECT_MESSAGE, ctimeString, formatLogLine, usageText, versionText } from '../../src/cli/help.js';

describe('usage and version', () => {
  it('lists every option of conntrackd 1.4.7 -h, in the same order, with ctsync wording', () => {
    const ours = usageText();
    const theirs = fs.readFileSync('/work/shared/spec/vectors/outputs/help-version.txt', 'utf8');
    const optsOf = (t: string): string[] => [...t.matchAll(/^ {2}(-\w)[, ]/gm)].map((m) => m[1]!);
    const theirOpts = optsOf(theirs.slice(0, theirs.indexOf('[exit status')));
    expect(theirOpts).toHaveLength(16);
    expect(optsOf(ours)).toEqual(theirOpts);
    // Same sub-argument lists.
    for (const sub of ['[ct|expect]', '[internal|external]', '[network|cache|runtime|link|rsqueue|queue|ct|expect]', '[configfile]']) {
      expect(ours).toContain(sub);
    }
    expect(ours).toMatch(/^ctsync v\d+\.\d+\.\d+: .*\nUsage: ctsync \[commands\] \[options\]\n\nGeneral commands:\n/);
    expect(ours).toContain('\nClient mode commands:\n');
    expect(ours).toContain('--json');
    expect(ours).toContain('notify master|backup|fault');
    // Not a verbatim copy.
    for (const line of theirs.split('\n').filter((l) => l.startsWith('  -'))) expect(ours).not.toContain(line);
  });
  it('version', () => {
    expect(versionText('1.2.3')).toBe('ctsync v1.2.3 (conntrackd 1.4.7 compatible). Licensed under the MIT license.\n');
  });
});

describe('conntrackd-style client log line', () => {
  it('matches the captured stderr format', () => {
    const d = new Date(2026, 10, 22, 10, 42, 14);
    expect(formatLogLine('ERROR', CANT_CONNECT_MESSAGE, d, 7638)).toBe(
      "[Sun Nov 22 10:42:14 2026] (pid=7638) [ERROR] can't connect: is conntrackd running? appropriate permissions?\n");
    const captured = fs.readFileSync('/work/shared/spec/vectors/outputs/node-a.kill-and-not-running.txt', 'utf8');
    expect(captured).toContain(formatLogLine('ERROR', CANT_CONNECT_MESSAGE, d, 7638).trimEnd());
  });
  it('pads single-digit days like ctime', () => {
    expect(ctimeString(new Date(2026, 0, 5, 1, 2, 3))).toBe('Mon Jan  5 01:02:03 2026');
  });
});
