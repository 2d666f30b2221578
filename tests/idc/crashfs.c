/* crashfs: an LD_PRELOAD shim that remembers, for every file under a data root, what a power loss would
 * leave of it: its content at its last fsync/fdatasync, or at the last syncfs/sync of the root.
 *
 * tests/idc/test_power_loss.py builds it with gcc, runs a receiver under it, kills the receiver, then
 * puts every file under the root back to that remembered content (empty if never synced) before the
 * restart. A SIGKILL alone keeps the page cache, so every write survives it and the order of the
 * receiver's syncs is never tested; here every write not yet synced is lost.
 *
 * CRASHFS_ROOT: absolute path of the data root; CRASHFS_SHADOW: absolute path of a directory where
 * the durable content of each file is kept, as DEV-INODE (keyed by inode, so a rename keeps it).
 * Directory entries are taken as durable at once (creations, renames, unlinks): only file contents
 * are lost. The copy is made before the real sync call, so a sync in progress counts as done.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static const char *root, *shadow;
static size_t root_len;

static int configured(void) {
    if (root == NULL) {
        root = getenv("CRASHFS_ROOT");
        shadow = getenv("CRASHFS_SHADOW");
        root_len = root ? strlen(root) : 0;
    }
    return root != NULL && shadow != NULL && root_len > 0;
}

static int under_root(const char *path) {
    return strncmp(path, root, root_len) == 0 && (path[root_len] == '/' || path[root_len] == '\0');
}

/* Copy the regular file at path to SHADOW/DEV-INODE (through a temporary name, then rename). */
static void remember(const char *path) {
    int in = open(path, O_RDONLY | O_CLOEXEC);
    if (in < 0) return;
    struct stat st;
    if (fstat(in, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(in);
        return;
    }
    char dst[PATH_MAX], tmp[PATH_MAX + 8];
    snprintf(dst, sizeof dst, "%s/%llu-%llu", shadow, (unsigned long long)st.st_dev,
             (unsigned long long)st.st_ino);
    snprintf(tmp, sizeof tmp, "%s.tmp", dst);
    int out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (out < 0) {
        close(in);
        return;
    }
    char buf[1 << 16];
    ssize_t n;
    int ok = 1;
    while ((n = read(in, buf, sizeof buf)) > 0) {
        for (ssize_t done = 0; done < n;) {
            ssize_t w = write(out, buf + done, (size_t)(n - done));
            if (w <= 0) {
                ok = 0;
                break;
            }
            done += w;
        }
        if (!ok) break;
    }
    close(in);
    close(out);
    if (ok && n == 0) rename(tmp, dst);
    else unlink(tmp);
}

static void remember_fd(int fd) {
    char link[64], path[PATH_MAX];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof path - 1);
    if (n <= 0) return;
    path[n] = '\0';
    if (under_root(path)) remember(path);
}

static int remember_entry(const char *path, const struct stat *st, int type, struct FTW *ftw) {
    (void)ftw;
    if (type == FTW_F && S_ISREG(st->st_mode)) remember(path);
    return 0;
}

static void remember_all(void) { nftw(root, remember_entry, 32, FTW_PHYS); }

int fsync(int fd) {
    static int (*real)(int);
    if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    if (configured()) {
        pthread_mutex_lock(&lock);
        remember_fd(fd);
        pthread_mutex_unlock(&lock);
    }
    return real(fd);
}

int fdatasync(int fd) {
    static int (*real)(int);
    if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
    if (configured()) {
        pthread_mutex_lock(&lock);
        remember_fd(fd);
        pthread_mutex_unlock(&lock);
    }
    return real(fd);
}

int syncfs(int fd) {
    static int (*real)(int);
    if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "syncfs");
    if (configured()) {
        char link[64], path[PATH_MAX];
        snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
        ssize_t n = readlink(link, path, sizeof path - 1);
        path[n > 0 ? n : 0] = '\0';
        pthread_mutex_lock(&lock);
        if (n > 0 && under_root(path)) remember_all(); /* the data root is one filesystem in the test */
        pthread_mutex_unlock(&lock);
    }
    return real(fd);
}

void sync(void) {
    static void (*real)(void);
    if (!real) real = (void (*)(void))dlsym(RTLD_NEXT, "sync");
    if (configured()) {
        pthread_mutex_lock(&lock);
        remember_all();
        pthread_mutex_unlock(&lock);
    }
    real();
}
