// /healthz, /readyz and the request bounds of the operator endpoint.
import { connect } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MetricsHttpServer, type Exposition } from '../../src/metrics/http.js';
import type { MetricsSnapshot } from '../../src/metrics/types.js';

function snapshot(): MetricsSnapshot {
  return {
    running: false,
    initialDumpDone: false,
    uptimeSeconds: 0,
    sync: {
      mode: 'ftfw', oldestUnackedAgeMs: 0, lastRecvAgeMs: null, lastAliveAgeMs: null, helloDone: false, resyncPending: true,
      rsQueueLen: 0, rsQueueMax: 0, rsQueueOverflow: 0, txQueueLen: 0, msgsSent: 0, msgsRecv: 0, nacksSent: 0, nacksRecv: 0,
      acksSent: 0, acksRecv: 0, resends: 0, seqLost: 0, seqLostActual: 0, seqBefore: 0, peerRestarts: 0, malformed: {},
      sendMalformed: 0, fastPath: {},
    },
    netlink: { events: {}, eventsFiltered: 0, overruns: 0, resyncs: 0 },
    cache: { internal: { active: 0, limit: 0, noSpace: 0 }, external: { active: 0, limit: 0, noSpace: 0 } },
    links: [],
  };
}

describe('MetricsHttpServer', () => {
  let snap: MetricsSnapshot;
  let server: MetricsHttpServer;
  let base: string;
  let port: number;
  let renders: number;
  let release: (() => void) | null;

  const exposition: Exposition = {
    contentType: 'text/plain; version=0.0.4; charset=utf-8',
    async metrics() {
      renders++;
      if (release === null) return 'ctsync_up 1\n';
      await new Promise<void>((r) => (release = r));
      return 'ctsync_up 1\n';
    },
  };

  beforeEach(async () => {
    snap = snapshot();
    renders = 0;
    release = null;
    server = new MetricsHttpServer({ port: 0, source: () => snap, exposition, peerTimeoutMs: 3000 });
    port = (await server.start()).port;
    base = `http://127.0.0.1:${port}`;
  });

  afterEach(async () => {
    await server.stop();
  });

  it('/healthz is 200 only while the loops run', async () => {
    let r = await fetch(`${base}/healthz`);
    expect(r.status).toBe(503);
    snap.running = true;
    r = await fetch(`${base}/healthz`);
    expect(r.status).toBe(200);
    expect(await r.json()).toEqual({ status: 'ok' });
  });

  it('/readyz flips 503 -> 200 as the node gets in sync, and back when the peer goes silent', async () => {
    snap.running = true;
    let r = await fetch(`${base}/readyz`);
    expect(r.status).toBe(503);
    expect(await r.json()).toEqual({
      ready: false, reasons: ['initial-dump-pending', 'hello-pending', 'peer-never-seen', 'resync-pending'],
    });

    snap.initialDumpDone = true;
    snap.sync.helloDone = true;
    snap.sync.lastRecvAgeMs = 100;
    r = await fetch(`${base}/readyz`);
    expect(r.status).toBe(503);
    expect(((await r.json()) as { reasons: string[] }).reasons).toEqual(['resync-pending']);

    snap.sync.resyncPending = false;
    r = await fetch(`${base}/readyz`);
    expect(r.status).toBe(200);
    expect(await r.json()).toEqual({ ready: true });

    snap.sync.lastRecvAgeMs = 3001;
    r = await fetch(`${base}/readyz`);
    expect(r.status).toBe(503);
    expect(((await r.json()) as { reasons: string[] }).reasons).toEqual(['peer-silent']);
  });

  it('answers 404 elsewhere, 405 to other methods, HEAD without a body, and ignores the query string', async () => {
    expect((await fetch(`${base}/`)).status).toBe(404);
    expect((await fetch(`${base}/metrics/x`)).status).toBe(404);
    const post = await fetch(`${base}/metrics`, { method: 'DELETE' });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD');
    const head = await fetch(`${base}/metrics`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(await head.text()).toBe('');
    expect(Number(head.headers.get('content-length'))).toBe('ctsync_up 1\n'.length);
    expect((await fetch(`${base}/metrics?x=1`)).status).toBe(200);
  });

  it('refuses request bodies', async () => {
    const r = await fetch(`${base}/metrics`, { method: 'POST', body: 'x'.repeat(1000) });
    expect(r.status).toBe(413);
  });

  it('rejects oversized headers with 431/400 and keeps serving', async () => {
    const r = await fetch(`${base}/healthz`, { headers: { 'x-big': 'a'.repeat(20_000) } });
    expect([400, 431]).toContain(r.status);
    expect((await fetch(`${base}/healthz`)).status).toBe(503);
  });

  it('renders once for concurrent scrapes', async () => {
    release = () => {};
    const all = Promise.all([1, 2, 3].map(() => fetch(`${base}/metrics`).then((r) => r.text())));
    await new Promise((r) => setTimeout(r, 100));
    expect(renders).toBe(1);
    release();
    expect(await all).toEqual(['ctsync_up 1\n', 'ctsync_up 1\n', 'ctsync_up 1\n']);
  });

  it('answers garbage with 400 and survives', async () => {
    const reply = await new Promise<string>((resolve, reject) => {
      const s = connect(port, '127.0.0.1', () => s.write('NOT HTTP AT ALL\r\n\r\n'));
      let buf = '';
      s.on('data', (d) => (buf += d.toString()));
      s.on('end', () => resolve(buf));
      s.on('error', reject);
    });
    expect(reply).toMatch(/^HTTP\/1\.1 400/);
    expect((await fetch(`${base}/healthz`)).status).toBe(503);
  });
});
