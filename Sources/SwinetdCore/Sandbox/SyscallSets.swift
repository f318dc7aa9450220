/// The `@set` names of `system_call_filter`. The names and their intent are systemd's
/// (systemd.exec(5), SystemCallFilter=), so a unit's filter reads the same here; the member lists
/// are swinetd's own, written for x86_64 and aarch64 and listed in docs/SANDBOX.md. A member may
/// name another set. Names that do not exist on the architecture being compiled for are skipped
/// (`open` on aarch64); every member exists on at least one of the two (a unit test checks it).
enum SyscallSets {
    static let sets: [String: [String]] = [
        // Always allowed in an allow list: what any process needs to start, exit and wait.
        "@default": [
            "arch_prctl", "clock_getres", "clock_gettime", "clock_nanosleep", "execve", "exit", "exit_group",
            "futex", "futex_requeue", "futex_wait", "futex_waitv", "futex_wake", "get_robust_list",
            "get_thread_area", "getegid", "geteuid", "getgid", "getgroups", "getpgid", "getpgrp", "getpid",
            "getppid", "getresgid", "getresuid", "getrlimit", "getsid", "gettid", "gettimeofday", "getuid",
            "membarrier", "nanosleep", "pause", "prlimit64", "restart_syscall", "rseq", "rt_sigreturn",
            "sched_yield", "set_robust_list", "set_thread_area", "set_tid_address", "time",
        ],
        "@aio": [
            "io_cancel", "io_destroy", "io_getevents", "io_pgetevents", "io_setup", "io_submit", "io_uring_enter",
            "io_uring_register", "io_uring_setup",
        ],
        "@basic-io": [
            "close", "close_range", "dup", "dup2", "dup3", "lseek", "pread64", "preadv", "preadv2", "pwrite64",
            "pwritev", "pwritev2", "read", "readv", "write", "writev",
        ],
        "@chown": ["chown", "fchown", "fchownat", "lchown"],
        "@clock": ["adjtimex", "clock_adjtime", "clock_settime", "settimeofday"],
        "@cpu-emulation": ["modify_ldt"],
        "@debug": [
            "lookup_dcookie", "perf_event_open", "pidfd_getfd", "process_vm_readv", "process_vm_writev", "ptrace",
        ],
        "@file-system": [
            "access", "chdir", "chmod", "close", "creat", "faccessat", "faccessat2", "fallocate", "fchdir", "fchmod",
            "fchmodat", "fchmodat2", "fcntl", "fgetxattr", "file_getattr", "file_setattr", "flistxattr",
            "fremovexattr", "fsetxattr", "fstat", "fstatfs", "ftruncate", "futimesat", "getcwd", "getdents",
            "getdents64", "getxattr", "getxattrat", "inotify_add_watch", "inotify_init", "inotify_init1",
            "inotify_rm_watch", "lgetxattr", "link", "linkat", "listxattr", "listxattrat", "llistxattr",
            "lremovexattr", "lsetxattr", "lstat", "mkdir", "mkdirat", "mknod", "mknodat", "mmap", "munmap",
            "newfstatat", "open", "openat", "openat2", "readlink", "readlinkat", "removexattr", "removexattrat",
            "rename", "renameat", "renameat2", "rmdir", "setxattr", "setxattrat", "stat", "statfs", "statx",
            "symlink", "symlinkat", "truncate", "unlink", "unlinkat", "utime", "utimensat", "utimes",
        ],
        "@io-event": [
            "epoll_create", "epoll_create1", "epoll_ctl", "epoll_pwait", "epoll_pwait2", "epoll_wait", "eventfd",
            "eventfd2", "poll", "ppoll", "pselect6", "select",
        ],
        "@ipc": [
            "memfd_create", "mq_getsetattr", "mq_notify", "mq_open", "mq_timedreceive", "mq_timedsend", "mq_unlink",
            "msgctl", "msgget", "msgrcv", "msgsnd", "pipe", "pipe2", "semctl", "semget", "semop", "semtimedop",
            "shmat", "shmctl", "shmdt", "shmget",
        ],
        "@keyring": ["add_key", "keyctl", "request_key"],
        "@memlock": ["mlock", "mlock2", "mlockall", "munlock", "munlockall"],
        "@module": ["delete_module", "finit_module", "init_module"],
        "@mount": [
            "chroot", "fsconfig", "fsmount", "fsopen", "fspick", "mount", "mount_setattr", "move_mount", "open_tree",
            "open_tree_attr", "pivot_root", "umount2",
        ],
        "@network-io": [
            "accept", "accept4", "bind", "connect", "getpeername", "getsockname", "getsockopt", "listen", "recvfrom",
            "recvmmsg", "recvmsg", "sendmmsg", "sendmsg", "sendto", "setsockopt", "shutdown", "socket", "socketpair",
        ],
        "@obsolete": [
            "_sysctl", "afs_syscall", "create_module", "get_kernel_syms", "getpmsg", "putpmsg", "query_module",
            "security", "sysfs", "tuxcall", "uselib", "ustat", "vserver",
        ],
        "@pkey": ["pkey_alloc", "pkey_free", "pkey_mprotect"],
        "@privileged": [
            "@chown", "@clock", "@module", "@raw-io", "@reboot", "@swap", "_sysctl", "acct", "bpf", "capset",
            "chroot", "fanotify_init", "fanotify_mark", "nfsservctl", "open_by_handle_at", "pivot_root", "quotactl",
            "quotactl_fd", "setdomainname", "setfsuid", "setgroups", "sethostname", "setresuid", "setreuid", "setuid",
            "vhangup",
        ],
        "@process": [
            "arch_prctl", "capget", "clone", "clone3", "execveat", "fork", "getrusage", "kill", "pidfd_open",
            "pidfd_send_signal", "prctl", "rt_sigqueueinfo", "rt_tgsigqueueinfo", "setns", "tgkill", "times", "tkill",
            "unshare", "vfork", "wait4", "waitid",
        ],
        "@raw-io": ["ioperm", "iopl"],
        "@reboot": ["kexec_file_load", "kexec_load", "reboot"],
        "@resources": [
            "ioprio_set", "mbind", "migrate_pages", "move_pages", "sched_setaffinity", "sched_setattr",
            "sched_setparam", "sched_setscheduler", "set_mempolicy", "set_mempolicy_home_node", "setpriority",
            "setrlimit",
        ],
        "@setuid": ["setgid", "setgroups", "setregid", "setresgid", "setresuid", "setreuid", "setuid"],
        "@signal": [
            "rt_sigaction", "rt_sigpending", "rt_sigprocmask", "rt_sigsuspend", "rt_sigtimedwait", "sigaltstack",
            "signalfd", "signalfd4",
        ],
        "@swap": ["swapoff", "swapon"],
        "@sync": ["fdatasync", "fsync", "msync", "sync", "sync_file_range", "syncfs"],
        "@timer": [
            "alarm", "getitimer", "setitimer", "timer_create", "timer_delete", "timer_getoverrun", "timer_gettime",
            "timer_settime", "timerfd_create", "timerfd_gettime", "timerfd_settime", "times",
        ],
        // What an ordinary network daemon uses: the sets above that do not change the system, plus
        // memory management, scheduling queries, sendfile/splice and self-sandboxing calls.
        "@system-service": [
            "@aio", "@basic-io", "@chown", "@default", "@file-system", "@io-event", "@ipc", "@keyring", "@memlock",
            "@network-io", "@process", "@resources", "@setuid", "@signal", "@sync", "@timer", "brk", "cachestat",
            "capget", "capset", "copy_file_range", "fadvise64", "flock", "get_mempolicy", "getcpu", "getpriority",
            "getrandom", "ioctl", "ioprio_get", "kcmp", "landlock_add_rule", "landlock_create_ruleset",
            "landlock_restrict_self", "madvise", "map_shadow_stack", "mincore", "mprotect", "mremap", "mseal",
            "name_to_handle_at", "personality", "readahead", "remap_file_pages", "sched_get_priority_max",
            "sched_get_priority_min", "sched_getaffinity", "sched_getattr", "sched_getparam", "sched_getscheduler",
            "sched_rr_get_interval", "seccomp", "sendfile", "setfsgid", "setfsuid", "setpgid", "setsid", "splice",
            "sysinfo", "tee", "umask", "uname", "userfaultfd", "vmsplice",
        ],
    ]

    /// The set names, sorted, for messages and documentation.
    static var names: [String] { sets.keys.sorted() }

    /// The calls a name or set stands for, sets expanded recursively; nil for an unknown name.
    static func expand(_ word: String) -> Set<String>? {
        if word.hasPrefix("@") {
            guard let members = sets[word] else { return nil }
            var result = Set<String>()
            for member in members {
                guard let expanded = expand(member) else { return nil }
                result.formUnion(expanded)
            }
            return result
        }
        return SyscallNumbers.isKnown(word) ? [word] : nil
    }
}

/// Look-ups in the generated `SyscallTable`.
enum SyscallNumbers {
    enum Architecture: String, Sendable, CaseIterable {
        case x86_64
        case aarch64

        /// The architecture swinetd was built for.
        static var native: Architecture {
            #if arch(arm64)
            .aarch64
            #else
            .x86_64
            #endif
        }

        /// AUDIT_ARCH_* as seccomp_data.arch reports it (<linux/audit.h>).
        var auditArch: UInt32 {
            switch self {
            case .x86_64: 0xC000_003E
            case .aarch64: 0xC000_00B7
            }
        }
    }

    private static let byName: [String: (x86_64: Int32, aarch64: Int32)] = {
        var table: [String: (x86_64: Int32, aarch64: Int32)] = [:]
        for entry in SyscallTable.entries { table[entry.name] = (entry.x86_64, entry.aarch64) }
        return table
    }()

    /// Whether the name is a system call on x86_64 or aarch64.
    static func isKnown(_ name: String) -> Bool { byName[name] != nil }

    /// The number on `architecture`, nil where the call does not exist.
    static func number(_ name: String, on architecture: Architecture) -> Int32? {
        guard let entry = byName[name] else { return nil }
        let number = architecture == .x86_64 ? entry.x86_64 : entry.aarch64
        return number >= 0 ? number : nil
    }

    /// The highest number the table knows on `architecture`: larger numbers are calls newer than
    /// this build, which an allow list answers with ENOSYS (so that libc falls back to an older call).
    static func highest(on architecture: Architecture) -> Int32 {
        SyscallTable.entries.map { architecture == .x86_64 ? $0.x86_64 : $0.aarch64 }.max() ?? 0
    }
}
