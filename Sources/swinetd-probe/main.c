/* swinetd-probe: a test service. Reports, from inside the child, exactly what swinetd gave it.
 *
 * usage: swinetd-probe [MODE [ARG]]
 *   report        (default) write the report to fd 1 and exit
 *   report-wait   write the report, then wait for the peer to close (holds the child alive)
 *   sleep SECS    write the report, then sleep (a long-lived child)
 *   accept        fd 0 is a listening socket (stream wait): accept one connection, report on it, exit
 *   listen-fds    a systemd-style socket-activated daemon (sd_listen_fds): checks LISTEN_PID ==
 *                 getpid(), LISTEN_FDS, that fds 3.. are listening sockets, then accepts one
 *                 connection on whichever is ready and writes the report (plus listen_* lines) on it
 *   dgram         fd 0 is a datagram socket (dgram wait): answer one datagram with the report, exit
 *   exit CODE     exit at once with CODE, writing nothing
 *   cat           copy fd 0 to fd 1 until EOF
 *   sandbox CHECK...  the report, plus one line per check, run from inside the child:
 *                 exists=PATH        exists:PATH=yes|no          (a host /tmp marker: private_tmp?)
 *                 write=DIR          write:DIR=ok|EROFS|...      (creates and removes a file in DIR)
 *                 connect=IP:PORT    connect:IP:PORT=ok|ENETUNREACH|...   (TCP, 2 s)
 *                 mount=DIR          mount:DIR=ok|EPERM|...      (mounts a tmpfs on DIR, then unmounts)
 *                 syscall=NAME       syscall:NAME=ENOENT|EPERM|...  (a harmless call that fails with
 *                                    ENOENT when allowed: mount, chroot, swapon, unshare-ish names)
 * The report is "key=value" lines: argv, uid, gid, groups, fds (with targets), env, signal masks,
 * umask, session, nice, rlimits, the socket types of fds 0-2, the capability sets, NoNewPrivs,
 * Seccomp, the cgroup, the root directory's identity and the network interfaces the child sees.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/swap.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

extern char **environ;

static char buf[1 << 16];
static size_t len;

static void add(const char *fmt, const char *a, const char *b) {
    int n = snprintf(buf + len, sizeof buf - len, fmt, a, b);
    if (n > 0 && (size_t)n < sizeof buf - len) len += (size_t)n;
}

static void status_line(const char *key) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return;
    char line[4096];
    size_t klen = strlen(key);
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, key, klen) == 0 && line[klen] == ':') {
            char *v = line + klen + 1;
            while (*v == ' ' || *v == '\t') v++;
            v[strcspn(v, "\n")] = 0;
            add("%s=%s\n", key, v);
        }
    }
    fclose(f);
}

static void build_report(int argc, char **argv) {
    char tmp[4096];
    for (int i = 0; i < argc; i++) {
        snprintf(tmp, sizeof tmp, "argv%d", i);
        add("%s=%s\n", tmp, argv[i]);
    }
    snprintf(tmp, sizeof tmp, "%d", argc); add("%s=%s\n", "argc", tmp);
    status_line("Uid"); status_line("Gid"); status_line("Groups");
    status_line("SigIgn"); status_line("SigBlk"); status_line("SigCgt");
    status_line("Umask"); status_line("NoNewPrivs"); status_line("CapEff");
    status_line("CapInh"); status_line("CapPrm"); status_line("CapBnd"); status_line("CapAmb");
    status_line("Seccomp"); status_line("Seccomp_filters");
    /* The cgroup v2 line of /proc/self/cgroup ("0::/path"). */
    FILE *cg = fopen("/proc/self/cgroup", "r");
    if (cg) {
        char line[4096];
        while (fgets(line, sizeof line, cg))
            if (strncmp(line, "0::", 3) == 0) { line[strcspn(line, "\n")] = 0; add("%s=%s\n", "cgroup", line + 3); }
        fclose(cg);
    }
    /* The network interfaces of the child's namespace, from /proc/self/net/dev. */
    FILE *nd = fopen("/proc/self/net/dev", "r");
    if (nd) {
        char line[512], list[1024] = "";
        while (fgets(line, sizeof line, nd)) {
            char *colon = strchr(line, ':');
            if (!colon) continue;
            *colon = 0;
            char *name = line;
            while (*name == ' ') name++;
            strncat(list, name, sizeof list - strlen(list) - 2);
            strcat(list, ",");
        }
        fclose(nd);
        add("%s=%s\n", "netdevs", list);
    }
    snprintf(tmp, sizeof tmp, "%d", (int)getpid()); add("%s=%s\n", "pid", tmp);
    snprintf(tmp, sizeof tmp, "%d", (int)getsid(0)); add("%s=%s\n", "sid", tmp);
    snprintf(tmp, sizeof tmp, "%d", (int)getpgrp()); add("%s=%s\n", "pgid", tmp);
    errno = 0;
    snprintf(tmp, sizeof tmp, "%d", getpriority(PRIO_PROCESS, 0)); add("%s=%s\n", "nice", tmp);
    /* The scheduler group of the session: "/autogroup-N nice K" -> K (absent without autogroups). */
    FILE *ag = fopen("/proc/self/autogroup", "r");
    if (ag) {
        char line[128];
        const char *at = NULL;
        if (fgets(line, sizeof line, ag) && (at = strstr(line, " nice ")) != NULL) {
            snprintf(tmp, sizeof tmp, "%d", atoi(at + 6)); add("%s=%s\n", "autogroup_nice", tmp);
        }
        fclose(ag);
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        snprintf(tmp, sizeof tmp, "%llu", (unsigned long long)rl.rlim_cur); add("%s=%s\n", "rlimit_nofile", tmp);
    }
    if (getrlimit(RLIMIT_CPU, &rl) == 0) {
        snprintf(tmp, sizeof tmp, "%lld", rl.rlim_cur == RLIM_INFINITY ? -1LL : (long long)rl.rlim_cur);
        add("%s=%s\n", "rlimit_cpu", tmp);
    }
    char cwd[4096];
    if (getcwd(cwd, sizeof cwd)) add("%s=%s\n", "cwd", cwd);
    /* Open descriptors, other than the one opendir uses. */
    DIR *d = opendir("/proc/self/fd");
    if (d) {
        int self = dirfd(d);
        char list[4096] = "";
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (e->d_name[0] == '.' || atoi(e->d_name) == self) continue;
            char path[64], target[512];
            snprintf(path, sizeof path, "/proc/self/fd/%s", e->d_name);
            ssize_t n = readlink(path, target, sizeof target - 1);
            target[n > 0 ? n : 0] = 0;
            snprintf(tmp, sizeof tmp, "fd%s", e->d_name);
            add("%s=%s\n", tmp, target);
            strncat(list, e->d_name, sizeof list - strlen(list) - 2);
            strcat(list, ",");
        }
        closedir(d);
        add("%s=%s\n", "fds", list);
    }
    for (int fd = 0; fd < 3; fd++) {
        int type = 0; socklen_t l = sizeof type;
        snprintf(tmp, sizeof tmp, "socktype%d", fd);
        if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &l) == 0) {
            int acc = 0; l = sizeof acc;
            getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &l);
            add("%s=%s\n", tmp, type == SOCK_STREAM ? (acc ? "stream-listening" : "stream")
                               : type == SOCK_DGRAM ? "dgram" : type == SOCK_SEQPACKET ? "seqpacket" : "other");
        } else {
            add("%s=%s\n", tmp, "none");
        }
    }
    for (char **e = environ; *e; e++) add("%s%s\n", "env:", *e);
    add("%s%s", "end\n", "");
}

static const char *outcome(int ok) {
    if (ok) return "ok";
    const char *name = strerrorname_np(errno);
    return name ? name : "error";
}

/* One `sandbox` check (see the usage comment), reported as `kind:ARG=result`. */
static void sandbox_check(const char *check) {
    char key[1024];
    const char *eq = strchr(check, '=');
    if (!eq) return;
    const char *arg = eq + 1;
    snprintf(key, sizeof key, "%.*s:%s", (int)(eq - check), check, arg);
    if (strncmp(check, "exists=", 7) == 0) {
        struct stat st;
        add("%s=%s\n", key, stat(arg, &st) == 0 ? "yes" : "no");
    } else if (strncmp(check, "write=", 6) == 0) {
        char path[2048];
        snprintf(path, sizeof path, "%s/.swinetd-probe-%d", arg, (int)getpid());
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        add("%s=%s\n", key, outcome(fd >= 0));
        if (fd >= 0) { close(fd); unlink(path); }
    } else if (strncmp(check, "connect=", 8) == 0) {
        char host[256];
        const char *colon = strrchr(arg, ':');
        if (!colon || colon - arg >= (long)sizeof host) return;
        memcpy(host, arg, (size_t)(colon - arg));
        host[colon - arg] = 0;
        struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(colon + 1)) };
        inet_pton(AF_INET, host, &sin.sin_addr);
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        int ok = 0;
        if (fd >= 0) {
            if (connect(fd, (struct sockaddr *)&sin, sizeof sin) == 0) ok = 1;
            else if (errno == EINPROGRESS) {
                struct pollfd p = { fd, POLLOUT, 0 };
                if (poll(&p, 1, 2000) == 1) {
                    int err = 0; socklen_t l = sizeof err;
                    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &l);
                    if (err == 0) ok = 1; else errno = err;
                } else errno = ETIMEDOUT;
            }
        }
        add("%s=%s\n", key, outcome(ok));
        if (fd >= 0) close(fd);
    } else if (strncmp(check, "mount=", 6) == 0) {
        int ok = mount("tmpfs", arg, "tmpfs", 0, "size=64k") == 0;
        add("%s=%s\n", key, outcome(ok));
        if (ok) umount2(arg, MNT_DETACH);
    } else if (strncmp(check, "syscall=", 8) == 0) {
        /* Each call names a path that does not exist, so an allowed call fails with ENOENT and
         * changes nothing; a filtered one fails with the filter's errno (EPERM). */
        const char *missing = "/nonexistent/swinetd-probe";
        long r = -1;
        errno = ENOSYS;
        if (strcmp(arg, "mount") == 0) r = mount("none", missing, "tmpfs", 0, NULL);
        else if (strcmp(arg, "chroot") == 0) r = chroot(missing);
        else if (strcmp(arg, "swapon") == 0) r = swapon(missing, 0);
        else if (strcmp(arg, "umount2") == 0) r = umount2(missing, 0);
        else if (strcmp(arg, "openat") == 0) r = open(missing, O_RDONLY);
        else if (strcmp(arg, "mkdir") == 0) r = mkdir(missing, 0700);
        add("%s=%s\n", key, outcome(r == 0));
    }
}

static void write_all(int fd, const char *p, size_t n) {
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w <= 0) { if (w < 0 && errno == EINTR) continue; return; }
        p += w; n -= (size_t)w;
    }
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "report";
    if (strcmp(mode, "exit") == 0) return argc > 2 ? atoi(argv[2]) : 0;
    if (strcmp(mode, "cat") == 0) {
        char b[65536]; ssize_t n;
        while ((n = read(0, b, sizeof b)) > 0) write_all(1, b, (size_t)n);
        return 0;
    }
    build_report(argc, argv);
    if (strcmp(mode, "sandbox") == 0) {
        len -= 4; /* reopen the report: the checks go before its "end" line */
        for (int i = 2; i < argc; i++) sandbox_check(argv[i]);
        add("%s%s", "end\n", "");
    }
    if (strcmp(mode, "listen-fds") == 0) {
        char tmp[64];
        const char *pid_text = getenv("LISTEN_PID"), *fds_text = getenv("LISTEN_FDS");
        long listen_pid = pid_text ? strtol(pid_text, NULL, 10) : -1;
        int n = fds_text ? atoi(fds_text) : 0;
        len -= 4; /* the checks go before the report's "end" line */
        add("%s=%s\n", "listen_pid_ok", listen_pid == (long)getpid() ? "yes" : "no");
        snprintf(tmp, sizeof tmp, "%d", n); add("%s=%s\n", "listen_fds", tmp);
        struct pollfd pfds[16];
        if (n < 1 || n > 16) return 4;
        for (int i = 0; i < n; i++) {
            int fd = 3 + i, on = 0, type = 0;
            socklen_t ol = sizeof on, tl = sizeof type;
            const char *what = "notsocket";
            if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) == 0) {
                getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &on, &ol);
                what = type == SOCK_STREAM ? (on ? "stream-listening" : "stream-notlistening") : "other";
            }
            snprintf(tmp, sizeof tmp, "listen_fd%d", fd); add("%s=%s\n", tmp, what);
            pfds[i].fd = fd; pfds[i].events = POLLIN; pfds[i].revents = 0;
        }
        if (poll(pfds, (nfds_t)n, 10000) <= 0) return 5;
        for (int i = 0; i < n; i++) {
            if (!(pfds[i].revents & POLLIN)) continue;
            int c = accept(pfds[i].fd, NULL, NULL);
            if (c < 0) return 3;
            snprintf(tmp, sizeof tmp, "%d", pfds[i].fd); add("%s=%s\n", "accepted_on", tmp);
            add("%s%s", "end\n", "");
            write_all(c, buf, len);
            close(c);
            return 0;
        }
        return 6;
    }
    if (strcmp(mode, "accept") == 0) {
        int c = accept(0, NULL, NULL);
        if (c < 0) return 3;
        write_all(c, buf, len);
        close(c);
        return 0;
    }
    if (strcmp(mode, "dgram") == 0) {
        struct sockaddr_storage from; socklen_t fl = sizeof from; char in[2048];
        ssize_t n = recvfrom(0, in, sizeof in, 0, (struct sockaddr *)&from, &fl);
        if (n < 0) return 3;
        if (len > 60000) len = 60000;
        sendto(0, buf, len, 0, (struct sockaddr *)&from, fl);
        return 0;
    }
    write_all(1, buf, len);
    if (strcmp(mode, "report-wait") == 0) {
        char b[256];
        while (read(0, b, sizeof b) > 0) {}
    } else if (strcmp(mode, "sleep") == 0) {
        sleep(argc > 2 ? (unsigned)atoi(argv[2]) : 60);
    }
    return 0;
}
