/* sw_spawn: start a child with clone(CLONE_VM|CLONE_VFORK) and set it up with raw system calls.
 *
 * Why not fork(): copying the page tables of a large daemon is slower and grows with its size.
 * Why not posix_spawn(): it cannot set rlimits, nice, umask, chroot or credentials.
 * Why raw syscalls: the child shares the parent's memory and still believes it has the parent's
 * threads; glibc's setuid()/setgroups() would run the all-threads setxid protocol and can hang
 * (see shared/reference/swift-platform.md §1.4). The child touches only its own stack and `attr`.
 */
#define _GNU_SOURCE
#include "CSwinetd.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

#define SW_STACK_SIZE (64 * 1024)

typedef struct {
    const sw_spawn_attr *attr;
    int err;                 /* written by the child before it dies; read by the parent after vfork resumes */
    const char *step;
} sw_child_ctx;

static long raw(long n, long a, long b, long c, long d) { return syscall(n, a, b, c, d); }

/* Moves fd to target, clearing close-on-exec. dup2 onto itself would keep FD_CLOEXEC, so that case
 * clears the flag instead. */
static int place_fd(int fd, int target) {
    if (fd == target) {
        long flags = raw(SYS_fcntl, fd, F_GETFD, 0, 0);
        if (flags < 0) return -1;
        return (int)raw(SYS_fcntl, fd, F_SETFD, flags & ~FD_CLOEXEC, 0);
    }
    return (int)raw(SYS_dup3, fd, target, 0, 0);
}

#define FAIL(name) do { ctx->err = errno; ctx->step = name; raw(SYS_exit, 127, 0, 0, 0); return 127; } while (0)

static int child_main(void *arg) {
    sw_child_ctx *ctx = arg;
    const sw_spawn_attr *a = ctx->attr;

    /* 1. Default dispositions for every catchable signal, then an empty mask. A blocked mask and
     *    SIG_IGN both survive execve; the daemon blocks several signals. */
    struct { void *handler; unsigned long flags; void *restorer; uint64_t mask; } dfl = {0};
    for (int sig = 1; sig < 65; sig++) {
        if (sig == SIGKILL || sig == SIGSTOP || !(a->reset_signals & (1ULL << (sig - 1)))) continue;
        raw(SYS_rt_sigaction, sig, (long)&dfl, 0, 8);
    }
    uint64_t empty = 0;
    raw(SYS_rt_sigprocmask, SIG_SETMASK, (long)&empty, 0, 8);

    /* 2. A fresh session: no controlling terminal, own process group. */
    if (a->new_session && raw(SYS_setsid, 0, 0, 0, 0) < 0) FAIL("setsid");

    /* 3. Limits, priority, umask: before dropping privileges, so hard limits can be raised. */
    for (int i = 0; i < a->n_rlimits; i++) {
        struct { uint64_t cur, max; } lim = { a->rlimits[i].soft, a->rlimits[i].hard };
        if (raw(SYS_prlimit64, 0, a->rlimits[i].resource, (long)&lim, 0) < 0) FAIL("setrlimit");
    }
    if (a->set_nice && raw(SYS_setpriority, PRIO_PROCESS, 0, a->nice, 0) < 0) FAIL("setpriority");
    raw(SYS_umask, a->umask, 0, 0, 0);

    /* 4. chroot, then the working directory inside it. */
    if (a->chroot_dir) {
        if (raw(SYS_chroot, (long)a->chroot_dir, 0, 0, 0) < 0) FAIL("chroot");
    }
    if (raw(SYS_chdir, (long)(a->cwd ? a->cwd : "/"), 0, 0, 0) < 0) FAIL("chdir");

    /* 5. Identity: groups first, then gid, then uid (after which nothing privileged works). */
    if (a->set_ids) {
        if (raw(SYS_setgroups, a->n_groups, (long)a->groups, 0, 0) < 0) FAIL("setgroups");
        if (raw(SYS_setresgid, a->gid, a->gid, a->gid, 0) < 0) FAIL("setresgid");
        if (raw(SYS_setresuid, a->uid, a->uid, a->uid, 0) < 0) FAIL("setresuid");
    }

    /* 6. Descriptors. Extra fds first go above every source so that placing 0-2 and 3.. cannot
     *    clobber a source that is still needed: move each source to a high slot, then down. */
    int high = 3 + a->n_extra_fds + 3;
    int src[3] = { a->fd0, a->fd1, a->fd2 };
    int need_move = 0;
    for (int i = 0; i < 3; i++) if (src[i] < high && src[i] != i) need_move = 1;
    for (int i = 0; i < a->n_extra_fds; i++) if (a->extra_fds[i] < high) need_move = 1;
    if (need_move) {
        /* Rare path (daemon started with fds 0-2 closed): lift every source above the target range. */
        int lifted[3];
        for (int i = 0; i < 3; i++) {
            lifted[i] = (int)raw(SYS_fcntl, src[i], F_DUPFD, high + 64, 0);
            if (lifted[i] < 0) FAIL("dup");
        }
        for (int i = 0; i < 3; i++) src[i] = lifted[i];
        for (int i = 0; i < a->n_extra_fds; i++) {
            int l = (int)raw(SYS_fcntl, a->extra_fds[i], F_DUPFD, high + 64, 0);
            if (l < 0) FAIL("dup");
            if (place_fd(l, 3 + i) < 0) FAIL("dup2");
        }
    } else {
        for (int i = 0; i < a->n_extra_fds; i++)
            if (place_fd(a->extra_fds[i], 3 + i) < 0) FAIL("dup2");
    }
    for (int i = 0; i < 3; i++)
        if (place_fd(src[i], i) < 0) FAIL("dup2");

    /* 7. Nothing else of the daemon crosses exec: NIO and libraries do not set close-on-exec. */
    int first_closed = 3 + a->n_extra_fds;
    if (raw(SYS_close_range, first_closed, ~0U, 0, 0) < 0) {
        /* Kernels before 5.9: close one by one up to the limit. */
        struct { uint64_t cur, max; } lim;
        long max = 1024;
        if (raw(SYS_prlimit64, 0, RLIMIT_NOFILE, 0, (long)&lim) == 0 && lim.cur < (1 << 20)) max = (long)lim.cur;
        for (long fd = first_closed; fd < max; fd++) raw(SYS_close, fd, 0, 0, 0);
    }

    /* 8. Become the program. */
    raw(SYS_execve, (long)a->path, (long)a->argv, (long)a->envp, 0);
    FAIL("execve");
}

uint64_t sw_non_default_signals(void) {
    uint64_t mask = 0;
    for (int sig = 1; sig < 65; sig++) {
        /* The raw call: glibc's sigaction() refuses its internal signals 32 and 33, which can
         * still arrive ignored from whoever started us. */
        struct { void *handler; unsigned long flags; void *restorer; uint64_t mask; } current;
        if (sig == SIGKILL || sig == SIGSTOP) continue;
        if (syscall(SYS_rt_sigaction, sig, NULL, &current, 8) != 0) continue;
        if (current.handler != SIG_DFL) mask |= 1ULL << (sig - 1);
    }
    return mask;
}

int sw_spawn(const sw_spawn_attr *attr, pid_t *pid, const char **failed_step) {
    static __thread void *stack;
    if (!stack) {
        stack = mmap(NULL, SW_STACK_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
        if (stack == MAP_FAILED) { stack = NULL; *failed_step = "mmap"; return errno; }
    }
    sw_child_ctx ctx = { attr, 0, NULL };

    /* No signal handler may run in the child while it shares our memory. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int child = clone(child_main, (char *)stack + SW_STACK_SIZE, CLONE_VM | CLONE_VFORK | SIGCHLD, &ctx);
    int clone_errno = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);

    if (child < 0) { *failed_step = "clone"; return clone_errno; }
    *pid = child;
    if (ctx.err) {
        /* The child failed before exec and has exited; the caller reaps it like any other. */
        *failed_step = ctx.step;
        return ctx.err;
    }
    return 0;
}
