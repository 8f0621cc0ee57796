// The decoder's values live on in the internal cache, which merges later
// events into them (status, timeout, reply, tcp, synproxy, id…). On a table
// that saw only NEW events so far, the first UPDATE made those fields mutable
// in the middle of the work and threw away the compiled event path (see
// util/shape.ts). settleDecodedShapes() decodes one sample of each common
// kind of entry (TCP with and without CTA_SYNPROXY, UDP, ICMP, as the
// warm-up's synthetic flows), through the real decoder so they get its very
// hidden classes, and settles their fields once.
import { ONE_FLOW_OF_EACH_KIND, syntheticFlow } from '../model/synthetic.js';
import { settleSample } from '../util/shape.js';
import { CTA } from './ct-attrs.js';
import { readConntrack, writeConntrackAttrs } from './ct-codec.js';
import { NlWriter } from './nlattr.js';

/** A conntrack id above 2^31, as most are (a 32-bit hash): decoded, it is not a small integer. */
const LARGE_ID = 0x9e3779b1;

let settled = false;

/** Once per process: settles the fields of decoded entries (with and without their plain reply tuple). */
export function settleDecodedShapes(): void {
  if (settled) return;
  settled = true;
  const w = new NlWriter(4096);
  for (const k of ONE_FLOW_OF_EACH_KIND) {
    const ct = syntheticFlow(k);
    for (const dropPlainReply of [false, true]) {
      w.reset();
      writeConntrackAttrs(w, ct, 'create');
      w.u32be(CTA.ID, LARGE_ID);
      const v = readConntrack(w.buf, 0, w.off, dropPlainReply);
      // TcpInfo and Synproxy objects are shared and frozen: only the entry's own fields.
      settleSample(v, { mutable: Object.keys(v) });
    }
  }
}
