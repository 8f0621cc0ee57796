// The transport seam (conntrackd's channel_ops): the sync layer hands a
// channel whole datagrams and gets whole datagrams back. UDP, multicast, TCP
// and the multi-link wrapper implement it; tests use an in-memory fake.

export interface ChannelStats {
  bytesSent: number;
  bytesRecv: number;
  packetsSent: number;
  packetsRecv: number;
  errorsSent: number;
  errorsRecv: number;
}

export type LinkStatus = 'RUNNING' | 'NO-CARRIER' | 'DOWN';

export interface Channel {
  /** 'UDP' | 'multicast' | 'TCP', as the -s output names them. */
  readonly kind: 'UDP' | 'multicast' | 'TCP';
  /** Interface the link is bound to (for -s link and failover). */
  readonly ifname: string;
  /**
   * Largest datagram the sync layer may hand to send(): MTU − IP/UDP header
   * − 1, as conntrackd sizes it (§1.6 of the spec).
   */
  readonly maxDatagram: number;
  open(): Promise<void>;
  /**
   * Sends one datagram (which may hold many messages). Never throws; errors
   * are counted. The buffer is the caller's again once send() returns (the
   * sync engine reuses it for the next datagram): a link that needs it later
   * (a queue, a stream, a socket that pushed back) keeps a copy.
   */
  send(datagram: Buffer): void;
  /** Called once per received datagram. The buffer may be reused after the call returns. */
  onMessage(cb: (datagram: Buffer, from: { address: string; port: number }) => void): void;
  close(): Promise<void>;
  /**
   * SIGHUP: re-reads the files the link was opened with (TLS certificates),
   * for connections made from now on. Throws (the old material stays in use)
   * when they cannot be loaded. Links without such files need not have it.
   */
  reloadFiles?(): void;
  stats(): ChannelStats;
  status(): LinkStatus;
  /**
   * Optional: the sending socket and destination the addon may send on this
   * link's behalf (the lone-event fast path, src/daemon/fast-path.ts), or null
   * when the link's datagrams do not go out as they are on one fixed socket
   * (sealed, TCP, several links, no capable addon).
   */
  directTarget?(): DirectTarget | null;
  /** Counts a datagram the addon sent to directTarget() as this link's. */
  countDirect?(bytes: number): void;
}

/** A UDP socket's fd and the struct sockaddr its datagrams go to. */
export interface DirectTarget {
  fd: number;
  dest: Buffer;
}
