/* rt_nkey: user seed -> public key, against keys made by Go's nkeys
 * (tests/fixtures/auth/gen). */
#include "check.h"
#include "rt_nkey.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define FIXTURES JETLUA_FIXTURES_DIR "/auth"

static int first_line(const char *path, char *out, size_t n)
{
    FILE *f = fopen(path, "r");
    if (!f || !fgets(out, (int)n, f)) {
        if (f)
            fclose(f);
        return -1;
    }
    fclose(f);
    out[strcspn(out, "\r\n")] = 0;
    return 0;
}

int main(void)
{
    char seed[128], want[128], pub[64], err[512], bad[128];

    CHECK(first_line(FIXTURES "/nkey_user.seed", seed, sizeof seed) == 0);
    CHECK(first_line(FIXTURES "/nkey_user.pub", want, sizeof want) == 0);
    CHECK(rt_nkey_public_from_seed(seed, pub, sizeof pub, err, sizeof err) == 0);
    CHECK(strcmp(pub, want) == 0);
    CHECK(rt_nkey_public_from_file(FIXTURES "/nkey_user.seed", pub, sizeof pub, err, sizeof err) == 0);
    CHECK(strcmp(pub, want) == 0);
    /* a .creds file is not a seed file (cnats would not read it as one) */
    CHECK(rt_nkey_public_from_file(FIXTURES "/user.creds", pub, sizeof pub, err, sizeof err) == -1);
    CHECK(strstr(err, "does not hold an NKey user seed alone") != NULL);

    /* a changed character breaks the checksum; errors never quote the seed */
    snprintf(bad, sizeof bad, "%s", seed);
    bad[20] = bad[20] == 'A' ? 'B' : 'A';
    CHECK(rt_nkey_public_from_seed(bad, pub, sizeof pub, err, sizeof err) == -1);
    CHECK(strstr(err, "checksum") && !strstr(err, bad));
    CHECK(rt_nkey_public_from_seed("SUshort", pub, sizeof pub, err, sizeof err) == -1);
    CHECK(strstr(err, "not an NKey seed") != NULL);
    /* the public key is not a seed */
    CHECK(rt_nkey_public_from_seed(want, pub, sizeof pub, err, sizeof err) == -1);
    CHECK(rt_nkey_public_from_file("/nonexistent/x.nk", pub, sizeof pub, err, sizeof err) == -1);
    CHECK(strstr(err, "/nonexistent/x.nk") && strstr(err, "No such file"));
    CHECK(rt_nkey_public_from_file(FIXTURES "/nkey_user.pub", pub, sizeof pub, err, sizeof err) == -1);
    CHECK(strstr(err, "does not hold an NKey user seed") != NULL);
    return DONE();
}
