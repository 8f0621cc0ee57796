// Request codes of the UNIX control socket, numbered exactly as conntrackd
// 1.4.7 numbers them (spec ftfw.md §4.2): keepalived scripts and any
// conntrackd binary used as a client send these raw numbers, so they are wire
// format, not an internal enum.

export const CTL = {
  CT_FLUSH_MASTER: 0,
  CT_RESYNC_MASTER: 1,
  CT_DUMP_INTERNAL: 16,
  CT_DUMP_EXTERNAL: 17,
  CT_COMMIT: 18,
  CT_FLUSH_CACHE: 19,
  KILL: 20,
  STATS: 21,
  SEND_BULK: 22,
  REQUEST_DUMP: 23,
  CT_DUMP_INT_XML: 24,
  CT_DUMP_EXT_XML: 25,
  RESET_TIMERS: 26,
  DEBUG_INFO: 27,
  STATS_NETWORK: 28,
  STATS_CACHE: 29,
  STATS_RUNTIME: 30,
  STATS_LINK: 31,
  STATS_RSQUEUE: 32,
  CT_FLUSH_INT_CACHE: 33,
  CT_FLUSH_EXT_CACHE: 34,
  STATS_PROCESS: 35,
  STATS_QUEUE: 36,
  EXP_STATS: 37,
  EXP_FLUSH_MASTER: 38,
  EXP_RESYNC_MASTER: 39,
  EXP_DUMP_INTERNAL: 40,
  EXP_DUMP_EXTERNAL: 41,
  EXP_COMMIT: 42,
  ALL_FLUSH_MASTER: 43,
  ALL_RESYNC_MASTER: 44,
  ALL_FLUSH_CACHE: 45,
  ALL_COMMIT: 46,
  EXP_DUMP_INT_XML: 47,
  EXP_DUMP_EXT_XML: 48,
} as const;

export type CtlName = keyof typeof CTL;
export type CtlCode = (typeof CTL)[CtlName];

/**
 * ctsync extension: a request whose int32 has this bit set asks for the JSON
 * rendering of the same command (`ctsync -s --json`). conntrackd's codes stop
 * at 48 and a conntrackd client never sets it, so plain requests are
 * unaffected; a conntrackd daemon receiving it just closes (unknown code),
 * which the ctsync client reports as empty output.
 */
export const CTL_FLAG_JSON = 0x10000;

/** Mask of the code part of a request word. */
export const CTL_CODE_MASK = 0xffff;

const NAMES = new Map<number, CtlName>(
  (Object.entries(CTL) as [CtlName, number][]).map(([name, code]) => [code, name]),
);

/** The conntrackd name of a code (for logs), or undefined if conntrackd has no such request. */
export function ctlName(code: number): CtlName | undefined {
  return NAMES.get(code);
}

export function isKnownCode(code: number): code is CtlCode {
  return NAMES.has(code);
}

/** Splits a request word into its conntrackd code and the ctsync JSON flag. */
export function decodeRequest(word: number): { code: number; json: boolean } {
  // Only a word that is exactly "known code | JSON flag" is a JSON request;
  // anything else (negative, other high bits) stays an unknown code as is.
  if (word > 0 && (word & ~(CTL_CODE_MASK | CTL_FLAG_JSON)) === 0 && (word & CTL_FLAG_JSON) !== 0) {
    return { code: word & CTL_CODE_MASK, json: true };
  }
  return { code: word, json: false };
}

export function encodeRequest(code: number, json = false): number {
  return json ? (code | CTL_FLAG_JSON) : code;
}
