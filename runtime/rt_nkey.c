/*
 * rt_nkey.c - NKey seed decoding and public key derivation (see rt_nkey.h).
 *
 * Encoding (github.com/nats-io/nkeys, strkey.go): base32 (RFC 4648, no
 * padding) of  [b1 b2 seed(32) crc16-LE]  for a seed, where
 * b1 = 18<<3 | prefix>>5, b2 = (prefix & 31)<<3, and [prefix key(32)
 * crc16-LE] for a public key; crc16 is CRC-16/XMODEM. User prefix: 20<<3.
 */
#include "rt_nkey.h"
#include "rt_secret.h"

#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { PREFIX_SEED = 18 << 3, PREFIX_USER = 20 << 3, SEED_LEN = 58 };

static const char b32[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

static uint16_t crc16(const unsigned char *p, size_t n)
{
    uint16_t crc = 0;
    while (n-- > 0) {
        crc ^= (uint16_t)(*p++ << 8);
        for (int i = 0; i < 8; i++)
            crc = (crc & 0x8000) ? (uint16_t)((crc << 1) ^ 0x1021) : (uint16_t)(crc << 1);
    }
    return crc;
}

/* base32 decode; returns the number of bytes, or -1 on a bad character */
static int b32_decode(const char *s, size_t n, unsigned char *out, size_t outlen)
{
    uint32_t acc = 0;
    int bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        const char *c = memchr(b32, s[i], 32);
        if (!c || !s[i])
            return -1;
        acc = (acc << 5) | (uint32_t)(c - b32);
        bits += 5;
        if (bits >= 8) {
            bits -= 8;
            if (o >= outlen)
                return -1;
            out[o++] = (unsigned char)(acc >> bits);
        }
    }
    return (int)o;
}

static void b32_encode(const unsigned char *p, size_t n, char *out)
{
    uint32_t acc = 0;
    int bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        acc = (acc << 8) | p[i];
        bits += 8;
        while (bits >= 5) {
            bits -= 5;
            out[o++] = b32[(acc >> bits) & 31];
        }
    }
    if (bits > 0)
        out[o++] = b32[(acc << (5 - bits)) & 31];
    out[o] = '\0';
}

int rt_nkey_public_from_seed(const char *seed, char *pub, size_t publen, char *err, size_t errlen)
{
    unsigned char raw[40], key[35], pk[32];
    size_t pklen = sizeof pk;
    EVP_PKEY *k;
    int n, rc = -1;

    if (publen <= RT_NKEY_PUB_LEN) {
        snprintf(err, errlen, "internal error: buffer too small");
        return -1;
    }
    if (strlen(seed) != SEED_LEN || seed[0] != 'S') {
        snprintf(err, errlen, "not an NKey seed (a seed is 58 characters starting with 'SU')");
        return -1;
    }
    n = b32_decode(seed, SEED_LEN, raw, sizeof raw);
    if (n != 36 || crc16(raw, 34) != (uint16_t)(raw[34] | raw[35] << 8)) {
        snprintf(err, errlen, "not a valid NKey seed (bad encoding or checksum)");
        goto out;
    }
    if ((raw[0] & 248) != PREFIX_SEED || (((raw[0] & 7) << 5) | ((raw[1] & 248) >> 3)) != PREFIX_USER) {
        snprintf(err, errlen, "not an NKey user seed (it must start with 'SU')");
        goto out;
    }
    k = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, raw + 2, 32);
    if (!k || EVP_PKEY_get_raw_public_key(k, pk, &pklen) != 1 || pklen != 32) {
        EVP_PKEY_free(k);
        snprintf(err, errlen, "cannot derive the public key of the NKey seed (OpenSSL Ed25519)");
        goto out;
    }
    EVP_PKEY_free(k);
    key[0] = PREFIX_USER;
    memcpy(key + 1, pk, 32);
    {
        uint16_t c = crc16(key, 33);
        key[33] = (unsigned char)(c & 0xff);
        key[34] = (unsigned char)(c >> 8);
    }
    b32_encode(key, 35, pub);
    rc = 0;
out:
    memset(raw, 0, sizeof raw);
    return rc;
}

int rt_nkey_public_from_file(const char *path, char *pub, size_t publen, char *err, size_t errlen)
{
    char why[256], *text = rt_secret_read_file(path, err, errlen), *p, *found = NULL;
    size_t len;
    int rc;
    if (!text)
        return -1;
    len = strlen(text);
    /* the seed alone, as nk and nsc write it (cnats reads the file the
     * same way): surrounding whitespace is fine */
    p = text + strspn(text, " \t\r\n");
    if (strncmp(p, "SU", 2) == 0 && strspn(p, b32) == SEED_LEN && strspn(p + SEED_LEN, " \t\r\n") == strlen(p + SEED_LEN))
        found = p;
    if (!found) {
        snprintf(err, errlen, "%s: the file does not hold an NKey user seed alone (58 characters starting with 'SU')", path);
        rc = -1;
    } else {
        found[SEED_LEN] = '\0';
        rc = rt_nkey_public_from_seed(found, pub, publen, why, sizeof why);
        if (rc != 0)
            snprintf(err, errlen, "%s: %s", path, why);
    }
    memset(text, 0, len);
    free(text);
    return rc;
}
