/*
 * rt_statedir.c - shared files of the embedded server's state dir (see
 * rt_statedir.h).
 */
#include "rt_statedir.h"
#include "rt_secret.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

void rt_sd_path(char *out, size_t n, const char *abs, const char *name)
{
    snprintf(out, n, "%s/%s", abs, name);
}

static int mkdirs(const char *dir, mode_t last)
{
    char buf[PATH_MAX];
    snprintf(buf, sizeof buf, "%s", dir);
    for (char *p = buf + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            if (mkdir(buf, 0755) != 0 && errno != EEXIST)
                return -1;
            *p = '/';
        }
    return (mkdir(buf, last) != 0 && errno != EEXIST) ? -1 : 0;
}

/* An empty dir, or one holding what jetlua puts in a state dir. */
static int ours(const char *dir)
{
    static const char *const marks[] = {"nats-server.log", "server.lock", "token", "jetstream", NULL};
    char path[PATH_MAX + 32];
    struct dirent *e;
    DIR *d = opendir(dir);
    int entries = 0;
    if (!d)
        return 0;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            entries++;
    closedir(d);
    if (entries == 0)
        return 1;
    for (int i = 0; marks[i]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, marks[i]);
        if (access(path, F_OK) == 0)
            return 1;
    }
    return 0;
}

int rt_sd_prepare(const char *dir, int create, char *abs, size_t n, char *err, size_t errlen)
{
    struct stat st;
    char *real;

    if (stat(dir, &st) != 0) {
        if (errno != ENOENT || !create) {
            if (errno == ENOENT)
                return 1;
            snprintf(err, errlen, "state dir %s: %s", dir, strerror(errno));
            return -1;
        }
        if (mkdirs(dir, 0700) != 0 || stat(dir, &st) != 0) {
            snprintf(err, errlen, "cannot create the state dir %s: %s", dir, strerror(errno));
            return -1;
        }
    }
    if (!S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "state dir %s is not a directory", dir);
        return -1;
    }
    if (st.st_uid != geteuid()) {
        snprintf(err, errlen, "state dir %s belongs to another user (uid %u); use a state dir of your own (--state-dir)",
                 dir, (unsigned)st.st_uid);
        return -1;
    }
    if ((st.st_mode & 077) && create) {
        /* ours (an old ./.jetlua made 0755, an empty dir): make it
         * private; someone's other directory: say so, change nothing */
        if (!ours(dir)) {
            snprintf(err, errlen, "state dir %s is open to other users (mode %03o) and does not look like a jetlua "
                     "state dir: chmod 700 it, or choose another --state-dir", dir, (unsigned)(st.st_mode & 0777));
            return -1;
        }
        if (chmod(dir, st.st_mode & 0700) != 0) {
            snprintf(err, errlen, "cannot make the state dir %s private (chmod 0700): %s", dir, strerror(errno));
            return -1;
        }
    }
    if (!(real = realpath(dir, NULL))) {
        snprintf(err, errlen, "state dir %s: %s", dir, strerror(errno));
        return -1;
    }
    if (strlen(real) + 32 >= n || strpbrk(real, "\"\\\n")) {
        snprintf(err, errlen, "state dir %s: the path is too long or holds a quote, backslash or newline", real);
        free(real);
        return -1;
    }
    snprintf(abs, n, "%s", real);
    free(real);
    return 0;
}

int rt_sd_write(const char *abs, const char *name, const char *content)
{
    char tmp[PATH_MAX + 64], path[PATH_MAX + 32];
    size_t len = strlen(content);
    int fd, ok;
    snprintf(tmp, sizeof tmp, "%s/.%s.%d.tmp", abs, name, (int)getpid());
    rt_sd_path(path, sizeof path, abs, name);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    ok = write(fd, content, len) == (ssize_t)len;
    ok = close(fd) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        unlink(tmp);
        return -1;
    }
    return 0;
}

int rt_sd_read_line(const char *abs, const char *name, char *out, size_t n)
{
    char path[PATH_MAX + 32];
    FILE *f;
    int rc = -1;
    rt_sd_path(path, sizeof path, abs, name);
    if (!(f = fopen(path, "re")))
        return -1;
    if (fgets(out, (int)n, f)) {
        out[strcspn(out, "\r\n")] = 0;
        rc = out[0] ? 0 : -1;
    }
    fclose(f);
    return rc;
}

static int token_ok(const char *t)
{
    return strlen(t) == RT_TOKEN_LEN && strspn(t, "0123456789abcdef") == RT_TOKEN_LEN;
}

int rt_sd_token(const char *abs, int create, char *tok, size_t n, char *err, size_t errlen)
{
    char path[PATH_MAX + 32], tmp[PATH_MAX + 64], fresh[RT_TOKEN_LEN + 2];
    struct stat st;

    if (n < RT_TOKEN_LEN + 1) {
        snprintf(err, errlen, "internal error: token buffer too small");
        return -1;
    }
    rt_sd_path(path, sizeof path, abs, "token");
    for (int tries = 0; tries < 50; tries++) {
        if (stat(path, &st) == 0) {
            if (st.st_uid != geteuid()) {
                snprintf(err, errlen, "%s belongs to another user", path);
                return -1;
            }
            if ((st.st_mode & 077) && chmod(path, 0600) != 0) {
                snprintf(err, errlen, "cannot make %s private (chmod 0600): %s", path, strerror(errno));
                return -1;
            }
            if (rt_sd_read_line(abs, "token", tok, n) == 0 && token_ok(tok))
                return 0;
            /* creators link a complete file: this one is broken */
            snprintf(err, errlen, "%s does not hold a jetlua token; remove it to make a new one", path);
            return -1;
        }
        if (!create)
            return 1;
        /* write a complete file first, then link it into place: readers
         * never see a partial token, and two creators agree on the first */
        if (rt_random_hex(fresh, RT_TOKEN_LEN / 2) != 0) {
            snprintf(err, errlen, "no randomness for the embedded server's token: %s", strerror(errno));
            return -1;
        }
        strcat(fresh, "\n");
        snprintf(tmp, sizeof tmp, "%s/.token.%d.tmp", abs, (int)getpid());
        {
            int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
            int ok = fd >= 0 && write(fd, fresh, strlen(fresh)) == (ssize_t)strlen(fresh);
            if (fd >= 0)
                ok = close(fd) == 0 && ok;
            memset(fresh, 0, sizeof fresh);
            if (!ok) {
                snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
                unlink(tmp);
                return -1;
            }
        }
        if (link(tmp, path) != 0 && errno != EEXIST) {
            snprintf(err, errlen, "cannot create %s: %s", path, strerror(errno));
            unlink(tmp);
            return -1;
        }
        unlink(tmp);
        /* loop: read whichever token won */
    }
    snprintf(err, errlen, "cannot read or create %s", path);
    return -1;
}

int rt_sd_server_held(const char *abs)
{
    char path[PATH_MAX + 32];
    int fd, held;
    rt_sd_path(path, sizeof path, abs, "server.lock");
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    /* a shared lock conflicts only with the guard's exclusive one */
    held = flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK;
    close(fd);
    return held;
}

int rt_sd_user_add(const char *abs, const char *what)
{
    char dir[PATH_MAX + 32], path[PATH_MAX + 64];
    int fd;
    size_t len = strlen(what);
    rt_sd_path(dir, sizeof dir, abs, "users");
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return -1;
    snprintf(path, sizeof path, "%s/%d", dir, (int)getpid());
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    if (flock(fd, LOCK_EX | LOCK_NB) != 0 || write(fd, what, len) != (ssize_t)len) {
        close(fd);
        return -1;
    }
    return fd;
}

void rt_sd_user_remove(const char *abs, int fd)
{
    char path[PATH_MAX + 64];
    if (fd < 0)
        return;
    snprintf(path, sizeof path, "%s/users/%d", abs, (int)getpid());
    unlink(path);
    close(fd);
}

int rt_sd_users(const char *abs, rt_sd_user_fn fn, void *data)
{
    char dir[PATH_MAX + 32], path[PATH_MAX + 300], what[512];
    struct dirent *e;
    DIR *d;
    int live = 0;
    rt_sd_path(dir, sizeof dir, abs, "users");
    if (!(d = opendir(dir)))
        return 0;
    while ((e = readdir(d))) {
        struct stat st;
        int fd, pid = atoi(e->d_name);
        ssize_t r;
        if (pid <= 0)
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
            continue;
        if (flock(fd, LOCK_SH | LOCK_NB) == 0) {
            unlink(path);               /* its owner died without cleaning up */
            close(fd);
            continue;
        }
        r = read(fd, what, sizeof what - 1);
        what[r > 0 ? r : 0] = 0;
        if (fstat(fd, &st) != 0)
            st.st_mtime = 0;
        close(fd);
        live++;
        if (fn)
            fn(pid, what, st.st_mtime, data);
    }
    closedir(d);
    return live;
}
