#!/usr/bin/env node
// Summarises a V8 .cpuprofile (node --cpu-prof): self time per function and
// total time per function (self + callees), top N, so a benchmark note can
// say what the profile showed without opening DevTools.
//   node scripts/prof-summary.mjs /tmp/prof/CPU.*.cpuprofile [--top=30]
import { readFileSync } from 'node:fs';

const args = process.argv.slice(2);
const top = Number(args.find((a) => a.startsWith('--top='))?.slice(6) ?? 30);
for (const file of args.filter((a) => !a.startsWith('--'))) {
  const p = JSON.parse(readFileSync(file, 'utf8'));
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const selfUs = new Map();
  const dts = p.timeDeltas;
  for (let i = 0; i < p.samples.length; i++) selfUs.set(p.samples[i], (selfUs.get(p.samples[i]) ?? 0) + (dts[i] ?? 0));
  const total = [...selfUs.values()].reduce((a, b) => a + b, 0);
  const label = (n) => {
    const f = n.callFrame;
    const url = f.url ? f.url.replace(/^.*\/(dist|node_modules)\//, '$1/').replace(/^node:/, '') : '';
    return `${f.functionName || '(anon)'} ${url}${f.url ? ':' + (f.lineNumber + 1) : ''}`;
  };
  const self = new Map();
  const incl = new Map();
  for (const [id, us] of selfUs) {
    const n = byId.get(id);
    const k = label(n);
    self.set(k, (self.get(k) ?? 0) + us);
    const seen = new Set();
    for (let cur = id; cur !== undefined; cur = parent.get(cur)) {
      const kk = label(byId.get(cur));
      if (seen.has(kk)) continue;
      seen.add(kk);
      incl.set(kk, (incl.get(kk) ?? 0) + us);
    }
  }
  const idle = self.get('(idle) ') ?? 0;
  console.log(`\n== ${file}: ${(total / 1e3).toFixed(0)} ms sampled, busy ${((total - idle) / 1e3).toFixed(0)} ms`);
  const show = (m, title) => {
    console.log(`-- ${title}`);
    for (const [k, us] of [...m].filter(([k]) => k !== '(idle) ' && k !== '(root) ').sort((a, b) => b[1] - a[1]).slice(0, top)) {
      console.log(`${(us / 1e3).toFixed(1).padStart(8)} ms ${(100 * us / (total - idle)).toFixed(1).padStart(5)}%  ${k}`);
    }
  };
  show(self, 'self');
  if (args.includes('--incl')) show(incl, 'inclusive');
}
