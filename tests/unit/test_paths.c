/*
 * test_paths.c - finding the Lua library: $JETLUA_LUA_DIR wins (and a wrong
 * one is an error, not a fallback), then <exe>/../share/jetlua/lua, then the
 * source tree for the binary in its build directory only.
 */
#include "check.h"
#include "rt_paths.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char root[PATH_MAX];

static void mkfile(const char *rel)
{
    char path[PATH_MAX * 2], *p;
    snprintf(path, sizeof path, "%s/%s", root, rel);
    for (p = path + strlen(root) + 1; (p = strchr(p, '/')); p++) {
        *p = '\0';
        mkdir(path, 0700);
        *p = '/';
    }
    FILE *f = fopen(path, "w");
    if (f)
        fclose(f);
}

static const char *at(const char *rel)
{
    static char bufs[4][PATH_MAX * 2];
    static int k;
    k = (k + 1) % 4;
    snprintf(bufs[k], sizeof bufs[k], "%s/%s", root, rel);
    return bufs[k];
}

int main(void)
{
    char out[PATH_MAX * 2], cmd[PATH_MAX + 16];
    int r;

    snprintf(root, sizeof root, "/tmp/jetlua-paths-XXXXXX");
    if (!mkdtemp(root))
        return 1;
    mkfile("prefix/bin/jetlua");
    mkfile("prefix/share/jetlua/lua/jetlua/reload.lua");
    mkfile("bare/bin/jetlua");
    mkfile("src/bindings/lua/jetlua/reload.lua");
    mkfile("src/build/jetlua");
    mkfile("empty/jetlua/other.lua");

    /* installed prefix, wherever it is */
    r = rt_find_lua_dir(NULL, at("prefix/bin/jetlua"), at("src/build"), at("src/bindings/lua"), out, sizeof out);
    CHECK(r == RT_LUA_DIR_EXE);
    CHECK(strcmp(out, at("prefix/share/jetlua/lua")) == 0);
    r = rt_find_lua_dir("", at("prefix/bin/jetlua"), NULL, NULL, out, sizeof out);
    CHECK(r == RT_LUA_DIR_EXE);                     /* an empty variable is unset */

    /* the variable wins over the prefix */
    r = rt_find_lua_dir(at("src/bindings/lua"), at("prefix/bin/jetlua"), NULL, NULL, out, sizeof out);
    CHECK(r == RT_LUA_DIR_ENV);
    CHECK(strcmp(out, at("src/bindings/lua")) == 0);

    /* a wrong variable is an error that names it, even with a prefix next to the binary */
    r = rt_find_lua_dir(at("empty"), at("prefix/bin/jetlua"), NULL, NULL, out, sizeof out);
    CHECK(r == RT_LUA_DIR_NONE);
    CHECK(strstr(out, "JETLUA_LUA_DIR=") && strstr(out, at("empty")));

    /* the binary in its build directory: the source tree */
    r = rt_find_lua_dir(NULL, at("src/build/jetlua"), at("src/build"), at("src/bindings/lua"), out, sizeof out);
    CHECK(r == RT_LUA_DIR_BUILD);
    CHECK(strcmp(out, at("src/bindings/lua")) == 0);
    /* the same build dir spelled differently still matches */
    r = rt_find_lua_dir(NULL, at("src/build/jetlua"), at("src/build/../build/"), at("src/bindings/lua"), out, sizeof out);
    CHECK(r == RT_LUA_DIR_BUILD);

    /* a copy of that binary elsewhere never falls back to the source tree */
    r = rt_find_lua_dir(NULL, at("bare/bin/jetlua"), at("src/build"), at("src/bindings/lua"), out, sizeof out);
    CHECK(r == RT_LUA_DIR_NONE);
    CHECK(strstr(out, "cannot find jetlua's Lua library") && strstr(out, at("bare/bin/../share/jetlua/lua")));
    CHECK(strstr(out, "JETLUA_LUA_DIR") != NULL);

    /* the build dir moved away with its source tree: an error, not a crash */
    r = rt_find_lua_dir(NULL, at("src/build/jetlua"), at("src/build"), at("gone/bindings/lua"), out, sizeof out);
    CHECK(r == RT_LUA_DIR_NONE);

    /* nothing known at all */
    r = rt_find_lua_dir(NULL, NULL, NULL, NULL, out, sizeof out);
    CHECK(r == RT_LUA_DIR_NONE);
    r = rt_find_lua_dir(NULL, "jetlua", NULL, NULL, out, sizeof out);   /* no directory part */
    CHECK(r == RT_LUA_DIR_NONE);

    /* a binary at the file system root: /../share is /share */
    r = rt_find_lua_dir(NULL, "/jetlua", NULL, NULL, out, sizeof out);
    CHECK(r == RT_LUA_DIR_NONE || strcmp(out, "/share/jetlua/lua") == 0);

    /* the process itself: this test binary sits in the build dir */
    {
        const char *why = NULL, *dir = rt_lua_dir(&why);
        CHECK(dir != NULL);
        CHECK(dir && strstr(dir, "bindings/lua") != NULL);
    }

    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", root);
    return DONE();
}
