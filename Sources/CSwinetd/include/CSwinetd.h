/* CSwinetd: the few things swinetd must do in C.
 *
 * 1. sw_spawn: the code between fork and exec. After clone(CLONE_VM|CLONE_VFORK) the child shares
 *    the parent's memory and must make only raw system calls: no allocation, no locks, no Swift
 *    runtime. Swift cannot promise that, so the child side lives here.
 * 2. Thin wrappers for Linux calls that Swift's Glibc module does not export (epoll, signalfd,
 *    accept4, close_range) or that are macros/variadic in C (fcntl, ioctl, syslog).
 */
#ifndef CSWINETD_H
#define CSWINETD_H

#include <stdint.h>
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/epoll.h>
#include <signal.h>

#ifdef __cplusplus
extern "C" {
#endif

/* One resource limit to apply in the child (RLIMIT_* number, soft, hard). */
typedef struct {
    int resource;
    uint64_t soft;
    uint64_t hard;
} sw_rlimit;

/* One step of a sandbox's mount plan (docs/SANDBOX.md), applied in order in the child's own mount
 * namespace. Paths are absolute host paths (a chroot's prefix already added by the parent). */
enum {
    SW_MOUNT_BIND_SELF = 1,     /* mount(path, path, MS_BIND|MS_REC): a mount of its own to flag */
    SW_MOUNT_READONLY = 2,      /* mount_setattr(path, AT_RECURSIVE, +MOUNT_ATTR_RDONLY) */
    SW_MOUNT_WRITABLE = 3,      /* mount_setattr(path, AT_RECURSIVE, -MOUNT_ATTR_RDONLY) */
    SW_MOUNT_TMPFS = 4,         /* a fresh tmpfs, mode 1777, nosuid, nodev */
};

typedef struct {
    int op;                     /* SW_MOUNT_* */
    const char *path;
    int optional;               /* 1: skip the step when the path does not exist */
} sw_mount_step;

/* One classic BPF instruction: the layout of struct sock_filter (<linux/filter.h>). */
typedef struct {
    uint16_t code;
    uint8_t jt;
    uint8_t jf;
    uint32_t k;
} sw_bpf_insn;

/* The sandbox of one service, prepared at configuration load (Spawn/SandboxPlan.swift). */
typedef struct {
    int cgroup_procs_fd;        /* -1: none; else SERVICE/cgroup.procs, opened O_WRONLY by the parent */
    int new_mount_namespace;    /* 1: unshare(CLONE_NEWNS), make / a recursive slave, then `mounts` */
    const sw_mount_step *mounts;
    int n_mounts;
    int new_network_namespace;  /* 1: unshare(CLONE_NEWNET), then bring up lo */
    int set_capabilities;       /* 1: bounding set = capabilities; after the uid change also the
                                 *    permitted, effective, inheritable and ambient sets */
    uint64_t capabilities;      /* bit n: capability n */
    int last_capability;        /* /proc/sys/kernel/cap_last_cap */
    int no_new_privileges;      /* 1: prctl(PR_SET_NO_NEW_PRIVS) */
    const sw_bpf_insn *filter;  /* NULL: no seccomp filter */
    unsigned short filter_length;
} sw_sandbox;

/* Everything the child needs, prepared by the parent so that the child only makes system calls. */
typedef struct {
    const char *path;           /* program to execve */
    char *const *argv;          /* NULL-terminated */
    char *const *envp;          /* NULL-terminated */
    int fd0, fd1, fd2;          /* become 0, 1, 2 (may be equal) */
    const int *extra_fds;       /* become 3, 4, ... in order (LISTEN_FDS style); may be NULL */
    int n_extra_fds;
    int set_ids;                /* 1: setgroups/setresgid/setresuid to the values below */
    uid_t uid;
    gid_t gid;
    const gid_t *groups;
    int n_groups;
    int set_nice;               /* 1: setpriority(PRIO_PROCESS, 0, nice) */
    int nice;
    unsigned int umask;         /* always applied */
    const sw_rlimit *rlimits;
    int n_rlimits;
    const char *chroot_dir;     /* NULL: none */
    const char *cwd;            /* NULL: "/" */
    int new_session;            /* 1: setsid() */
    int set_autogroup_nice;     /* 1: after setsid, give the session's autogroup this nice */
    int autogroup_nice;
    uint64_t reset_signals;     /* bit (n-1) set: reset signal n to SIG_DFL (see sw_non_default_signals) */
    const sw_sandbox *sandbox;  /* NULL: no sandbox (the plain, fastest path) */
    char *pid_env_value;        /* NULL: none; else the value part of an envp entry (room for 20
                                 * digits + NUL) that the child fills with its own pid right before
                                 * execve: LISTEN_PID for `listen_fds` services */
} sw_spawn_attr;

/* The signals whose disposition in this process is not SIG_DFL (bit n-1 for signal n). The child
 * must reset exactly these: SIG_IGN survives execve, and a handler must not run in a child that
 * shares our memory. Resetting only these saves ~60 system calls per spawn. */
uint64_t sw_non_default_signals(void);

/* Prepares spawning, once, before any spawn and while the process is single-threaded: raises the
 * soft RLIMIT_NOFILE to the hard limit (children get the original back) and reserves `groups`
 * groups of low descriptor slots, one per thread that may spawn at the same time (see spawn.c,
 * "Descriptor slots"). Returns 0 or an errno value; spawning works either way, only slower. */
int sw_spawn_setup(int groups);

/* Blocks every signal in the calling thread for good, so its spawns skip the two sigprocmask
 * calls that keep signal handlers out of a child sharing our memory. For threads that do nothing
 * but spawn; the daemon's signals reach it through the signalfd on the reactor thread anyway. */
void sw_spawn_thread_init(void);

/* Starts a child. On success returns 0 and stores the pid and, when the kernel gave one, a pidfd
 * (close-on-exec; -1 otherwise): reap it with sw_pidfd_reap when the pidfd is readable. A
 * child without one is reaped by waitpid(-1) on SIGCHLD. On failure returns an errno value and *failed_step names the step that failed (static
 * string), so the daemon can log it; *pid (and *pidfd) are still set when the child failed after
 * clone, and it must be reaped. The parent thread is suspended until the child has called execve
 * or exited. */
int sw_spawn(const sw_spawn_attr *attr, pid_t *pid, int *pidfd, const char **failed_step);

/* Reaps the child of a readable pidfd without blocking: 1 and *wstatus (as waitpid gives it) when
 * it was reaped, 0 when it has not exited, -1 with errno on error. */
int sw_pidfd_reap(int pidfd, int *wstatus);

/* Blocks the signals the reactor reads from its signalfd (CHLD, HUP, TERM, INT, USR1, USR2, ALRM)
 * in the calling thread and fills `set` with them. Call first thing in main, before any thread. */
void sw_block_daemon_signals(sigset_t *set);

/* signalfd(-1, set, SFD_NONBLOCK|SFD_CLOEXEC) */
int sw_signalfd(const sigset_t *set);
/* Adds SIGCHLD to the daemon's signalfd (watch = 1) or takes it out (0); it stays blocked either
 * way. Out, a SIGCHLD stays pending and the kernel drops every later one early: children with a
 * pidfd are reaped through it, and their exits then cost no signal to queue, wake and read. */
int sw_signalfd_watch_child_exits(int fd, int watch);
/* Reads one signalfd record; returns the signal number, 0 when none is pending, -1 on error. */
int sw_signalfd_read(int fd);

int sw_epoll_create(void);
int sw_epoll_ctl(int epfd, int op, int fd, uint32_t events, uint64_t data);
/* Waits; fills parallel arrays of event masks and data; returns count or -1. */
int sw_epoll_wait(int epfd, uint32_t *events, uint64_t *datas, int max, int timeout_ms);

int sw_accept4(int fd, struct sockaddr_storage *addr, socklen_t *len, int flags);
int sw_set_nonblocking(int fd, int on);
int sw_set_cloexec(int fd, int on);
int sw_fionread(int fd);

/* eventfd(0, EFD_NONBLOCK|EFD_CLOEXEC): how the lookup thread wakes the reactor. */
int sw_eventfd(void);

/* getloadavg(3): the one-minute load average, -1 if unknown. */
double sw_loadavg1(void);

/* SO_PEERCRED of a Unix socket (struct ucred needs _GNU_SOURCE, which Swift's Glibc lacks). */
int sw_peer_credentials(int fd, pid_t *pid, uid_t *uid, gid_t *gid);

/* Linux socket flag values, which Swift sees as enums of unusual types. */
int sw_sock_cloexec(void);
int sw_sock_nonblock(void);

/* syslog(priority, "%s", message) — syslog is variadic. */
void sw_syslog(int priority, const char *message);

/* openlog("swinetd", LOG_PID | LOG_NDELAY, LOG_DAEMON). In C because openlog keeps the ident
 * pointer: a Swift string passed to it is a temporary, and later lines showed freed memory. */
void sw_openlog(void);

/* Number of open file descriptors of this process (from /proc/self/fd), -1 if unknown. */
int sw_count_open_fds(void);

/* malloc_trim(0): returns free heap pages to the system after a burst. */
int sw_malloc_trim(void);

/* 1 when the kernel has mount_setattr(2) (Linux 5.12), which protect_system needs. */
int sw_mount_setattr_available(void);


/* Builtin throughput. pipe2(O_NONBLOCK|O_CLOEXEC); fcntl(F_SETPIPE_SZ) (returns the new size, or
 * F_GETPIPE_SZ's answer when refused);
 * splice(2) without offsets, SPLICE_F_NONBLOCK|SPLICE_F_MOVE. */
int sw_pipe_nonblock(int fds[2]);
int sw_set_pipe_size(int fd, int size);
ssize_t sw_splice(int fd_in, int fd_out, size_t len);
/* recvmmsg(MSG_DONTWAIT, no timeout) and sendmmsg(MSG_DONTWAIT|MSG_NOSIGNAL) of at most 64
 * messages, given as parallel arrays (struct mmsghdr needs _GNU_SOURCE, which Swift's Glibc
 * lacks). recvmmsg stores each datagram's length in lens[i]. sendmmsg: a message whose
 * segment_sizes[i] is not 0 (segment_sizes may be NULL) carries a UDP_SEGMENT control message,
 * so the kernel sends its payload as datagrams of that many bytes, the last one shorter or equal
 * (UDP GSO). The control messages live on sw_sendmmsg's stack; hdrs is not changed. */
int sw_recvmmsg(int fd, struct msghdr *hdrs, unsigned int *lens, unsigned int n);
int sw_sendmmsg(int fd, struct msghdr *hdrs, const uint16_t *segment_sizes, unsigned int n);
/* Whether this kernel knows UDP_SEGMENT (Linux 4.18): getsockopt on a fresh UDP socket. An older
 * kernel would ignore the control message and send one big datagram, so ask first. */
int sw_udp_segmentation_available(void);

#ifdef __cplusplus
}
#endif
#endif
