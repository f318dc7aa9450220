/* echoload: bytes/s through a TCP echo service, or from a TCP chargen service.
 * usage: echoload echo|chargen HOST PORT SECONDS CONNS [WRITESIZE]
 * One thread drives all connections (non-blocking sockets, poll), so the client takes at most one
 * of the machine's cores and the server under test gets the other.
 * echo:    writes WRITESIZE-byte chunks (default 64 KiB) whenever a socket is writable and reads
 *          whenever it is readable; counts echoed bytes read before the deadline (echothru.py counts
 *          the same, over a fixed size instead of a fixed time).
 * chargen: only reads; counts bytes read before the deadline. */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec/1e9;}

int main(int argc, char **argv) {
  if (argc < 6) { fprintf(stderr, "usage: echoload echo|chargen HOST PORT SECONDS CONNS [WRITESIZE]\n"); return 2; }
  int echo = !strcmp(argv[1], "echo");
  struct addrinfo hints = {0}, *res; hints.ai_socktype = SOCK_STREAM;
  if (getaddrinfo(argv[2], argv[3], &hints, &res)) { perror("getaddrinfo"); return 2; }
  double secs = atof(argv[4]); int conns = atoi(argv[5]); size_t wsize = argc > 6 ? (size_t)atol(argv[6]) : 65536;
  if (conns < 1 || conns > 256) { fprintf(stderr, "echoload: 1..256 connections\n"); return 2; }
  struct pollfd pf[256]; int fds[256];
  char *wbuf = malloc(wsize); memset(wbuf, 'x', wsize);
  size_t cap = 1 << 20; char *rbuf = malloc(cap);
  for (int i = 0; i < conns; i++) {
    fds[i] = socket(res->ai_family, SOCK_STREAM, 0);
    if (connect(fds[i], res->ai_addr, res->ai_addrlen) < 0) { perror("connect"); return 1; }
    fcntl(fds[i], F_SETFL, O_NONBLOCK);
    pf[i].fd = fds[i]; pf[i].events = POLLIN | (echo ? POLLOUT : 0);
  }
  long total = 0, errs = 0; int open = conns;
  double t0 = now(), deadline = t0 + secs, t = t0;
  while (open > 0 && (t = now()) < deadline) {
    int ms = (int)((deadline - t) * 1000) + 1;
    if (poll(pf, conns, ms > 100 ? 100 : ms) <= 0) continue;
    for (int i = 0; i < conns; i++) {
      if (pf[i].fd < 0) continue;
      if (pf[i].revents & (POLLIN | POLLERR | POLLHUP)) {
        ssize_t n = recv(fds[i], rbuf, cap, 0);
        if (n > 0) total += n;
        else if (n == 0 || (errno != EAGAIN && errno != EINTR)) { errs++; pf[i].fd = -1; open--; continue; }
      }
      if (pf[i].revents & POLLOUT) {
        ssize_t n = send(fds[i], wbuf, wsize, MSG_NOSIGNAL);
        if (n < 0 && errno != EAGAIN && errno != EINTR) { errs++; pf[i].fd = -1; open--; }
      }
    }
  }
  double el = now() - t0; if (el > secs) el = secs;
  for (int i = 0; i < conns; i++) {
    struct linger lg = {1, 0}; setsockopt(fds[i], SOL_SOCKET, SO_LINGER, &lg, sizeof lg); /* RST: no lingering */
    close(fds[i]);
  }
  printf("mode=%s conns=%d bytes=%ld secs=%.2f rate=%.1fMB/s errors=%ld\n", argv[1], conns, total, el, total / el / 1e6, errs);
  return 0;
}
