/* reapd: a spawn-per-connection server in C with two services, to see how reaping scales with the
 * number of live children (the C floor of the "children" scenario).
 * usage: reapd waitpid|pidfd|lowfd HOLDPORT HOLDPROG HELLOPORT HELLOPROG [EXTRA_FDS]
 * One thread, epoll, two listeners on 127.0.0.1 (one service whose children stay, one whose children
 * exit at once); every connection is posix_spawn()ed with the socket as fds 0-2.
 *   waitpid: SIGCHLD through a signalfd, then waitpid(-1, WNOHANG) until nothing is left, as every
 *            inetd (and swinetd) does. The kernel walks the list of children on each call.
 *   pidfd:   pidfd_open() per child, watched by epoll; waitid(P_PIDFD) reaps exactly that child,
 *            at the price of one descriptor per live child, which every later clone copies and
 *            every exec closes.
 *   lowfd:   pidfds too, but the child is made with clone(CLONE_VM|CLONE_VFORK|CLONE_FILES|CLONE_PIDFD):
 *            it shares the descriptor table instead of copying it; the parent parks the connection at
 *            fd 3 (a slot kept free), and the child's close_range(4, ~0, CLOSE_RANGE_UNSHARE) gives it a
 *            private table holding only fds 0-3, so neither the clone nor the exec ever touches the
 *            daemon's other descriptors (listeners, pidfds). O(1) per spawn and per exit.
 * EXTRA_FDS: open that many more sockets first (stand-ins for the listeners of many services). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
extern char **environ;

#define TAG_LISTEN 1ULL
#define TAG_SIG 2ULL
#define TAG_PIDFD 3ULL

static const char *child_prog; static int child_err;
static char child_stack[64 * 1024];
static int lowfd_child(void *arg) {
  (void)arg;
  sigset_t none; sigemptyset(&none);
  syscall(SYS_rt_sigprocmask, SIG_SETMASK, &none, NULL, 8);
  if (syscall(SYS_close_range, 4, ~0U, CLOSE_RANGE_UNSHARE) < 0) { child_err = errno; syscall(SYS_exit, 127); }
  for (int t = 0; t < 3; t++) syscall(SYS_dup3, 3, t, 0);
  syscall(SYS_close, 3);
  char *av[] = { (char *)child_prog, NULL };
  syscall(SYS_execve, child_prog, av, environ);
  child_err = errno; syscall(SYS_exit, 127);
  return 127;
}

static int listener(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0), one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = {0}; a.sin_family = AF_INET; a.sin_port = htons(port); a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, (void *)&a, sizeof a) || listen(fd, 1024)) { perror("bind/listen"); exit(1); }
  return fd;
}

int main(int argc, char **argv) {
  if (argc < 6) { fprintf(stderr, "usage: reapd waitpid|pidfd|lowfd HOLDPORT HOLDPROG HELLOPORT HELLOPROG [EXTRA_FDS]\n"); return 2; }
  int lowfd = !strcmp(argv[1], "lowfd"), use_pidfd = lowfd || !strcmp(argv[1], "pidfd");
  /* Keep fd 3 free for the connection of the child being made (lowfd mode). */
  int placeholder = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (placeholder != 3) { fprintf(stderr, "reapd: fd 3 is taken\n"); return 1; }
  int extra = argc > 6 ? atoi(argv[6]) : 0;
  for (int i = 0; i < extra; i++) socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  char *progs[2] = { argv[3], argv[5] };
  int lfd[2] = { listener(atoi(argv[2])), listener(atoi(argv[4])) };
  int ep = epoll_create1(EPOLL_CLOEXEC);
  for (int i = 0; i < 2; i++) {
    struct epoll_event ev = { .events = EPOLLIN, .data.u64 = TAG_LISTEN | ((unsigned long long)i << 8) };
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd[i], &ev);
  }
  sigset_t set; sigemptyset(&set); sigaddset(&set, SIGCHLD); sigprocmask(SIG_BLOCK, &set, NULL);
  int sfd = -1;
  if (!use_pidfd) {
    sfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    struct epoll_event ev = { .events = EPOLLIN, .data.u64 = TAG_SIG };
    epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &ev);
  }
  posix_spawnattr_t attr; posix_spawnattr_init(&attr);
  sigset_t none; sigemptyset(&none);
  posix_spawnattr_setsigmask(&attr, &none); posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
  close(placeholder);  /* last: nothing of the setup may land on fd 3 */
  struct epoll_event evs[128];
  for (;;) {
    int n = epoll_wait(ep, evs, 128, -1);
    if (n < 0 && errno != EINTR) { perror("epoll_wait"); return 1; }
    for (int e = 0; e < n; e++) {
      unsigned long long d = evs[e].data.u64, tag = d & 0xff;
      if (tag == TAG_LISTEN) {
        int which = (int)(d >> 8);
        for (int k = 0; k < 64; k++) {
          int c = accept4(lfd[which], NULL, NULL, SOCK_CLOEXEC);
          if (c < 0) break;
          posix_spawn_file_actions_t fa; posix_spawn_file_actions_init(&fa);
          for (int t = 0; t < 3; t++) posix_spawn_file_actions_adddup2(&fa, c, t);
          char *av[] = { progs[which], NULL }; pid_t pid; int r, pfd = -1;
          if (lowfd) {
            if (c != 3) dup3(c, 3, 0);
            child_prog = progs[which]; child_err = 0;
            pid = clone(lowfd_child, child_stack + sizeof child_stack,
                        CLONE_VM | CLONE_VFORK | CLONE_FILES | CLONE_PIDFD | SIGCHLD, NULL, &pfd);
            r = pid < 0 ? errno : child_err;
            if (c != 3) close(3);
          } else {
            r = posix_spawn(&pid, progs[which], &fa, &attr, av, environ);
          }
          posix_spawn_file_actions_destroy(&fa);
          close(c);
          if (lowfd && pfd >= 0) {
            struct epoll_event ev = { .events = EPOLLIN, .data.u64 = TAG_PIDFD | ((unsigned long long)pfd << 8) };
            epoll_ctl(ep, EPOLL_CTL_ADD, pfd, &ev);
          } else if (r == 0 && use_pidfd) {
            int pfd = (int)syscall(SYS_pidfd_open, pid, 0);
            if (pfd < 0) { perror("pidfd_open"); continue; }
            struct epoll_event ev = { .events = EPOLLIN, .data.u64 = TAG_PIDFD | ((unsigned long long)pfd << 8) };
            epoll_ctl(ep, EPOLL_CTL_ADD, pfd, &ev);
          }
        }
      } else if (tag == TAG_SIG) {
        struct signalfd_siginfo si;
        while (read(sfd, &si, sizeof si) > 0) {}
        while (waitpid(-1, NULL, WNOHANG) > 0) {}
      } else if (tag == TAG_PIDFD) {
        int pfd = (int)(d >> 8); siginfo_t info;
        if (syscall(SYS_waitid, P_PIDFD, pfd, &info, WEXITED | WNOHANG, NULL) == 0) close(pfd);
      }
    }
  }
}
