// The sync-link key file (Ctsync { KeyFile /path }): one pre-shared 256-bit
// key per line as `<id> <64 hex digits>`, `#` starts a comment. The first key
// sends; every key listed is accepted on receive, which is what makes rotation
// possible without a pause (add, reload, promote, reload, remove, reload).
// The file must be private to its owner: a key readable by others is refused.
import { readFileSync, statSync } from 'node:fs';
import { ConfigError } from '../errors.js';

/** Key ids are carried in one header byte. */
export const MAX_KEY_ID = 255;
export const KEY_BYTES = 32;

export interface SyncKey {
  readonly id: number;
  readonly key: Buffer;
}

export interface Keyring {
  /** The key new datagrams are sealed with (the first line of the file). */
  readonly send: SyncKey;
  /** Every key accepted on receive, by id (the sending key included). */
  readonly byId: ReadonlyMap<number, SyncKey>;
  readonly file: string;
}

/**
 * Parses key file text. Throws ConfigError (CTSYNC_ERR_CONFIG_INVALID) naming
 * `file:line` for a malformed line, a duplicate id or a file without keys.
 * Error messages never contain key material.
 */
export function parseKeyFile(text: string, file: string): Keyring {
  const keys: SyncKey[] = [];
  const byId = new Map<number, SyncKey>();
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const lineNo = i + 1;
    const hash = lines[i]!.indexOf('#');
    const line = (hash >= 0 ? lines[i]!.slice(0, hash) : lines[i]!).trim();
    if (line === '') continue;
    const fields = line.split(/\s+/);
    if (fields.length !== 2) {
      throw invalid(`expected '<id> <64 hex digits>', got ${fields.length} field${fields.length === 1 ? '' : 's'}`, file, lineNo);
    }
    const [idText, hex] = fields as [string, string];
    if (!/^\d{1,3}$/.test(idText) || Number(idText) > MAX_KEY_ID) {
      throw invalid(`key id must be an integer 0..${MAX_KEY_ID}`, file, lineNo);
    }
    const id = Number(idText);
    if (!/^[0-9a-fA-F]+$/.test(hex)) throw invalid(`key ${id}: key must be hexadecimal`, file, lineNo);
    if (hex.length !== KEY_BYTES * 2) {
      throw invalid(`key ${id}: key must be ${KEY_BYTES * 2} hex digits (${KEY_BYTES} bytes), got ${hex.length}`, file, lineNo);
    }
    const key = Buffer.from(hex, 'hex');
    if (key.every((b) => b === 0)) throw invalid(`key ${id}: an all-zero key is not a key`, file, lineNo);
    if (byId.has(id)) throw invalid(`key id ${id} appears twice`, file, lineNo);
    const k = { id, key };
    keys.push(k);
    byId.set(id, k);
  }
  if (keys.length === 0) throw invalid('no key in file (expected lines of \'<id> <64 hex digits>\')', file, undefined);
  return { send: keys[0]!, byId, file };
}

export interface LoadOptions {
  /** Refuse files with any group or other permission bits (default true). */
  checkMode?: boolean;
}

/** Reads and parses a key file, refusing one that group or others may access. */
export function loadKeyFile(path: string, opts: LoadOptions = {}): Keyring {
  let text: string;
  try {
    const st = statSync(path);
    if (!st.isFile()) throw new ConfigError('CTSYNC_ERR_CONFIG_IO', 'key file is not a regular file', path, undefined);
    if ((opts.checkMode ?? true) && (st.mode & 0o077) !== 0) {
      throw new ConfigError('CTSYNC_ERR_CONFIG_INVALID',
        `key file is accessible by group or others (mode ${(st.mode & 0o777).toString(8).padStart(4, '0')}); run chmod 600 ${path}`,
        path, undefined);
    }
    text = readFileSync(path, 'utf8');
  } catch (e) {
    if (e instanceof ConfigError) throw e;
    const code = (e as NodeJS.ErrnoException).code ?? 'EIO';
    throw new ConfigError('CTSYNC_ERR_CONFIG_IO', `cannot read key file (${code})`, path, undefined, { errno: code });
  }
  return parseKeyFile(text, path);
}

function invalid(message: string, file: string, line: number | undefined): ConfigError {
  return new ConfigError('CTSYNC_ERR_CONFIG_INVALID', message, file, line);
}
