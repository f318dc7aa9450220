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

    /// Detaches from the terminal: fork (the parent exits), new session, cwd /, stdio on /dev/null.
    public static func detach() throws(SystemError) {
        let pid = fork()
        if pid < 0 { throw SystemError("fork") }
        if pid > 0 { _exit(0) }
        _ = setsid()
        _ = chdir("/")
        let null = open("/dev/null", O_RDWR)
        if null >= 0 {
            dup2(null, 0)
            dup2(null, 1)
            dup2(null, 2)
            if null > 2 { close(null) }
        }
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
