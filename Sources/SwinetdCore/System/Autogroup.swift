#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The scheduler's autogroups (`kernel.sched_autogroup_enabled`, on in Debian's and Ubuntu's
/// kernels): every session is scheduled as one group, and that group's weight comes from the
/// group's own nice (`/proc/PID/autogroup`), not from its tasks'. Each child starts a fresh session,
/// so without help it would be a group of one at nice 0 whatever its own nice: a service's `nice`
/// would not lower its share, and the children of a daemon started at nice -20 would queue behind
/// every busy session (measured: the p99 of spawn-per-connection tripled, BENCHMARKS.md). So the
/// child gives its new group the nice it runs at itself.
enum Autogroup {
    /// Whether the kernel schedules by autogroup now (read at start-up and on each reload).
    static func isEnabled(path: String = "/proc/sys/kernel/sched_autogroup_enabled") -> Bool {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var byte: UInt8 = 0
        return read(fd, &byte, 1) == 1 && byte == UInt8(ascii: "1")
    }

    /// The nice of the calling thread (the daemon's, which children inherit).
    static func currentNice() -> Int32 {
        errno = 0
        let value = getpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0)
        return errno == 0 ? value : 0
    }

    /// The nice a child's session group gets: the child's own (`nice` of the service, else the
    /// daemon's); nil when nothing needs writing (autogroups off, or nice 0, a new group's default).
    static func sessionNice(serviceNice: Int32?, daemonNice: Int32, enabled: Bool) -> Int32? {
        guard enabled else { return nil }
        let nice = serviceNice ?? daemonNice
        return nice == 0 ? nil : nice
    }
}
