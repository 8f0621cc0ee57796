#!/bin/sh
# keepalived notify script for ctsync: runs `ctsync notify master|backup|fault`
# (commit + flush + resync + bulk on MASTER; delayed kernel flush + resync
# request on BACKUP; delayed kernel flush on FAULT), the same sequence as
# conntrackd's primary-backup.sh, in one process.
#
# Install (see conf/keepalived.conf):
#   vrrp_sync_group G_FW {
#       group { VI_OUT VI_IN }
#       notify "/usr/local/sbin/ctsync-notify.sh -C /etc/ctsync/ctsync.conf"
#   }
# keepalived appends "GROUP <name> <STATE> <priority>" (or "INSTANCE …").
# It also accepts a bare state (master|backup|fault|primary), so it can stand
# in for primary-backup.sh in notify_master/notify_backup/notify_fault lines.
#
# Options (before the keepalived arguments):
#   -C file   ctsync/conntrackd configuration (default $CTSYNC_CONFIG or
#             /etc/conntrackd/conntrackd.conf)
#   -b cmd    the ctsync command (default $CTSYNC_BIN or `ctsync` in PATH)
#   -l file   also append log lines to this file (default $CTSYNC_NOTIFY_LOG)
#
# Every step is logged with logger(1) (tag ctsync-notify); the exit status is
# ctsync's (0 ok, 1 the daemon could not be reached). STOP and unknown
# states are logged and ignored (exit 0), so a keepalived shutdown never
# touches the conntrack table.

PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH
CONFIG=${CTSYNC_CONFIG:-/etc/conntrackd/conntrackd.conf}
BIN=${CTSYNC_BIN:-ctsync}
LOGFILE=${CTSYNC_NOTIFY_LOG:-}

while [ $# -gt 0 ]; do
    case "$1" in
        -C) CONFIG=$2; shift 2 ;;
        -b) BIN=$2; shift 2 ;;
        -l) LOGFILE=$2; shift 2 ;;
        --) shift; break ;;
        *) break ;;
    esac
done

log() {
    # $1 = priority (info|err|warning), rest = message
    prio=$1; shift
    logger -t ctsync-notify -p "daemon.$prio" -- "$*" 2>/dev/null
    if [ -n "$LOGFILE" ]; then
        printf '%s %s[%s] %s: %s\n' "$(date +%s.%N)" ctsync-notify "$$" "$prio" "$*" >>"$LOGFILE" 2>/dev/null
    fi
}

case "$1" in
    GROUP|INSTANCE) WHO="$1 $2"; STATE=$3 ;;
    *) WHO=""; STATE=$1 ;;
esac

case "$STATE" in
    MASTER|master|primary) ACTION=master ;;
    BACKUP|backup) ACTION=backup ;;
    FAULT|fault) ACTION=fault ;;
    STOP|stop|DELETED|deleted)
        log info "${WHO:+$WHO }$STATE: nothing to do"
        exit 0 ;;
    *)
        log warning "${WHO:+$WHO }unknown state '${STATE}' ignored (args: $*)"
        exit 0 ;;
esac

log info "${WHO:+$WHO }$STATE: begin ctsync notify $ACTION (config $CONFIG)"
# $BIN is deliberately unquoted: it may be a command with arguments ("node /opt/ctsync/bin/ctsync.js").
# shellcheck disable=SC2086
OUTPUT=$($BIN notify "$ACTION" -C "$CONFIG" 2>&1)
STATUS=$?
if [ -n "$OUTPUT" ]; then
    printf '%s\n' "$OUTPUT" | while IFS= read -r line; do log info "ctsync: $line"; done
fi
if [ $STATUS -eq 0 ]; then
    log info "${WHO:+$WHO }$STATE: end ctsync notify $ACTION ok"
else
    log err "${WHO:+$WHO }$STATE: end ctsync notify $ACTION failed (exit $STATUS)"
fi
exit $STATUS
