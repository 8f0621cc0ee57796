// No Docker engine runs here, so the Dockerfile's own steps are replayed
// without one: every COPY into a stage directory, every RUN with the stage's
// WORKDIR and ENV (apt-get lines excepted: those packages are this machine's
// already; absolute paths are rooted in the stage directory), then the
// runtime stage's binary must start. Runs npm ci from the registry: ~1 min.
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../helpers/syncpair.js';

interface Stage { name: string; root: string; workdir: string; env: Record<string, string> }

/** Dockerfile lines with continuations joined and comments dropped. */
function instructions(text: string): string[] {
  const out: string[] = [];
  let cur = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!cur && (line === '' || line.startsWith('#'))) continue;
    if (line.endsWith('\\')) {
      cur += `${line.slice(0, -1)} `;
      continue;
    }
    out.push(cur + line);
    cur = '';
  }
  return out;
}

/** Roots absolute paths of a RUN command in the stage directory. */
function rooted(cmd: string, root: string): string {
  return cmd.replace(/(^|\s)(\/[\w./-]+)/g, (_m, sp: string, p: string) => `${sp}${join(root, p)}`);
}

describe('Dockerfile steps replayed without a Docker engine (runs npm ci and the build)', () => {
  const base = mkdtempSync(join(tmpdir(), 'ctsync-docker-'));
  afterAll(() => rmSync(base, { recursive: true, force: true }));

  it('builds the image layout and the runtime stage starts ctsync', () => {
    const stages = new Map<string, Stage>();
    let st: Stage | null = null;
    let entrypoint: string[] = [];
    for (const ins of instructions(readFileSync(join(REPO_ROOT, 'Dockerfile'), 'utf8'))) {
      const [op, ...rest] = ins.split(/\s+/);
      const args = rest.join(' ');
      if (op === 'FROM') {
        expect(args).toMatch(/^node:20-bookworm-slim\b/);
        const name = /\bAS\s+(\S+)/i.exec(args)?.[1] ?? `stage${stages.size}`;
        st = { name, root: join(base, name), workdir: '/', env: {} };
        // What the base image provides and the steps rely on.
        mkdirSync(join(st.root, 'usr/local/bin'), { recursive: true });
        stages.set(name, st);
      } else if (op === 'WORKDIR') {
        st!.workdir = args;
        mkdirSync(join(st!.root, args), { recursive: true });
      } else if (op === 'ENV') {
        const [k, v] = args.split('=');
        st!.env[k!] = v!;
      } else if (op === 'COPY') {
        const parts = rest.filter((r) => !r.startsWith('--'));
        const from = /--from=(\S+)/.exec(args)?.[1];
        const dest = parts.pop()!;
        const destAbs = join(st!.root, dest.startsWith('/') ? dest : join(st!.workdir, dest));
        for (const src of parts) {
          const srcAbs = from ? join(stages.get(from)!.root, src) : join(REPO_ROOT, src);
          expect(existsSync(srcAbs), `COPY source ${src}`).toBe(true);
          const target = dest.endsWith('/') && !src.endsWith('/') ? join(destAbs, src.split('/').pop()!) : destAbs;
          mkdirSync(dirname(target), { recursive: true });
          cpSync(srcAbs, target, { recursive: true, verbatimSymlinks: true });
        }
      } else if (op === 'RUN') {
        // System packages come from apt in the image; here they are installed already (.ci/run).
        const cmd = args.split('&&').map((c) => c.trim()).filter((c) => !/^apt-get\b|^rm -rf \/var\/lib\/apt/.test(c)).join(' && ');
        if (!cmd) continue;
        const r = spawnSync('sh', ['-c', rooted(cmd, st!.root)], {
          cwd: join(st!.root, st!.workdir), env: { ...process.env, ...st!.env }, encoding: 'utf8', timeout: 300_000,
        });
        expect(r.status, `RUN ${cmd}\n${r.stdout}\n${r.stderr}`).toBe(0);
      } else if (op === 'ENTRYPOINT') {
        entrypoint = JSON.parse(args) as string[];
      }
    }
    const runtime = [...stages.values()].at(-1)!;
    // ENTRYPOINT ["ctsync"] resolves through the symlink the runtime stage made in /usr/local/bin.
    const bin = join(runtime.root, 'usr/local/bin', entrypoint[0]!);
    const v = spawnSync(bin, ['-v'], { encoding: 'utf8', env: { ...process.env, ...runtime.env } });
    expect(v.status, v.stderr).toBe(0);
    expect(v.stdout).toMatch(/ctsync v\d/);
    const check = spawnSync(bin, ['-C', join(REPO_ROOT, 'conf/ctsync-fw1.conf'), '--check'], { encoding: 'utf8' });
    expect(check.status, check.stderr).toBe(0);
    // The addon the runtime loads is the one the build stage compiled.
    expect(existsSync(join(runtime.root, runtime.workdir, 'native/build/Release/ctsync_netlink.node'))).toBe(true);
  }, 600_000);
});
