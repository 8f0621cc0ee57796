// A fixed set of conntrack entries, one per kind the sync protocol carries
// (NAT in every form, zones, marks, ICMP ids, IPv6, SCTP, DCCP, UDP-Lite,
// GRE), injected with conntrack(8) so every daemon under test sees identical
// kernel entries.
import type { Netns } from './netns.js';

export const ENTRY_ARGS: string[][] = [
  ['-p', 'tcp', '-s', '10.99.0.2', '-d', '10.99.0.1', '--sport', '40000', '--dport', '80', '--state', 'ESTABLISHED', '-t', '300', '-u', 'SEEN_REPLY,ASSURED', '-m', '7'],
  ['-p', 'udp', '-s', '10.99.0.2', '-d', '10.99.0.1', '--sport', '5000', '--dport', '53', '-t', '100', '-w', '5'],
  ['-p', 'tcp', '-s', '10.99.0.2', '-d', '198.51.100.7', '--sport', '1234', '--dport', '443', '--state', 'SYN_SENT', '-t', '100', '--src-nat', '203.0.113.1'],
  ['-p', 'tcp', '-s', '198.51.100.9', '-d', '203.0.113.1', '--sport', '5555', '--dport', '80', '--state', 'ESTABLISHED', '-t', '300', '-u', 'SEEN_REPLY,ASSURED', '--dst-nat', '10.99.0.5:8080'],
  ['-p', 'udp', '-s', '10.99.0.3', '-d', '198.51.100.7', '--sport', '7000', '--dport', '53', '-t', '100', '--src-nat', '203.0.113.1:61000'],
  ['-p', 'icmp', '-s', '10.99.0.2', '-d', '10.99.0.1', '--icmp-type', '8', '--icmp-code', '0', '--icmp-id', '5550', '-t', '60'],
  ['-p', 'udp', '-s', 'fd00::2', '-d', 'fd00::1', '--sport', '5000', '--dport', '53', '-t', '100'],
  ['-p', 'tcp', '-s', 'fd00::2', '-d', 'fd00::1', '--sport', '5001', '--dport', '22', '--state', 'ESTABLISHED', '-t', '300', '-u', 'SEEN_REPLY,ASSURED', '-m', '3'],
  ['-p', 'sctp', '-s', '10.99.0.2', '-d', '10.99.0.1', '--sport', '3868', '--dport', '3868', '--state', 'ESTABLISHED', '--orig-vtag', '1', '--reply-vtag', '2', '-t', '300'],
  ['-p', 'udplite', '-s', '10.99.0.2', '-d', '10.99.0.1', '--sport', '5006', '--dport', '5007', '-t', '100'],
];

export function injectEntries(ns: Netns, args: string[][] = ENTRY_ARGS): void {
  for (const a of args) ns.run('conntrack', ['-I', ...a]);
}

/** Cache dump lines with the age suffix removed, sorted: comparable across daemons and runs. */
export function normalizeDump(text: string): string[] {
  return text.split('\n').filter(Boolean).map((l) => l.replace(/ \[active since \d+s\]$/, '').trim()).sort();
}

/** conntrack -L lines without the volatile columns (timeout, use, id), sorted. */
export function normalizeKernel(text: string): string[] {
  return text.split('\n').filter((l) => l && !l.startsWith('conntrack v'))
    .map((l) => l.replace(/^(\S+\s+\d+) \d+ /, '$1 ').replace(/ use=\d+/, '').replace(/ id=\d+/, '').trim())
    .sort();
}
