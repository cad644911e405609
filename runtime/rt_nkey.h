/*
 * rt_nkey.h - NKey user seeds: check one and derive its public key.
 *
 * cnats signs with a seed file (natsOptions_SetNKeyFromSeed) but wants the
 * public key too, and has no public call that derives it; this does, with
 * OpenSSL's Ed25519 (the seed is the Ed25519 private key). Pure C, no Lua:
 * unit-tested in tests/unit/test_nkey.c.
 */
#ifndef JETLUA_RT_NKEY_H
#define JETLUA_RT_NKEY_H

#include <stddef.h>

#define RT_NKEY_PUB_LEN 56     /* "U" + 55 base32 characters */

/* From an encoded user seed ("SU...", 58 characters), the encoded public
 * key ("U...") in pub (size > RT_NKEY_PUB_LEN). Returns 0, or -1 with the
 * reason in err (never quoting the seed). */
int rt_nkey_public_from_seed(const char *seed, char *pub, size_t publen, char *err, size_t errlen);

/* Read an NKey seed file (the seed alone, as `nk -gen user` writes it) and
 * derive its public key. Returns 0, or -1 with a sentence naming the file
 * and the reason in err. */
int rt_nkey_public_from_file(const char *path, char *pub, size_t publen, char *err, size_t errlen);

#endif
