// Starts: one child node reading the kernel (a netlink route dump of this network namespace).
// The loader hands out JS views of the addon's Buffers (src/netlink/native.ts
// asJsBuffer): V8 gives a Buffer the addon made a hidden class of its own, and
// readers that met both kinds were recompiled mid-burst. Checked with V8's
// %HaveSameMap in a child node (natives syntax), on a real netlink reply: a
// route-link dump of the test's own network namespace, read back by drain().
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../helpers/syncpair.js';

const probe = `
import { createRequire } from 'node:module';
import { loadNative } from ${JSON.stringify(join(REPO_ROOT, 'dist', 'src', 'netlink', 'native.js'))};
const raw = createRequire(import.meta.url)(${JSON.stringify(join(REPO_ROOT, 'native', 'build', 'Release', 'ctsync_netlink.node'))});
function dump(b) {
  const h = b.open(0, null); // NETLINK_ROUTE
  b.bind(h, 0);
  const req = Buffer.alloc(20); // nlmsghdr + rtgenmsg: RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP
  req.writeUInt32LE(20, 0); req.writeUInt16LE(18, 4); req.writeUInt16LE(0x301, 6); req.writeUInt32LE(1, 8);
  b.send(h, req);
  let r = null;
  for (let i = 0; i < 200 && r === null; i++) r = b.drain(h);
  b.close(h);
  return r;
}
const js = Buffer.alloc(4);
const viaLoader = dump(loadNative());
const viaAddon = dump(raw);
console.log(JSON.stringify({ loader: %HaveSameMap(viaLoader, js), addon: %HaveSameMap(viaAddon, js), len: viaLoader.length }));
`;

describe('native loader Buffers', () => {
  it('drain() hands a Buffer of the same hidden class as Buffers made in JS, unlike the raw addon', () => {
    const r = spawnSync(process.execPath, ['--allow-natives-syntax', '--input-type=module', '-e', probe], { encoding: 'utf8', timeout: 20_000 });
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout.trim()) as { loader: boolean; addon: boolean; len: number };
    expect(out.len).toBeGreaterThan(16);
    expect(out).toMatchObject({ loader: true, addon: false });
  });
});
