// The lone-event fast path. After an idle spell the whole JS path of one
// kernel event (decode, filter, internal cache, queue, encode) runs from cold
// caches: ~250 cache lines from DRAM, 25-30 µs p50 and 65-80 µs p99 before
// the datagram leaves (bench/README.md, "What a lone event pays after
// idling"), against a few lines for this C. So when a wakeup reads exactly
// one ctnetlink NEW event, the addon encodes its CT_NEW message and sends it
// first; JS then does its bookkeeping as usual and files the message in its
// resend queue under the number used here (src/sync/engine.ts adoptFast).
//
// It must send exactly what the TS path would have sent, or nothing: every
// rule below mirrors src/netlink/ct-codec.ts readConntrack (what it rejects,
// this refuses), src/filter/filter.ts CompiledFilter.accepts (IPv4 part) and
// src/wire/conntrack.ts encodeConntrackMsg. Anything outside the common shape
// (IPv6, protocols other than TCP/UDP/ICMP, helpers, NAT sequence
// adjustment, labels, master tuples, tuple zones) is refused and
// takes the JS path. test/unit/fast-path-encode.test.ts compares the two
// byte for byte; test/system/kernel-fast-path.test.ts does so on the kernel's
// own events.
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>

#include "fastpath.h"
#include "napi_util.h"

#define CONF_MAGIC 0x46500001u
#define CONF_HDR_WORDS 84  // 20 words of fields and sockaddr, then the 256-byte protocol map
#define F_WSCALE 1u        // TCPWindowTracking: the window scales go too
#define F_NO_TIMEOUT 2u    // CommitTimeout set: no TIMEOUT attribute
#define F_QUIRK 4u         // conntrackd's two-list Address Accept rule

struct fp_conf {
  uint32_t flags, own_port, state_bits;
  int32_t proto_logic, addr_logic, state_logic;  // -1: section not configured
  uint8_t proto_map[256];
  uint32_t n_nets, n_hosts, n_own;
  uint32_t *nets;  // (net, mask) pairs
  uint32_t *hosts;
  uint32_t *own;
  int fd;
  struct sockaddr_storage sa;
  socklen_t salen;
};

/* ---------- byte access: netlink is host order (little-endian here), attribute payloads network order ---------- */

static uint16_t rd16h(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static uint32_t rd32h(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint16_t rd16n(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static uint32_t rd32n(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }
static void wr16n(uint8_t *p, uint32_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static void wr32n(uint8_t *p, uint32_t v) { p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v; }

/* ---------- configuration ---------- */

fp_conf_t *fp_conf_parse(const void *data, size_t len, const char **why) {
  const uint8_t *b = data;
  *why = "configuration too short";
  if (len < CONF_HDR_WORDS * 4) return NULL;
  uint32_t w[CONF_HDR_WORDS];
  memcpy(w, b, sizeof w);
  *why = "configuration magic mismatch (addon and JS of different builds?)";
  if (w[0] != CONF_MAGIC) return NULL;
  uint32_t nn = w[7], nh = w[8], no = w[9];
  *why = "configuration lists do not match its length";
  if (nn > 65536 || nh > 65536 || no > 65536) return NULL;
  if (len != (CONF_HDR_WORDS + 2 * (size_t)nn + nh + no) * 4) return NULL;
  *why = "configuration sockaddr length out of range";
  if (w[11] > 32 || w[11] > sizeof(struct sockaddr_storage)) return NULL;
  fp_conf_t *c = calloc(1, sizeof *c);
  uint32_t *lists = malloc(((size_t)2 * nn + nh + no + 1) * 4);
  *why = "out of memory";
  if (!c || !lists) {
    free(c);
    free(lists);
    return NULL;
  }
  c->flags = w[1];
  c->own_port = w[2];
  c->proto_logic = (int32_t)w[3];
  c->addr_logic = (int32_t)w[4];
  c->state_logic = (int32_t)w[5];
  c->state_bits = w[6];
  c->n_nets = nn;
  c->n_hosts = nh;
  c->n_own = no;
  c->fd = (int32_t)w[10];
  c->salen = (socklen_t)w[11];
  memcpy(&c->sa, b + 12 * 4, c->salen);
  memcpy(c->proto_map, b + 20 * 4, 256);
  memcpy(lists, b + CONF_HDR_WORDS * 4, ((size_t)2 * nn + nh + no) * 4);
  c->nets = lists;
  c->hosts = lists + 2 * nn;
  c->own = c->hosts + nh;
  return c;
}

void fp_conf_free(fp_conf_t *c) {
  if (!c) return;
  free(c->nets);
  free(c);
}

int fp_conf_fd(const fp_conf_t *c) { return c->fd; }

const struct sockaddr *fp_conf_addr(const fp_conf_t *c, socklen_t *len) {
  *len = c->salen;
  return (const struct sockaddr *)&c->sa;
}

/* ---------- decode (the subset of readConntrack this path takes) ---------- */

#define NLA_TYPE_MASK 0x3fff
enum { CTA_TUPLE_ORIG = 1, CTA_TUPLE_REPLY = 2, CTA_STATUS = 3, CTA_PROTOINFO = 4, CTA_HELP = 5, CTA_NAT_SRC = 6,
       CTA_TIMEOUT = 7, CTA_MARK = 8, CTA_COUNTERS_ORIG = 9, CTA_COUNTERS_REPLY = 10, CTA_USE = 11, CTA_ID = 12,
       CTA_NAT_DST = 13, CTA_TUPLE_MASTER = 14, CTA_SEQ_ADJ_ORIG = 15, CTA_SEQ_ADJ_REPLY = 16, CTA_ZONE = 18,
       CTA_LABELS = 22, CTA_SYNPROXY = 24 };
enum { T_IP = 1, T_PROTO = 2, T_ZONE = 3 };
enum { IPPROTO_ICMP_ = 1, IPPROTO_TCP_ = 6, IPPROTO_UDP_ = 17 };
#define IPS_SRC_NAT_DONE (1u << 7)
#define IPS_DST_NAT_DONE (1u << 8)

typedef struct {
  uint32_t src, dst;
  int proto;                      // -1 until CTA_PROTO_NUM
  int sport, dport;               // -1 when absent
  int icmp_id, icmp_type, icmp_code;
} tuple_t;

typedef struct {
  tuple_t o, r;
  int have_reply;
  int64_t status, timeout, mark, zone;  // -1 when absent
  int have_tcp, tcp_state, ws_o, ws_r;  // ws: -1 when absent
  // An entry made through ctnetlink carries a synproxy extension (zeros) the kernel reports:
  // the TS path sends it on, so this one does too.
  int have_synproxy;
  uint32_t sp_isn, sp_its, sp_tsoff;
} ct_t;

// The attributes in [p, end), read as the TS readers read them: a header shorter than 4 or
// running past the end rejects the message, trailing bytes shorter than a header are ignored.
typedef struct {
  const uint8_t *base;
  size_t off, end;
} attrs_t;

static attrs_t attrs(const uint8_t *p, const uint8_t *end) {
  attrs_t it = {p, 0, (size_t)(end - p)};
  return it;
}

// The next attribute: 1 with *a, *len (header included) and *type set; 0 at the end; FP_MALFORMED.
static int next_attr(attrs_t *it, const uint8_t **a, uint32_t *len, uint32_t *type) {
  if (it->off + 4 > it->end) return 0;
  const uint8_t *p = it->base + it->off;
  uint32_t l = rd16h(p);
  if (l < 4 || it->off + l > it->end) return FP_MALFORMED;
  *a = p;
  *len = l;
  *type = rd16h(p + 2) & NLA_TYPE_MASK;
  it->off += (l + 3) & ~(size_t)3;
  return 1;
}

static int parse_ip(const uint8_t *p, const uint8_t *end, tuple_t *t, int *have_src, int *have_dst) {
  attrs_t it = attrs(p, end);
  const uint8_t *a;
  uint32_t len, type;
  int k;
  while ((k = next_attr(&it, &a, &len, &type)) > 0) {
    switch (type) {
      case 1: if (len < 8) return FP_MALFORMED; t->src = rd32n(a + 4); *have_src = 1; break;
      case 2: if (len < 8) return FP_MALFORMED; t->dst = rd32n(a + 4); *have_dst = 1; break;
      case 3: case 4: return FP_SHAPE;  // IPv6
      default: break;
    }
  }
  return k;
}

static int parse_proto(const uint8_t *p, const uint8_t *end, tuple_t *t) {
  attrs_t it = attrs(p, end);
  const uint8_t *a;
  uint32_t len, type;
  int k;
  while ((k = next_attr(&it, &a, &len, &type)) > 0) {
    const uint8_t *v = a + 4;
    switch (type) {
      case 1: if (len < 5) return FP_MALFORMED; t->proto = v[0]; break;
      case 2: if (len < 6) return FP_MALFORMED; t->sport = rd16n(v); break;
      case 3: if (len < 6) return FP_MALFORMED; t->dport = rd16n(v); break;
      case 4: case 7: if (len < 6) return FP_MALFORMED; t->icmp_id = rd16n(v); break;  // ICMP, ICMPv6
      case 5: case 8: if (len < 5) return FP_MALFORMED; t->icmp_type = v[0]; break;
      case 6: case 9: if (len < 5) return FP_MALFORMED; t->icmp_code = v[0]; break;
      default: break;
    }
  }
  return k;
}

static int parse_tuple(const uint8_t *p, const uint8_t *end, tuple_t *t) {
  t->src = t->dst = 0;
  t->proto = t->sport = t->dport = t->icmp_id = t->icmp_type = t->icmp_code = -1;
  int saw_ip = 0, have_src = 0, have_dst = 0, r;
  attrs_t it = attrs(p, end);
  const uint8_t *a;
  uint32_t len, type;
  int k;
  while ((k = next_attr(&it, &a, &len, &type)) > 0) {
    switch (type) {
      case T_IP:
        saw_ip = 1;
        if ((r = parse_ip(a + 4, a + len, t, &have_src, &have_dst))) return r;
        break;
      case T_PROTO:
        if ((r = parse_proto(a + 4, a + len, t))) return r;
        break;
      case T_ZONE:
        if (len < 6) return FP_MALFORMED;
        return FP_SHAPE;  // a zoned tuple: left to the TS side, whose flow identity includes it
      default:
        break;
    }
  }
  if (k < 0) return k;
  if (!saw_ip || !have_src || !have_dst || t->proto < 0) return FP_MALFORMED;
  return 0;
}

static int parse_tcp(const uint8_t *p, const uint8_t *end, ct_t *ct) {
  // Each nest starts afresh, as readTcp does: of repeated nests the last one counts, whole.
  ct->have_tcp = 1;
  ct->tcp_state = 0;  // readTcp's value when STATE is missing
  ct->ws_o = ct->ws_r = -1;
  attrs_t it = attrs(p, end);
  const uint8_t *a;
  uint32_t len, type;
  int k;
  while ((k = next_attr(&it, &a, &len, &type)) > 0) {
    switch (type) {
      case 1: if (len < 5) return FP_MALFORMED; ct->tcp_state = a[4]; break;
      case 2: if (len < 5) return FP_MALFORMED; ct->ws_o = a[4]; break;
      case 3: if (len < 5) return FP_MALFORMED; ct->ws_r = a[4]; break;
      case 4: case 5: if (len < 6) return FP_MALFORMED; break;  // flags and mask
      default: break;
    }
  }
  return k;
}

static int parse_protoinfo(const uint8_t *p, const uint8_t *end, ct_t *ct) {
  attrs_t it = attrs(p, end);
  const uint8_t *a;
  uint32_t len, type;
  int k, r;
  while ((k = next_attr(&it, &a, &len, &type)) > 0) {
    if (type == 1) {
      if ((r = parse_tcp(a + 4, a + len, ct))) return r;
    } else if (type == 2 || type == 3) {
      return FP_SHAPE;  // SCTP, DCCP
    }
  }
  return k;
}

static int check_counters(const uint8_t *p, const uint8_t *end) {
  attrs_t it = attrs(p, end);
  const uint8_t *a;
  uint32_t len, type;
  int k;
  while ((k = next_attr(&it, &a, &len, &type)) > 0) {
    if ((type == 1 || type == 2) && len < 12) return FP_MALFORMED;  // 64-bit packets, bytes
    if ((type == 3 || type == 4) && len < 8) return FP_MALFORMED;   // 32-bit forms
  }
  return k;
}

static int parse_synproxy(const uint8_t *p, const uint8_t *end, ct_t *ct) {
  ct->have_synproxy = 1;
  ct->sp_isn = ct->sp_its = ct->sp_tsoff = 0;
  attrs_t it = attrs(p, end);
  const uint8_t *a;
  uint32_t len, type;
  int k;
  while ((k = next_attr(&it, &a, &len, &type)) > 0) {
    if (type < 1 || type > 3) continue;
    if (len < 8) return FP_MALFORMED;
    uint32_t v = rd32n(a + 4);
    if (type == 1) ct->sp_isn = v;
    else if (type == 2) ct->sp_its = v;
    else ct->sp_tsoff = v;
  }
  return k;
}

static int parse_ct(const uint8_t *p, const uint8_t *end, ct_t *ct) {
  memset(ct, 0, sizeof *ct);
  ct->status = ct->timeout = ct->mark = ct->zone = -1;
  ct->ws_o = ct->ws_r = -1;
  int have_orig = 0, r;
  attrs_t it = attrs(p, end);
  const uint8_t *a;
  uint32_t len, type;
  int k;
  while ((k = next_attr(&it, &a, &len, &type)) > 0) {
    const uint8_t *d = a + 4;
    switch (type) {
      // A repeated tuple (never from the kernel) is left to JS: readConntrack decides whether a
      // reply is plain against the orig tuple read so far, which a later orig does not undo.
      case CTA_TUPLE_ORIG:
        if (have_orig) return FP_SHAPE;
        if ((r = parse_tuple(d, a + len, &ct->o))) return r;
        have_orig = 1;
        break;
      case CTA_TUPLE_REPLY:
        if (ct->have_reply) return FP_SHAPE;
        if ((r = parse_tuple(d, a + len, &ct->r))) return r;
        ct->have_reply = 1;
        break;
      case CTA_STATUS: if (len < 8) return FP_MALFORMED; ct->status = rd32n(d); break;
      case CTA_TIMEOUT: if (len < 8) return FP_MALFORMED; ct->timeout = rd32n(d); break;
      case CTA_MARK: if (len < 8) return FP_MALFORMED; ct->mark = rd32n(d); break;
      case CTA_ZONE: if (len < 6) return FP_MALFORMED; ct->zone = rd16n(d); break;
      case CTA_ID: case CTA_USE: if (len < 8) return FP_MALFORMED; break;
      case CTA_PROTOINFO:
        if ((r = parse_protoinfo(d, a + len, ct))) return r;
        break;
      case CTA_COUNTERS_ORIG: case CTA_COUNTERS_REPLY:
        if ((r = check_counters(d, a + len))) return r;
        break;
      case CTA_SYNPROXY:
        if ((r = parse_synproxy(d, a + len, ct))) return r;
        break;
      case CTA_HELP: case CTA_NAT_SRC: case CTA_NAT_DST: case CTA_TUPLE_MASTER: case CTA_SEQ_ADJ_ORIG:
      case CTA_SEQ_ADJ_REPLY: case CTA_LABELS:
        return FP_SHAPE;
      default:
        break;  // SECMARK, SECCTX, TIMESTAMP, masks: readConntrack ignores them too
    }
  }
  if (k < 0) return k;
  if (!have_orig) return FP_MALFORMED;
  int proto = ct->o.proto;
  if (proto != IPPROTO_TCP_ && proto != IPPROTO_UDP_ && proto != IPPROTO_ICMP_) return FP_SHAPE;
  if (ct->have_reply && ct->r.proto != proto) return FP_SHAPE;
  return 0;
}

/* ---------- filter (CompiledFilter.accepts for an IPv4 flow) ---------- */

static int in_list(const uint32_t *l, uint32_t n, uint32_t v) {
  for (uint32_t i = 0; i < n; i++)
    if (l[i] == v) return 1;
  return 0;
}

static int accepts(const fp_conf_t *c, const ct_t *ct) {
  if (c->proto_logic >= 0 && (c->proto_map[ct->o.proto & 0xff] ^ c->proto_logic) != 0) return 0;
  if (c->addr_logic >= 0 || c->n_own > 0) {
    uint32_t a = ct->o.src;
    uint32_t b = ct->have_reply ? ct->r.src : ct->o.dst;
    if (c->n_own > 0 && (in_list(c->own, c->n_own, a) || in_list(c->own, c->n_own, b))) return 0;
    if (c->addr_logic >= 0) {
      int net_hit = 0;
      for (uint32_t i = 0; i < c->n_nets; i++) {
        uint32_t net = c->nets[2 * i], mask = c->nets[2 * i + 1];
        if ((a & mask) == net || (b & mask) == net) {
          net_hit = 1;
          break;
        }
      }
      int host_hit = in_list(c->hosts, c->n_hosts, a) || in_list(c->hosts, c->n_hosts, b);
      int ok = (c->flags & F_QUIRK) || c->addr_logic == 0
        ? (net_hit ^ c->addr_logic) == 0 && (host_hit ^ c->addr_logic) == 0
        : (net_hit | host_hit) == 1;
      if (!ok) return 0;
    }
  }
  if (c->state_logic >= 0 && ct->o.proto == IPPROTO_TCP_ && ct->have_tcp) {
    int hit = (int)((c->state_bits >> (ct->tcp_state & 31)) & 1);  // JS's >>> takes the count mod 32
    if ((hit ^ c->state_logic) != 0) return 0;
  }
  return 1;
}

/* ---------- encode (encodeConntrackMsg for this shape) ---------- */

enum { NTA_IPV4 = 0, NTA_L4PROTO = 2, NTA_PORT = 3, NTA_TCP_STATE = 4, NTA_STATUS = 5, NTA_TIMEOUT = 6, NTA_MARK = 7,
       NTA_SNAT_IPV4 = 12, NTA_DNAT_IPV4 = 13, NTA_SPAT_PORT = 14, NTA_DPAT_PORT = 15, NTA_ICMP_TYPE = 22,
       NTA_ICMP_CODE = 23, NTA_ICMP_ID = 24, NTA_WSCALE_ORIG = 25, NTA_WSCALE_REPL = 26, NTA_SYNPROXY = 31,
       NTA_ZONE = 32 };

// Each attribute is 8 bytes here but the address pair (12): nta_len, id, payload, zero padding.
static uint8_t *put_hdr(uint8_t *p, uint32_t len, uint32_t id) {
  wr16n(p, len);
  wr16n(p + 2, id);
  return p + 4;
}
static uint8_t *put_u8(uint8_t *p, uint32_t id, uint32_t v) {
  uint8_t *d = put_hdr(p, 5, id);
  d[0] = (uint8_t)v; d[1] = d[2] = d[3] = 0;
  return p + 8;
}
static uint8_t *put_u16n(uint8_t *p, uint32_t id, uint32_t v) {
  uint8_t *d = put_hdr(p, 6, id);
  wr16n(d, v); d[2] = d[3] = 0;
  return p + 8;
}
// SPAT_PORT, DPAT_PORT, ICMP_ID go little-endian (the 1.4.7 byte-order quirk, ftfw.md §2.2).
static uint8_t *put_u16le(uint8_t *p, uint32_t id, uint32_t v) {
  uint8_t *d = put_hdr(p, 6, id);
  d[0] = (uint8_t)v; d[1] = (uint8_t)(v >> 8); d[2] = d[3] = 0;
  return p + 8;
}
static uint8_t *put_u32n(uint8_t *p, uint32_t id, uint32_t v) {
  wr32n(put_hdr(p, 8, id), v);
  return p + 8;
}
static uint8_t *put_ports(uint8_t *p, uint32_t id, uint32_t a, uint32_t b) {
  uint8_t *d = put_hdr(p, 8, id);
  wr16n(d, a); wr16n(d + 2, b);
  return p + 8;
}

// NAT ports are compared as libnetfilter_conntrack's raw tuple slots: the port, or for ICMP the
// echo id (source) and type<<8|code (destination); absent values read 0 (wire/conntrack.ts slotSrc).
static uint32_t slot_src(const tuple_t *t, int icmp) {
  int v = icmp ? t->icmp_id : t->sport;
  return v < 0 ? 0 : (uint32_t)v;
}
static uint32_t slot_dst(const tuple_t *t, int icmp) {
  if (icmp) return (uint32_t)((t->icmp_type < 0 ? 0 : t->icmp_type) << 8 | (t->icmp_code < 0 ? 0 : t->icmp_code));
  return t->dport < 0 ? 0 : (uint32_t)t->dport;
}

static int encode(const fp_conf_t *c, const ct_t *ct, uint32_t seq, uint8_t *out, size_t cap) {
  if (cap < FP_OUT_MAX) return FP_NO_ROOM;
  const tuple_t *o = &ct->o;
  uint8_t *p = out + 8;
  uint8_t *d = put_hdr(p, 12, NTA_IPV4);
  wr32n(d, o->src);
  wr32n(d + 4, o->dst);
  p += 12;
  p = put_u32n(p, NTA_STATUS, ct->status < 0 ? 0 : (uint32_t)ct->status);
  p = put_u8(p, NTA_L4PROTO, (uint32_t)o->proto);
  int icmp = o->proto == IPPROTO_ICMP_;
  if (icmp) {
    if (o->icmp_type >= 0) {
      p = put_u8(p, NTA_ICMP_TYPE, (uint32_t)o->icmp_type);
      p = put_u8(p, NTA_ICMP_CODE, o->icmp_code < 0 ? 0 : (uint32_t)o->icmp_code);
      p = put_u16le(p, NTA_ICMP_ID, o->icmp_id < 0 ? 0 : (uint32_t)o->icmp_id);
    }
  } else {
    p = put_ports(p, NTA_PORT, slot_src(o, 0), slot_dst(o, 0));
    if (o->proto == IPPROTO_TCP_ && ct->have_tcp) {
      p = put_u8(p, NTA_TCP_STATE, (uint32_t)ct->tcp_state);
      if (c->flags & F_WSCALE) {
        p = put_u8(p, NTA_WSCALE_ORIG, ct->ws_o < 0 ? 0 : (uint32_t)ct->ws_o);
        p = put_u8(p, NTA_WSCALE_REPL, ct->ws_r < 0 ? 0 : (uint32_t)ct->ws_r);
      }
    }
  }
  if (ct->timeout >= 0 && !(c->flags & F_NO_TIMEOUT)) p = put_u32n(p, NTA_TIMEOUT, (uint32_t)ct->timeout);
  if (ct->mark >= 0) p = put_u32n(p, NTA_MARK, (uint32_t)ct->mark);
  if (ct->have_reply) {
    const tuple_t *r = &ct->r;
    // An unknown status passes the status half of each test, as in the library.
    int src_done = ct->status < 0 || (ct->status & IPS_SRC_NAT_DONE);
    int dst_done = ct->status < 0 || (ct->status & IPS_DST_NAT_DONE);
    if (src_done && r->dst != o->src) p = put_u32n(p, NTA_SNAT_IPV4, r->dst);
    if (dst_done && r->src != o->dst) p = put_u32n(p, NTA_DNAT_IPV4, r->src);
    if (src_done && slot_dst(r, icmp) != slot_src(o, icmp)) p = put_u16le(p, NTA_SPAT_PORT, slot_dst(r, icmp));
    if (dst_done && slot_src(r, icmp) != slot_dst(o, icmp)) p = put_u16le(p, NTA_DPAT_PORT, slot_src(r, icmp));
  }
  if (ct->have_synproxy) {
    d = put_hdr(p, 16, NTA_SYNPROXY);
    wr32n(d, ct->sp_its);  // wire order: its, isn, tsoff
    wr32n(d + 4, ct->sp_isn);
    wr32n(d + 8, ct->sp_tsoff);
    p += 16;
  }
  if (ct->zone >= 0) p = put_u16n(p, NTA_ZONE, (uint32_t)ct->zone);
  uint32_t len = (uint32_t)(p - out);
  out[0] = 1 << 4;  // version 1, type CT_NEW
  out[1] = 0;       // no flags: the fast path runs only once HELLO is done
  wr16n(out + 2, len);
  wr32n(out + 4, seq);
  return (int)len;
}

#define NFNL_SUBSYS_CTNETLINK 1
#define IPCTNL_MSG_CT_NEW 0
#define NLM_F_EXCL 0x200
#define NLM_F_CREATE 0x400

int fp_encode(const fp_conf_t *c, const uint8_t *msg, size_t msg_len, uint32_t seq, uint8_t *out, size_t cap) {
  if (msg_len < 20 || rd32h(msg) != msg_len) return FP_MALFORMED;
  if (rd16h(msg + 4) != (NFNL_SUBSYS_CTNETLINK << 8 | IPCTNL_MSG_CT_NEW)) return FP_NOT_NEW;
  if (!(rd16h(msg + 6) & (NLM_F_CREATE | NLM_F_EXCL))) return FP_NOT_NEW;
  uint32_t pid = rd32h(msg + 12);
  // The daemon's own request socket caused it (a commit): mirrored, never sent back.
  if (pid != 0 && pid == c->own_port) return FP_OWN;
  if (msg[16] != AF_INET) return FP_SHAPE;
  ct_t ct;
  int r = parse_ct(msg + 20, msg + msg_len, &ct);
  if (r) return r;
  if (!accepts(c, &ct)) return FP_FILTERED;
  return encode(c, &ct, seq, out, cap);
}

/* ---------- fastEncode(conf, msg, seq, out): the encoder alone, for tests ---------- */

static napi_value f_fast_encode(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  if (get_args(env, info, 4, argv, NULL)) return NULL;
  void *conf, *msg, *out;
  size_t conf_len, msg_len, out_len;
  double seqd;
  if (buffer_arg(env, argv[0], &conf, &conf_len) || buffer_arg(env, argv[1], &msg, &msg_len) ||
      buffer_arg(env, argv[3], &out, &out_len) || napi_get_value_double(env, argv[2], &seqd) != napi_ok)
    return throw_type(env, "fastEncode(conf, msg, seq, out): Buffers and a number expected");
  const char *why;
  fp_conf_t *c = fp_conf_parse(conf, conf_len, &why);
  if (!c) return throw_type(env, why);
  int r = fp_encode(c, msg, msg_len, (uint32_t)(int64_t)seqd, out, out_len);
  fp_conf_free(c);
  napi_value v;
  napi_create_int32(env, r, &v);
  return v;
}

int fastpath_register(napi_env env, napi_value exports) {
  napi_value fn;
  if (napi_create_function(env, "fastEncode", NAPI_AUTO_LENGTH, f_fast_encode, NULL, &fn) != napi_ok) return -1;
  return napi_set_named_property(env, exports, "fastEncode", fn) == napi_ok ? 0 : -1;
}
