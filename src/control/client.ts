// Client side of the control socket (conntrackd's do_local_request): send one
// native-endian int32, read text until the daemon closes.
import net from 'node:net';
import os from 'node:os';
import { ControlError } from '../errors.js';
import { encodeRequest } from './codes.js';

export interface SendRequestOptions {
  /** Gives up when the daemon sends nothing for this long (conntrackd waits forever; a script should not). */
  timeoutMs: number;
  /** Ask for ctsync's JSON rendering (sets CTL_FLAG_JSON). */
  json?: boolean;
  /** Receives each chunk as it arrives (large dumps); the result string is then empty. */
  onChunk?: (text: string) => void;
  /** Bound on the collected reply when no onChunk is given. Default 512 MiB. */
  maxBytes?: number;
}

export function sendRequest(path: string, code: number, opts: SendRequestOptions): Promise<string> {
  const maxBytes = opts.maxBytes ?? 512 * 1024 * 1024;
  return new Promise<string>((resolve, reject) => {
    const chunks: string[] = [];
    let size = 0;
    let connected = false;
    let settled = false;
    const socket = net.connect({ path });
    socket.setEncoding('utf8');
    const fail = (err: Error): void => {
      if (settled) return;
      settled = true;
      socket.destroy();
      reject(err);
    };
    socket.setTimeout(opts.timeoutMs, () => {
      fail(connected
        ? new ControlError('CTSYNC_ERR_CTL_PROTOCOL', `no reply from the daemon on ${path} within ${opts.timeoutMs} ms`, { path, code })
        : new ControlError('CTSYNC_ERR_CTL_CONNECT', `can't connect to ${path}: timed out`, { path }));
    });
    socket.once('connect', () => {
      connected = true;
      const req = Buffer.alloc(4);
      const word = encodeRequest(code, opts.json ?? false);
      if (os.endianness() === 'LE') req.writeInt32LE(word | 0, 0); else req.writeInt32BE(word | 0, 0);
      socket.write(req);
    });
    socket.on('data', (text: string) => {
      if (opts.onChunk) {
        opts.onChunk(text);
        return;
      }
      size += Buffer.byteLength(text);
      if (size > maxBytes) {
        fail(new ControlError('CTSYNC_ERR_CTL_PROTOCOL', `reply from ${path} exceeds ${maxBytes} bytes`, { path, code }));
        return;
      }
      chunks.push(text);
    });
    socket.once('end', () => {
      if (settled) return;
      settled = true;
      socket.destroy();
      resolve(chunks.join(''));
    });
    socket.once('error', (err: NodeJS.ErrnoException) => {
      if (!connected) {
        fail(new ControlError('CTSYNC_ERR_CTL_CONNECT', `can't connect to ${path}: ${err.code ?? err.message}`,
          { path, errno: err.code }));
        return;
      }
      // The daemon reset the connection mid-reply (e.g. -k): what arrived is the answer.
      if (err.code === 'ECONNRESET' || err.code === 'EPIPE') {
        if (settled) return;
        settled = true;
        resolve(chunks.join(''));
        return;
      }
      fail(new ControlError('CTSYNC_ERR_CTL_PROTOCOL', `control socket ${path}: ${err.message}`, { path, errno: err.code }));
    });
  });
}
