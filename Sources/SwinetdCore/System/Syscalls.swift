import CSwinetd

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A failed system call: what was called and the errno it left.
public struct SystemError: Error, CustomStringConvertible, Sendable {
    public var call: String
    public var errno: Int32

    public init(_ call: String, errno: Int32 = Glibc.errno) {
        self.call = call
        self.errno = errno
    }

    public var description: String { "\(call): \(errnoDescription(errno))" }
}

/// strerror, as a Swift string.
public func errnoDescription(_ code: Int32) -> String {
    guard let text = strerror(code) else { return "errno \(code)" }
    return String(cString: text)
}

/// Socket helpers over Glibc, retrying EINTR where a retry is right.
enum Socket {
    static let cloexec = sw_sock_cloexec()
    static let nonblock = sw_sock_nonblock()

    static func setOption(_ fd: Int32, _ level: Int32, _ name: Int32, _ value: Int32) -> Bool {
        var value = value
        return setsockopt(fd, level, name, &value, socklen_t(MemoryLayout<Int32>.size)) == 0
    }

    static func setBlocking(_ fd: Int32, _ blocking: Bool) {
        _ = sw_set_nonblocking(fd, blocking ? 0 : 1)
    }

    /// send(2) with MSG_NOSIGNAL: a reset peer must never raise SIGPIPE in the daemon.
    static func send(_ fd: Int32, _ pointer: UnsafeRawPointer, _ count: Int) -> Int {
        while true {
            let n = Glibc.send(fd, pointer, count, Int32(MSG_NOSIGNAL))
            if n < 0, errno == EINTR { continue }
            return n
        }
    }

    static func receive(_ fd: Int32, _ pointer: UnsafeMutableRawPointer, _ count: Int, flags: Int32 = 0) -> Int {
        while true {
            let n = recv(fd, pointer, count, flags)
            if n < 0, errno == EINTR { continue }
            return n
        }
    }

    /// Whether `fd` is readable now (a listener: a connection is queued), without waiting.
    static func isReadable(_ fd: Int32) -> Bool {
        var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        return poll(&entry, 1, 0) == 1 && entry.revents & Int16(POLLIN) != 0
    }

    /// The local address of a socket, as (IP, port); nil for non-IP sockets.
    static func localAddress(_ fd: Int32) -> (IPAddress, UInt16)? {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let ok = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) == 0 }
        }
        guard ok else { return nil }
        return withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa in
                SocketAddressFormatting.ipAddress(from: sa).map { ($0, SocketAddressFormatting.port(from: sa)) }
            }
        }
    }
}

/// Current wall-clock time in seconds since the epoch.
public func wallClockSeconds() -> Int {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return Int(ts.tv_sec)
}
