/*
 * rt_traceback.h - tracebacks of failed jobs, also after a stack overflow.
 */
#ifndef JETLUA_RT_TRACEBACK_H
#define JETLUA_RT_TRACEBACK_H

#include <lua.h>

/* Push tostring(error) .. "\nstack traceback:\n\t..." where the error is the
 * value at index 1 of L and the frames are those of thread T (T may be L),
 * from level 1 up to the xpcall that caught it. Uses no Lua stack of T. */
void rt_traceback_push(lua_State *L, lua_State *T);

#endif
