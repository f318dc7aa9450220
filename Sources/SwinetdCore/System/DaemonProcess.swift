import CSwinetd

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Process-level chores of a Unix daemon: signal masks, detaching, the pidfile.
public enum DaemonProcess {
    /// Blocks the signals the reactor reads from its signalfd. Must run first in `main`, while the
    /// process has one thread, so every later thread inherits the mask.
    public static func blockSignals() {
        var set = sigset_t()
        sw_block_daemon_signals(&set)
    }

    /// Detaches from the terminal: fork, new session, cwd /, stdio on /dev/null. The parent stays
    /// until the daemon reports through the returned handle, then exits 0 (ready) or 1 with the
    /// reason on its stderr, so `swinetd && cat pidfile` and start-up failures behave as in the
    /// foreground.
    public static func detach() throws(SystemError) -> DetachedStartup {
        var ends: [Int32] = [-1, -1]
        guard pipe(&ends) == 0 else { throw SystemError("pipe") }
        // Still one thread here, so setting close-on-exec after pipe() races no spawn.
        for end in ends { _ = fcntl(end, F_SETFD, FD_CLOEXEC) }
        let pid = fork()
        if pid < 0 { throw SystemError("fork") }
        if pid > 0 {
            close(ends[1])
            _exit(DetachedStartup.awaitReport(ends[0]))
        }
        close(ends[0])
        _ = setsid()
        _ = chdir("/")
        let null = open("/dev/null", O_RDWR)
        if null >= 0 {
            dup2(null, 0)
            dup2(null, 1)
            dup2(null, 2)
            if null > 2 { close(null) }
        }
        return DetachedStartup(fd: ends[1])
    }

    /// Writes our pid to `path`, refusing to follow a symlink planted there.
    public static func writePidfile(_ path: String) throws(SystemError) {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw SystemError("open \(path)") }
        defer { close(fd) }
        let text = Array("\(getpid())\n".utf8)
        guard write(fd, text, text.count) == text.count else { throw SystemError("write \(path)") }
    }

    public static func removePidfile(_ path: String) {
        unlink(path)
    }

    /// Whether stdout / stderr is a terminal (colour in `check` only then).
    public static var stdoutIsTerminal: Bool { isatty(1) == 1 }
    public static var stderrIsTerminal: Bool { isatty(2) == 1 }

    public static var effectiveUID: UInt32 { geteuid() }

    public static var pid: Int32 { getpid() }

    /// `path` made absolute against the current directory.
    public static func absolutePath(_ path: String) -> String {
        guard !path.hasPrefix("/") else { return path }
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        guard getcwd(&buffer, buffer.count) != nil else { return path }
        let cwd = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return (cwd == "/" ? "" : cwd) + "/" + path
    }
}

/// The detached daemon's one message to the process that started it: ready, or why it failed.
/// A daemon that dies before either closes the pipe, which the waiting parent reports as a failure.
public final class DetachedStartup {
    private var fd: Int32

    init(fd: Int32) { self.fd = fd }

    deinit { if fd >= 0 { close(fd) } }

    /// Start-up is complete (listeners bound, pid file written): the parent exits 0.
    public func ready() { send("R") }

    /// Start-up failed: the parent prints `reason` to its stderr and exits 1.
    public func failed(_ reason: String) { send("E" + reason) }

    private func send(_ message: String) {
        guard fd >= 0 else { return }
        var bytes = Array(message.utf8)
        if bytes.count > 4_000 { bytes.removeSubrange(4_000...) }  // one atomic pipe write
        signal(SIGPIPE, SIG_IGN)  // a parent stopped with Ctrl-C must not kill the daemon (the daemon ignores it anyway)
        _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
        fd = -1
    }

    /// Run by the parent: reads the report to EOF and returns its exit status. Ctrl-C still
    /// stops the wait (the daemon, in its own session, goes on).
    static func awaitReport(_ fd: Int32) -> Int32 {
        var none = sigset_t()
        sigemptyset(&none)
        sigprocmask(SIG_SETMASK, &none, nil)
        var report: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4_096)
        while true {
            let count = read(fd, &chunk, chunk.count)
            if count > 0 {
                report += chunk[0..<count]
            } else if count < 0 && errno == EINTR {
                continue
            } else {
                break
            }
        }
        if report.first == UInt8(ascii: "R") { return 0 }
        let reason =
            report.first == UInt8(ascii: "E")
            ? String(decoding: report.dropFirst(), as: UTF8.self)
            : "the daemon exited during start-up (see syslog)"
        let line = Array("swinetd: \(reason)\n".utf8)
        _ = line.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
        return 1
    }
}
