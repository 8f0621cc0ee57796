// Argument and error helpers shared by the addon's source files (netlink.c
// defines them); each returns -1 or NULL with a JS exception pending.
#ifndef CTSYNC_NAPI_UTIL_H
#define CTSYNC_NAPI_UTIL_H
#include <stdint.h>
#include <node_api.h>

napi_value throw_type(napi_env env, const char *msg);
int get_args(napi_env env, napi_callback_info info, size_t want, napi_value *argv, size_t *argc);
int arg_int(napi_env env, napi_value v, int32_t *out);
// The bytes of a Buffer argument; -1 when it is not a Buffer.
int buffer_arg(napi_env env, napi_value v, void **data, size_t *len);
// What a function returns when it has nothing to say.
napi_value undefined_value(napi_env env);

// aead.c: adds its functions to the module's exports (none when built without OpenSSL's headers).
int aead_register(napi_env env, napi_value exports);
#endif
