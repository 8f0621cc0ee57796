// The lone-event fast path (fastpath.c): a kernel NEW event read alone is
// turned into its FTFW CT_NEW message and sent by the addon before JS runs.
#ifndef CTSYNC_FASTPATH_H
#define CTSYNC_FASTPATH_H
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <node_api.h>

// Words of the state block JS shares with the addon (an Int32Array over one
// Buffer, host order). The gates are written by JS, the rest by the addon,
// except SEQ: the sync engine's sequence counter lives there, for both sides.
enum {
  FPS_ENGINE = 0,    // the sync engine lets a data message go out now (nothing queued ahead, HELLO done)
  FPS_SEQ = 1,       // the next message's sequence number (u32)
  FPS_SENT = 2,      // messages sent by the fast path
  FPS_LEN = 3,       // length of the last one
  FPS_DECLINED = 4,  // lone NEW events left to JS: a shape the fast path does not encode
  FPS_SEND_ERR = 5,  // sendto() failed (EAGAIN...): left to JS, which queues
  FPS_DAEMON = 6,    // the daemon's gate: the link is the plain UDP socket, the cache has room
  FPS_WORDS = 8
};

// fp_encode's refusals (negative): only SHAPE and MALFORMED count as declined.
enum { FP_NOT_NEW = -1, FP_OWN = -2, FP_SHAPE = -3, FP_MALFORMED = -4, FP_FILTERED = -5, FP_NO_ROOM = -6 };

// Largest message fp_encode writes (header + every attribute it knows, padded).
#define FP_OUT_MAX 256

typedef struct fp_conf fp_conf_t;

// Parses a configuration Buffer (see src/daemon/fast-path.ts for its layout); NULL with *why set if malformed.
fp_conf_t *fp_conf_parse(const void *data, size_t len, const char **why);
void fp_conf_free(fp_conf_t *c);
int fp_conf_fd(const fp_conf_t *c);
const struct sockaddr *fp_conf_addr(const fp_conf_t *c, socklen_t *len);

// One netlink message (nlmsghdr first, msg_len bytes) to a CT_NEW message
// numbered `seq` at out: its length, or an FP_* refusal.
int fp_encode(const fp_conf_t *c, const uint8_t *msg, size_t msg_len, uint32_t seq, uint8_t *out, size_t cap);

// Adds fastEncode(conf, msg, seq, out) to the exports (tests compare it with the TS encoder).
int fastpath_register(napi_env env, napi_value exports);
#endif
