// The operator endpoint: /metrics for Prometheus, /healthz for "is the
// process alive", /readyz for "may this node take over" (the same rule the
// keepalived track file uses). It faces the management network, so every
// request is bounded: GET/HEAD only, small headers, no bodies, short timeouts,
// few connections, and one exposition rendered at a time.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { silentLogger, type Logger } from '../log/logger.js';
import { evaluateReadiness, type ReadinessOptions } from '../ops/readiness.js';
import type { MetricsSource } from './types.js';

/** Anything that renders an exposition (PrometheusMetrics does). */
export interface Exposition {
  readonly contentType: string;
  metrics(): Promise<string>;
}

export interface MetricsHttpServerOptions extends ReadinessOptions {
  /** Config Ctsync.Metrics address; default 127.0.0.1. */
  host?: string;
  /** 0 = ephemeral (tests). */
  port: number;
  source: MetricsSource;
  exposition: Exposition;
  log?: Logger;
  maxConnections?: number;
  /** Whole-request deadline (headers included). */
  requestTimeoutMs?: number;
}

export class MetricsHttpServer {
  private server: Server | null = null;
  private rendering: Promise<string> | null = null;
  private readonly log: Logger;

  constructor(private readonly opts: MetricsHttpServerOptions) {
    this.log = opts.log ?? silentLogger;
  }

  async start(): Promise<AddressInfo> {
    const timeout = this.opts.requestTimeoutMs ?? 5000;
    const server = createServer({ maxHeaderSize: 8192, requestTimeout: timeout, headersTimeout: Math.min(timeout, 5000), keepAliveTimeout: 5000 },
      (req, res) => this.handle(req, res));
    server.maxConnections = this.opts.maxConnections ?? 16;
    server.maxRequestsPerSocket = 100;
    server.on('clientError', (_e, sock) => {
      if (sock.writable) sock.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
      else sock.destroy();
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: this.opts.host ?? '127.0.0.1', port: this.opts.port }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', (e) => this.log.error({ err: e }, 'metrics server error'));
    this.server = server;
    return server.address() as AddressInfo;
  }

  address(): AddressInfo | null {
    return (this.server?.address() as AddressInfo | null) ?? null;
  }

  async stop(): Promise<void> {
    const s = this.server;
    this.server = null;
    if (!s) return;
    await new Promise<void>((resolve) => {
      s.close(() => resolve());
      s.closeAllConnections();
    });
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    // Bodies are never read; a client that sends one gets its connection closed.
    if ((req.headers['content-length'] && req.headers['content-length'] !== '0') || req.headers['transfer-encoding']) {
      res.shouldKeepAlive = false;
      return send(res, 413, 'text/plain', 'request body not accepted\n');
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD');
      return send(res, 405, 'text/plain', 'method not allowed\n');
    }
    const path = (req.url ?? '/').split('?', 1)[0];
    switch (path) {
      case '/metrics':
        return void this.serveMetrics(res);
      case '/healthz':
        return this.serveHealth(res);
      case '/readyz':
        return this.serveReady(res);
      default:
        return send(res, 404, 'text/plain', 'not found\n');
    }
  }

  private async serveMetrics(res: ServerResponse): Promise<void> {
    try {
      // Concurrent scrapes share one rendering: a burst costs one snapshot.
      this.rendering ??= this.opts.exposition.metrics().finally(() => (this.rendering = null));
      const body = await this.rendering;
      send(res, 200, this.opts.exposition.contentType, body);
    } catch (e) {
      this.log.warn({ err: e }, 'metrics rendering failed');
      send(res, 500, 'text/plain', 'metrics unavailable\n');
    }
  }

  private serveHealth(res: ServerResponse): void {
    let running = false;
    try {
      running = this.opts.source().running;
    } catch (e) {
      this.log.warn({ err: e }, 'health snapshot failed');
    }
    sendJson(res, running ? 200 : 503, { status: running ? 'ok' : 'not running' });
  }

  private serveReady(res: ServerResponse): void {
    let r;
    try {
      r = evaluateReadiness(this.opts.source(), this.opts);
    } catch (e) {
      this.log.warn({ err: e }, 'readiness snapshot failed');
      r = { ready: false, reasons: ['snapshot-failed'] };
    }
    sendJson(res, r.ready ? 200 : 503, r.ready ? { ready: true } : { ready: false, reasons: r.reasons });
  }
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  send(res, status, 'application/json', `${JSON.stringify(body)}\n`);
}

function send(res: ServerResponse, status: number, type: string, body: string): void {
  if (res.headersSent || res.destroyed) return;
  res.writeHead(status, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(body), 'Cache-Control': 'no-store' });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}
