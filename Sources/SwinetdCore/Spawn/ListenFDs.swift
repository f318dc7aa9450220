#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// `listen_fds`: starts a wait service's program the way systemd starts a socket-activated daemon
/// (sd_listen_fds(3)), so such daemons run unchanged under swinetd:
/// - every open listening socket of the service, in configuration order, as fds 3, 4, ...;
/// - `LISTEN_FDS` = their number, `LISTEN_PID` = the child's own pid (written by the child just
///   before execve), `LISTEN_FDNAMES` = the service id once per fd, `:`-separated;
/// - fds 0, 1 and 2 on /dev/null (systemd gives such a daemon /dev/null as stdin; swinetd has no
///   journal to give it as stdout/stderr, so they go to /dev/null as well).
enum ListenFDs {
    /// The name systemd would accept (fdname_is_valid: printable ASCII, no `:`, at most 255 bytes).
    static func fdName(_ id: String) -> String {
        let cleaned = String(decoding: id.utf8.map { $0 > 32 && $0 < 127 && $0 != UInt8(ascii: ":") ? $0 : UInt8(ascii: "_") }, as: UTF8.self)
        return cleaned.isEmpty ? "unknown" : String(cleaned.prefix(255))
    }

    /// The variables for `count` sockets of service `id` (LISTEN_PID is added by the spawn itself).
    static func environment(count: Int, id: String) -> [String] {
        ["LISTEN_FDS=\(count)", "LISTEN_FDNAMES=" + Array(repeating: fdName(id), count: count).joined(separator: ":")]
    }

    static func spawn(_ plan: SpawnPlan, sockets: [Int32], id: String, environment: ChildEnvironment)
        -> Result<SpawnedChild, SpawnPlan.Failure>
    {
        let devNull = open("/dev/null", O_RDWR | O_CLOEXEC)
        guard devNull >= 0 else { return .failure(SpawnPlan.Failure(errno: errno, step: "open /dev/null", child: nil)) }
        defer { close(devNull) }
        var environment = environment
        environment.add(contentsOf: Self.environment(count: sockets.count, id: id))
        return plan.spawn(fd: devNull, extraFDs: sockets, environment: environment, childPIDVariable: "LISTEN_PID")
    }
}
