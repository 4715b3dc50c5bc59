/* A power cut for one process, by LD_PRELOAD: every write to a regular file under
 * $POWERCUT_DIR first appends the bytes it overwrites (and the file's size) to an undo
 * log in $POWERCUT_LOG, one log per file (named by device and inode, so a rename keeps
 * it); fsync or fdatasync of the file empties its log. After SIGKILL, undoing the logs
 * (tests/common/powercut.rs) leaves each file as the disk held it at its last sync:
 * what a power cut does to data still in the page cache.
 *
 * Written by hand, in C: no crate or Debian package does this (LazyFS and CharybdeFS
 * need FUSE and are not packaged, dm-log-writes needs a kernel module, SQLite's crash
 * VFS lives in its Tcl test harness). An interposer must call libc's own functions
 * through dlsym(RTLD_NEXT) and nothing else behind its back, which C makes plain.
 *
 * Not modelled: directory entries (a file created or renamed and never followed by a
 * directory fsync stays), writes through mmap (SQLite's -shm index, rebuilt on open),
 * torn sectors. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

static ssize_t (*real_write)(int, const void *, size_t);
static ssize_t (*real_pwrite)(int, const void *, size_t, off_t);
static ssize_t (*real_pwrite64)(int, const void *, size_t, off_t);
static ssize_t (*real_writev)(int, const struct iovec *, int);
static int (*real_ftruncate)(int, off_t);
static int (*real_ftruncate64)(int, off_t);
static int (*real_fsync)(int);
static int (*real_fdatasync)(int);
static int (*real_unlink)(const char *);
static int (*real_unlinkat)(int, const char *, int);
static int (*real_rename)(const char *, const char *);

static char dir[PATH_MAX];
static size_t dir_len;
static char log_dir[PATH_MAX];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

__attribute__((constructor)) static void init(void) {
    real_write = dlsym(RTLD_NEXT, "write");
    real_pwrite = dlsym(RTLD_NEXT, "pwrite");
    real_pwrite64 = dlsym(RTLD_NEXT, "pwrite64");
    real_writev = dlsym(RTLD_NEXT, "writev");
    real_ftruncate = dlsym(RTLD_NEXT, "ftruncate");
    real_ftruncate64 = dlsym(RTLD_NEXT, "ftruncate64");
    real_fsync = dlsym(RTLD_NEXT, "fsync");
    real_fdatasync = dlsym(RTLD_NEXT, "fdatasync");
    real_unlink = dlsym(RTLD_NEXT, "unlink");
    real_unlinkat = dlsym(RTLD_NEXT, "unlinkat");
    real_rename = dlsym(RTLD_NEXT, "rename");
    const char *d = getenv("POWERCUT_DIR"), *l = getenv("POWERCUT_LOG");
    if (!d || !l || !realpath(d, dir) || !realpath(l, log_dir)) {
        /* Refuse to run half-armed: a test would believe in cuts that drop nothing. */
        static const char msg[] = "powercut: POWERCUT_DIR and POWERCUT_LOG must be existing directories\n";
        real_write(2, msg, sizeof msg - 1);
        _exit(97);
    }
    dir_len = strlen(dir);
}

static int under_dir(const char *path) {
    return strncmp(path, dir, dir_len) == 0 && (path[dir_len] == '/' || path[dir_len] == 0);
}

/* Whether `fd` is a regular file under the watched directory; fills `st`. */
static int watched(int fd, struct stat *st) {
    if (fstat(fd, st) != 0 || !S_ISREG(st->st_mode)) return 0;
    char link[64], path[PATH_MAX];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof path - 1);
    if (n <= 0) return 0;
    path[n] = 0;
    return under_dir(path);
}

#define LOG_PATH_MAX (PATH_MAX + 48)

static void log_path(char *out, dev_t dev, ino_t ino) {
    snprintf(out, LOG_PATH_MAX, "%s/%llu-%llu.undo", log_dir, (unsigned long long)dev,
             (unsigned long long)ino);
}

/* Appends one record: offset, the file's size before, bytes written, bytes saved, then
 * the saved bytes (what [offset, offset + saved) held). One write(2), so a kill leaves
 * at most a truncated last record, which the reader ignores (its write never ran). */
static void save(int fd, const struct stat *st, off_t off, uint64_t len) {
    uint64_t size = (uint64_t)st->st_size, at = (uint64_t)off;
    uint64_t saved = at < size ? (size - at < len ? size - at : len) : 0;
    size_t total = 32 + saved;
    unsigned char *rec = malloc(total);
    if (!rec) abort();
    uint64_t head[4] = {at, size, len, saved};
    memcpy(rec, head, 32);
    if (saved && pread(fd, rec + 32, saved, off) != (ssize_t)saved) abort();
    char path[LOG_PATH_MAX];
    log_path(path, st->st_dev, st->st_ino);
    int l = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (l < 0 || real_write(l, rec, total) != (ssize_t)total) abort();
    close(l);
    free(rec);
}

static void forget(dev_t dev, ino_t ino) {
    char path[LOG_PATH_MAX];
    log_path(path, dev, ino);
    real_unlink(path);
}

/* Runs `op` after saving what [off, off + len) holds; off < 0: the current position. */
#define GUARDED(fd, off, len, op)                                                   \
    do {                                                                            \
        struct stat st;                                                             \
        if (!watched(fd, &st)) return op;                                           \
        pthread_mutex_lock(&lock);                                                  \
        fstat(fd, &st);                                                             \
        off_t at = off;                                                             \
        if (at < 0)                                                                 \
            at = (fcntl(fd, F_GETFL) & O_APPEND) ? st.st_size : lseek(fd, 0, SEEK_CUR); \
        save(fd, &st, at, len);                                                     \
        __typeof__(op) r = op;                                                      \
        pthread_mutex_unlock(&lock);                                                \
        return r;                                                                   \
    } while (0)

ssize_t write(int fd, const void *buf, size_t n) { GUARDED(fd, -1, n, real_write(fd, buf, n)); }

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off) {
    GUARDED(fd, off, n, real_pwrite(fd, buf, n, off));
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off) {
    GUARDED(fd, off, n, real_pwrite64(fd, buf, n, off));
}

ssize_t writev(int fd, const struct iovec *iov, int count) {
    size_t n = 0;
    for (int i = 0; i < count; i++) n += iov[i].iov_len;
    GUARDED(fd, -1, n, real_writev(fd, iov, count));
}

/* A truncation saves the tail it cuts off (an extension saves nothing but the size). */
static int truncate_with(int fd, off_t len, int (*real)(int, off_t)) {
    struct stat st;
    if (!watched(fd, &st)) return real(fd, len);
    pthread_mutex_lock(&lock);
    fstat(fd, &st);
    save(fd, &st, len, st.st_size > len ? (uint64_t)(st.st_size - len) : 0);
    int r = real(fd, len);
    pthread_mutex_unlock(&lock);
    return r;
}

int ftruncate(int fd, off_t len) { return truncate_with(fd, len, real_ftruncate); }
int ftruncate64(int fd, off_t len) { return truncate_with(fd, len, real_ftruncate64); }

/* A sync makes every write so far durable, from whichever descriptor: the lock keeps a
 * write from landing between the sync and the log's removal. */
static int sync_with(int fd, int (*real)(int)) {
    struct stat st;
    if (!watched(fd, &st)) return real(fd);
    pthread_mutex_lock(&lock);
    int r = real(fd);
    if (r == 0) forget(st.st_dev, st.st_ino);
    pthread_mutex_unlock(&lock);
    return r;
}

int fsync(int fd) { return sync_with(fd, real_fsync); }
int fdatasync(int fd) { return sync_with(fd, real_fdatasync); }

/* A file that goes away takes its log with it: its inode may be reused by another. (Only
 * a watched file has a log, so there is nothing to check about where it lives.) */
static void gone(int at, const char *path) {
    struct stat st;
    if (fstatat(at, path, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode))
        forget(st.st_dev, st.st_ino);
}

int unlink(const char *path) {
    pthread_mutex_lock(&lock);
    gone(AT_FDCWD, path);
    int r = real_unlink(path);
    pthread_mutex_unlock(&lock);
    return r;
}

int unlinkat(int at, const char *path, int flags) {
    pthread_mutex_lock(&lock);
    if (!(flags & AT_REMOVEDIR)) gone(at, path);
    int r = real_unlinkat(at, path, flags);
    pthread_mutex_unlock(&lock);
    return r;
}

int rename(const char *from, const char *to) {
    pthread_mutex_lock(&lock);
    gone(AT_FDCWD, to);
    int r = real_rename(from, to);
    pthread_mutex_unlock(&lock);
    return r;
}
