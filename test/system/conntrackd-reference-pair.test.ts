// Starts two Debian conntrackd 1.4.7 daemons in namespaces. Proves the test
// harness itself (namespaces, configs, client calls, cache dumps) on the
// reference implementation before the interop tests lean on it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makePair, type Pair } from '../helpers/syncpair.js';
import { waitFor } from '../helpers/netns.js';

describe('conntrackd reference pair (starts two conntrackd in namespaces)', () => {
  let pair: Pair;

  beforeAll(async () => {
    pair = makePair('conntrackd', 'conntrackd', 'ref');
    await pair.a.start();
    await pair.b.start();
  });

  afterAll(async () => {
    await pair?.cleanup();
  });

  it('replicates an injected TCP entry into the peer external cache', async () => {
    pair.fw1.run('conntrack', ['-I', '-p', 'tcp', '-s', '10.99.0.2', '-d', '10.99.0.1', '--sport', '40000', '--dport', '80',
      '--state', 'ESTABLISHED', '-t', '300', '-u', 'SEEN_REPLY,ASSURED', '-m', '7']);
    const line = await waitFor(() => pair.b.cli(['-e']).stdout.split('\n').find((l) => l.includes('sport=40000')),
      'entry in fw2 external cache', 10_000);
    expect(line).toMatch(/^tcp\s+6 ESTABLISHED src=10\.99\.0\.2 dst=10\.99\.0\.1 sport=40000 dport=80 .*mark=7/);
  });
});
