/* Wrappers for Linux calls that Swift's Glibc module does not export or cannot call (macros,
 * variadic functions). Each is a direct pass-through; errno is left for the caller. */
#define _GNU_SOURCE
#include "CSwinetd.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <syslog.h>
#include <sys/syscall.h>
#include <unistd.h>

/* The signals the reactor reads from its signalfd. */
static void daemon_signals(sigset_t *set) {
    sigemptyset(set);
    sigaddset(set, SIGCHLD);
    sigaddset(set, SIGHUP);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGUSR1);
    sigaddset(set, SIGUSR2);
    sigaddset(set, SIGALRM);
}

void sw_block_daemon_signals(sigset_t *set) {
    daemon_signals(set);
    pthread_sigmask(SIG_BLOCK, set, NULL);
}

int sw_signalfd(const sigset_t *set) { return signalfd(-1, set, SFD_NONBLOCK | SFD_CLOEXEC); }

int sw_signalfd_watch_child_exits(int fd, int watch) {
    sigset_t set;
    daemon_signals(&set);
    if (!watch) sigdelset(&set, SIGCHLD);
    return signalfd(fd, &set, SFD_NONBLOCK | SFD_CLOEXEC) == fd ? 0 : -1;
}

int sw_signalfd_read(int fd) {
    struct signalfd_siginfo info;
    ssize_t n = read(fd, &info, sizeof info);
    if (n == (ssize_t)sizeof info) return (int)info.ssi_signo;
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return 0;
    return -1;
}

int sw_epoll_create(void) { return epoll_create1(EPOLL_CLOEXEC); }

int sw_epoll_ctl(int epfd, int op, int fd, uint32_t events, uint64_t data) {
    struct epoll_event ev;
    ev.events = events;
    ev.data.u64 = data;
    return epoll_ctl(epfd, op, fd, &ev);
}

int sw_epoll_wait(int epfd, uint32_t *events, uint64_t *datas, int max, int timeout_ms) {
    struct epoll_event evs[256];
    if (max > 256) max = 256;
    int n = epoll_wait(epfd, evs, max, timeout_ms);
    for (int i = 0; i < n; i++) {
        events[i] = evs[i].events;
        datas[i] = evs[i].data.u64;
    }
    return n;
}

int sw_accept4(int fd, struct sockaddr_storage *addr, socklen_t *len, int flags) {
    return accept4(fd, (struct sockaddr *)addr, len, flags);
}

int sw_set_nonblocking(int fd, int on) {
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0) return -1;
    flags = on ? (flags | O_NONBLOCK) : (flags & ~O_NONBLOCK);
    return fcntl(fd, F_SETFL, flags);
}

int sw_set_cloexec(int fd, int on) {
    int flags = fcntl(fd, F_GETFD);
    if (flags < 0) return -1;
    flags = on ? (flags | FD_CLOEXEC) : (flags & ~FD_CLOEXEC);
    return fcntl(fd, F_SETFD, flags);
}

int sw_fionread(int fd) {
    int n = 0;
    if (ioctl(fd, FIONREAD, &n) < 0) return -1;
    return n;
}

int sw_eventfd(void) { return eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC); }

double sw_loadavg1(void) {
    double load[1];
    return getloadavg(load, 1) == 1 ? load[0] : -1;
}

int sw_peer_credentials(int fd, pid_t *pid, uid_t *uid, gid_t *gid) {
    struct ucred cred;
    socklen_t len = sizeof cred;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) return -1;
    *pid = cred.pid;
    *uid = cred.uid;
    *gid = cred.gid;
    return 0;
}

int sw_sock_cloexec(void) { return SOCK_CLOEXEC; }
int sw_sock_nonblock(void) { return SOCK_NONBLOCK; }

void sw_syslog(int priority, const char *message) { syslog(priority, "%s", message); }

void sw_openlog(void) { openlog("swinetd", LOG_PID | LOG_NDELAY, LOG_DAEMON); }

int sw_count_open_fds(void) {
    DIR *d = opendir("/proc/self/fd");
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) if (e->d_name[0] != '.') n++;
    closedir(d);
    return n - 1; /* the directory's own fd */
}

int sw_mount_setattr_available(void) {
    /* An invalid call: EBADF/EINVAL when the call exists, ENOSYS when it does not. */
    long r = syscall(SYS_mount_setattr, -1, "", 0, NULL, 0);
    return !(r < 0 && errno == ENOSYS);
}

#include <malloc.h>
/* malloc_trim(3): gives free heap pages back to the system (malloc.h is not in Swift's Glibc). */
int sw_malloc_trim(void) { return malloc_trim(0); }

/* Builtin throughput (Builtins/SpliceEcho.swift, Builtins/DatagramBatch.swift). */
int sw_pipe_nonblock(int fds[2]) { return pipe2(fds, O_NONBLOCK | O_CLOEXEC); }

int sw_set_pipe_size(int fd, int size) {
    int r = fcntl(fd, F_SETPIPE_SZ, size);
    return r >= 0 ? r : fcntl(fd, F_GETPIPE_SZ);
}

ssize_t sw_splice(int fd_in, int fd_out, size_t len) {
    return splice(fd_in, NULL, fd_out, NULL, len, SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
}

int sw_recvmmsg(int fd, struct msghdr *hdrs, unsigned int *lens, unsigned int n) {
    struct mmsghdr msgs[64];
    if (n > 64) n = 64;
    for (unsigned int i = 0; i < n; i++) msgs[i] = (struct mmsghdr){.msg_hdr = hdrs[i]};
    int got = recvmmsg(fd, msgs, n, MSG_DONTWAIT, NULL);
    for (int i = 0; i < got; i++) {
        hdrs[i] = msgs[i].msg_hdr;
        lens[i] = msgs[i].msg_len;
    }
    return got;
}

#ifndef SOL_UDP
#define SOL_UDP 17
#endif
#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103 /* linux/udp.h, Linux 4.18 */
#endif

int sw_sendmmsg(int fd, struct msghdr *hdrs, const uint16_t *segment_sizes, unsigned int n) {
    struct mmsghdr msgs[64];
    union { char bytes[CMSG_SPACE(sizeof(uint16_t))]; struct cmsghdr align; } control[64];
    if (n > 64) n = 64;
    for (unsigned int i = 0; i < n; i++) {
        msgs[i] = (struct mmsghdr){.msg_hdr = hdrs[i]};
        if (!segment_sizes || segment_sizes[i] == 0) continue;
        memset(&control[i], 0, sizeof control[i]);
        struct cmsghdr *c = &control[i].align;
        c->cmsg_level = SOL_UDP;
        c->cmsg_type = UDP_SEGMENT;
        c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
        memcpy(CMSG_DATA(c), &segment_sizes[i], sizeof(uint16_t));
        msgs[i].msg_hdr.msg_control = control[i].bytes;
        msgs[i].msg_hdr.msg_controllen = sizeof control[i].bytes;
    }
    return sendmmsg(fd, msgs, n, MSG_DONTWAIT | MSG_NOSIGNAL);
}

int sw_udp_segmentation_available(void) {
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return 0;
    int value = 0;
    socklen_t length = sizeof value;
    int known = getsockopt(fd, SOL_UDP, UDP_SEGMENT, &value, &length) == 0;
    close(fd);
    return known;
}
