/*
 * lreload.c - what hot reload needs from C: file watching (--watch) and
 * SIGHUP, both turned into a call of the reload manager's trigger function
 * (jetlua/reload.lua) on the loop thread. The reconciling is in Lua.
 *
 * Watching: one uv_fs_event per directory of a watched file, filtered by
 * file name. Directories, not files: editors that save by writing a new file
 * and renaming it over the old one replace the inode a file watch follows.
 * Bursts of events (an editor writes, renames, touches) are debounced: the
 * trigger fires 150 ms after the last one.
 *
 * A watched file may also change with no event on its own name: a
 * Kubernetes ConfigMap volume holds `app.lua -> ..data/app.lua`, and an
 * update renames a new `..data` symlink over the old one. So an event on any
 * other name in a watched directory compares what each watched file there
 * resolves to (stat: device, inode, size, mtime) with what it was, and
 * triggers when that changed; the kubelet's other steps (the new
 * `..<timestamp>` directory, removing the old one) change nothing and
 * trigger nothing.
 */
#include "jl.h"
#include "rt_list.h"
#include "rt_mem.h"
#include "rt_notify.h"
#include "rt_timer.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define DEBOUNCE_MS 150

typedef struct wdir {
    uv_fs_event_t ev;
    char          path[PATH_MAX];
    struct wdir  *next, *prev;
} wdir;

typedef struct fsig {            /* what a watched path resolves to */
    int             exists;
    dev_t           dev;
    ino_t           ino;
    off_t           size;
    struct timespec mtime;
} fsig;

static wdir       *dirs;
static char      **files;        /* watched files, absolute */
static fsig       *sigs;         /* files[i] as last seen */
static int         nfiles;
static int         trigger_ref = LUA_NOREF;
static uv_timer_t *debounce;
static uv_signal_t *hup;
static char        reason[PATH_MAX + 32];

static void fire(const char *why)
{
    lua_State *L = RT->L;
    if (trigger_ref == LUA_NOREF || RT->exiting || !L)
        return;
    lua_rawgeti(L, LUA_REGISTRYINDEX, trigger_ref);
    lua_pushstring(L, why);
    rt_co_spawn(L, 1, "reload", NULL, NULL);
}

static void debounced(uv_timer_t *t)
{
    fire(reason);
}

static fsig sig_of(const char *path)
{
    struct stat st;
    fsig f;
    memset(&f, 0, sizeof f);
    if (stat(path, &st) == 0) {        /* follows symlinks: ..data swaps show */
        f.exists = 1;
        f.dev = st.st_dev;
        f.ino = st.st_ino;
        f.size = st.st_size;
        f.mtime = st.st_mtim;
    }
    return f;
}

static int sig_same(const fsig *a, const fsig *b)
{
    return a->exists == b->exists && a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
           a->mtime.tv_sec == b->mtime.tv_sec && a->mtime.tv_nsec == b->mtime.tv_nsec;
}

static void changed(const char *path)
{
    const char *base = strrchr(path, '/');
    snprintf(reason, sizeof reason, "%s changed", base ? base + 1 : path);
    uv_timer_start(debounce, debounced, DEBOUNCE_MS, 0);
}

static void on_fs(uv_fs_event_t *h, const char *name, int events, int status)
{
    wdir *d = h->data;
    char full[PATH_MAX * 2];
    size_t dl = strlen(d->path);
    if (status < 0 || !name)
        return;
    snprintf(full, sizeof full, "%s/%s", d->path, name);
    for (int i = 0; i < nfiles; i++)
        if (strcmp(files[i], full) == 0) {
            sigs[i] = sig_of(files[i]);
            changed(files[i]);
            return;
        }
    /* another name in this directory: did a watched file here change
     * through a symlink (a ConfigMap's ..data)? */
    for (int i = 0; i < nfiles; i++) {
        fsig now;
        if (strncmp(files[i], d->path, dl) != 0 || files[i][dl] != '/' || strchr(files[i] + dl + 1, '/'))
            continue;
        now = sig_of(files[i]);
        if (!sig_same(&now, &sigs[i])) {
            sigs[i] = now;
            changed(files[i]);
        }
    }
}

static void on_hup(uv_signal_t *h, int sig)
{
    fire("SIGHUP");
}

static void dir_closed(uv_handle_t *h) { free(h->data); }

/* jet._reload_watch({abs paths}): watch exactly these files from now on */
static int reload_watch(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    for (int i = 0; i < nfiles; i++)
        free(files[i]);
    free(files);
    free(sigs);
    nfiles = (int)lua_objlen(L, 1);
    files = rt_xcalloc((size_t)nfiles + 1, sizeof *files);
    sigs = rt_xcalloc((size_t)nfiles + 1, sizeof *sigs);
    for (int i = 0; i < nfiles; i++) {
        lua_rawgeti(L, 1, i + 1);
        files[i] = rt_xstrdup(luaL_checkstring(L, -1));
        sigs[i] = sig_of(files[i]);
        lua_pop(L, 1);
    }
    if (!debounce) {
        debounce = rt_timer_alloc(NULL);
        uv_unref((uv_handle_t *)debounce);
    }
    for (int i = 0; i < nfiles; i++) {
        char dir[PATH_MAX];
        char *slash = strrchr(files[i], '/');
        wdir *d;
        if (!slash)
            continue;
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - files[i]), files[i]);
        for (d = dirs; d && strcmp(d->path, dir) != 0; d = d->next)
            ;
        if (d)
            continue;
        d = rt_xcalloc(1, sizeof *d);
        snprintf(d->path, sizeof d->path, "%s", dir);
        uv_fs_event_init(RT->loop, &d->ev);
        d->ev.data = d;
        if (uv_fs_event_start(&d->ev, on_fs, d->path, 0) != 0) {
            rt_warn("--watch: cannot watch %s", d->path);
            uv_close((uv_handle_t *)&d->ev, dir_closed);
            continue;
        }
        uv_unref((uv_handle_t *)&d->ev);
        RT_LIST_PUSH(dirs, d);
    }
    return 0;
}

/* jet._reload_on_request(fn): fn(reason) runs on SIGHUP and watched changes */
static int reload_on_request(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TFUNCTION);
    luaL_unref(L, LUA_REGISTRYINDEX, trigger_ref);
    lua_pushvalue(L, 1);
    trigger_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    if (!hup) {
        hup = rt_xmalloc(sizeof *hup);
        uv_signal_init(RT->loop, hup);
        uv_signal_start(hup, on_hup, SIGHUP);
        uv_unref((uv_handle_t *)hup);
    }
    return 0;
}

/* jet._reload_watching() -> true when started with --watch */
static int reload_watching(lua_State *L)
{
    lua_pushboolean(L, RT->cfg.watch);
    return 1;
}

/* jet._reload_notify("reloading"|"ready", [status]): tell systemd (Type=notify)
 * that a reload starts / ended (it ended either way: a failed reload keeps
 * the old code running, which is ready) */
static int reload_notify(lua_State *L)
{
    const char *what = luaL_checkstring(L, 1);
    if (strcmp(what, "reloading") == 0)
        rt_notify_reloading();
    else
        rt_notify_ready(luaL_optstring(L, 2, NULL));
    return 0;
}

void jl_inject_reload(lua_State *L)
{
    lua_pushcfunction(L, reload_notify);
    lua_setfield(L, -2, "_reload_notify");
    lua_pushcfunction(L, reload_watch);
    lua_setfield(L, -2, "_reload_watch");
    lua_pushcfunction(L, reload_on_request);
    lua_setfield(L, -2, "_reload_on_request");
    lua_pushcfunction(L, reload_watching);
    lua_setfield(L, -2, "_reload_watching");
}
