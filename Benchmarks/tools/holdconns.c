/* holdconns: opens N connections to a "hold" service, waits until each child has greeted ("+"),
 * then keeps them all open until stdin reaches EOF (or SIGTERM), then resets them all.
 * usage: holdconns HOST PORT N [WINDOW]
 * Prints "held=N secs=S" on stdout once all are established (at most WINDOW pending at a time,
 * so a full listen backlog never makes the kernel drop SYNs). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec/1e9;}

int main(int argc, char **argv) {
  if (argc < 4) { fprintf(stderr, "usage: holdconns HOST PORT N [WINDOW]\n"); return 2; }
  struct addrinfo hints = {0}, *res; hints.ai_socktype = SOCK_STREAM;
  if (getaddrinfo(argv[1], argv[2], &hints, &res)) { perror("getaddrinfo"); return 2; }
  int n = atoi(argv[3]), window = argc > 4 ? atoi(argv[4]) : 64;
  struct rlimit rl; getrlimit(RLIMIT_NOFILE, &rl);
  if (rl.rlim_cur < (rlim_t)n + 64) { rl.rlim_cur = rl.rlim_max; setrlimit(RLIMIT_NOFILE, &rl); }
  int *fds = calloc(n, sizeof(int));
  int ep = epoll_create1(EPOLL_CLOEXEC);
  double t0 = now(); int started = 0, done = 0, pending = 0, errors = 0;
  struct epoll_event evs[256];
  while (done < n) {
    while (started < n && pending < window) {
      int fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      if (fd < 0) { perror("socket"); return 1; }
      struct linger lg = {1, 0}; setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
      if (connect(fd, res->ai_addr, res->ai_addrlen) < 0 && errno != EINPROGRESS) { perror("connect"); return 1; }
      struct epoll_event ev = { .events = EPOLLIN, .data.u32 = (unsigned)started };
      epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
      fds[started++] = fd; pending++;
    }
    int k = epoll_wait(ep, evs, 256, 10000);
    if (k == 0) { fprintf(stderr, "holdconns: no progress for 10 s (%d held)\n", done); return 1; }
    for (int i = 0; i < k; i++) {
      int fd = fds[evs[i].data.u32]; char c;
      ssize_t r = read(fd, &c, 1);
      if (r < 0 && errno == EAGAIN) continue;
      epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
      pending--; done++;
      if (r != 1) errors++;
    }
  }
  printf("held=%d errors=%d secs=%.3f\n", n - errors, errors, now() - t0); fflush(stdout);
  char b[64]; while (read(0, b, sizeof b) > 0) {}
  for (int i = 0; i < n; i++) close(fds[i]);
  return 0;
}
