/*
 * jl_open.h - opening the `jetlua` module (jl_open.c).
 */
#ifndef JETLUA_JL_OPEN_H
#define JETLUA_JL_OPEN_H

#include <lua.h>

/* Open the standard libraries and the `jetlua` module into L: package
 * paths, the scheduler, package.preload.jetlua. */
void jl_open(lua_State *L);

#endif
