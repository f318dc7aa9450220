import CSwinetd

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The kernel-side buffer of a TCP echo connection: bytes move socket → pipe → socket with
/// splice(2), so the reactor never copies them (about twice the bytes per CPU second of
/// recv/send on loopback; see BENCHMARKS.md, "Builtin throughput").
///
/// Costs two file descriptors per echo connection while it is open. At most `limit` exist at once: beyond that, or when pipe2 or splice fail,
/// the connection uses the recv/send path, which behaves the same. Made, counted and released on
/// the reactor thread; used and closed by an echo pump (EchoPumps.swift).
final class EchoPipe {
    let readEnd: Int32
    let writeEnd: Int32
    /// Bytes the pipe can hold (F_SETPIPE_SZ's answer): the most one connection buffers.
    let capacity: Int
    /// Bytes spliced in and not yet spliced out.
    var buffered = 0
    /// Whether any byte went through: before that, EINVAL from splice means "not supported here".
    var used = false

    /// The pipe size asked for: 1 MiB (Linux's default pipe-max-size). Measured: 1 MiB pipes
    /// cost ~15% less CPU per echoed byte than 256 KiB and ~30% less than 64 KiB (fewer splice
    /// calls); a stalled connection pins at most this much on top of its socket buffers.
    static let wantedCapacity = 1 << 20

    /// Pipes open now, and the cap: 1/8 of RLIMIT_NOFILE (so pipes take at most a quarter of the
    /// descriptors), at most 2048 pipes. Set SWINETD_ECHO_SPLICE=0 to turn splicing off.
    nonisolated(unsafe) private(set) static var open = 0
    static let limit: Int = {
        if let value = getenv("SWINETD_ECHO_SPLICE"), String(cString: value) == "0" { return 0 }
        var rl = rlimit()
        guard getrlimit(RLIMIT_NOFILE_VALUE, &rl) == 0 else { return 0 }
        let soft = min(UInt64(rl.rlim_cur), 1 << 20)
        return Int(min(soft / 8, 2048))
    }()

    /// Whether a connection on descriptor `fd` may take two more: only while `fd` (descriptors
    /// are numbered lowest-free first, so about how many are open) is below half of the current
    /// RLIMIT_NOFILE. Near exhaustion echo copies, one descriptor per connection, as before.
    static func descriptorsArePlentiful(above fd: Int32) -> Bool {
        var rl = rlimit()
        guard getrlimit(RLIMIT_NOFILE_VALUE, &rl) == 0 else { return false }
        return UInt64(fd) < min(UInt64(rl.rlim_cur), 1 << 30) / 2
    }

    private init(readEnd: Int32, writeEnd: Int32, capacity: Int) {
        self.readEnd = readEnd
        self.writeEnd = writeEnd
        self.capacity = capacity
    }

    /// A new pipe, or nil (over the cap, splicing off, or pipe2 failed): use recv/send.
    static func make() -> EchoPipe? {
        guard open < limit else { return nil }
        var fds: [Int32] = [-1, -1]
        guard sw_pipe_nonblock(&fds) == 0 else { return nil }
        // The size granted, or the pipe's own size when F_SETPIPE_SZ is refused (over
        // pipe-max-size or pipe-user-pages-soft without CAP_SYS_RESOURCE).
        let size = sw_set_pipe_size(fds[1], Int32(wantedCapacity))
        let capacity = size > 0 ? Int(size) : 4096
        open += 1
        return EchoPipe(readEnd: fds[0], writeEnd: fds[1], capacity: capacity)
    }

    /// Closes both ends (on whichever thread owns the pipe).
    func close() {
        _ = Glibc.close(readEnd)
        _ = Glibc.close(writeEnd)
    }

    /// Reactor thread, once the pipe is closed: frees its place under the cap.
    static func released() { open -= 1 }
}

private let RLIMIT_NOFILE_VALUE = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
