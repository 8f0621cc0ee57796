// AES-256-GCM for the sealed sync link (src/channel/secure.ts), with the
// OpenSSL that Node itself links and exports. Node's crypto API builds a
// cipher object per message (createCipheriv, setAAD, update, final,
// getAuthTag: ~5 us for a 1400-byte datagram, measured, of which the AES
// work is a fraction); here a session key's contexts are set up once and
// each datagram costs one IV reset and one pass over its bytes.
//
// The format is SecureChannel's: header (the AAD), ciphertext, 16-byte tag.
// Sealing works in place; opening writes the plaintext to a separate buffer
// and reports whether the tag matched (the caller drops the bytes if not).
#include <stdlib.h>
#include <string.h>
#include "napi_util.h"

#if defined(__has_include)
#if __has_include(<openssl/evp.h>)
#define CTSYNC_HAVE_OPENSSL 1
#include <openssl/evp.h>
#endif
#endif

#ifdef CTSYNC_HAVE_OPENSSL

// Weak references: a node binary that does not export OpenSSL's symbols
// (built against a shared or stripped libcrypto) must still load this addon,
// whose netlink half is the daemon's core. The functions then stay absent
// (aead_register checks) and the link seals with Node's crypto API.
#pragma weak EVP_CIPHER_CTX_new
#pragma weak EVP_CIPHER_CTX_free
#pragma weak EVP_CIPHER_CTX_ctrl
#pragma weak EVP_aes_256_gcm
#pragma weak EVP_EncryptInit_ex
#pragma weak EVP_EncryptUpdate
#pragma weak EVP_EncryptFinal_ex
#pragma weak EVP_DecryptInit_ex
#pragma weak EVP_DecryptUpdate
#pragma weak EVP_DecryptFinal_ex

#define GCM_KEY_LEN 32
#define GCM_NONCE_LEN 12
#define GCM_TAG_LEN 16

typedef struct {
  EVP_CIPHER_CTX *enc;
  EVP_CIPHER_CTX *dec;
} gcm_key_t;

static void gcm_free(gcm_key_t *k) {
  if (!k) return;
  EVP_CIPHER_CTX_free(k->enc);
  EVP_CIPHER_CTX_free(k->dec);
  // The expanded key lived inside the contexts, which OpenSSL clears on free.
  free(k);
}

// What a key holds outside V8's heap (two EVP contexts with the expanded key,
// measured ~2.5 KiB), told to V8 so that keys made for forged datagrams
// (random epochs force a new session key before the tag is checked) are
// collected at the pace they are made.
#define GCM_KEY_NATIVE_BYTES 4096

static void gcm_finalize(napi_env env, void *data, void *hint) {
  int64_t ignored;
  gcm_free((gcm_key_t *)data);
  napi_adjust_external_memory(env, -GCM_KEY_NATIVE_BYTES, &ignored);
}

// Tags the externals gcmKey() makes: the addon's netlink handles are externals
// too, and one passed here by mistake must be refused, not read as a key.
static const napi_type_tag GCM_KEY_TAG = {0x63747379e3a1c0deULL, 0x67636d6b65793031ULL};

static gcm_key_t *gcm_arg(napi_env env, napi_value v) {
  napi_valuetype t;
  bool tagged = false;
  void *p = NULL;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_external ||
      napi_check_object_type_tag(env, v, &GCM_KEY_TAG, &tagged) != napi_ok || !tagged ||
      napi_get_value_external(env, v, &p) != napi_ok || !p) {
    throw_type(env, "expected a key from gcmKey()");
    return NULL;
  }
  return (gcm_key_t *)p;
}

// gcmKey(key: Buffer(32)) -> handle: both directions' contexts for one session key.
static napi_value f_gcm_key(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  void *key;
  size_t klen;
  if (get_args(env, info, 1, argv, NULL)) return NULL;
  if (buffer_arg(env, argv[0], &key, &klen) || klen != GCM_KEY_LEN) return throw_type(env, "gcmKey(key): a 32-byte Buffer expected");
  gcm_key_t *k = calloc(1, sizeof *k);
  if (!k) return throw_type(env, "gcmKey: out of memory");
  k->enc = EVP_CIPHER_CTX_new();
  k->dec = EVP_CIPHER_CTX_new();
  // The key now, the IV per message: OpenSSL keeps the expanded key across IV resets.
  if (!k->enc || !k->dec ||
      EVP_EncryptInit_ex(k->enc, EVP_aes_256_gcm(), NULL, (const unsigned char *)key, NULL) != 1 ||
      EVP_DecryptInit_ex(k->dec, EVP_aes_256_gcm(), NULL, (const unsigned char *)key, NULL) != 1) {
    gcm_free(k);
    return throw_type(env, "gcmKey: OpenSSL refused the AES-256-GCM key");
  }
  napi_value ext;
  if (napi_create_external(env, k, gcm_finalize, NULL, &ext) != napi_ok) {
    gcm_free(k);
    return throw_type(env, "napi_create_external failed");
  }
  // From here the finalizer owns the key (and gives these bytes back).
  int64_t ignored;
  napi_adjust_external_memory(env, GCM_KEY_NATIVE_BYTES, &ignored);
  if (napi_type_tag_object(env, ext, &GCM_KEY_TAG) != napi_ok) return throw_type(env, "napi_type_tag_object failed");
  return ext;
}

// Reads the (key, buffer, aadLen, dataLen, nonce) arguments both directions share.
static int gcm_args(napi_env env, napi_value *argv, gcm_key_t **k, unsigned char **buf, size_t *len,
                    int32_t *aad_len, int32_t *data_len, unsigned char **nonce) {
  void *b, *n;
  size_t nlen;
  if (!(*k = gcm_arg(env, argv[0]))) return -1;
  if (buffer_arg(env, argv[1], &b, len) || arg_int(env, argv[2], aad_len) || arg_int(env, argv[3], data_len) ||
      buffer_arg(env, argv[4], &n, &nlen) || nlen != GCM_NONCE_LEN) {
    throw_type(env, "(key, buf, aadLen, dataLen, nonce(12)) expected");
    return -1;
  }
  if (*aad_len < 0 || *data_len < 0 || (size_t)*aad_len + (size_t)*data_len + GCM_TAG_LEN > *len) {
    throw_type(env, "aadLen + dataLen + 16 exceeds the buffer");
    return -1;
  }
  *buf = b;
  *nonce = n;
  return 0;
}

// gcmSeal(key, buf, aadLen, plainLen, nonce): encrypts buf[aadLen, +plainLen) in
// place, authenticating buf[0, aadLen) too, and writes the tag right after.
static napi_value f_gcm_seal(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  gcm_key_t *k;
  unsigned char *buf, *nonce;
  size_t len;
  int32_t aad_len, plain_len;
  int aadl = 0, outl = 0, finl = 0;
  if (get_args(env, info, 5, argv, NULL) || gcm_args(env, argv, &k, &buf, &len, &aad_len, &plain_len, &nonce)) return NULL;
  unsigned char *data = buf + aad_len;
  if (EVP_EncryptInit_ex(k->enc, NULL, NULL, NULL, nonce) != 1 ||
      (aad_len > 0 && EVP_EncryptUpdate(k->enc, NULL, &aadl, buf, aad_len) != 1) ||
      (plain_len > 0 && EVP_EncryptUpdate(k->enc, data, &outl, data, plain_len) != 1) ||
      EVP_EncryptFinal_ex(k->enc, data + plain_len, &finl) != 1 ||
      EVP_CIPHER_CTX_ctrl(k->enc, EVP_CTRL_GCM_GET_TAG, GCM_TAG_LEN, data + plain_len) != 1) {
    return throw_type(env, "gcmSeal: OpenSSL failed");
  }
  return undefined_value(env);
}

// gcmOpen(key, buf, aadLen, cipherLen, nonce, out) -> boolean: decrypts
// buf[aadLen, +cipherLen) into out[0, cipherLen) and checks the tag that
// follows; false (out holds unauthenticated bytes) when it does not match.
static napi_value f_gcm_open(napi_env env, napi_callback_info info) {
  napi_value argv[6];
  gcm_key_t *k;
  unsigned char *buf, *nonce;
  void *out;
  size_t len, out_len;
  int32_t aad_len, data_len;
  int aadl = 0, outl = 0, finl = 0;
  if (get_args(env, info, 6, argv, NULL) || gcm_args(env, argv, &k, &buf, &len, &aad_len, &data_len, &nonce)) return NULL;
  if (buffer_arg(env, argv[5], &out, &out_len) || out_len < (size_t)data_len) return throw_type(env, "gcmOpen: out too small");
  int ok = EVP_DecryptInit_ex(k->dec, NULL, NULL, NULL, nonce) == 1 &&
           (aad_len == 0 || EVP_DecryptUpdate(k->dec, NULL, &aadl, buf, aad_len) == 1) &&
           (data_len == 0 || EVP_DecryptUpdate(k->dec, out, &outl, buf + aad_len, data_len) == 1) &&
           EVP_CIPHER_CTX_ctrl(k->dec, EVP_CTRL_GCM_SET_TAG, GCM_TAG_LEN, buf + aad_len + data_len) == 1 &&
           EVP_DecryptFinal_ex(k->dec, (unsigned char *)out + outl, &finl) == 1;
  napi_value r;
  napi_get_boolean(env, ok, &r);
  return r;
}

static int openssl_present(void) {
  return EVP_CIPHER_CTX_new && EVP_CIPHER_CTX_free && EVP_CIPHER_CTX_ctrl && EVP_aes_256_gcm &&
         EVP_EncryptInit_ex && EVP_EncryptUpdate && EVP_EncryptFinal_ex &&
         EVP_DecryptInit_ex && EVP_DecryptUpdate && EVP_DecryptFinal_ex;
}

int aead_register(napi_env env, napi_value exports) {
  if (!openssl_present()) return 0;
  napi_property_descriptor props[] = {
    {"gcmKey", NULL, f_gcm_key, NULL, NULL, NULL, napi_enumerable, NULL},
    {"gcmSeal", NULL, f_gcm_seal, NULL, NULL, NULL, napi_enumerable, NULL},
    {"gcmOpen", NULL, f_gcm_open, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  return napi_define_properties(env, exports, sizeof props / sizeof props[0], props) == napi_ok ? 0 : -1;
}

#else

// Node's headers without OpenSSL's: the link seals with Node's crypto API.
int aead_register(napi_env env, napi_value exports) {
  return 0;
}

#endif
