/* sessiond: the C floor for a server that gives every child a fresh session, as swinetd and
 * openbsd-inetd do (the yardstick's limitd does not). Same loop as `limitd spawn`: THREADS
 * threads each accept4 and posix_spawn PROGRAM with the socket on fds 0-2, here with
 * POSIX_SPAWN_SETSID; a SIGCHLD handler reaps. With the kernel's autogroups on, setsid also makes
 * each child a scheduler group of its own, which is what this floor measures.
 * usage: sessiond THREADS PORT PROGRAM [ARGS...] */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;
static int listener;
static char **program;

static void on_child(int signo) {
    (void)signo;
    int saved = errno;
    while (waitpid(-1, NULL, WNOHANG) > 0) {}
    errno = saved;
}

static void *serve(void *unused) {
    (void)unused;
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID);
    for (;;) {
        int fd = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) continue;
        posix_spawn_file_actions_t actions;
        posix_spawn_file_actions_init(&actions);
        for (int target = 0; target < 3; target++) posix_spawn_file_actions_adddup2(&actions, fd, target);
        pid_t pid;
        posix_spawn(&pid, program[0], &actions, &attr, program, environ);
        posix_spawn_file_actions_destroy(&actions);
        close(fd);
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: sessiond THREADS PORT PROGRAM [ARGS...]\n");
        return 2;
    }
    int threads = atoi(argv[1]);
    program = argv + 3;
    struct sigaction action = {0};
    action.sa_handler = on_child;
    action.sa_flags = SA_RESTART | SA_NOCLDSTOP;
    sigaction(SIGCHLD, &action, NULL);
    listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in address = {0};
    address.sin_family = AF_INET;
    address.sin_port = htons((unsigned short)atoi(argv[2]));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(listener, (struct sockaddr *)&address, sizeof address) || listen(listener, 1024)) {
        perror("sessiond: bind/listen");
        return 1;
    }
    for (int i = 1; i < threads; i++) {
        pthread_t thread;
        pthread_create(&thread, NULL, serve, NULL);
    }
    serve(NULL);
}
