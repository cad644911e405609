/*
 * lprocess.c - jet.process: child processes, free ports, temp dirs. Used by
 * the test helper (real nats-server processes it can stop, kill -9 and
 * restart) and by tools.
 *
 * Lifetime: a child's C struct is malloc'd and lives until libuv closed its
 * handle AND the Lua userdata was collected (whichever comes last frees).
 * A running child does not keep the runtime alive; a coroutine waiting on
 * it does (rt_co_wait). At shutdown every child still running is SIGKILLed
 * and reaped (a close-phase hook).
 */
#include "jl.h"
#include "rt_list.h"
#include "rt_mem.h"
#include "rt_timer.h"

#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <fcntl.h>
#include <ftw.h>

#define PROC_MT "jetlua.process"

typedef struct pwait {
    rt_co        *co;
    uv_timer_t   *timer;       /* NULL: no timeout */
    struct child *ch;
    struct pwait *next, *prev; /* the child's waiters */
} pwait;

typedef struct child {
    uv_process_t  p;
    int           running;
    int           closed;      /* uv handle closed */
    int           gone;        /* userdata collected */
    int64_t       status;
    int           sig;
    pwait        *waiters;
    struct child *next, *prev; /* running children, for shutdown */
} child;

typedef struct { child *ch; } proc_ud;

static child  *running_list;
static rt_hook proc_hook;
static int     hook_added;

static void maybe_free(child *ch)
{
    if (ch->closed && ch->gone)
        free(ch);
}

static void unlink_running(child *ch)
{
    if (ch->prev || running_list == ch)
        RT_LIST_UNLINK(running_list, ch);
}

/* w is no longer in its child's list */
static void wake(pwait *w, int timed_out)
{
    child *ch = w->ch;
    lua_State *T = rt_co_prepare(w->co);
    rt_co *co = w->co;
    rt_timer_free(&w->timer);
    free(w);
    if (!T)
        return;
    if (timed_out) {
        lua_pushnil(T);
        lua_pushstring(T, "timeout");
        rt_co_resume(co, 2);
    } else {
        lua_pushinteger(T, (lua_Integer)ch->status);
        lua_pushinteger(T, ch->sig);
        rt_co_resume(co, 2);
    }
}

static void handle_closed(uv_handle_t *h)
{
    child *ch = h->data;
    ch->closed = 1;
    maybe_free(ch);
}

static void on_exit_cb(uv_process_t *p, int64_t status, int sig)
{
    child *ch = p->data;
    ch->running = 0;
    ch->status = status;
    ch->sig = sig;
    unlink_running(ch);
    uv_close((uv_handle_t *)p, handle_closed);
    while (ch->waiters) {
        pwait *w = ch->waiters;
        RT_LIST_UNLINK(ch->waiters, w);
        wake(w, 0);
    }
    if (RT->exiting && !running_list && hook_added)
        rt_hook_done(&proc_hook);
}

static void hook_begin(rt_hook *h)
{
    if (!running_list) {
        rt_hook_done(h);
        return;
    }
    for (child *ch = running_list; ch; ch = ch->next) {
        rt_debug("killing child process %d at shutdown", ch->p.pid);
        uv_process_kill(&ch->p, SIGKILL);
        uv_ref((uv_handle_t *)&ch->p);
    }
}

static int parse_signal(lua_State *L, int idx, const char *fname)
{
    static const struct { const char *n; int s; } sigs[] = {
        {"TERM", SIGTERM}, {"KILL", SIGKILL}, {"INT", SIGINT}, {"HUP", SIGHUP},
        {"STOP", SIGSTOP}, {"CONT", SIGCONT}, {"USR1", SIGUSR1}, {"USR2", SIGUSR2},
        {"QUIT", SIGQUIT}, {NULL, 0}};
    if (lua_isnoneornil(L, idx))
        return SIGTERM;
    if (lua_type(L, idx) == LUA_TNUMBER)
        return (int)lua_tointeger(L, idx);
    const char *n = jl_check_string(L, idx, fname, "signal", NULL);
    if (strncmp(n, "SIG", 3) == 0)
        n += 3;
    for (int i = 0; sigs[i].n; i++)
        if (strcmp(n, sigs[i].n) == 0)
            return sigs[i].s;
    return jl_argerror(L, fname, "signal", "unknown signal '%s'", n);
}

static int open_stdio(lua_State *L, int opts, const char *field, uv_stdio_container_t *io, int fd)
{
    const char *v = opts ? jl_field_string(L, opts, field, "jet.process.spawn", "inherit") : "inherit";
    if (strcmp(v, "inherit") == 0) {
        io->flags = UV_INHERIT_FD;
        io->data.fd = fd;
        return -1;
    }
    if (strcmp(v, "ignore") == 0) {
        io->flags = UV_IGNORE;
        return -1;
    }
    int f = open(v, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (f < 0)
        jl_argerror(L, "jet.process.spawn", field, "cannot open '%s': %s", v, strerror(errno));
    io->flags = UV_INHERIT_FD;
    io->data.fd = f;
    return f;
}

/* jet.process.spawn(argv, {env=, cwd=, stdout=, stderr=, pdeathsig=}) */
static int p_spawn(lua_State *L)
{
    static const char *const keys[] = {"env", "cwd", "stdout", "stderr", "pdeathsig", NULL};
    int opts = 0, n, nargs = 0, fds[2];
    const char **args;
    char **env = NULL;
    uv_process_options_t o;
    uv_stdio_container_t io[3];
    child *ch;
    proc_ud *ud;
    int pdeath = 1, r;
    extern char **environ;

    if (lua_type(L, 1) != LUA_TTABLE)
        jl_argerror(L, "jet.process.spawn", "argv", "list of strings expected, got %s", jl_typename(L, 1));
    n = (int)lua_objlen(L, 1);
    if (n == 0)
        jl_argerror(L, "jet.process.spawn", "argv", "the list is empty");
    if (jl_opt_table(L, 2, "jet.process.spawn", "opts")) {
        opts = 2;
        jl_check_keys(L, 2, "jet.process.spawn", keys);
        pdeath = jl_field_bool(L, 2, "pdeathsig", "jet.process.spawn", 1);
    }
    args = rt_xcalloc((size_t)n + 5, sizeof *args);
    if (pdeath && access("/usr/bin/setpriv", X_OK) == 0) {
        args[nargs++] = "/usr/bin/setpriv";
        args[nargs++] = "--pdeathsig";
        args[nargs++] = "KILL";
        args[nargs++] = "--";
    }
    for (int i = 1; i <= n; i++) {
        lua_rawgeti(L, 1, i);
        if (lua_type(L, -1) != LUA_TSTRING && lua_type(L, -1) != LUA_TNUMBER) {
            free(args);
            jl_argerror(L, "jet.process.spawn", "argv", "entry %d: string expected, got %s", i, luaL_typename(L, -1));
        }
        args[nargs++] = lua_tostring(L, -1);   /* kept alive by the stack */
    }
    memset(&o, 0, sizeof o);
    if (opts) {
        lua_getfield(L, opts, "env");
        if (lua_type(L, -1) == LUA_TTABLE) {
            /* the current environment, with these added or replaced; a
             * value of false removes the variable */
            int envn = 0, cap = 64;
            for (char **e = environ; *e; e++)
                cap++;
            lua_pushnil(L);
            while (lua_next(L, -2)) { cap++; lua_pop(L, 1); }
            env = rt_xcalloc((size_t)cap + 1, sizeof *env);
            for (char **e = environ; *e; e++) {
                size_t kl = strcspn(*e, "=");
                lua_pushlstring(L, *e, kl);
                lua_rawget(L, -2);
                int over = !lua_isnil(L, -1);
                lua_pop(L, 1);
                if (!over)
                    env[envn++] = rt_xstrdup(*e);
            }
            lua_pushnil(L);
            while (lua_next(L, -2)) {
                if (lua_type(L, -1) == LUA_TSTRING || lua_type(L, -1) == LUA_TNUMBER) {
                    lua_pushvalue(L, -2);
                    lua_pushliteral(L, "=");
                    lua_pushvalue(L, -3);
                    lua_concat(L, 3);
                    env[envn++] = rt_xstrdup(lua_tostring(L, -1));
                    lua_pop(L, 1);
                }
                lua_pop(L, 1);
            }
            o.env = env;
        }
        lua_pop(L, 1);
        o.cwd = jl_field_string(L, opts, "cwd", "jet.process.spawn", NULL);
    }
    io[0].flags = UV_IGNORE;
    fds[0] = open_stdio(L, opts, "stdout", &io[1], 1);
    fds[1] = open_stdio(L, opts, "stderr", &io[2], 2);
    o.file = args[0];
    o.args = (char **)args;
    o.stdio = io;
    o.stdio_count = 3;
    o.exit_cb = on_exit_cb;

    ch = rt_xcalloc(1, sizeof *ch);
    r = uv_spawn(RT->loop, &ch->p, &o);
    for (int i = 0; i < 2; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    if (env) {
        for (char **e = env; *e; e++)
            free(*e);
        free(env);
    }
    free(args);
    if (r != 0) {
        free(ch);
        lua_pushnil(L);
        lua_pushstring(L, "spawn_failed");
        lua_pushfstring(L, "jet.process.spawn: %s", uv_strerror(r));
        return 3;
    }
    ch->p.data = ch;
    ch->running = 1;
    uv_unref((uv_handle_t *)&ch->p);
    RT_LIST_PUSH(running_list, ch);
    if (!hook_added) {
        proc_hook.begin = hook_begin;
        proc_hook.force = hook_begin;
        rt_hook_add(&proc_hook);
        hook_added = 1;
    } else if (proc_hook.done && !RT->exiting) {
        proc_hook.done = 0;
    }
    ud = lua_newuserdata(L, sizeof *ud);
    ud->ch = ch;
    luaL_getmetatable(L, PROC_MT);
    lua_setmetatable(L, -2);
    return 1;
}

static child *check_proc(lua_State *L, const char *fname)
{
    proc_ud *ud = luaL_testudata(L, 1, PROC_MT);
    if (!ud)
        jl_argerror(L, fname, "self", "process expected, got %s", jl_typename(L, 1));
    return ud->ch;
}

static int proc_index(lua_State *L)
{
    child *ch = check_proc(L, "proc.pid");
    const char *k = lua_tostring(L, 2);
    if (k && strcmp(k, "pid") == 0) {
        lua_pushinteger(L, ch->p.pid);
        return 1;
    }
    luaL_getmetatable(L, PROC_MT);
    lua_getfield(L, -1, "methods");
    lua_pushvalue(L, 2);
    lua_rawget(L, -2);
    return 1;
}

static int proc_kill(lua_State *L)
{
    child *ch = check_proc(L, "proc:kill");
    int sig = parse_signal(L, 2, "proc:kill");
    int r;
    if (!ch->running)
        return jl_fail(L, "exited", "proc:kill: the process has exited");
    r = uv_process_kill(&ch->p, sig);
    if (r != 0)
        return jl_fail(L, "kill_failed", uv_strerror(r));
    lua_pushboolean(L, 1);
    return 1;
}

static int proc_running(lua_State *L)
{
    lua_pushboolean(L, check_proc(L, "proc:running")->running);
    return 1;
}

static void wait_timeout(uv_timer_t *t)
{
    pwait *w = t->data;
    RT_LIST_UNLINK(w->ch->waiters, w);
    wake(w, 1);
}

static void wait_cancel(rt_co *co, void *p)
{
    pwait *w = p;
    RT_LIST_UNLINK(w->ch->waiters, w);
    rt_timer_free(&w->timer);
    free(w);
}

/* proc:wait([timeout]) -> exit_status, signal | nil, "timeout" */
static int proc_wait(lua_State *L)
{
    child *ch = check_proc(L, "proc:wait");
    double timeout = -1;
    rt_co *co;
    pwait *w;

    if (!lua_isnoneornil(L, 2))
        timeout = jl_check_number(L, 2, "proc:wait", "timeout");
    if (!ch->running) {
        lua_pushinteger(L, (lua_Integer)ch->status);
        lua_pushinteger(L, ch->sig);
        return 2;
    }
    co = rt_co_current(L, "proc:wait");
    w = rt_xcalloc(1, sizeof *w);
    w->co = co;
    w->ch = ch;
    RT_LIST_PUSH(ch->waiters, w);
    if (timeout >= 0)
        w->timer = rt_timer_new(wait_timeout, w, (uint64_t)(timeout * 1000.0), 0);
    return rt_co_wait(co, wait_cancel, w);
}

static int proc_gc(lua_State *L)
{
    proc_ud *ud = lua_touserdata(L, 1);
    if (ud->ch) {
        ud->ch->gone = 1;
        maybe_free(ud->ch);
        ud->ch = NULL;
    }
    return 0;
}

/* ---- helpers ---- */

static int p_free_port(lua_State *L)
{
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
        if (fd >= 0)
            close(fd);
        return luaL_error(L, "jet.process.free_port: %s", strerror(errno));
    }
    close(fd);
    lua_pushinteger(L, ntohs(a.sin_port));
    return 1;
}

static const char *tmp_root(void)
{
    const char *t = getenv("TMPDIR");
    return t && *t ? t : "/tmp";
}

static int p_tmpdir(lua_State *L)
{
    char buf[PATH_MAX];
    const char *prefix = lua_isnoneornil(L, 1) ? "jetlua" : jl_check_string(L, 1, "jet.process.tmpdir", "prefix", NULL);
    snprintf(buf, sizeof buf, "%s/%s-XXXXXX", tmp_root(), prefix);
    if (!mkdtemp(buf))
        return luaL_error(L, "jet.process.tmpdir: %s", strerror(errno));
    lua_pushstring(L, buf);
    return 1;
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    return remove(path) == 0 || errno == ENOENT ? 0 : -1;
}

static int p_rmtree(lua_State *L)
{
    const char *path = jl_check_string(L, 1, "jet.process.rmtree", "path", NULL);
    const char *root = tmp_root();
    size_t rl = strlen(root);
    /* Safety: only below the temp root, never the root itself. */
    if (strncmp(path, root, rl) != 0 || path[rl] != '/' || strstr(path, "/.."))
        return jl_argerror(L, "jet.process.rmtree", "path", "'%s' is not under %s", path, root);
    lua_pushboolean(L, nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS) == 0);
    return 1;
}

static int p_pid(lua_State *L)
{
    lua_pushinteger(L, getpid());
    return 1;
}

/* jet.process.cpu() -> seconds of CPU (user + system) used by this process */
static int p_cpu(lua_State *L)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    lua_pushnumber(L, ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
                      ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6);
    return 1;
}

static int p_getenv(lua_State *L)
{
    const char *v = getenv(jl_check_string(L, 1, "jet.process.getenv", "name", NULL));
    if (v)
        lua_pushstring(L, v);
    else
        lua_pushnil(L);
    return 1;
}

/* ---- wait_port ---- */

typedef struct port_op {
    rt_co       *co;
    uv_tcp_t     tcp;
    uv_connect_t req;
    uv_timer_t   timer;
    struct sockaddr_storage addr;
    uint64_t     deadline;
    int          handles;
    int          result;   /* 0 pending, 1 ok, -1 timeout */
} port_op;

static void port_try(port_op *op);

static void port_handle_closed(uv_handle_t *h)
{
    port_op *op = h->data;
    if (--op->handles > 0)
        return;
    if (op->co) {
        lua_State *T = rt_co_prepare(op->co);
        rt_co *co = op->co;
        int res = op->result;
        free(op);
        if (!T)
            return;
        if (res > 0) {
            lua_pushboolean(T, 1);
            rt_co_resume(co, 1);
        } else {
            lua_pushnil(T);
            lua_pushstring(T, "timeout");
            rt_co_resume(co, 2);
        }
        return;
    }
    free(op);
}

static void port_finish(port_op *op, int result)
{
    op->result = result;
    uv_close((uv_handle_t *)&op->timer, port_handle_closed);
}

static void port_retry(uv_timer_t *t)
{
    port_try(t->data);
}

static void port_tcp_closed(uv_handle_t *h)
{
    port_op *op = h->data;
    int status = (int)(intptr_t)op->req.data;
    if (!op->co) {
        port_finish(op, -1);
        return;
    }
    if (status == 0)
        port_finish(op, 1);
    else if (uv_now(RT->loop) >= op->deadline)
        port_finish(op, -1);
    else
        uv_timer_start(&op->timer, port_retry, 20, 0);
}

static void port_connected(uv_connect_t *req, int status)
{
    port_op *op = req->data;
    req->data = (void *)(intptr_t)status;
    op->tcp.data = op;
    uv_close((uv_handle_t *)&op->tcp, port_tcp_closed);
}

static void port_try(port_op *op)
{
    uv_tcp_init(RT->loop, &op->tcp);
    op->tcp.data = op;
    op->req.data = op;
    if (uv_tcp_connect(&op->req, &op->tcp, (struct sockaddr *)&op->addr, port_connected) != 0) {
        op->req.data = (void *)(intptr_t)-1;
        uv_close((uv_handle_t *)&op->tcp, port_tcp_closed);
    }
}

static void port_cancel(rt_co *co, void *p)
{
    ((port_op *)p)->co = NULL;   /* the attempt in flight ends and frees */
}

/* jet.process.wait_port(host, port, timeout) -> true | nil, "timeout" */
static int p_wait_port(lua_State *L)
{
    const char *host = jl_check_string(L, 1, "jet.process.wait_port", "host", NULL);
    int port = (int)jl_check_number(L, 2, "jet.process.wait_port", "port");
    double timeout = lua_isnoneornil(L, 3) ? 10 : jl_check_number(L, 3, "jet.process.wait_port", "timeout");
    rt_co *co = rt_co_current(L, "jet.process.wait_port");
    port_op *op = rt_xcalloc(1, sizeof *op);

    if (uv_ip4_addr(host, port, (struct sockaddr_in *)&op->addr) != 0 &&
        uv_ip6_addr(host, port, (struct sockaddr_in6 *)&op->addr) != 0) {
        free(op);
        return jl_argerror(L, "jet.process.wait_port", "host", "'%s' is not an IP address", host);
    }
    op->co = co;
    op->handles = 1;
    op->deadline = uv_now(RT->loop) + (uint64_t)(timeout * 1000.0);
    uv_timer_init(RT->loop, &op->timer);
    op->timer.data = op;
    port_try(op);
    return rt_co_wait(co, port_cancel, op);
}

void jl_inject_process(lua_State *L)
{
    static const luaL_Reg methods[] = {
        {"kill", proc_kill}, {"wait", proc_wait}, {"running", proc_running}, {NULL, NULL}};
    static const luaL_Reg fns[] = {
        {"spawn", p_spawn}, {"free_port", p_free_port}, {"tmpdir", p_tmpdir},
        {"rmtree", p_rmtree}, {"pid", p_pid}, {"getenv", p_getenv},
        {"wait_port", p_wait_port}, {"cpu", p_cpu}, {NULL, NULL}};

    luaL_newmetatable(L, PROC_MT);
    lua_pushcfunction(L, proc_index);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, proc_gc);
    lua_setfield(L, -2, "__gc");
    lua_newtable(L);
    luaL_register(L, NULL, methods);
    lua_setfield(L, -2, "methods");
    lua_pop(L, 1);

    lua_newtable(L);
    luaL_register(L, NULL, fns);
    lua_setfield(L, -2, "process");
}
