/* udpload: request/response datagrams/s against a UDP echo service, from one thread.
 * usage: udpload HOST PORT SECONDS [SOCKETS [WINDOW [SIZE [gso]]]]
 * SOCKETS connected UDP sockets (default 8), each keeping WINDOW datagrams of SIZE bytes
 * (default 16, 64 bytes) in flight: every reply received is answered with a new request, in
 * batches with recvmmsg/sendmmsg. A socket with no reply for 200 ms counts its outstanding
 * datagrams as lost and sends a fresh window. With WINDOW=1 it is udprate.py's load (one
 * outstanding request per client), in C. With GSO (7th argument "gso"), a socket's requests
 * leave as one UDP_SEGMENT send per batch: the server still receives separate datagrams, and the
 * client spends less per request, so a server that answers faster than the plain client asks is
 * measured at its own limit. Prints replies/s and losses. */
#define _GNU_SOURCE
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <time.h>
#include <unistd.h>

#define MAXB 64
#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
static int gso, size; static char *gsobuf;
static struct mmsghdr sm[MAXB];
/* Sends n requests on socket fd: one GSO send of n segments, or a sendmmsg of n datagrams. */
static int send_requests(int fd, int n) {
  if (gso && n > 1) {
    struct iovec iov = { gsobuf, (size_t)n * size };
    char ctl[CMSG_SPACE(sizeof(uint16_t))] = {0};
    struct msghdr h = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof ctl };
    struct cmsghdr *c = CMSG_FIRSTHDR(&h); c->cmsg_level = SOL_UDP; c->cmsg_type = UDP_SEGMENT;
    c->cmsg_len = CMSG_LEN(sizeof(uint16_t)); *(uint16_t *)CMSG_DATA(c) = (uint16_t)size;
    if (sendmsg(fd, &h, 0) >= 0) return n;
    if (errno != EINVAL && errno != EIO && errno != ENOPROTOOPT) return -1;
    gso = 0;  /* the kernel cannot: plain datagrams from now on */
  }
  return sendmmsg(fd, sm, n, 0);
}
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec/1e9;}

int main(int argc, char **argv) {
  if (argc < 4) { fprintf(stderr, "usage: udpload HOST PORT SECONDS [SOCKETS [WINDOW [SIZE [gso]]]]\n"); return 2; }
  struct addrinfo hints = {0}, *res; hints.ai_socktype = SOCK_DGRAM;
  if (getaddrinfo(argv[1], argv[2], &hints, &res)) { perror("getaddrinfo"); return 2; }
  double secs = atof(argv[3]);
  int ns = argc > 4 ? atoi(argv[4]) : 8, win = argc > 5 ? atoi(argv[5]) : 16;
  size = argc > 6 ? atoi(argv[6]) : 64; gso = argc > 7 && !strcmp(argv[7], "gso");
  if (win > MAXB) win = MAXB;
  int ep = epoll_create1(0); int *fd = calloc(ns, sizeof(int)); int *out = calloc(ns, sizeof(int));
  double *last = calloc(ns, sizeof(double));
  char *payload = malloc(size); memset(payload, 'u', size);
  static char rbuf[MAXB][2048];
  gsobuf = malloc((size_t)MAXB * size); memset(gsobuf, 'u', (size_t)MAXB * size);
  struct mmsghdr rm[MAXB]; struct iovec siov[MAXB], riov[MAXB];
  for (int i = 0; i < MAXB; i++) {
    siov[i].iov_base = payload; siov[i].iov_len = size; memset(&sm[i], 0, sizeof sm[i]);
    sm[i].msg_hdr.msg_iov = &siov[i]; sm[i].msg_hdr.msg_iovlen = 1;
    riov[i].iov_base = rbuf[i]; riov[i].iov_len = sizeof rbuf[i]; memset(&rm[i], 0, sizeof rm[i]);
    rm[i].msg_hdr.msg_iov = &riov[i]; rm[i].msg_hdr.msg_iovlen = 1;
  }
  long replies = 0, lost = 0, sendfail = 0;
  double t0 = now(), end = t0 + secs;
  for (int s = 0; s < ns; s++) {
    fd[s] = socket(res->ai_family, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    if (connect(fd[s], res->ai_addr, res->ai_addrlen) < 0) { perror("connect"); return 1; }
    struct epoll_event ev = { .events = EPOLLIN, .data.u32 = (unsigned)s }; epoll_ctl(ep, EPOLL_CTL_ADD, fd[s], &ev);
    int k = send_requests(fd[s], win); out[s] = k > 0 ? k : 0; last[s] = t0;
  }
  struct epoll_event evs[64];
  for (;;) {
    double t = now(); if (t >= end) break;
    int k = epoll_wait(ep, evs, 64, 20);
    t = now();
    for (int e = 0; e < k; e++) {
      int s = evs[e].data.u32;
      int r = recvmmsg(fd[s], rm, MAXB, MSG_DONTWAIT, NULL);
      if (r <= 0) continue;
      if (t < end) replies += r;
      out[s] -= r; if (out[s] < 0) out[s] = 0;
      last[s] = t;
      int want = win - out[s];
      if (want > 0 && t < end) { int w = send_requests(fd[s], want); if (w > 0) out[s] += w; else sendfail++; }
    }
    for (int s = 0; s < ns; s++) {
      if (t - last[s] > 0.2 && t < end) {
        lost += out[s]; out[s] = 0; last[s] = t;
        int w = send_requests(fd[s], win); if (w > 0) out[s] = w; else sendfail++;
      }
    }
  }
  double el = now() - t0; if (el > secs) el = secs;
  printf("udp replies=%ld lost=%ld sockets=%d window=%d gso=%d secs=%.2f rate=%.0f/s\n", replies, lost, ns, win, gso, el, replies / el);
  return 0;
}
