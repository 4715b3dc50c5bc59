/* A power cut for one process, by LD_PRELOAD. Under $POWERCUT_DIR:
 * - every write to a regular file first appends the bytes it overwrites (and the file's
 *   size) to an undo log in $POWERCUT_LOG, one log per file, named by device and inode so
 *   a rename keeps it; fsync or fdatasync of the file empties its log;
 * - every change of a name (a file or folder created, a rename, an unlink) is appended
 *   to $POWERCUT_LOG/names, an unlinked or replaced file kept alive by a hard link there;
 *   fsync of the folder holding the name forgets its entries.
 * After SIGKILL, undoing the logs (tests/common/powercut.rs) leaves the folder as the
 * disk held it at the last syncs: what a power cut does to what is still in the page
 * cache.
 *
 * Written by hand, in C: no crate or Debian package does this (LazyFS and CharybdeFS
 * need FUSE and are not packaged, dm-log-writes needs a kernel module, SQLite's crash
 * VFS lives in its Tcl test harness). An interposer must call libc's own functions
 * through dlsym(RTLD_NEXT) and nothing else behind its back, which C makes plain.
 *
 * With $POWERCUT_KILL_AFTER=N the process SIGKILLs itself just before its Nth logged
 * change: a cut at an exact point, to go through every point of a short run.
 *
 * Not modelled: writes through mmap (SQLite's -shm index, rebuilt on open), torn
 * sectors, a rename's source folder (only the target's sync counts). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
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
static int (*real_open)(const char *, int, ...);
static int (*real_open64)(const char *, int, ...);
static int (*real_openat)(int, const char *, int, ...);
static int (*real_openat64)(int, const char *, int, ...);
static int (*real_mkdir)(const char *, mode_t);

static char dir[PATH_MAX];
static size_t dir_len;
static char log_dir[PATH_MAX];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static long kill_after, changes;

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
    real_open = dlsym(RTLD_NEXT, "open");
    real_open64 = dlsym(RTLD_NEXT, "open64");
    real_openat = dlsym(RTLD_NEXT, "openat");
    real_openat64 = dlsym(RTLD_NEXT, "openat64");
    real_mkdir = dlsym(RTLD_NEXT, "mkdir");
    const char *d = getenv("POWERCUT_DIR"), *l = getenv("POWERCUT_LOG");
    if (!d || !l || !realpath(d, dir) || !realpath(l, log_dir)) {
        /* Refuse to run half-armed: a test would believe in cuts that drop nothing. */
        static const char msg[] = "powercut: POWERCUT_DIR and POWERCUT_LOG must be existing directories\n";
        real_write(2, msg, sizeof msg - 1);
        _exit(97);
    }
    dir_len = strlen(dir);
    const char *k = getenv("POWERCUT_KILL_AFTER");
    kill_after = k ? atol(k) : 0;
}

/* Called (under the lock) before each logged change: the cut at an exact point. */
static void count_change(void) {
    if (kill_after > 0 && ++changes >= kill_after) raise(SIGKILL);
}

static int under_dir(const char *path) {
    return strncmp(path, dir, dir_len) == 0 && (path[dir_len] == '/' || path[dir_len] == 0);
}

/* The path `fd` was opened at (PATH_MAX bytes); 0 when unknown. */
static int fd_path(int fd, char *out) {
    char link[64];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, out, PATH_MAX - 1);
    if (n <= 0) return 0;
    out[n] = 0;
    return 1;
}

static int fd_under_dir(int fd) {
    char path[PATH_MAX];
    return fd_path(fd, path) && under_dir(path);
}

/* Whether `fd` is a regular file under the watched directory; fills `st`. */
static int watched(int fd, struct stat *st) {
    return fstat(fd, st) == 0 && S_ISREG(st->st_mode) && fd_under_dir(fd);
}

/* "DEV-INO": how the logs name a file (its data log) or a folder (its names). */
static void key_of(dev_t dev, ino_t ino, char *out, size_t size) {
    snprintf(out, size, "%llu-%llu", (unsigned long long)dev, (unsigned long long)ino);
}

#define LOG_PATH_MAX (PATH_MAX + 48)

static void log_path(char *out, dev_t dev, ino_t ino) {
    char key[48];
    key_of(dev, ino, key, sizeof key);
    if (snprintf(out, LOG_PATH_MAX, "%s/%s.undo", log_dir, key) >= LOG_PATH_MAX) abort();
}

/* Appends one record: offset, the file's size before, bytes written, bytes saved, then
 * the saved bytes (what [offset, offset + saved) held). One write(2), so a kill leaves
 * at most a truncated last record, which the reader ignores (its write never ran). */
static void save(int fd, const struct stat *st, off_t off, uint64_t len) {
    count_change();
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
    int l = real_open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
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

/* `path` made absolute against `at`; 0 when it cannot be. */
static int resolve(int at, const char *path, char *out) {
    char base[PATH_MAX];
    if (path[0] == '/') return snprintf(out, PATH_MAX, "%s", path) < PATH_MAX;
    if (at == AT_FDCWD) {
        if (!getcwd(base, sizeof base)) return 0;
    } else if (!fd_path(at, base)) {
        return 0;
    }
    return snprintf(out, PATH_MAX, "%s/%s", base, path) < PATH_MAX;
}

/* The device and inode of the folder holding `path`, as the names log keys them. */
static int folder_key(const char *path, char *key, size_t size) {
    char dir_path[PATH_MAX];
    snprintf(dir_path, sizeof dir_path, "%s", path);
    char *slash = strrchr(dir_path, '/');
    if (!slash) return 0;
    *(slash == dir_path ? slash + 1 : slash) = 0;
    struct stat st;
    if (stat(dir_path, &st) != 0) return 0;
    key_of(st.st_dev, st.st_ino, key, size);
    return 1;
}

/* Keeps the file at `path` alive under a new name in the log folder: its new name. */
static void keep_alive(const char *path, char *backup) {
    static unsigned long n;
    if (snprintf(backup, PATH_MAX, "%s/kept-%d-%lu", log_dir, (int)getpid(), n++) >= PATH_MAX ||
        link(path, backup) != 0) {
        static const char msg[] = "powercut: cannot hard-link into POWERCUT_LOG (same filesystem?)\n";
        real_write(2, msg, sizeof msg - 1);
        abort();
    }
}

/* Appends "KEY\tOP\tA\tB\tKEPT\n" to the names log (one write(2), as the data logs). */
static void name_change(char op, const char *a, const char *b, const char *kept) {
    count_change();
    char key[64], line[3 * PATH_MAX + 96], path[LOG_PATH_MAX];
    if (!folder_key(b[0] ? b : a, key, sizeof key)) return;
    int n = snprintf(line, sizeof line, "%s\t%c\t%s\t%s\t%s\n", key, op, a, b, kept);
    if (n <= 0 || n >= (int)sizeof line) abort();
    snprintf(path, sizeof path, "%s/names", log_dir);
    int l = real_open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (l < 0 || real_write(l, line, n) != n) abort();
    close(l);
}

/* A folder's sync makes its name changes durable: their entries leave the names log,
 * and the files they kept alive go (with their data logs). */
static void folder_synced(const struct stat *st) {
    char key[64], path[LOG_PATH_MAX], tmp[LOG_PATH_MAX];
    key_of(st->st_dev, st->st_ino, key, sizeof key - 1);
    size_t k = strlen(key);
    key[k++] = '\t';
    key[k] = 0;
    snprintf(path, sizeof path, "%s/names", log_dir);
    snprintf(tmp, sizeof tmp, "%s/names.tmp", log_dir);
    FILE *in = fopen(path, "r");
    if (!in) return;
    FILE *out = fopen(tmp, "w");
    if (!out) abort();
    char line[3 * PATH_MAX + 96];
    while (fgets(line, sizeof line, in)) {
        if (strncmp(line, key, k) != 0) {
            fputs(line, out);
            continue;
        }
        char *kept = strrchr(line, '\t') + 1;
        kept[strcspn(kept, "\n")] = 0;
        struct stat ks;
        if (strcmp(kept, "-") != 0 && stat(kept, &ks) == 0) {
            forget(ks.st_dev, ks.st_ino);
            real_unlink(kept);
        }
    }
    fclose(in);
    if (fclose(out) != 0 || real_rename(tmp, path) != 0) abort();
}

/* A sync makes every write so far durable, from whichever descriptor: the lock keeps a
 * write from landing between the sync and the log's removal. */
static int sync_with(int fd, int (*real)(int)) {
    struct stat st;
    memset(&st, 0, sizeof st);
    int file = watched(fd, &st);
    int folder = !file && S_ISDIR(st.st_mode) && fd_under_dir(fd);
    if (!file && !folder) return real(fd);
    pthread_mutex_lock(&lock);
    int r = real(fd);
    if (r == 0 && file) forget(st.st_dev, st.st_ino);
    if (r == 0 && folder) folder_synced(&st);
    pthread_mutex_unlock(&lock);
    return r;
}

int fsync(int fd) { return sync_with(fd, real_fsync); }
int fdatasync(int fd) { return sync_with(fd, real_fdatasync); }

/* Creating: the name is logged when the call made it. */
#define CREATING(at, path, create, call)                                             \
    do {                                                                             \
        char full[PATH_MAX];                                                         \
        struct stat st;                                                              \
        if (!(create) || !resolve(at, path, full) || !under_dir(full)) return call;  \
        pthread_mutex_lock(&lock);                                                   \
        int existed = lstat(full, &st) == 0;                                         \
        int r = call;                                                                \
        if (r >= 0 && !existed) name_change('C', full, "", "-");                     \
        pthread_mutex_unlock(&lock);                                                 \
        return r;                                                                    \
    } while (0)

#define MODE(flags)                                                                  \
    mode_t mode = 0;                                                                 \
    if ((flags) & (O_CREAT | __O_TMPFILE)) {                                         \
        va_list ap;                                                                  \
        va_start(ap, flags);                                                         \
        mode = va_arg(ap, mode_t);                                                   \
        va_end(ap);                                                                  \
    }

int open(const char *path, int flags, ...) {
    MODE(flags);
    CREATING(AT_FDCWD, path, flags & O_CREAT, real_open(path, flags, mode));
}

int open64(const char *path, int flags, ...) {
    MODE(flags);
    CREATING(AT_FDCWD, path, flags & O_CREAT, real_open64(path, flags, mode));
}

int openat(int at, const char *path, int flags, ...) {
    MODE(flags);
    CREATING(at, path, flags & O_CREAT, real_openat(at, path, flags, mode));
}

int openat64(int at, const char *path, int flags, ...) {
    MODE(flags);
    CREATING(at, path, flags & O_CREAT, real_openat64(at, path, flags, mode));
}

int mkdir(const char *path, mode_t mode) { CREATING(AT_FDCWD, path, 1, real_mkdir(path, mode)); }

/* Unlinking: the file stays alive in the log folder until its folder's sync. */
static int removing(int at, const char *path, int flags) {
    char full[PATH_MAX], kept[PATH_MAX];
    struct stat st;
    if ((flags & AT_REMOVEDIR) || !resolve(at, path, full) || !under_dir(full) ||
        lstat(full, &st) != 0 || !S_ISREG(st.st_mode))
        return real_unlinkat(at, path, flags);
    pthread_mutex_lock(&lock);
    keep_alive(full, kept);
    int r = real_unlinkat(at, path, flags);
    if (r == 0) name_change('U', full, "", kept);
    else real_unlink(kept);
    pthread_mutex_unlock(&lock);
    return r;
}

int unlink(const char *path) { return removing(AT_FDCWD, path, 0); }
int unlinkat(int at, const char *path, int flags) { return removing(at, path, flags); }

/* Renaming: a file it replaces stays alive in the log folder until the folder's sync. */
int rename(const char *from, const char *to) {
    char a[PATH_MAX], b[PATH_MAX], kept[PATH_MAX] = "-";
    struct stat st;
    if (!resolve(AT_FDCWD, from, a) || !resolve(AT_FDCWD, to, b) || !under_dir(b))
        return real_rename(from, to);
    pthread_mutex_lock(&lock);
    int replaced = lstat(b, &st) == 0 && S_ISREG(st.st_mode);
    if (replaced) keep_alive(b, kept);
    int r = real_rename(from, to);
    if (r == 0) name_change('R', a, b, kept);
    else if (replaced) real_unlink(kept);
    pthread_mutex_unlock(&lock);
    return r;
}
