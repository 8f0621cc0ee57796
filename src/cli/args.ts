// Command-line parsing. keepalived notify scripts call the ctsync binary with
// conntrackd's options, so those are parsed exactly as conntrackd 1.4.7's
// main() does (spec ftfw.md §4.3). That parser cannot be expressed with
// commander or any getopt-style library: it looks only at the *second
// character* of each word (`-stats` is `-s`, and a bare word such as `stats`
// is `-t`), matches sub-arguments as prefixes (`-s net`), lets some options
// take an optional next word but leave a non-matching one to be parsed as an
// option itself, and makes `-x` depend on the previous action. So the short
// options are parsed by hand, below; commander handles only what ctsync adds
// (`--check`, `--json`, `--version`, `--help` and the `notify` subcommand),
// which conntrackd would reject anyway (its `--x` is always an unknown option).
//
// Deliberate difference: conntrackd 1.4.7 prints the usage and exits 0 on an
// unknown option; ctsync exits 1, because keepalived scripts test the exit
// status and a typo must not look like success.
import { Argument, Command, CommanderError, Option } from 'commander';
import { CTL } from '../control/codes.js';

export const DEFAULT_CONFIG = '/etc/conntrackd/conntrackd.conf';
/** conntrackd copies -C into a PATH_MAX buffer and truncates longer names. */
const PATH_MAX = 4096;

export type NotifyState = 'master' | 'backup' | 'fault';

export type CliAction =
  | {
    mode: 'daemon'; config: string;
    /** -d given; without it the daemon stays in the foreground (conntrackd's console mode). */
    daemonize: boolean;
    /** --check: validate the configuration and exit. */
    check: boolean;
    /** Non-fatal diagnostics to log as conntrackd does (e.g. a missing -C argument). */
    warnings: string[];
    /** Print the usage to stdout before going on (conntrackd does so for a missing -C argument). */
    showUsage: boolean;
  }
  | {
    mode: 'client'; config: string;
    /** Request code to send; -1 only in conntrackd's odd corner (`-i zC x`) where no action was ever set. */
    code: number;
    json: boolean;
    warnings: string[];
    showUsage: boolean;
  }
  | { mode: 'version' }
  | { mode: 'help' }
  | { mode: 'notify'; config: string; state: NotifyState }
  | {
    mode: 'error';
    /** The diagnostic as conntrackd logs it (print with formatLogLine('ERROR', ...)). */
    message: string;
    exitCode: number;
    /** conntrackd prints the usage on stdout before this error. */
    showUsage: boolean;
  };

class ParseFailure extends Error {
  constructor(message: string, readonly showUsage: boolean) {
    super(message);
  }
}

/** Parses the arguments after the program name (process.argv.slice(2)). */
export function parseArgs(argv: string[]): CliAction {
  try {
    if (argv[0] === 'notify') return parseNotify(argv.slice(1));
    // `ctsync -C file notify STATE`: the order keepalived configs naturally use.
    if (argv[0] === '-C' && argv[2] === 'notify' && argv[1] !== undefined) return parseNotify([...argv.slice(3), '-C', argv[1]]);
    return parseCompat(argv);
  } catch (err) {
    if (err instanceof ParseFailure) return { mode: 'error', message: err.message, exitCode: 1, showUsage: err.showUsage };
    if (err instanceof CommanderError) return { mode: 'error', message: err.message.replace(/^error: /, ''), exitCode: 1, showUsage: true };
    throw err;
  }
}

const enum OpMode { NotSet, Daemon, Request }

interface Longs {
  check: boolean;
  json: boolean;
  version: boolean;
  help: boolean;
}

function parseCompat(argv: string[]): CliAction {
  let type = OpMode.NotSet as OpMode;
  let action = -1;
  let config: string | undefined;
  const warnings: string[] = [];
  let showUsage = false;
  const longWords: string[] = [];

  const setMode = (want: OpMode): void => {
    if (type === OpMode.NotSet) type = want;
    else if (type !== want) throw new ParseFailure('Invalid parameters', true);
  };
  // -c/-i/-e/-F/-R: an optional "ct" or "expect" (prefix) word. A word that
  // matches neither is left alone and becomes the next option; the action is
  // then not touched at all (conntrackd's set_action_by_table).
  const byTable = (i: number, ct: number, exp: number, dfl: number): number => {
    const next = argv[i + 1];
    if (next !== undefined && !next.startsWith('-')) {
      if (isPrefixOf(next, 'ct')) { action = ct; return i + 1; }
      if (isPrefixOf(next, 'expect')) { action = exp; return i + 1; }
      return i;
    }
    action = dfl;
    return i;
  };

  for (let i = 0; i < argv.length; i++) {
    const word = argv[i]!;
    if (word.length > 2 && word.startsWith('--')) {
      longWords.push(word);
      continue;
    }
    switch (word.charAt(1)) {
      case 'd':
        setMode(OpMode.Daemon);
        break;
      case 'c':
        setMode(OpMode.Request);
        i = byTable(i, CTL.CT_COMMIT, CTL.EXP_COMMIT, CTL.ALL_COMMIT);
        break;
      case 'i':
        setMode(OpMode.Request);
        i = byTable(i, CTL.CT_DUMP_INTERNAL, CTL.EXP_DUMP_INTERNAL, CTL.CT_DUMP_INTERNAL);
        break;
      case 'e':
        setMode(OpMode.Request);
        i = byTable(i, CTL.CT_DUMP_EXTERNAL, CTL.EXP_DUMP_EXTERNAL, CTL.CT_DUMP_EXTERNAL);
        break;
      case 'F':
        setMode(OpMode.Request);
        i = byTable(i, CTL.CT_FLUSH_MASTER, CTL.EXP_FLUSH_MASTER, CTL.ALL_FLUSH_MASTER);
        break;
      case 'R':
        setMode(OpMode.Request);
        i = byTable(i, CTL.CT_RESYNC_MASTER, CTL.EXP_RESYNC_MASTER, CTL.ALL_RESYNC_MASTER);
        break;
      case 'C':
        if (i + 1 < argv.length) {
          let file = argv[++i]!;
          if (file.length >= PATH_MAX) {
            file = file.slice(0, PATH_MAX - 1);
            warnings.push(`Path to config file to long. Cutting it down to ${PATH_MAX} characters`);
          }
          config = file;
        } else {
          // conntrackd prints the usage, logs, and carries on with the default file.
          showUsage = true;
          warnings.push('Missing config filename');
        }
        break;
      case 'f': {
        setMode(OpMode.Request);
        const next = argv[i + 1];
        if (next !== undefined && !next.startsWith('-')) {
          if (isPrefixOf(next, 'internal')) action = CTL.CT_FLUSH_INT_CACHE;
          else if (isPrefixOf(next, 'external')) action = CTL.CT_FLUSH_EXT_CACHE;
          else throw new ParseFailure(`unknown parameter \`${next}' for option \`-f'`, false);
          i++;
        } else {
          action = CTL.ALL_FLUSH_CACHE;
        }
        break;
      }
      case 'B':
        setMode(OpMode.Request);
        action = CTL.SEND_BULK;
        break;
      case 't':
        setMode(OpMode.Request);
        action = CTL.RESET_TIMERS;
        break;
      case 'k':
        setMode(OpMode.Request);
        action = CTL.KILL;
        break;
      case 'n':
        setMode(OpMode.Request);
        action = CTL.REQUEST_DUMP;
        break;
      case 's': {
        setMode(OpMode.Request);
        const next = argv[i + 1];
        if (next !== undefined && !next.startsWith('-')) {
          const hit = STATS_WORDS.find(([w]) => isPrefixOf(next, w));
          if (!hit) throw new ParseFailure(`unknown parameter \`${next}' for option \`-s'`, false);
          if (hit[0] === 'multicast') warnings.push("use `link' instead of `multicast' as parameter.");
          action = hit[1];
          i++;
        } else {
          action = CTL.STATS;
        }
        break;
      }
      case 'x': {
        const xml = XML_OF.get(action);
        if (xml === undefined) throw new ParseFailure('Invalid parameters', true);
        action = xml;
        break;
      }
      case 'v':
        return { mode: 'version' };
      case 'h':
        return { mode: 'help' };
      default:
        throw new ParseFailure(`Unknown option: ${word}`, true);
    }
  }

  const longs = parseLongs(longWords);
  if (longs.help) return { mode: 'help' };
  if (longs.version) return { mode: 'version' };
  const cfg = config ?? DEFAULT_CONFIG;
  if (type === OpMode.Request) {
    if (longs.check) throw new ParseFailure('Invalid parameters', true);
    return { mode: 'client', config: cfg, code: action, json: longs.json, warnings, showUsage };
  }
  if (longs.json) throw new ParseFailure('Invalid parameters', true);
  return { mode: 'daemon', config: cfg, daemonize: type === OpMode.Daemon, check: longs.check, warnings, showUsage };
}

/** conntrackd's `strncmp(word, full, strlen(word)) == 0`: word is a prefix of full (the empty word matches). */
function isPrefixOf(word: string, full: string): boolean {
  return full.startsWith(word);
}

/** -s sub-arguments, in conntrackd's matching order (so "c" is cache, "r" is runtime, "" is network). */
const STATS_WORDS: ReadonlyArray<readonly [string, number]> = [
  ['network', CTL.STATS_NETWORK],
  ['cache', CTL.STATS_CACHE],
  ['runtime', CTL.STATS_RUNTIME],
  ['multicast', CTL.STATS_LINK],
  ['link', CTL.STATS_LINK],
  ['rsqueue', CTL.STATS_RSQUEUE],
  ['process', CTL.STATS_PROCESS],
  ['queue', CTL.STATS_QUEUE],
  ['ct', CTL.STATS],
  ['expect', CTL.EXP_STATS],
];

const XML_OF = new Map<number, number>([
  [CTL.CT_DUMP_INTERNAL, CTL.CT_DUMP_INT_XML],
  [CTL.CT_DUMP_EXTERNAL, CTL.CT_DUMP_EXT_XML],
  [CTL.EXP_DUMP_INTERNAL, CTL.EXP_DUMP_INT_XML],
  [CTL.EXP_DUMP_EXTERNAL, CTL.EXP_DUMP_EXT_XML],
]);

function quietCommand(name: string): Command {
  return new Command(name)
    .exitOverride()
    .configureOutput({ writeOut: () => {}, writeErr: () => {}, outputError: () => {} })
    .helpOption(false);
}

function parseLongs(words: string[]): Longs {
  if (words.length === 0) return { check: false, json: false, version: false, help: false };
  const cmd = quietCommand('ctsync')
    .addOption(new Option('--check', 'validate the configuration and exit'))
    .addOption(new Option('--json', 'JSON output for -s, -i, -e'))
    .addOption(new Option('--version', 'print the version'))
    .addOption(new Option('--help', 'print the usage'))
    .allowExcessArguments(false);
  cmd.parse(words, { from: 'user' });
  const o = cmd.opts<Partial<Longs>>();
  return { check: o.check === true, json: o.json === true, version: o.version === true, help: o.help === true };
}

/**
 * `ctsync notify master|backup|fault [-C file]`: what keepalived's notify
 * hooks call instead of primary-backup.sh. The state is matched without case
 * because keepalived passes it upper-case (MASTER) to notify scripts.
 */
function parseNotify(words: string[]): CliAction {
  const cmd = quietCommand('notify')
    .addArgument(new Argument('<state>', 'new VRRP state').choices(['master', 'backup', 'fault']))
    .addOption(new Option('-C, --config <file>', 'configuration file').default(DEFAULT_CONFIG))
    .allowExcessArguments(false);
  const normalized = words.map((w) => (/^(master|backup|fault)$/i.test(w) ? w.toLowerCase() : w));
  cmd.parse(normalized, { from: 'user' });
  const state = cmd.processedArgs[0] as NotifyState;
  return { mode: 'notify', config: cmd.opts<{ config: string }>().config, state };
}
