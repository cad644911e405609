/*
 * rt_state.h - the runtime's shared state (rt_state.c): what rt.h declares
 * for every part (RT, rt_post, liveness refs, clocks) lives below the
 * lifecycle and shutdown machine (rt_core.c), so the scheduler and the
 * watchdog use it without depending on the code that drives them.
 *
 * These three are rt_core.c's: open the inbox at init, close it when the
 * shutdown closes every handle, free it once cnats' threads are gone.
 */
#ifndef JETLUA_RT_STATE_H
#define JETLUA_RT_STATE_H

#include <uv.h>

int  rt_state_open_inbox(uv_loop_t *loop);
void rt_state_close_inbox(void);
void rt_state_free_inbox(void);

#endif
