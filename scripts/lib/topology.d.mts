// Types for topology.mjs (plain JS so the demo runs without a TypeScript loader).
import type { ChildProcess, SpawnOptions } from 'node:child_process';

export const REPO_ROOT: string;
export const CTSYNC_BIN: string;
export const NOTIFY_SCRIPT: string;
export const STREAM_SCRIPT: string;

export interface FwAddr { readonly out: string; readonly in: string; readonly sync: string; readonly priority: number }
export const ADDR: {
  readonly client: string; readonly server: string; readonly outVip: string; readonly inVip: string;
  readonly dnatPort: number; readonly serverPort: number; readonly fw: readonly [FwAddr, FwAddr];
};

export interface RunResult { status: number; stdout: string; stderr: string }
export interface RunOpts { allowFail?: boolean; timeoutMs?: number; input?: string; env?: NodeJS.ProcessEnv }
export function run(cmd: string, args: string[], opts?: RunOpts): RunResult;
export function sleep(ms: number): Promise<void>;
export function waitFor<T>(fn: () => T | Promise<T>, what: string, timeoutMs?: number, stepMs?: number): Promise<T>;
export function daemonNodeFlags(): string[];
export function ctsyncConfig(i: 0 | 1, dir: string, opts?: { readyFile?: string; peerTimeout?: number }): string;
export function keepalivedConfig(i: 0 | 1, opts: { notify: string; advertInt?: number; trackFile?: string }): string;

export interface TopologyOptions {
  tag?: string;
  advertInt?: number;
  ctsync?: boolean;
  /** The sync daemon: ctsync (default) or Debian's conntrackd with primary-backup.sh (benchmark reference). */
  daemon?: 'ctsync' | 'conntrackd';
  rtoMinMs?: number;
  /** ctsync writes Ctsync { ReadyFile } to readyFilePath(i). */
  readyFile?: boolean;
  /** Ctsync { PeerTimeout } (s), with readyFile. */
  peerTimeout?: number;
  /** keepalived tracks readyFilePath(i) as a track_file (weight 1, init_file -253). */
  trackFile?: boolean;
  log?: (line: string) => void;
}

export interface NotifyEntry { t: number; text: string }
export type Fw = 0 | 1;

export class HaTopology {
  constructor(opts?: TopologyOptions);
  readonly opts: Required<TopologyOptions>;
  readonly id: string;
  readonly dir: string;
  readonly ns: { sw: string; client: string; server: string; fw: [string, string] };
  readonly fwDir: [string, string];
  readonly ctsyncProcs: [ChildProcess | null, ChildProcess | null];
  readonly keepalivedProcs: [ChildProcess | null, ChildProcess | null];
  readonly output: { ctsync: [string, string]; keepalived: [string, string] };
  exec(ns: string, cmd: string, args: string[], opts?: RunOpts): RunResult;
  sh(ns: string, script: string, opts?: RunOpts): RunResult;
  spawn(ns: string, cmd: string, args: string[], opts?: SpawnOptions): ChildProcess;
  build(): void;
  writeConfigs(): void;
  confPath(i: Fw): string;
  socketPath(i: Fw): string;
  readyFilePath(i: Fw): string;
  readyValue(i: Fw): string | null;
  stopCtsync(i: Fw): Promise<void>;
  ctsync(i: Fw, args: string[], allowFail?: boolean): RunResult;
  daemonCommand(): [string, string[]];
  conntrackdWrapper(dir: string): string;
  startCtsync(i: Fw): Promise<void>;
  startKeepalived(i: Fw): ChildProcess;
  stopKeepalived(i: Fw): Promise<void>;
  failLinks(i: Fw): void;
  master(): number;
  notifyLog(i: Fw): NotifyEntry[];
  notifyEvent(i: Fw, re: RegExp, since?: number): NotifyEntry | null;
  ctsyncLog(i: Fw): string;
  start(): Promise<void>;
  startStream(opts?: { bytesPerTick?: number; tickMs?: number }): Promise<Stream>;
  cleanup(): Promise<void>;
  cleanupSync(): void;
  removeDir(): void;
}

export interface Gap { start: number; end: number; ms: number }
export interface StreamStatus {
  t: number; ev: 'status' | 'end'; bytes: number; ok: boolean; firstBad: number | null;
  maxGapMs: number; gaps: Gap[]; lastReadAt: number;
}
export interface StreamEvent { t: number; ev: string; [k: string]: unknown }

export class Stream {
  recv: ChildProcess | null;
  send: ChildProcess | null;
  recvEvents: StreamEvent[];
  sendEvents: StreamEvent[];
  status(): StreamStatus | null;
  error(): StreamEvent | null;
  finish(timeoutMs?: number): Promise<{ sent: StreamEvent; end: StreamEvent | null }>;
}
