/*
 * rt_server_cli.h - `jetlua server url|status|stop` (and the hidden
 * `jetlua server guard`), dispatched from main.c.
 */
#ifndef JETLUA_RT_SERVER_CLI_H
#define JETLUA_RT_SERVER_CLI_H

/* argv[1] is "server". Returns the exit status. */
int rt_server_cli(int argc, char **argv);

#endif
