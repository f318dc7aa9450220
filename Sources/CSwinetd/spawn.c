/* sw_spawn: start a child with clone(CLONE_VM|CLONE_VFORK) and set it up with raw system calls.
 *
 * Why not fork(): copying the page tables of a large daemon is slower and grows with its size.
 * Why not posix_spawn(): it cannot set rlimits, nice, umask, chroot or credentials.
 * Why raw syscalls: the child shares the parent's memory and still believes it has the parent's
 * threads; glibc's setuid()/setgroups() would run the all-threads setxid protocol and can hang
 * (see shared/reference/swift-platform.md §1.4). The child touches only its own stack and `attr`.
 *
 * The sandbox steps (attr->sandbox, docs/SANDBOX.md) are raw system calls on data the parent
 * prepared at configuration load: a mount plan, a BPF program, capability masks, a cgroup fd.
 * All of them work in a CLONE_VM child: unshare(CLONE_NEWNS) only refuses a shared fs_struct
 * (CLONE_FS, which we do not pass), and namespaces, capabilities, no_new_privs and seccomp filters
 * belong to the task, so none of them reaches the parent that shares our memory.
 */
#define _GNU_SOURCE
#include "CSwinetd.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <pthread.h>
#include <sys/wait.h>
#include <linux/close_range.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

#ifndef SYS_mount_setattr
#define SYS_mount_setattr 442   /* the same number on every architecture */
#endif
#ifndef AT_RECURSIVE
#define AT_RECURSIVE 0x8000
#endif
#ifndef PR_CAP_AMBIENT
#define PR_CAP_AMBIENT 47
#define PR_CAP_AMBIENT_RAISE 2
#endif
#define SW_MOUNT_ATTR_RDONLY 0x1ULL

/* struct mount_attr (<linux/mount.h>, which cannot be included together with <sys/mount.h> on
 * every glibc). */
struct sw_mount_attr { uint64_t attr_set, attr_clr, propagation, userns_fd; };

_Static_assert(sizeof(sw_bpf_insn) == sizeof(struct sock_filter), "sw_bpf_insn must match struct sock_filter");

#define SW_STACK_SIZE (64 * 1024)

/* The code the child runs is not instrumented by ThreadSanitizer: it runs in the parent's memory
 * and thread state while the parent is suspended, and never returns to where TSan could balance
 * its books. */
#define SW_CHILD_CODE __attribute__((no_sanitize("thread")))
#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define SW_TSAN 1
#endif
#endif

#if defined(SW_TSAN) && defined(__x86_64__)
/* Under ThreadSanitizer only: clone(2) without glibc's wrapper, which TSan intercepts to run its
 * fork bookkeeping in the child — wrong for a CLONE_VM child, and TSan aborts. The same steps as
 * the wrapper: arg on the child's new stack, the syscall, then fn(arg) and exit in the child.
 * long sw_raw_clone(unsigned long flags, void *stack_top, int *parent_tid, int (*fn)(void *), void *arg) */
long sw_raw_clone(unsigned long flags, void *stack_top, int *parent_tid, int (*fn)(void *), void *arg);
__asm__(
    ".text\n"
    ".type sw_raw_clone,@function\n"
    "sw_raw_clone:\n"
    "  mov %rcx, %r9\n"        /* fn: r9 survives the syscall */
    "  and $-16, %rsi\n"
    "  sub $8, %rsi\n"
    "  mov %r8, (%rsi)\n"      /* arg, popped by the child */
    "  xor %r10, %r10\n"       /* child_tid */
    "  xor %r8, %r8\n"         /* tls */
    "  mov $56, %eax\n"        /* SYS_clone */
    "  syscall\n"
    "  test %rax, %rax\n"
    "  jnz 1f\n"
    "  xor %ebp, %ebp\n"
    "  pop %rdi\n"
    "  call *%r9\n"
    "  mov %eax, %edi\n"
    "  mov $60, %eax\n"        /* SYS_exit */
    "  syscall\n"
    "  hlt\n"
    "1: ret\n"
    ".size sw_raw_clone, .-sw_raw_clone\n");
#endif
#define SW_P_PIDFD 3             /* idtype_t P_PIDFD (Linux 5.4), which older glibc lacks */

/* ---- Descriptor slots: how a child avoids copying the daemon's descriptor table. ----
 *
 * A plain clone copies every descriptor the daemon holds (one per listener, one pidfd per live
 * child) and the child then closes them all: O(daemon fds) per spawn, 0.29x the spawn rate with
 * 10,000 services. Instead the child shares the table (CLONE_FILES) and its first step is
 * close_range(slots_end, ~0, CLOSE_RANGE_UNSHARE), which gives it a private copy of only the
 * descriptors below slots_end. For that, the parent parks the child's descriptors in a group of
 * slots: a block of low descriptors reserved at start-up, each holding /dev/null until a spawn
 * dup3()s its sockets there (atomically, so nothing else can take the number meanwhile). Each
 * spawning thread claims its own group. Without free slots (a tiny RLIMIT_NOFILE, more fds than a
 * group holds) or on kernels without CLOSE_RANGE_UNSHARE, the plain clone is used. */
#define SW_SLOT_GROUP 8          /* 0-2 and up to 5 extra descriptors */
static int slot_base = -1, slot_groups, slots_end, slot_devnull = -1;
static _Atomic uint64_t slot_busy;           /* bit g: group g is in use */
static _Atomic int share_files;              /* 1: CLONE_FILES + unshare works */
static _Atomic int use_pidfd = 1;            /* 0 once the kernel refused CLONE_PIDFD */
static int restore_nofile;                   /* 1: children get original_nofile back */
static struct { uint64_t cur, max; } original_nofile;

typedef struct {
    const sw_spawn_attr *attr;
    int unshare_below;       /* > 0: the child shares our table until close_range(this, ~0, UNSHARE) */
    int err;                 /* written by the child before it dies; read by the parent after vfork resumes */
    const char *step;
    const char *path;        /* the path a failed mount step was about, or NULL */
} sw_child_ctx;

/* Every argument is passed, so that calls which insist on zeros in unused ones (prctl) get them. */
SW_CHILD_CODE static long raw6(long n, long a, long b, long c, long d, long e, long f) { return syscall(n, a, b, c, d, e, f); }
SW_CHILD_CODE static long raw(long n, long a, long b, long c, long d) { return raw6(n, a, b, c, d, 0, 0); }

/* Moves fd to target, clearing close-on-exec. dup2 onto itself would keep FD_CLOEXEC, so that case
 * clears the flag instead. */
SW_CHILD_CODE static int place_fd(int fd, int target) {
    if (fd == target) {
        long flags = raw(SYS_fcntl, fd, F_GETFD, 0, 0);
        if (flags < 0) return -1;
        return (int)raw(SYS_fcntl, fd, F_SETFD, flags & ~FD_CLOEXEC, 0);
    }
    return (int)raw(SYS_dup3, fd, target, 0, 0);
}

#define FAIL(name) do { ctx->err = errno; ctx->step = name; raw(SYS_exit, 127, 0, 0, 0); return 127; } while (0)

/* ---- Sandbox steps: one function each, in the order child_main calls them. ---- */

/* Joins the service's cgroup (memory_max, tasks_max). Writing "0" to cgroup.procs moves the
 * writer itself; the parent opened the file, so nothing is looked up here, and it happens first,
 * while we are root and before the root directory or mounts change. */
SW_CHILD_CODE static int join_cgroup(const sw_sandbox *s) {
    if (s->cgroup_procs_fd < 0) return 0;
    return raw(SYS_write, s->cgroup_procs_fd, (long)"0", 1, 0) == 1 ? 0 : -1;
}

/* A mount namespace of our own, where / is a recursive slave: our mounts never propagate back to
 * the host (or to other children), while the host's later mounts still reach us. */
SW_CHILD_CODE static int enter_mount_namespace(void) {
    if (raw(SYS_unshare, CLONE_NEWNS, 0, 0, 0) < 0) return -1;
    return (int)raw6(SYS_mount, 0, (long)"/", 0, MS_REC | MS_SLAVE, 0, 0);
}

/* One step of the mount plan. mount_setattr(AT_RECURSIVE) flips read-only on a mount and every
 * mount below it in one call; MS_BIND|MS_REMOUNT|MS_RDONLY would change only the top one and leave
 * submounts (a separate /home under strict, /boot/efi) writable. A path that is not a mount point
 * is first bound onto itself, so the flag lands on it and not on the mount that contains it. */
SW_CHILD_CODE static const char *mount_step(const sw_mount_step *m) {
    long r = 0;
    const char *name = "mount";
    switch (m->op) {
    case SW_MOUNT_BIND_SELF:
        name = "bind mount";
        r = raw6(SYS_mount, (long)m->path, (long)m->path, 0, MS_BIND | MS_REC, 0, 0);
        break;
    case SW_MOUNT_READONLY:
    case SW_MOUNT_WRITABLE: {
        struct sw_mount_attr attr = {0};
        if (m->op == SW_MOUNT_READONLY) { attr.attr_set = SW_MOUNT_ATTR_RDONLY; name = "read-only mount"; }
        else { attr.attr_clr = SW_MOUNT_ATTR_RDONLY; name = "writable mount"; }
        r = raw6(SYS_mount_setattr, AT_FDCWD, (long)m->path, AT_RECURSIVE, (long)&attr, sizeof attr, 0);
        break;
    }
    case SW_MOUNT_TMPFS:
        name = "tmpfs mount";
        r = raw6(SYS_mount, (long)"tmpfs", (long)m->path, (long)"tmpfs", MS_NOSUID | MS_NODEV, (long)"mode=1777", 0);
        break;
    default:
        errno = EINVAL;
        return name;
    }
    if (r < 0 && !(m->optional && errno == ENOENT)) return name;
    return NULL;
}

/* A network namespace with only loopback, brought up (it starts down): the child still has the
 * socket it was handed, but can reach nothing else. SIOCSIFFLAGS on any socket of the namespace. */
SW_CHILD_CODE static int enter_network_namespace(void) {
    if (raw(SYS_unshare, CLONE_NEWNET, 0, 0, 0) < 0) return -1;
    int fd = (int)raw(SYS_socket, AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0, 0);
    if (fd < 0) return -1;
    struct ifreq ifr = {0};
    ifr.ifr_name[0] = 'l';
    ifr.ifr_name[1] = 'o';
    long r = raw(SYS_ioctl, fd, SIOCGIFFLAGS, (long)&ifr, 0);
    if (r == 0) {
        ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
        r = raw(SYS_ioctl, fd, SIOCSIFFLAGS, (long)&ifr, 0);
    }
    int saved = errno;
    raw(SYS_close, fd, 0, 0, 0);
    errno = saved;
    return r < 0 ? -1 : 0;
}

/* Drops every capability outside the kept set from the bounding set, so neither this program nor
 * anything it executes (setuid binaries, file capabilities) can ever hold them. Needs CAP_SETPCAP,
 * so it runs before the uid change; the effective set is untouched, so setresuid still works. */
SW_CHILD_CODE static int drop_bounding_set(const sw_sandbox *s) {
    for (int cap = 0; cap <= s->last_capability && cap < 64; cap++) {
        if (s->capabilities & (1ULL << cap)) continue;
        if (raw6(SYS_prctl, PR_CAPBSET_DROP, cap, 0, 0, 0, 0) < 0) return -1;
    }
    return 0;
}

/* After the uid change (with PR_SET_KEEPCAPS, so the permitted set survived it): permitted,
 * effective and inheritable become the kept set, and each kept capability is raised into the
 * ambient set, the one that survives execve of an ordinary binary by a non-root user. */
SW_CHILD_CODE static int set_capability_sets(const sw_sandbox *s) {
    struct __user_cap_header_struct header = { _LINUX_CAPABILITY_VERSION_3, 0 };
    struct __user_cap_data_struct data[2];
    for (int i = 0; i < 2; i++) {
        uint32_t word = (uint32_t)(s->capabilities >> (32 * i));
        data[i].effective = word;
        data[i].permitted = word;
        data[i].inheritable = word;
    }
    if (raw(SYS_capset, (long)&header, (long)data, 0, 0) < 0) return -1;
    for (int cap = 0; cap <= s->last_capability && cap < 64; cap++) {
        if (!(s->capabilities & (1ULL << cap))) continue;
        if (raw6(SYS_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0, 0) < 0) return -1;
    }
    return 0;
}

/* The seccomp filter, loaded last: after it only execve (and exit on failure) run, and the filter
 * always allows those. Needs no_new_privs or CAP_SYS_ADMIN; the parent turned no_new_privs on
 * whenever the child will lack CAP_SYS_ADMIN. */
SW_CHILD_CODE static int load_seccomp_filter(const sw_sandbox *s) {
    struct sock_fprog program = { s->filter_length, (struct sock_filter *)s->filter };
    return (int)raw(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, (long)&program, 0);
}

/* LISTEN_PID: the child's own pid in decimal, written into the prepared envp value (a tiny itoa:
 * no libc formatting between clone and exec). */
SW_CHILD_CODE static int fill_pid_env(char *value) {
    long pid = raw(SYS_getpid, 0, 0, 0, 0);
    if (pid <= 0) return -1;
    char digits[24];
    int n = 0;
    while (pid > 0 && n < (int)sizeof digits) { digits[n++] = (char)('0' + pid % 10); pid /= 10; }
    for (int i = 0; i < n; i++) value[i] = digits[n - 1 - i];
    value[n] = 0;
    return 0;
}

/* Writes `nice` (-20..19) to /proc/self/autogroup. Root may lower it; anyone may raise it. */
SW_CHILD_CODE static void set_autogroup_nice(int nice) {
    char text[8];
    int n = 0;
    unsigned magnitude = nice < 0 ? (unsigned)-nice : (unsigned)nice;
    if (nice < 0) text[n++] = '-';
    if (magnitude >= 10) text[n++] = (char)('0' + magnitude / 10 % 10);
    text[n++] = (char)('0' + magnitude % 10);
    long fd = raw(SYS_openat, AT_FDCWD, (long)"/proc/self/autogroup", O_WRONLY | O_CLOEXEC, 0);
    if (fd < 0) return;
    raw(SYS_write, fd, (long)text, n, 0);
    raw(SYS_close, fd, 0, 0, 0);
}

SW_CHILD_CODE static int child_main(void *arg) {
    sw_child_ctx *ctx = arg;
    const sw_spawn_attr *a = ctx->attr;
    const sw_sandbox *sb = a->sandbox;

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

    /* 2a. The service's cgroup, while still root and before anything below moves the root. */
    if (sb && join_cgroup(sb) < 0) FAIL("cgroup");

    /* 2b. A private descriptor table holding only the low descriptors (see "Descriptor slots").
     *     Until here nothing touched a descriptor: the table is still the daemon's. */
    if (ctx->unshare_below > 0 && raw(SYS_close_range, ctx->unshare_below, ~0U, CLOSE_RANGE_UNSHARE, 0) < 0)
        FAIL("close_range(UNSHARE)");
    /* 2c. The new session's scheduler group gets the child's nice (Autogroup.swift says why). Best
     *     effort: a kernel without autogroups has no such file. After 2b: it opens a descriptor. */
    if (a->new_session && a->set_autogroup_nice) set_autogroup_nice(a->autogroup_nice);
    /* The daemon raised its own descriptor limit (pidfds); children get the limit it was given. */
    if (restore_nofile && raw(SYS_prlimit64, 0, RLIMIT_NOFILE, (long)&original_nofile, 0) < 0) FAIL("setrlimit");

    /* 3. Limits, priority, umask: before dropping privileges, so hard limits can be raised. */
    for (int i = 0; i < a->n_rlimits; i++) {
        struct { uint64_t cur, max; } lim = { a->rlimits[i].soft, a->rlimits[i].hard };
        if (raw(SYS_prlimit64, 0, a->rlimits[i].resource, (long)&lim, 0) < 0) FAIL("setrlimit");
    }
    if (a->set_nice && raw(SYS_setpriority, PRIO_PROCESS, 0, a->nice, 0) < 0) FAIL("setpriority");
    raw(SYS_umask, a->umask, 0, 0, 0);

    /* 3a. Sandbox namespaces, while still root: the mount plan (paths already inside the chroot),
     *     then a network namespace. Both must precede chroot, which would hide the paths. */
    if (sb && sb->new_mount_namespace) {
        if (enter_mount_namespace() < 0) FAIL("mount namespace");
        for (int i = 0; i < sb->n_mounts; i++) {
            const char *failed = mount_step(&sb->mounts[i]);
            if (failed) { ctx->path = sb->mounts[i].path; FAIL(failed); }
        }
    }
    if (sb && sb->new_network_namespace && enter_network_namespace() < 0) FAIL("network namespace");

    /* 4. chroot, then the working directory inside it. */
    if (a->chroot_dir) {
        if (raw(SYS_chroot, (long)a->chroot_dir, 0, 0, 0) < 0) FAIL("chroot");
    }
    if (raw(SYS_chdir, (long)(a->cwd ? a->cwd : "/"), 0, 0, 0) < 0) FAIL("chdir");

    /* 5. Identity: groups first, then gid, then uid (after which nothing privileged works).
     *    With capabilities, the bounding set is cut first (that needs CAP_SETPCAP) and KEEPCAPS
     *    keeps the permitted set across setresuid; the sets are then trimmed to what is kept. */
    if (sb && sb->set_capabilities) {
        if (drop_bounding_set(sb) < 0) FAIL("capability bounding set");
        if (raw6(SYS_prctl, PR_SET_KEEPCAPS, 1, 0, 0, 0, 0) < 0) FAIL("keepcaps");
    }
    if (a->set_ids) {
        if (raw(SYS_setgroups, a->n_groups, (long)a->groups, 0, 0) < 0) FAIL("setgroups");
        if (raw(SYS_setresgid, a->gid, a->gid, a->gid, 0) < 0) FAIL("setresgid");
        if (raw(SYS_setresuid, a->uid, a->uid, a->uid, 0) < 0) FAIL("setresuid");
    }
    if (sb && sb->set_capabilities && set_capability_sets(sb) < 0) FAIL("capabilities");
    /* 5a. No new privileges: execve of setuid programs and file capabilities grants nothing more. */
    if (sb && sb->no_new_privileges && raw6(SYS_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0, 0) < 0)
        FAIL("no_new_privs");

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

    /* 7a. The seccomp filter, last: from here on only execve and exit run. */
    if (sb && sb->filter && load_seccomp_filter(sb) < 0) FAIL("seccomp");

    /* 8. Become the program. */
    if (a->pid_env_value && fill_pid_env(a->pid_env_value) < 0) FAIL("getpid");
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

int sw_spawn_setup(int groups) {
    /* One descriptor per live child (its pidfd): allow as many as the hard limit does. */
    struct rlimit lim;
    if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
        rlim_t want = lim.rlim_max > (1 << 20) ? (1 << 20) : lim.rlim_max;
        if (want > lim.rlim_cur) {
            original_nofile.cur = lim.rlim_cur;
            original_nofile.max = lim.rlim_max;
            lim.rlim_cur = want;
            if (setrlimit(RLIMIT_NOFILE, &lim) == 0) restore_nofile = 1;
        }
    }
    if (groups < 1) groups = 1;
    if (groups > 64) groups = 64;
    int n = groups * SW_SLOT_GROUP;
    if (getrlimit(RLIMIT_NOFILE, &lim) != 0) return errno;
    slot_devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (slot_devnull < 0) return errno;
    /* The first free run of n descriptors from 3 up, so the block leaves no gap below it. */
    for (int base = 3; (rlim_t)(base + n) <= lim.rlim_cur && base < 4096; base++) {
        int busy = -1;
        for (int fd = base; fd < base + n && busy < 0; fd++)
            if (fcntl(fd, F_GETFD) >= 0 || errno != EBADF) busy = fd;
        if (busy >= 0) { base = busy; continue; }
        int placed = 0;
        while (placed < n && dup3(slot_devnull, base + placed, O_CLOEXEC) == base + placed) placed++;
        if (placed < n) {
            int err = errno;
            while (placed > 0) close(base + --placed);
            return err;
        }
        slot_base = base;
        slot_groups = groups;
        slots_end = base + n;
        /* Kernels before 5.9 refuse CLOSE_RANGE_UNSHARE: the first spawn finds out and turns this off. */
        share_files = 1;
        return 0;
    }
    return EMFILE;
}

static int claim_slot_group(void) {
    uint64_t busy = atomic_load(&slot_busy);
    for (;;) {
        int g = 0;
        while (g < slot_groups && (busy & (1ULL << g))) g++;
        if (g == slot_groups) return -1;
        if (atomic_compare_exchange_weak(&slot_busy, &busy, busy | (1ULL << g))) return g;
    }
}

static void release_slot_group(int g, int used) {
    int first = slot_base + g * SW_SLOT_GROUP;
    for (int i = 0; i < used; i++) dup3(slot_devnull, first + i, O_CLOEXEC);  /* drops the parked fd */
    atomic_fetch_and(&slot_busy, ~(1ULL << g));
}

/* Set in threads that only spawn (sw_spawn_thread_init): their signal mask is full already. */
static __thread int thread_blocks_all_signals;

void sw_spawn_thread_init(void) {
    sigset_t all;
    sigfillset(&all);
    if (pthread_sigmask(SIG_SETMASK, &all, NULL) == 0) thread_blocks_all_signals = 1;
}

/* One clone; the child runs child_main. Returns the pid or -1 with errno. */
static pid_t clone_child(sw_child_ctx *ctx, void *stack, int with_pidfd, int *pidfd) {
    int flags = CLONE_VM | CLONE_VFORK;
    if (ctx->unshare_below > 0) flags |= CLONE_FILES;
    /* A child with a pidfd is reaped through it, exactly that child: O(1) whatever the number of
     * children, where waitpid(-1) walks the list of all of them. It still has SIGCHLD as its exit
     * signal: an ordinary child in every respect (execve would restore SIGCHLD anyway). */
    flags |= SIGCHLD | (with_pidfd ? CLONE_PIDFD : 0);
    ctx->err = 0;
    ctx->step = NULL;
    ctx->path = NULL;
    /* No signal handler may run in the child while it shares our memory: every signal stays
     * blocked until the child has reset the dispositions. Spawn threads block them for good. */
    sigset_t all, old;
    if (!thread_blocks_all_signals) {
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
    }
#if defined(SW_PROFILE_VFORK)
    /* Profiling builds only (Benchmarks/callgrind.sh, -DSW_PROFILE_VFORK): valgrind runs no
     * general clone(), only fork and vfork (which it runs as a fork, so a failure before exec
     * is not reported back: the child just exits 127). No pidfd, no shared descriptor table. */
    (void)flags;
    (void)stack;
    *pidfd = -1;
    pid_t child = vfork();
    if (child == 0) raw(SYS_exit, child_main(ctx), 0, 0, 0);
    int clone_errno = errno;
#elif defined(SW_TSAN) && defined(__x86_64__)
    long raw_result = sw_raw_clone((unsigned long)flags, (char *)stack + SW_STACK_SIZE, pidfd, child_main, ctx);
    pid_t child = raw_result < 0 ? -1 : (pid_t)raw_result;
    int clone_errno = raw_result < 0 ? (int)-raw_result : 0;
#else
    pid_t child = clone(child_main, (char *)stack + SW_STACK_SIZE, flags, ctx, pidfd);
    int clone_errno = errno;
#endif
    if (!thread_blocks_all_signals) pthread_sigmask(SIG_SETMASK, &old, NULL);
    errno = clone_errno;
    return child;
}

/* Reaps a child that failed at a step we retry differently; it has exited (vfork returned). */
static void discard_child(pid_t child, int pidfd) {
    siginfo_t info;
    if (pidfd >= 0) {
        syscall(SYS_waitid, SW_P_PIDFD, pidfd, &info, WEXITED | __WALL, NULL);
        close(pidfd);
    } else {
        waitid(P_PID, (id_t)child, &info, WEXITED | __WALL);
    }
}

int sw_spawn(const sw_spawn_attr *attr, pid_t *pid, int *pidfd, const char **failed_step) {
    static __thread void *stack;
    if (!stack) {
        stack = mmap(NULL, SW_STACK_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
        if (stack == MAP_FAILED) { stack = NULL; *failed_step = "mmap"; return errno; }
    }
    *pidfd = -1;

    /* Park the child's descriptors in a slot group when one is free and large enough. */
    sw_spawn_attr parked = *attr;
    int parked_fds[SW_SLOT_GROUP];
    int group = -1, used = 0;
    if (atomic_load(&share_files) && 3 + attr->n_extra_fds <= SW_SLOT_GROUP) group = claim_slot_group();
    if (group >= 0) {
        int first = slot_base + group * SW_SLOT_GROUP;
        int sources[3] = { attr->fd0, attr->fd1, attr->fd2 };
        int targets[3];
        for (int i = 0; i < 3 && group >= 0; i++) {
            int same = -1;
            for (int j = 0; j < i; j++) if (sources[j] == sources[i]) same = j;
            if (same >= 0) { targets[i] = targets[same]; continue; }
            if (dup3(sources[i], first + used, O_CLOEXEC) < 0) { release_slot_group(group, used); group = -1; break; }
            targets[i] = first + used++;
        }
        for (int i = 0; group >= 0 && i < attr->n_extra_fds; i++) {
            if (dup3(attr->extra_fds[i], first + used, O_CLOEXEC) < 0) { release_slot_group(group, used); group = -1; break; }
            parked_fds[i] = first + used++;
        }
        if (group >= 0) {
            parked.fd0 = targets[0];
            parked.fd1 = targets[1];
            parked.fd2 = targets[2];
            parked.extra_fds = attr->n_extra_fds ? parked_fds : NULL;
        }
    }

    sw_child_ctx ctx = { group >= 0 ? &parked : attr, group >= 0 ? slots_end : 0, 0, NULL, NULL };
    int with_pidfd = atomic_load(&use_pidfd);
    pid_t child = clone_child(&ctx, stack, with_pidfd, pidfd);
    if (child < 0 && with_pidfd && errno == EINVAL) {
        /* A kernel before 5.2: no CLONE_PIDFD. Reap with SIGCHLD from now on. */
        atomic_store(&use_pidfd, 0);
        child = clone_child(&ctx, stack, 0, pidfd);
    } else if (child < 0 && with_pidfd && (errno == EMFILE || errno == ENFILE)) {
        /* No descriptor left for a pidfd: this child is reaped through SIGCHLD instead. */
        child = clone_child(&ctx, stack, 0, pidfd);
    }
    if (child > 0 && ctx.err && ctx.unshare_below > 0 && ctx.step && !strcmp(ctx.step, "close_range(UNSHARE)")) {
        /* A kernel before 5.9: no partial unshare. Copy whole tables from now on. */
        discard_child(child, with_pidfd ? *pidfd : -1);
        *pidfd = -1;
        atomic_store(&share_files, 0);
        ctx.attr = attr;
        ctx.unshare_below = 0;
        child = clone_child(&ctx, stack, atomic_load(&use_pidfd), pidfd);
    }
    int clone_errno = errno;
    if (group >= 0) release_slot_group(group, used);
    if (child < 0) *pidfd = -1;

    if (child < 0) { *failed_step = "clone"; return clone_errno; }
    *pid = child;
    if (ctx.err) {
        /* The child failed before exec and has exited; the caller reaps it like any other. A
         * failed mount step also names its path (formatted here, in the parent). */
        static __thread char described[512];
        *failed_step = ctx.step;
        if (ctx.path) {
            snprintf(described, sizeof described, "%s %s", ctx.step, ctx.path);
            *failed_step = described;
        }
        return ctx.err;
    }
    return 0;
}

int sw_pidfd_reap(int pidfd, int *wstatus) {
    siginfo_t info;
    memset(&info, 0, sizeof info);
    if (syscall(SYS_waitid, SW_P_PIDFD, pidfd, &info, WEXITED | WNOHANG | __WALL, NULL) < 0) return -1;
    if (info.si_pid == 0) return 0;
    switch (info.si_code) {
    case CLD_EXITED: *wstatus = (info.si_status & 0xff) << 8; break;
    case CLD_DUMPED: *wstatus = (info.si_status & 0x7f) | 0x80; break;
    default: *wstatus = info.si_status & 0x7f; break;
    }
    return 1;
}
