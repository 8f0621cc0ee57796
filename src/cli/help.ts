// Texts the command line prints: usage (-h), version (-v) and the
// conntrackd-style log line a client prints on stderr. The usage lists the
// same options, in the same order and grouping, as conntrackd 1.4.7's, so an
// operator who knows one reads the other; the wording is ctsync's own.

export const CTSYNC_VERSION = '0.1.0';
export const CONNTRACKD_COMPAT_VERSION = '1.4.7';

export function usageText(progname = 'ctsync', version = CTSYNC_VERSION): string {
  return [
    `ctsync v${version}: conntrack state replication daemon (conntrackd ${CONNTRACKD_COMPAT_VERSION} compatible)`,
    `Usage: ${progname} [commands] [options]`,
    '',
    'General commands:',
    '  -d, detach and run as a daemon (default: stay in the foreground)',
    '  -C [configfile], read this configuration file (default /etc/conntrackd/conntrackd.conf)',
    '  -v, print the version',
    '  -h, print this help',
    '',
    'Client mode commands:',
    '  -c [ct|expect], commit the external cache to the kernel table',
    '  -f [internal|external], flush the internal and/or external cache',
    '  -F [ct|expect], flush the kernel conntrack table',
    '  -i [ct|expect], show the internal cache',
    '  -e [ct|expect], show the external cache',
    '  -k, stop the running daemon',
    '  -s  [network|cache|runtime|link|rsqueue|queue|ct|expect], show statistics',
    '  -R [ct|expect], resynchronise the internal cache with the kernel table',
    '  -n, ask the peer for a full resynchronisation (FT-FW and NOTRACK modes)',
    '  -B, send a bulk update to the peer',
    '  -x, XML output for -i or -e (must follow them)',
    '  -t, shorten kernel timeouts to PurgeTimeout',
    '',
    'ctsync extensions:',
    '  --check, validate the configuration file and exit',
    '  --json, JSON output for -s, -i and -e',
    '  --version, --help, same as -v and -h',
    `  notify master|backup|fault [-C configfile], run the keepalived transition (as primary-backup.sh)`,
    '',
  ].join('\n') + '\n';
}

export function versionText(version = CTSYNC_VERSION): string {
  return `ctsync v${version} (conntrackd ${CONNTRACKD_COMPAT_VERSION} compatible). Licensed under the MIT license.\n`;
}

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** ctime(3) without the newline, in local time: "Sun Nov 22 10:42:14 2026". */
export function ctimeString(d: Date): string {
  const p2 = (n: number): string => String(n).padStart(2, '0');
  return `${DAYS[d.getDay()]} ${MONTHS[d.getMonth()]} ${String(d.getDate()).padStart(2, ' ')} ` +
    `${p2(d.getHours())}:${p2(d.getMinutes())}:${p2(d.getSeconds())} ${d.getFullYear()}`;
}

/**
 * A client-side diagnostic as conntrackd prints it on stderr (scripts and
 * operators grep these): `[Sun Nov 22 10:42:14 2026] (pid=7638) [ERROR] msg`.
 */
export function formatLogLine(level: 'ERROR' | 'WARNING' | 'notice', message: string, now: Date = new Date(), pid = process.pid): string {
  return `[${ctimeString(now)}] (pid=${pid}) [${level}] ${message}\n`;
}

/** The message conntrackd prints when the client cannot reach the daemon (exit status 1). */
export const CANT_CONNECT_MESSAGE = "can't connect: is conntrackd running? appropriate permissions?";
