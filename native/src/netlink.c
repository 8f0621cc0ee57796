// ctsync native side: only the socket work JS cannot do (netlink sockets in a
// chosen netns, raw sockopts, batched recvmmsg driven by uv_poll). Every
// netlink encode/decode happens in TypeScript (see shared spec netlink.md §4).
// The sync link's UDP receive socket uses the same batched reader (records
// with the source address, see UDP_REC_HDR), and its sends can skip Node's
// dgram path (sendToFd): per datagram, Node's receive costs ~6 µs of user CPU
// and a JS callback, its send ~3 µs, against well under one here.
//
// Plain C against node_api.h + uv.h: no C++ exceptions, so nothing can escape
// a libuv callback and terminate the process.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <sched.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <netinet/in.h>
#include <linux/netlink.h>

#include <node_api.h>
#include "napi_util.h"
#include "fastpath.h"
#include <uv.h>

#define SLOTS 64
#define SLOT_SIZE (32 * 1024)
// Per-wakeup budget: bounds how long one storm wakeup holds the event loop (pitfall 12).
#define WAKEUP_BUDGET (1024 * 1024)
#define DRAIN_DEFAULT_BUDGET (4 * 1024 * 1024)
// The persistent event buffer: one wakeup reads until WAKEUP_BUDGET is reached, and the
// last recvmmsg call may add up to SLOTS full slots on top.
#define EV_CAP (WAKEUP_BUDGET + (size_t)SLOTS * SLOT_SIZE)
// recvmmsg calls per read loop, whatever happens: a hard bound on a misbehaving socket.
#define MAX_CALLS 4096
// UDP handles: fewer, larger slots (a UDP datagram may be up to 64 KiB, a sync one is an MTU).
#define UDP_SLOTS 16
#define UDP_SLOT_SIZE 65536
// Each UDP datagram is packed as a record: u32 payload length (little-endian), the source
// port (network order, 2 bytes), family (4 or 6), one zero byte, 16 address bytes (IPv4 in
// the first 4), then the payload, padded to 4 bytes.
#define UDP_REC_HDR 24

typedef struct {
  double datagrams, wakeups, enobufs, poll_restarts, bytes, truncated;
} nl_stats_t;

typedef struct {
  int fd;
  napi_env env;
  uv_poll_t *poll;        // separate allocation: its close callback may outlive this struct
  napi_ref cb;            // JS callback while started
  napi_ref self;          // keeps the handle object alive while started
  napi_async_context actx;
  int polling;
  int in_callback;
  int finalized;          // GC ran while a poll callback was on the stack: free at its end
  int udp;                // a UDP socket: records carry each datagram's length and source
  int nslots;             // recvmmsg slots and their size (netlink: SLOTS x SLOT_SIZE)
  size_t slot_size;
  size_t ev_cap;          // persistent buffer size: the wakeup budget plus one full recvmmsg
  struct sockaddr_storage *names;  // UDP: the source address of each slot
  struct mmsghdr *msgs;   // lazily allocated recvmmsg slots
  struct iovec *iovs;
  char *slots;
  char *acc;              // datagrams packed for one JS Buffer (drain)
  size_t acc_len, acc_cap;
  // While started: the datagrams of one wakeup, packed into the memory of a
  // JS Buffer created once at start() (owned by that Buffer: its finalizer
  // frees it). Passed to every callback with the length used, instead of a
  // fresh copy per wakeup (up to 1 MiB of external memory each: GC pressure).
  char *ev;
  size_t ev_len;
  napi_ref ev_ref;
  nl_stats_t st;
  // The lone-event fast path (fastpath.c), when JS has configured it on this event socket:
  // its configuration, and the state block JS shares (FPS_* words, held by fstate_ref).
  fp_conf_t *fast;
  int32_t *fstate;
  napi_ref fstate_ref;
} nl_handle_t;

/* ---------- error helpers ---------- */

static napi_value throw_errno(napi_env env, const char *op, int err) {
  char name[64];
  char msg[256];
  uv_err_name_r(-err, name, sizeof name);
  snprintf(msg, sizeof msg, "%s: %s (%s)", op, strerror(err), name);
  napi_value jmsg, jcode, jerr, jerrno, jop;
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &jmsg);
  napi_create_string_utf8(env, op, NAPI_AUTO_LENGTH, &jop);
  napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &jcode);
  napi_create_error(env, jcode, jmsg, &jerr);
  napi_create_int32(env, err, &jerrno);
  napi_set_named_property(env, jerr, "errno", jerrno);
  napi_set_named_property(env, jerr, "syscall", jop);
  napi_throw(env, jerr);
  return NULL;
}

napi_value throw_type(napi_env env, const char *msg) {
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
  return NULL;
}

#define CHECK(call)                                   \
  do {                                                \
    if ((call) != napi_ok) return throw_type(env, #call); \
  } while (0)

int get_args(napi_env env, napi_callback_info info, size_t want, napi_value *argv, size_t *argc) {
  size_t n = want;
  if (napi_get_cb_info(env, info, &n, argv, NULL, NULL) != napi_ok) return -1;
  for (size_t i = n; i < want; i++) napi_get_undefined(env, &argv[i]);
  if (argc) *argc = n;
  return 0;
}

int arg_int(napi_env env, napi_value v, int32_t *out) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_number) return -1;
  return napi_get_value_int32(env, v, out) == napi_ok ? 0 : -1;
}

// The bytes of a Buffer argument; -1 when it is not a Buffer.
int buffer_arg(napi_env env, napi_value v, void **data, size_t *len) {
  bool isbuf = false;
  if (napi_is_buffer(env, v, &isbuf) != napi_ok || !isbuf) return -1;
  return napi_get_buffer_info(env, v, data, len) == napi_ok ? 0 : -1;
}

// What a function returns when it has nothing to say.
napi_value undefined_value(napi_env env) {
  napi_value u;
  napi_get_undefined(env, &u);
  return u;
}

static int is_missing(napi_env env, napi_value v) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok) return 1;
  return t == napi_undefined || t == napi_null;
}

/* ---------- handle lifetime ---------- */

static void poll_closed(uv_handle_t *p) { free(p); }

static void handle_free(nl_handle_t *h) {
  free(h->names);
  free(h->msgs);
  free(h->iovs);
  free(h->slots);
  free(h->acc);
  fp_conf_free(h->fast);
  free(h);
}

// Stops delivery and releases JS references; safe to call repeatedly.
static void handle_stop(nl_handle_t *h) {
  if (h->poll) {
    uv_poll_stop(h->poll);
    h->poll->data = NULL;
    uv_close((uv_handle_t *)h->poll, poll_closed);
    h->poll = NULL;
  }
  h->polling = 0;
  if (h->cb) {
    napi_delete_reference(h->env, h->cb);
    h->cb = NULL;
  }
  if (h->self) {
    napi_delete_reference(h->env, h->self);
    h->self = NULL;
  }
  if (h->ev_ref) {
    // The Buffer (and the memory under it) now lives only as long as JS holds it.
    napi_delete_reference(h->env, h->ev_ref);
    h->ev_ref = NULL;
    h->ev = NULL;
    h->ev_len = 0;
  }
  // Destroying the async context while napi_make_callback still uses it is
  // not allowed: poll_cb destroys it once the callback has returned.
  if (h->actx && !h->in_callback) {
    napi_async_destroy(h->env, h->actx);
    h->actx = NULL;
  }
}

static void fast_clear(nl_handle_t *h) {
  fp_conf_free(h->fast);
  h->fast = NULL;
  h->fstate = NULL;
  if (h->fstate_ref) {
    napi_delete_reference(h->env, h->fstate_ref);
    h->fstate_ref = NULL;
  }
}

static void handle_close(nl_handle_t *h) {
  handle_stop(h);
  fast_clear(h);
  if (h->fd >= 0) {
    close(h->fd);
    h->fd = -1;
  }
}

static void handle_finalize(napi_env env, void *data, void *hint) {
  nl_handle_t *h = data;
  // Finalizers must not call into JS; only the native resources go here.
  if (h->poll) {
    uv_poll_stop(h->poll);
    h->poll->data = NULL;
    uv_close((uv_handle_t *)h->poll, poll_closed);
    h->poll = NULL;
  }
  if (h->fd >= 0) {
    close(h->fd);
    h->fd = -1;
  }
  if (h->in_callback) {
    h->finalized = 1;
    return;
  }
  handle_free(h);
}

static nl_handle_t *get_handle(napi_env env, napi_value v) {
  void *p = NULL;
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_external || napi_get_value_external(env, v, &p) != napi_ok || !p) {
    throw_type(env, "expected a netlink handle");
    return NULL;
  }
  return p;
}

static nl_handle_t *get_open_handle(napi_env env, napi_value v) {
  nl_handle_t *h = get_handle(env, v);
  if (h && h->fd < 0) {
    throw_errno(env, "netlink handle is closed", EBADF);
    return NULL;
  }
  return h;
}

/* ---------- receive loop ---------- */

static int ensure_slots(nl_handle_t *h) {
  if (h->msgs) return 0;
  int n = h->nslots;
  h->msgs = calloc(n, sizeof *h->msgs);
  h->iovs = calloc(n, sizeof *h->iovs);
  h->slots = malloc((size_t)n * h->slot_size);
  if (h->udp) h->names = calloc(n, sizeof *h->names);
  if (!h->msgs || !h->iovs || !h->slots || (h->udp && !h->names)) {
    free(h->msgs); free(h->iovs); free(h->slots); free(h->names);
    h->msgs = NULL; h->iovs = NULL; h->slots = NULL; h->names = NULL;
    return ENOMEM;
  }
  for (int i = 0; i < n; i++) {
    h->iovs[i].iov_base = h->slots + (size_t)i * h->slot_size;
    h->iovs[i].iov_len = h->slot_size;
    h->msgs[i].msg_hdr.msg_iov = &h->iovs[i];
    h->msgs[i].msg_hdr.msg_iovlen = 1;
    if (h->udp) {
      h->msgs[i].msg_hdr.msg_name = &h->names[i];
      h->msgs[i].msg_hdr.msg_namelen = sizeof h->names[i];
    }
  }
  return 0;
}

// One UDP datagram as a record (see UDP_REC_HDR) in the persistent buffer.
static int udp_append(nl_handle_t *h, const struct sockaddr_storage *from, const char *p, size_t n) {
  size_t rec = UDP_REC_HDR + ((n + 3) & ~(size_t)3);
  if (h->ev_len + rec > h->ev_cap) return ENOMEM;
  unsigned char *r = (unsigned char *)h->ev + h->ev_len;
  memset(r, 0, UDP_REC_HDR);
  r[0] = n & 0xff;
  r[1] = (n >> 8) & 0xff;
  r[2] = (n >> 16) & 0xff;
  r[3] = (n >> 24) & 0xff;
  if (from->ss_family == AF_INET) {
    const struct sockaddr_in *a = (const struct sockaddr_in *)from;
    memcpy(r + 4, &a->sin_port, 2);
    r[6] = 4;
    memcpy(r + 8, &a->sin_addr, 4);
  } else if (from->ss_family == AF_INET6) {
    const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)from;
    memcpy(r + 4, &a->sin6_port, 2);
    r[6] = 6;
    memcpy(r + 8, &a->sin6_addr, 16);
  }
  memcpy(r + UDP_REC_HDR, p, n);
  h->ev_len += rec;
  return 0;
}

static int acc_append(nl_handle_t *h, const char *p, size_t n, int to_ev) {
  if (to_ev) {
    // Never grown: its memory is a live JS Buffer. ev_cap covers the budget plus one recvmmsg.
    if (h->ev_len + n > h->ev_cap) return ENOMEM;
    memcpy(h->ev + h->ev_len, p, n);
    h->ev_len += n;
    return 0;
  }
  if (h->acc_len + n > h->acc_cap) {
    size_t cap = h->acc_cap ? h->acc_cap : 256 * 1024;
    while (cap < h->acc_len + n) cap *= 2;
    char *next = realloc(h->acc, cap);
    if (!next) return ENOMEM;
    h->acc = next;
    h->acc_cap = cap;
  }
  memcpy(h->acc + h->acc_len, p, n);
  h->acc_len += n;
  return 0;
}

// Reads datagrams until EAGAIN or the budget, packing them into h->acc, or
// into h->ev when to_ev (the event path; budget must then be <= WAKEUP_BUDGET).
// Returns 0 or a fatal errno; *soft gets ENOBUFS (overrun, sk_err already
// cleared by the read) or EMSGSIZE (a truncated datagram was dropped).
static int read_loop(nl_handle_t *h, size_t budget, int *soft, int to_ev) {
  int err = ensure_slots(h);
  if (err) return err;
  size_t *used = to_ev ? &h->ev_len : &h->acc_len;
  *used = 0;
  const int udp = h->udp && to_ev;
  // Nothing is reset before a call: the kernel writes msg_flags and msg_len of
  // each datagram it returns (and reads neither), and the one input it
  // overwrites, a UDP slot's msg_namelen, is put back as that slot is read
  // below. Resetting all slots before every call touched 64 headers (4 KiB)
  // per wakeup, one cache miss each after an idle spell, for one datagram.
  for (int calls = 0; calls < MAX_CALLS && *used < budget; calls++) {
    int n = recvmmsg(h->fd, h->msgs, h->nslots, MSG_DONTWAIT, NULL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      if (errno == ENOBUFS) {
        h->st.enobufs++;
        *soft = ENOBUFS;
        continue;  // the error is consumed; the queue behind it is still readable
      }
      if (udp) {
        // A UDP socket's pending error (an ICMP report) is consumed by the read that
        // returns it: report it and keep the socket polled, or the link would go deaf.
        *soft = errno;
        break;
      }
      return errno;
    }
    for (int i = 0; i < n; i++) {
      if (h->udp) h->msgs[i].msg_hdr.msg_namelen = sizeof h->names[i];
      if (h->msgs[i].msg_hdr.msg_flags & MSG_TRUNC) {
        h->st.truncated++;
        *soft = EMSGSIZE;
        continue;
      }
      size_t len = h->msgs[i].msg_len;
      if (udp ? udp_append(h, &h->names[i], h->iovs[i].iov_base, len) : acc_append(h, h->iovs[i].iov_base, len, to_ev))
        return ENOMEM;
      h->st.datagrams++;
      h->st.bytes += (double)len;
    }
    // A short batch means the queue was empty when it was read. A poll-driven read stops
    // there: the poll is level-triggered, so anything that arrived since (or a pending
    // ENOBUFS, reported as POLLERR) brings the next wakeup, and a lone event costs one
    // recvmmsg instead of two. A drain confirms with EAGAIN: its caller wants the queue empty.
    if (n < h->nslots && to_ev) break;
  }
  return 0;
}

// A wakeup that read exactly one message, a NEW event the fast path encodes: its CT_NEW message
// goes out on the sync link now, before any JS runs. Returns the sequence number used, or -1
// (JS then handles the event the usual way: its gates were closed, the event was not one this
// path takes, or the send failed and JS's queueing send takes over).
static double fast_send(nl_handle_t *h) {
  int32_t *st = h->fstate;
  if (!st[FPS_ENGINE] || !st[FPS_DAEMON] || h->ev_len < 20) return -1;
  const uint8_t *m = (const uint8_t *)h->ev;
  uint32_t mlen;
  memcpy(&mlen, m, 4);
  if (NLMSG_ALIGN(mlen) != h->ev_len) return -1;  // more than one message: a burst, batched by JS
  uint8_t out[FP_OUT_MAX];
  uint32_t seq = (uint32_t)st[FPS_SEQ];
  int len = fp_encode(h->fast, m, mlen, seq, out, sizeof out);
  if (len <= 0) {
    if (len == FP_SHAPE || len == FP_MALFORMED) st[FPS_DECLINED]++;
    return -1;
  }
  socklen_t salen;
  const struct sockaddr *sa = fp_conf_addr(h->fast, &salen);
  ssize_t n;
  do {
    n = sendto(fp_conf_fd(h->fast), out, (size_t)len, MSG_DONTWAIT, sa, salen);
  } while (n < 0 && errno == EINTR);
  if (n != len) {
    st[FPS_SEND_ERR]++;
    return -1;
  }
  st[FPS_SEQ] = (int32_t)(seq + 1);
  st[FPS_SENT]++;
  st[FPS_LEN] = len;
  return (double)seq;
}

static void poll_cb(uv_poll_t *p, int status, int events) {
  nl_handle_t *h = p->data;
  if (!h || h->fd < 0) return;
  napi_env env = h->env;
  h->st.wakeups++;
  // libuv stops the watcher itself when it reports an error (POLLERR after an
  // overrun): read to clear sk_err, then re-arm below (pitfall 1).
  int restarted = status < 0;
  int soft = 0;
  if (!h->ev) return;  // stopped (no persistent buffer): nothing may be read into it
  int fatal = read_loop(h, WAKEUP_BUDGET, &soft, 1);
  double fast_seq = h->fast && !fatal && !soft && h->ev_len > 0 ? fast_send(h) : -1;

  napi_handle_scope scope;
  napi_open_handle_scope(env, &scope);
  h->in_callback = 1;
  // cb(buffer, errno, length, fastSeq): the buffer is the persistent one, valid until the callback
  // returns; fastSeq is the number the fast path sent the read's one event under, or -1.
  napi_value argv[4], cb, result;
  size_t used = h->ev_len;
  if (used == 0 || !h->ev_ref || napi_get_reference_value(env, h->ev_ref, &argv[0]) != napi_ok || !argv[0]) {
    used = 0;
    napi_get_null(env, &argv[0]);
  }
  napi_create_int32(env, fatal ? fatal : soft, &argv[1]);
  napi_create_double(env, (double)used, &argv[2]);
  napi_create_double(env, fast_seq, &argv[3]);
  if ((used > 0 || fatal || soft) && h->cb && napi_get_reference_value(env, h->cb, &cb) == napi_ok && cb) {
    // `this` for the callback is the callback itself: the JS side uses none, and
    // napi_get_global (v8::Context::Global) was ~3% of a lone event's time from
    // the wakeup to its datagram's send (perf, cold caches after 5 ms idle).
    napi_status s = napi_make_callback(env, h->actx, cb, cb, 4, argv, &result);
    if (s == napi_pending_exception) {
      napi_value exc;
      napi_get_and_clear_last_exception(env, &exc);
      napi_fatal_exception(env, exc);
    }
  }
  h->in_callback = 0;
  napi_close_handle_scope(env, scope);
  if (h->finalized) {
    handle_free(h);
    return;
  }
  if (!h->polling && h->actx) {
    napi_async_destroy(env, h->actx);
    h->actx = NULL;
  }
  if (fatal) {
    // A real socket error (not an overrun): stop rather than spin.
    if (h->polling) handle_stop(h);
    return;
  }
  if (h->polling && h->poll && h->fd >= 0) {
    if (restarted) h->st.poll_restarts++;
    if (restarted) uv_poll_start(h->poll, UV_READABLE, poll_cb);
  }
}

static void ev_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  free(data);
}

/* ---------- exported functions ---------- */

// A handle object for an open socket (taking ownership of fd): netlink, or UDP
// (records with sources, fewer and larger read slots).
static napi_value wrap_handle(napi_env env, int fd, int udp) {
  nl_handle_t *h = calloc(1, sizeof *h);
  if (!h) {
    close(fd);
    return throw_errno(env, "open", ENOMEM);
  }
  h->fd = fd;
  h->env = env;
  h->udp = udp;
  h->nslots = udp ? UDP_SLOTS : SLOTS;
  h->slot_size = udp ? UDP_SLOT_SIZE : SLOT_SIZE;
  h->ev_cap = udp ? WAKEUP_BUDGET + (size_t)UDP_SLOTS * (UDP_REC_HDR + UDP_SLOT_SIZE) : EV_CAP;
  napi_value ext;
  if (napi_create_external(env, h, handle_finalize, NULL, &ext) != napi_ok) {
    close(fd);
    free(h);
    return throw_type(env, "napi_create_external failed");
  }
  return ext;
}

static napi_value f_open(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (get_args(env, info, 2, argv, NULL)) return throw_type(env, "bad arguments");
  int32_t proto;
  if (arg_int(env, argv[0], &proto)) return throw_type(env, "open(protocol, netnsPath?): protocol must be a number");
  char path[4096];
  int have_ns = !is_missing(env, argv[1]);
  if (have_ns) {
    size_t n;
    if (napi_get_value_string_utf8(env, argv[1], path, sizeof path, &n) != napi_ok)
      return throw_type(env, "open(protocol, netnsPath?): netnsPath must be a string");
  }
  int fd;
  if (have_ns) {
    int target = open(path, O_RDONLY | O_CLOEXEC);
    if (target < 0) return throw_errno(env, "open netns", errno);
    int self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (self < 0) {
      int e = errno;
      close(target);
      return throw_errno(env, "open /proc/thread-self/ns/net", e);
    }
    if (setns(target, CLONE_NEWNET) < 0) {
      int e = errno;
      close(target);
      close(self);
      return throw_errno(env, "setns", e);
    }
    fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, proto);
    int sock_err = errno;
    if (setns(self, CLONE_NEWNET) < 0) {
      // The JS thread would keep running in the wrong namespace: every later
      // socket would silently act on another host's state. Not recoverable.
      fprintf(stderr, "ctsync native: cannot restore network namespace: %s\n", strerror(errno));
      abort();
    }
    close(target);
    close(self);
    if (fd < 0) return throw_errno(env, "socket", sock_err);
  } else {
    fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, proto);
    if (fd < 0) return throw_errno(env, "socket", errno);
  }
  return wrap_handle(env, fd, 0);
}

// udpOpen(family 4 | 6): a non-blocking UDP socket read by start() like an event
// socket, each datagram delivered as a record with its source (UDP_REC_HDR).
static napi_value f_udp_open(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (get_args(env, info, 1, argv, NULL)) return throw_type(env, "bad arguments");
  int32_t fam;
  if (arg_int(env, argv[0], &fam) || (fam != 4 && fam != 6)) return throw_type(env, "udpOpen(family): family must be 4 or 6");
  int fd = socket(fam == 4 ? AF_INET : AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return throw_errno(env, "socket", errno);
  return wrap_handle(env, fd, 1);
}

// udpBind(h, sockaddr): bind() to a struct sockaddr_in / sockaddr_in6 built by the caller.
static napi_value f_udp_bind(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (get_args(env, info, 2, argv, NULL)) return NULL;
  nl_handle_t *h = get_open_handle(env, argv[0]);
  if (!h) return NULL;
  void *data;
  size_t len;
  if (buffer_arg(env, argv[1], &data, &len)) return throw_type(env, "udpBind(h, sockaddr): sockaddr must be a Buffer");
  if (bind(h->fd, (struct sockaddr *)data, (socklen_t)len) < 0) return throw_errno(env, "bind", errno);
  return undefined_value(env);
}

// sendToFd(fd, buf, len, sockaddr): one sendto() on any socket (the fd under a Node
// dgram socket), never blocking and never throwing for the socket's own errors:
// returns the bytes sent or -errno, so the caller can fall back on EAGAIN.
static napi_value f_send_to_fd(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  if (get_args(env, info, 4, argv, NULL)) return NULL;
  int32_t fd, len;
  if (arg_int(env, argv[0], &fd) || fd < 0) return throw_type(env, "sendToFd: fd must be a non-negative number");
  void *data, *sa;
  size_t cap, salen;
  if (buffer_arg(env, argv[1], &data, &cap) || buffer_arg(env, argv[3], &sa, &salen))
    return throw_type(env, "sendToFd(fd, buf, len, sockaddr): buf and sockaddr must be Buffers");
  if (arg_int(env, argv[2], &len) || len < 0 || (size_t)len > cap) return throw_type(env, "sendToFd: len out of range");
  ssize_t n;
  do {
    n = sendto(fd, data, (size_t)len, MSG_DONTWAIT, (struct sockaddr *)sa, (socklen_t)salen);
  } while (n < 0 && errno == EINTR);
  napi_value r;
  napi_create_int32(env, n < 0 ? -errno : (int32_t)n, &r);
  return r;
}

static napi_value f_bind(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (get_args(env, info, 2, argv, NULL)) return NULL;
  nl_handle_t *h = get_open_handle(env, argv[0]);
  if (!h) return NULL;
  uint32_t groups = 0;
  if (!is_missing(env, argv[1]) && napi_get_value_uint32(env, argv[1], &groups) != napi_ok)
    return throw_type(env, "bind(h, groupsMask): groupsMask must be a number");
  struct sockaddr_nl sa = {.nl_family = AF_NETLINK, .nl_pid = 0, .nl_groups = groups};
  if (bind(h->fd, (struct sockaddr *)&sa, sizeof sa) < 0) return throw_errno(env, "bind", errno);
  socklen_t sl = sizeof sa;
  if (getsockname(h->fd, (struct sockaddr *)&sa, &sl) < 0) return throw_errno(env, "getsockname", errno);
  napi_value r;
  napi_create_uint32(env, sa.nl_pid, &r);
  return r;
}

static napi_value do_setsockopt(napi_env env, int fd, napi_value vlevel, napi_value vname, napi_value vval) {
  int32_t level, name;
  if (arg_int(env, vlevel, &level) || arg_int(env, vname, &name)) return throw_type(env, "setsockopt: level and name must be numbers");
  napi_valuetype t;
  napi_typeof(env, vval, &t);
  int rc;
  if (t == napi_number) {
    int32_t v;
    napi_get_value_int32(env, vval, &v);
    int iv = v;
    rc = setsockopt(fd, level, name, &iv, sizeof iv);
  } else {
    bool isbuf = false;
    napi_is_buffer(env, vval, &isbuf);
    if (!isbuf) return throw_type(env, "setsockopt: value must be a number or a Buffer");
    void *data;
    size_t len;
    napi_get_buffer_info(env, vval, &data, &len);
    rc = setsockopt(fd, level, name, data, (socklen_t)len);
  }
  if (rc < 0) return throw_errno(env, "setsockopt", errno);
  return undefined_value(env);
}

static napi_value do_getsockopt(napi_env env, int fd, napi_value vlevel, napi_value vname, napi_value vsize) {
  int32_t level, name;
  if (arg_int(env, vlevel, &level) || arg_int(env, vname, &name)) return throw_type(env, "getsockopt: level and name must be numbers");
  napi_value r;
  if (is_missing(env, vsize)) {
    int v = 0;
    socklen_t l = sizeof v;
    if (getsockopt(fd, level, name, &v, &l) < 0) return throw_errno(env, "getsockopt", errno);
    napi_create_int32(env, v, &r);
    return r;
  }
  int32_t size;
  if (arg_int(env, vsize, &size) || size < 0 || size > 65536) return throw_type(env, "getsockopt: size must be 0..65536");
  char buf[65536];
  socklen_t l = (socklen_t)size;
  if (getsockopt(fd, level, name, buf, &l) < 0) return throw_errno(env, "getsockopt", errno);
  void *data;
  napi_create_buffer_copy(env, l, buf, &data, &r);
  return r;
}

static napi_value f_setsockopt(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  if (get_args(env, info, 4, argv, NULL)) return NULL;
  nl_handle_t *h = get_open_handle(env, argv[0]);
  if (!h) return NULL;
  return do_setsockopt(env, h->fd, argv[1], argv[2], argv[3]);
}

static napi_value f_getsockopt(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  if (get_args(env, info, 4, argv, NULL)) return NULL;
  nl_handle_t *h = get_open_handle(env, argv[0]);
  if (!h) return NULL;
  return do_getsockopt(env, h->fd, argv[1], argv[2], argv[3]);
}

static napi_value f_setsockopt_fd(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  if (get_args(env, info, 4, argv, NULL)) return NULL;
  int32_t fd;
  if (arg_int(env, argv[0], &fd) || fd < 0) return throw_type(env, "setsockoptFd: fd must be a non-negative number");
  return do_setsockopt(env, fd, argv[1], argv[2], argv[3]);
}

static napi_value f_getsockopt_fd(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  if (get_args(env, info, 4, argv, NULL)) return NULL;
  int32_t fd;
  if (arg_int(env, argv[0], &fd) || fd < 0) return throw_type(env, "getsockoptFd: fd must be a non-negative number");
  return do_getsockopt(env, fd, argv[1], argv[2], argv[3]);
}

static napi_value f_send(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (get_args(env, info, 2, argv, NULL)) return NULL;
  nl_handle_t *h = get_open_handle(env, argv[0]);
  if (!h) return NULL;
  void *data;
  size_t len;
  if (buffer_arg(env, argv[1], &data, &len)) return throw_type(env, "send(h, buffer): buffer must be a Buffer");
  struct sockaddr_nl sa = {.nl_family = AF_NETLINK};
  ssize_t n;
  do {
    n = sendto(h->fd, data, len, 0, (struct sockaddr *)&sa, sizeof sa);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return throw_errno(env, "sendto", errno);
  napi_value r;
  napi_create_double(env, (double)n, &r);
  return r;
}

static napi_value f_drain(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (get_args(env, info, 2, argv, NULL)) return NULL;
  nl_handle_t *h = get_open_handle(env, argv[0]);
  if (!h) return NULL;
  double budget = DRAIN_DEFAULT_BUDGET;
  if (!is_missing(env, argv[1]) && (napi_get_value_double(env, argv[1], &budget) != napi_ok || budget < 1))
    return throw_type(env, "drain(h, maxBytes?): maxBytes must be a positive number");
  int soft = 0;
  int fatal = read_loop(h, (size_t)budget, &soft, 0);
  if (fatal) return throw_errno(env, "recvmmsg", fatal);
  // On a request socket a lost or truncated reply means lost ACKs: the caller cannot trust the batch result.
  if (soft) return throw_errno(env, "recvmmsg", soft);
  napi_value r;
  if (h->acc_len == 0) {
    napi_get_null(env, &r);
    return r;
  }
  void *data;
  napi_create_buffer_copy(env, h->acc_len, h->acc, &data, &r);
  return r;
}

static napi_value f_start(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (get_args(env, info, 2, argv, NULL)) return NULL;
  nl_handle_t *h = get_open_handle(env, argv[0]);
  if (!h) return NULL;
  napi_valuetype t;
  napi_typeof(env, argv[1], &t);
  if (t != napi_function) return throw_type(env, "start(h, cb): cb must be a function");
  if (h->polling) return throw_errno(env, "start: already started", EALREADY);
  int err = ensure_slots(h);
  if (err) return throw_errno(env, "start", err);
  // The persistent event buffer, owned by its JS Buffer from here on.
  char *ev = malloc(h->ev_cap);
  if (!ev) return throw_errno(env, "start", ENOMEM);
  napi_value evbuf;
  if (napi_create_external_buffer(env, h->ev_cap, ev, ev_finalize, NULL, &evbuf) != napi_ok) {
    free(ev);
    return throw_type(env, "napi_create_external_buffer failed");
  }
  uv_loop_t *loop;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok) return throw_type(env, "no uv loop");
  h->poll = malloc(sizeof *h->poll);
  if (!h->poll) return throw_errno(env, "start", ENOMEM);
  int rc = uv_poll_init_socket(loop, h->poll, h->fd);
  if (rc < 0) {
    free(h->poll);
    h->poll = NULL;
    return throw_errno(env, "uv_poll_init", -rc);
  }
  h->poll->data = h;
  h->ev = ev;
  h->ev_len = 0;
  napi_create_reference(env, evbuf, 1, &h->ev_ref);
  napi_value name;
  napi_create_string_utf8(env, h->udp ? "ctsync:udp" : "ctsync:netlink", NAPI_AUTO_LENGTH, &name);
  napi_async_init(env, NULL, name, &h->actx);
  napi_create_reference(env, argv[1], 1, &h->cb);
  napi_create_reference(env, argv[0], 1, &h->self);
  rc = uv_poll_start(h->poll, UV_READABLE, poll_cb);
  if (rc < 0) {
    handle_stop(h);
    return throw_errno(env, "uv_poll_start", -rc);
  }
  h->polling = 1;
  return undefined_value(env);
}

static napi_value f_stop(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (get_args(env, info, 1, argv, NULL)) return NULL;
  nl_handle_t *h = get_handle(env, argv[0]);
  if (!h) return NULL;
  handle_stop(h);
  return undefined_value(env);
}

static napi_value f_close(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (get_args(env, info, 1, argv, NULL)) return NULL;
  nl_handle_t *h = get_handle(env, argv[0]);
  if (!h) return NULL;
  handle_close(h);
  return undefined_value(env);
}

// fastPath(h, state, conf): the lone-event fast path on this event socket (fastpath.c); state is
// the Buffer of FPS_WORDS int32 words JS shares, conf the configuration src/daemon/fast-path.ts
// builds. fastPath(h, null) turns it off.
static napi_value f_fast_path(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (get_args(env, info, 3, argv, NULL)) return NULL;
  nl_handle_t *h = get_open_handle(env, argv[0]);
  if (!h) return NULL;
  if (h->udp) return throw_type(env, "fastPath: not on a UDP socket");
  if (is_missing(env, argv[1])) {
    fast_clear(h);
    return undefined_value(env);
  }
  void *state, *conf;
  size_t state_len, conf_len;
  if (buffer_arg(env, argv[1], &state, &state_len) || buffer_arg(env, argv[2], &conf, &conf_len))
    return throw_type(env, "fastPath(h, state, conf): state and conf must be Buffers");
  if (state_len < FPS_WORDS * 4 || ((uintptr_t)state & 3)) return throw_type(env, "fastPath: state must be 32 aligned bytes");
  const char *why;
  fp_conf_t *c = fp_conf_parse(conf, conf_len, &why);
  if (!c) return throw_type(env, why);
  fast_clear(h);
  h->fast = c;
  h->fstate = state;
  napi_create_reference(env, argv[1], 1, &h->fstate_ref);
  return undefined_value(env);
}

static void set_num(napi_env env, napi_value o, const char *k, double v) {
  napi_value n;
  napi_create_double(env, v, &n);
  napi_set_named_property(env, o, k, n);
}

static napi_value f_stats(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (get_args(env, info, 1, argv, NULL)) return NULL;
  nl_handle_t *h = get_handle(env, argv[0]);
  if (!h) return NULL;
  napi_value o;
  napi_create_object(env, &o);
  set_num(env, o, "datagrams", h->st.datagrams);
  set_num(env, o, "wakeups", h->st.wakeups);
  set_num(env, o, "enobufs", h->st.enobufs);
  set_num(env, o, "pollRestarts", h->st.poll_restarts);
  set_num(env, o, "bytes", h->st.bytes);
  set_num(env, o, "truncated", h->st.truncated);
  set_num(env, o, "fd", h->fd);
  return o;
}

// sd_notify needs an AF_UNIX datagram; Node's dgram module has no AF_UNIX.
static napi_value f_send_unix_datagram(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (get_args(env, info, 2, argv, NULL)) return NULL;
  char path[sizeof(((struct sockaddr_un *)0)->sun_path) + 1];
  size_t plen;
  if (napi_get_value_string_utf8(env, argv[0], path, sizeof path, &plen) != napi_ok || plen == 0)
    return throw_type(env, "sendUnixDatagram(path, buf): path must be a non-empty string");
  struct sockaddr_un sa;
  memset(&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  if (plen > sizeof sa.sun_path) return throw_errno(env, "sendUnixDatagram", ENAMETOOLONG);
  memcpy(sa.sun_path, path, plen);
  if (path[0] == '@') sa.sun_path[0] = '\0';  // abstract namespace
  socklen_t salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + plen + (path[0] == '@' ? 0 : 1));
  if (salen > sizeof sa) salen = sizeof sa;
  bool isbuf = false;
  napi_is_buffer(env, argv[1], &isbuf);
  if (!isbuf) return throw_type(env, "sendUnixDatagram(path, buf): buf must be a Buffer");
  void *data;
  size_t len;
  napi_get_buffer_info(env, argv[1], &data, &len);
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return throw_errno(env, "socket", errno);
  ssize_t n;
  do {
    n = sendto(fd, data, len, MSG_NOSIGNAL, (struct sockaddr *)&sa, salen);
  } while (n < 0 && errno == EINTR);
  int e = errno;
  close(fd);
  if (n < 0) return throw_errno(env, "sendto", e);
  napi_value r;
  napi_create_double(env, (double)n, &r);
  return r;
}

// setScheduler(policy, priority): sched_setscheduler() for the calling thread,
// which is the JS main thread (the event and sync loop). conntrackd switches
// itself to SCHED_RR at the highest priority by default; ctsync does the same
// from JS (src/ops/scheduler.ts) and needs the syscall. Throws the errno.
static napi_value f_set_scheduler(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (get_args(env, info, 2, argv, NULL)) return NULL;
  int policy, prio;
  if (arg_int(env, argv[0], &policy) || arg_int(env, argv[1], &prio))
    return throw_type(env, "setScheduler(policy, priority): integers expected");
  struct sched_param sp;
  memset(&sp, 0, sizeof sp);
  sp.sched_priority = prio;
  if (sched_setscheduler(0, policy, &sp) < 0) return throw_errno(env, "sched_setscheduler", errno);
  return undefined_value(env);
}

// Hands the C heap's free memory back to the kernel (glibc keeps freed
// blocks in its arenas, and a helper thread's arena is trimmed only by this):
// after a burst of short-lived native allocations such as the JIT warm-up's
// compilations. Returns whether anything was released.
static napi_value f_malloc_trim(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value r;
  napi_get_boolean(env, malloc_trim(0) != 0, &r);
  return r;
}

// mallocMmapThreshold(bytes): allocations from `bytes` up get a mapping of their own,
// unmapped when freed, instead of a place in a malloc arena (mallopt M_MMAP_THRESHOLD,
// which also ends glibc's dynamic raising of the threshold). True if glibc took it.
static napi_value f_malloc_mmap_threshold(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (get_args(env, info, 1, argv, NULL)) return NULL;
  int32_t bytes;
  if (arg_int(env, argv[0], &bytes) || bytes < 4096) return throw_type(env, "mallocMmapThreshold(bytes): bytes must be a number >= 4096");
  napi_value r;
  napi_get_boolean(env, mallopt(M_MMAP_THRESHOLD, bytes) == 1, &r);
  return r;
}

static napi_value Init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    {"open", NULL, f_open, NULL, NULL, NULL, napi_enumerable, NULL},
    {"bind", NULL, f_bind, NULL, NULL, NULL, napi_enumerable, NULL},
    {"setsockopt", NULL, f_setsockopt, NULL, NULL, NULL, napi_enumerable, NULL},
    {"getsockopt", NULL, f_getsockopt, NULL, NULL, NULL, napi_enumerable, NULL},
    {"send", NULL, f_send, NULL, NULL, NULL, napi_enumerable, NULL},
    {"drain", NULL, f_drain, NULL, NULL, NULL, napi_enumerable, NULL},
    {"start", NULL, f_start, NULL, NULL, NULL, napi_enumerable, NULL},
    {"stop", NULL, f_stop, NULL, NULL, NULL, napi_enumerable, NULL},
    {"close", NULL, f_close, NULL, NULL, NULL, napi_enumerable, NULL},
    {"stats", NULL, f_stats, NULL, NULL, NULL, napi_enumerable, NULL},
    {"setsockoptFd", NULL, f_setsockopt_fd, NULL, NULL, NULL, napi_enumerable, NULL},
    {"getsockoptFd", NULL, f_getsockopt_fd, NULL, NULL, NULL, napi_enumerable, NULL},
    {"sendUnixDatagram", NULL, f_send_unix_datagram, NULL, NULL, NULL, napi_enumerable, NULL},
    {"setScheduler", NULL, f_set_scheduler, NULL, NULL, NULL, napi_enumerable, NULL},
    {"udpOpen", NULL, f_udp_open, NULL, NULL, NULL, napi_enumerable, NULL},
    {"udpBind", NULL, f_udp_bind, NULL, NULL, NULL, napi_enumerable, NULL},
    {"sendToFd", NULL, f_send_to_fd, NULL, NULL, NULL, napi_enumerable, NULL},
    {"mallocTrim", NULL, f_malloc_trim, NULL, NULL, NULL, napi_enumerable, NULL},
    {"mallocMmapThreshold", NULL, f_malloc_mmap_threshold, NULL, NULL, NULL, napi_enumerable, NULL},
    {"fastPath", NULL, f_fast_path, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  if (napi_define_properties(env, exports, sizeof props / sizeof props[0], props) != napi_ok) return NULL;
  if (aead_register(env, exports) != 0) return NULL;
  if (fastpath_register(env, exports) != 0) return NULL;
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
