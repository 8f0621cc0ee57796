// Tokenizer for conntrackd.conf.
//
// conntrackd's flex lexer classifies words up front (number, IP, path, string,
// keyword) with longest-match rules, which makes some odd results (an
// interface named "dead" lexes as an IPv6 address). Here the lexer only splits
// the text into words and braces; the parser decides what a word must be in
// its position, so error messages can say what was expected there.

import { ConfigError } from '../errors.js';

export type TokenKind = 'word' | '{' | '}' | 'eof';

export interface Token {
  kind: TokenKind;
  /** The word itself; '{', '}' or '' (eof) for the others. */
  text: string;
  line: number;
}

/** Files larger than this are refused: a real conntrackd.conf is a few KiB. */
export const MAX_CONFIG_BYTES = 1024 * 1024;
/** A single word longer than this is junk, not configuration (paths are ≤ 4096). */
const MAX_WORD = 4096;

// Characters a non-path word may contain: keywords, numbers (signed for Nice),
// IPv4/IPv6 with /cidr, interface and helper names.
const WORD_CHAR = /[A-Za-z0-9._:/+\-@]/;

function isSpace(c: string): boolean {
  return c === ' ' || c === '\t' || c === '\n' || c === '\r';
}

function describeChar(c: string): string {
  const code = c.codePointAt(0) ?? 0;
  if (code >= 0x21 && code <= 0x7e) return `'${c}'`;
  return `byte 0x${code.toString(16).padStart(2, '0')}`;
}

/**
 * Splits `text` into tokens. Comments run from '#' (at the start of a token) to
 * the end of the line. A word that starts with '/' is a path and runs up to
 * whitespace or a brace, so paths may contain characters other words may not.
 * Throws CTSYNC_ERR_CONFIG_SYNTAX on a character no conntrackd token can hold.
 */
export function tokenize(text: string, file: string): Token[] {
  if (text.length > MAX_CONFIG_BYTES) {
    throw new ConfigError('CTSYNC_ERR_CONFIG_SYNTAX',
      `file is ${text.length} bytes, more than the ${MAX_CONFIG_BYTES} a configuration may have`, file, 1);
  }
  const tokens: Token[] = [];
  let line = 1;
  // A byte-order mark (UTF-8, read either as text or as latin1 bytes) is an editor artefact, not content.
  let i = text.startsWith('\uFEFF') ? 1 : text.startsWith('\u00EF\u00BB\u00BF') ? 3 : 0;
  const n = text.length;
  while (i < n) {
    const c = text[i]!;
    if (c === '\n') { line++; i++; continue; }
    if (isSpace(c)) { i++; continue; }
    if (c === '#') {
      while (i < n && text[i] !== '\n') i++;
      continue;
    }
    if (c === '{' || c === '}') {
      tokens.push({ kind: c, text: c, line });
      i++;
      continue;
    }
    const start = i;
    if (c === '/') {
      // Path: anything printable up to whitespace or a brace ('#' included, as in conntrackd).
      while (i < n) {
        const d = text[i]!;
        if (isSpace(d) || d === '{' || d === '}') break;
        const code = d.charCodeAt(0);
        if (code < 0x20 || code === 0x7f || d === '"') {
          throw new ConfigError('CTSYNC_ERR_CONFIG_SYNTAX', `unexpected ${describeChar(d)} in path`, file, line);
        }
        i++;
      }
    } else if (WORD_CHAR.test(c)) {
      while (i < n && WORD_CHAR.test(text[i]!)) i++;
    } else {
      throw new ConfigError('CTSYNC_ERR_CONFIG_SYNTAX',
        `unexpected ${describeChar(c)}; expected a keyword, a value, '{', '}' or '#'`, file, line);
    }
    if (i - start > MAX_WORD) {
      throw new ConfigError('CTSYNC_ERR_CONFIG_SYNTAX', `word of ${i - start} characters is too long`, file, line);
    }
    tokens.push({ kind: 'word', text: text.slice(start, i), line });
  }
  // End of file is reported on the last line that held something, not on the empty line after it.
  tokens.push({ kind: 'eof', text: '', line: tokens.length > 0 ? tokens[tokens.length - 1]!.line : 1 });
  return tokens;
}

/** How a token reads in an error message: 'Port', '{', end of file. */
export function describeToken(t: Token): string {
  if (t.kind === 'eof') return 'end of file';
  const shown = t.text.length > 40 ? `${t.text.slice(0, 40)}…` : t.text;
  return `'${shown}'`;
}
