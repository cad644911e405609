/*
 * rt_paths.h - where jetlua's Lua library (bindings/lua, installed as
 * <prefix>/share/jetlua/lua) is found at run time, and programs in $PATH.
 *
 * Order:
 *  1. $JETLUA_LUA_DIR when set (and then only there: a wrong value is an
 *     error, never silently replaced by another copy);
 *  2. <directory of the executable>/../share/jetlua/lua, so an installed
 *     prefix can be moved anywhere (/usr, /opt/jetlua, a tarball);
 *  3. the source tree's bindings/lua, but only for the binary in its own
 *     build directory (./build/jetlua in a checkout).
 * A directory counts only if it holds jetlua/reload.lua, the module every
 * `jetlua run` loads first. Lua-free; the pure part is unit-tested.
 */
#ifndef JETLUA_RT_PATHS_H
#define JETLUA_RT_PATHS_H

#include <stddef.h>

enum { RT_LUA_DIR_NONE = 0, RT_LUA_DIR_ENV, RT_LUA_DIR_EXE, RT_LUA_DIR_BUILD };

/* The lookup, given its inputs (any may be NULL): env = $JETLUA_LUA_DIR,
 * exe = the resolved path of the executable, build_dir = the build
 * directory the binary was made in, source_lua = the source tree's
 * bindings/lua. Writes the directory to out and returns how it was found;
 * RT_LUA_DIR_NONE with a sentence for people in out (what was looked at). */
int rt_find_lua_dir(const char *env, const char *exe, const char *build_dir,
                    const char *source_lua, char *out, size_t cap);

/* The same for this process ($JETLUA_LUA_DIR, /proc/self/exe and the paths
 * compiled in), computed once. Returns the directory, or NULL and *why. */
const char *rt_lua_dir(const char **why);

/* An executable `name` in $PATH (default "/usr/local/bin:/usr/bin:/bin"):
 * 0 and its path in out (when out is not NULL), or -1. */
int rt_find_in_path(const char *name, char *out, size_t n);

#endif
