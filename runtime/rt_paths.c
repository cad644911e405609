/*
 * rt_paths.c - finding jetlua's Lua library (see rt_paths.h).
 */
#include "rt_paths.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef JETLUA_BUILD_DIR
#define JETLUA_BUILD_DIR ""
#endif
#ifndef JETLUA_SOURCE_LUA_DIR
#define JETLUA_SOURCE_LUA_DIR ""
#endif

/* A Lua library directory: it holds the module `jetlua run` loads first. */
static int holds_library(const char *dir)
{
    char probe[PATH_MAX + 32];
    if (!dir || !*dir)
        return 0;
    if ((size_t)snprintf(probe, sizeof probe, "%s/jetlua/reload.lua", dir) >= sizeof probe)
        return 0;
    return access(probe, R_OK) == 0;
}

/* dir of path (no trailing slash), in out; 0 or -1 */
static int dirname_of(const char *path, char *out, size_t cap)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return -1;
    if ((size_t)(slash - path) >= cap)
        return -1;
    memcpy(out, path, (size_t)(slash - path));
    out[slash - path] = '\0';
    if (out[0] == '\0')
        snprintf(out, cap, "/");
    return 0;
}

static int same_dir(const char *a, const char *b)
{
    char ra[PATH_MAX], rb[PATH_MAX];
    if (!a || !b || !*a || !*b || !realpath(a, ra) || !realpath(b, rb))
        return 0;
    return strcmp(ra, rb) == 0;
}

int rt_find_lua_dir(const char *env, const char *exe, const char *build_dir,
                    const char *source_lua, char *out, size_t cap)
{
    char exe_dir[PATH_MAX], beside[PATH_MAX + 32];

    if (env && *env) {
        if (holds_library(env)) {
            snprintf(out, cap, "%s", env);
            return RT_LUA_DIR_ENV;
        }
        snprintf(out, cap, "JETLUA_LUA_DIR=%s does not hold jetlua's Lua library "
                 "(no jetlua/reload.lua there)", env);
        return RT_LUA_DIR_NONE;
    }
    beside[0] = '\0';
    if (exe && dirname_of(exe, exe_dir, sizeof exe_dir) == 0) {
        snprintf(beside, sizeof beside, "%s/../share/jetlua/lua", exe_dir);
        if (holds_library(beside)) {
            /* without the "..": the path shows in errors and tracebacks */
            char parent[PATH_MAX];
            if (dirname_of(exe_dir, parent, sizeof parent) == 0)
                snprintf(out, cap, "%s%sshare/jetlua/lua", parent, strcmp(parent, "/") ? "/" : "");
            else
                snprintf(out, cap, "%s", beside);
            return RT_LUA_DIR_EXE;
        }
        if (same_dir(exe_dir, build_dir) && holds_library(source_lua)) {
            snprintf(out, cap, "%s", source_lua);
            return RT_LUA_DIR_BUILD;
        }
    }
    snprintf(out, cap, "cannot find jetlua's Lua library: looked in %s (from %s); "
             "install jetlua (share/jetlua/lua next to bin/jetlua) or set JETLUA_LUA_DIR",
             beside[0] ? beside : "<unknown>", exe ? exe : "the executable's path, which is unknown");
    return RT_LUA_DIR_NONE;
}

const char *rt_lua_dir(const char **why)
{
    static char dir[PATH_MAX + 256];
    static int found = -1;
    if (found < 0) {
        char exe[PATH_MAX];
        ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
        if (n > 0)
            exe[n] = '\0';
        found = rt_find_lua_dir(getenv("JETLUA_LUA_DIR"), n > 0 ? exe : NULL,
                                JETLUA_BUILD_DIR, JETLUA_SOURCE_LUA_DIR, dir, sizeof dir);
    }
    if (found == RT_LUA_DIR_NONE) {
        if (why)
            *why = dir;
        return NULL;
    }
    return dir;
}

int rt_find_in_path(const char *name, char *out, size_t n)
{
    const char *path = getenv("PATH");
    char buf[PATH_MAX];
    if (!path)
        path = "/usr/local/bin:/usr/bin:/bin";
    while (*path) {
        size_t l = strcspn(path, ":");
        snprintf(buf, sizeof buf, "%.*s/%s", (int)l, path, name);
        if (access(buf, X_OK) == 0) {
            if (out)
                snprintf(out, n, "%s", buf);
            return 0;
        }
        path += l + (path[l] == ':');
    }
    return -1;
}
