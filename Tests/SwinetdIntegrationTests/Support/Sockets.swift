import Foundation
import Glibc

/// A socket error with the call and errno.
struct SocketError: Error, CustomStringConvertible {
    var call: String
    var code: Int32
    var description: String { "\(call): \(String(cString: strerror(code))) (errno \(code))" }
}

/// A NUL-terminated C buffer as a String.
func cText(_ buffer: [CChar]) -> String {
    String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

/// Socket addresses from numeric host text.
enum SocketAddress {
    /// `host` is a numeric IPv4 or IPv6 literal (no brackets).
    static func make(_ host: String, _ port: UInt16) -> (storage: sockaddr_storage, length: socklen_t, family: Int32) {
        var storage = sockaddr_storage()
        if host.contains(":") {
            var sin6 = sockaddr_in6()
            sin6.sin6_family = sa_family_t(AF_INET6)
            sin6.sin6_port = port.bigEndian
            precondition(inet_pton(AF_INET6, host, &sin6.sin6_addr) == 1, "bad IPv6 literal \(host)")
            withUnsafeMutableBytes(of: &storage) { dst in
                withUnsafeBytes(of: sin6) { dst.copyMemory(from: $0) }
            }
            return (storage, socklen_t(MemoryLayout<sockaddr_in6>.size), AF_INET6)
        }
        var sin = sockaddr_in()
        sin.sin_family = sa_family_t(AF_INET)
        sin.sin_port = port.bigEndian
        precondition(inet_pton(AF_INET, host, &sin.sin_addr) == 1, "bad IPv4 literal \(host)")
        withUnsafeMutableBytes(of: &storage) { dst in
            withUnsafeBytes(of: sin) { dst.copyMemory(from: $0) }
        }
        return (storage, socklen_t(MemoryLayout<sockaddr_in>.size), AF_INET)
    }

    /// The (IP text, port) of a sockaddr.
    static func describe(_ storage: sockaddr_storage) -> (String, UInt16) {
        var storage = storage
        return withUnsafePointer(to: &storage) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa -> (String, UInt16) in
                var buffer = [CChar](repeating: 0, count: 64)
                if Int32(sa.pointee.sa_family) == AF_INET6 {
                    return sa.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { sin6 in
                        var addr = sin6.pointee.sin6_addr
                        inet_ntop(AF_INET6, &addr, &buffer, 64)
                        return (cText(buffer), UInt16(bigEndian: sin6.pointee.sin6_port))
                    }
                }
                return sa.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { sin in
                    var addr = sin.pointee.sin_addr
                    inet_ntop(AF_INET, &addr, &buffer, 64)
                    return (cText(buffer), UInt16(bigEndian: sin.pointee.sin_port))
                }
            }
        }
    }

    static func bind(_ fd: Int32, _ host: String, _ port: UInt16) -> Bool {
        var (storage, length, _) = make(host, port)
        return withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(fd, $0, length) == 0 }
        }
    }

    static func localAddress(_ fd: Int32) -> (String, UInt16) {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        _ = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return describe(storage)
    }
}

/// Ports for services: bound once on the wildcard to prove they are free (TCP and UDP, IPv4 and
/// IPv6), then released; never handed out twice in one run.
enum Ports {
    private static let handedOut = Locked<Set<UInt16>>([])

    static func free() -> UInt16 {
        for _ in 0..<200 {
            let probe = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            guard probe >= 0, SocketAddress.bind(probe, "127.0.0.1", 0) else {
                close(probe)
                continue
            }
            let port = SocketAddress.localAddress(probe).1
            close(probe)
            if handedOut.withLock({ $0.contains(port) }) { continue }
            if isFree(port) {
                handedOut.withLock { _ = $0.insert(port) }
                return port
            }
        }
        fatalError("no free port found")
    }

    private static func isFree(_ port: UInt16) -> Bool {
        for (host, type) in [
            ("0.0.0.0", SOCK_STREAM), ("0.0.0.0", SOCK_DGRAM), ("::", SOCK_STREAM), ("::", SOCK_DGRAM),
        ] {
            let fd = socket(host.contains(":") ? AF_INET6 : AF_INET, Int32(type.rawValue), 0)
            guard fd >= 0 else { return false }
            if host.contains(":") {
                var one: Int32 = 1
                setsockopt(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, &one, socklen_t(MemoryLayout<Int32>.size))
            }
            let ok = SocketAddress.bind(fd, host, port)
            close(fd)
            if !ok { return false }
        }
        return true
    }
}

/// One client connection (TCP or Unix stream), closed on release.
final class Connection {
    let fd: Int32
    private var closed = false

    init(fd: Int32) { self.fd = fd }
    deinit { close() }

    /// Connects to a TCP service, optionally from a chosen local address; fails fast on refusal
    /// and after `timeout` s otherwise.
    static func tcp(_ host: String, _ port: UInt16, from source: String? = nil, timeout: Double = 3) throws
        -> Connection
    {
        var (storage, length, family) = SocketAddress.make(host, port)
        let fd = socket(family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SocketError(call: "socket", code: errno) }
        let connection = Connection(fd: fd)
        if let source, !SocketAddress.bind(fd, source, 0) { throw SocketError(call: "bind \(source)", code: errno) }
        try connection.connect(&storage, length, timeout: timeout, what: "\(host) port \(port)")
        return connection
    }

    /// Connects to a Unix stream socket.
    static func unix(_ path: String, timeout: Double = 3) throws -> Connection {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SocketError(call: "socket", code: errno) }
        let connection = Connection(fd: fd)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        withUnsafeMutableBytes(of: &address.sun_path) { dst in
            for (i, b) in bytes.enumerated() { dst[i] = b }
        }
        var storage = sockaddr_storage()
        withUnsafeMutableBytes(of: &storage) { dst in withUnsafeBytes(of: address) { dst.copyMemory(from: $0) } }
        try connection.connect(&storage, socklen_t(MemoryLayout<sockaddr_un>.size), timeout: timeout, what: path)
        return connection
    }

    private func connect(_ storage: inout sockaddr_storage, _ length: socklen_t, timeout: Double, what: String)
        throws
    {
        setNonBlocking(true)
        let r = withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, length) }
        }
        if r != 0 {
            guard errno == EINPROGRESS || errno == EAGAIN else { throw SocketError(call: "connect \(what)", code: errno) }
            guard wait(for: Int16(POLLOUT), timeout: timeout) else {
                throw SocketError(call: "connect \(what) (timed out)", code: ETIMEDOUT)
            }
            var error: Int32 = 0
            var size = socklen_t(MemoryLayout<Int32>.size)
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &size)
            if error != 0 { throw SocketError(call: "connect \(what)", code: error) }
        }
        setNonBlocking(false)
    }

    var localPort: UInt16 { SocketAddress.localAddress(fd).1 }

    func setNonBlocking(_ on: Bool) {
        let flags = fcntl(fd, F_GETFL)
        _ = fcntl(fd, F_SETFL, on ? flags | O_NONBLOCK : flags & ~O_NONBLOCK)
    }

    /// poll(2) for `events`, bounded by `timeout` s.
    func wait(for events: Int16, timeout: Double) -> Bool {
        var pfd = pollfd(fd: fd, events: events, revents: 0)
        let deadline = Clock.now + timeout
        while true {
            let left = max(0, deadline - Clock.now)
            let r = poll(&pfd, 1, Int32(left * 1000))
            if r > 0 { return true }
            if r == 0 { return false }
            if errno != EINTR { return false }
        }
    }

    /// Writes everything (blocking socket).
    func send(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL)) }
            if n < 0 {
                if errno == EINTR { continue }
                throw SocketError(call: "send", code: errno)
            }
            offset += n
        }
    }

    func send(_ text: String) throws { try send(Array(text.utf8)) }

    func shutdownWrite() { shutdown(fd, Int32(SHUT_WR)) }

    /// What a read to EOF produced.
    struct ReadResult {
        var bytes: [UInt8]
        /// The peer sent FIN (read returned 0).
        var eof: Bool
        /// The read failed (e.g. ECONNRESET); nil when it ended by EOF or deadline.
        var error: Int32?
        var text: String { String(decoding: bytes, as: UTF8.self) }
    }

    /// Reads until EOF, an error, `limit` bytes, or `timeout` s.
    func readToEOF(timeout: Double = 5, limit: Int = 64 << 20) -> ReadResult {
        var result = ReadResult(bytes: [], eof: false, error: nil)
        let deadline = Clock.now + timeout
        var buffer = [UInt8](repeating: 0, count: 65536)
        while result.bytes.count < limit {
            let left = deadline - Clock.now
            guard left > 0, wait(for: Int16(POLLIN), timeout: left) else { break }
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress!, $0.count, Int32(MSG_DONTWAIT)) }
            if n > 0 {
                result.bytes += buffer[0..<n]
            } else if n == 0 {
                result.eof = true
                break
            } else if errno != EINTR && errno != EAGAIN {
                result.error = errno
                break
            }
        }
        return result
    }

    /// Reads until `count` bytes arrived (or EOF/timeout); returns what arrived.
    func read(count: Int, timeout: Double = 5) -> [UInt8] {
        var bytes: [UInt8] = []
        let deadline = Clock.now + timeout
        var buffer = [UInt8](repeating: 0, count: 65536)
        while bytes.count < count {
            let left = deadline - Clock.now
            guard left > 0, wait(for: Int16(POLLIN), timeout: left) else { break }
            let want = min(buffer.count, count - bytes.count)
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress!, want, Int32(MSG_DONTWAIT)) }
            if n > 0 {
                bytes += buffer[0..<n]
            } else if n == 0 || (errno != EINTR && errno != EAGAIN) {
                break
            }
        }
        return bytes
    }

    /// Reads until the data ends with `suffix` (e.g. the probe's "end\n"), EOF or timeout.
    func read(until suffix: String, timeout: Double = 5) -> [UInt8] {
        let tail = Array(suffix.utf8)
        var bytes: [UInt8] = []
        let deadline = Clock.now + timeout
        while !bytes.ends(with: tail) {
            let left = deadline - Clock.now
            guard left > 0, wait(for: Int16(POLLIN), timeout: left) else { break }
            var byte: UInt8 = 0
            let n = recv(fd, &byte, 1, Int32(MSG_DONTWAIT))
            if n == 1 {
                bytes.append(byte)
            } else if n == 0 || (errno != EINTR && errno != EAGAIN) {
                break
            }
        }
        return bytes
    }

    /// True when nothing arrives for `seconds` (the connection stays silent and open).
    func staysSilent(for seconds: Double) -> Bool {
        !wait(for: Int16(POLLIN), timeout: seconds)
    }

    /// Full duplex: writes `payload` (then shuts down the write side) while reading everything the
    /// peer sends, in one poll loop, so a large echo never deadlocks on full socket buffers.
    func duplex(_ payload: [UInt8], chunk: Int = 65536, timeout: Double = 10) -> ReadResult {
        setNonBlocking(true)
        defer { setNonBlocking(false) }
        var result = ReadResult(bytes: [], eof: false, error: nil)
        result.bytes.reserveCapacity(payload.count)
        var sent = 0
        var writeOpen = true
        if payload.isEmpty {
            shutdownWrite()
            writeOpen = false
        }
        var buffer = [UInt8](repeating: 0, count: 65536)
        let deadline = Clock.now + timeout
        while !result.eof && result.error == nil {
            let left = deadline - Clock.now
            guard left > 0 else { break }
            var pfd = pollfd(fd: fd, events: Int16(POLLIN) | (writeOpen ? Int16(POLLOUT) : 0), revents: 0)
            let r = poll(&pfd, 1, Int32(min(left, 1) * 1000))
            if r < 0 && errno != EINTR { break }
            if r <= 0 { continue }
            if writeOpen && pfd.revents & Int16(POLLOUT) != 0 {
                let n = payload.withUnsafeBytes {
                    Glibc.send(fd, $0.baseAddress! + sent, min(chunk, payload.count - sent), Int32(MSG_NOSIGNAL))
                }
                if n > 0 {
                    sent += n
                    if sent == payload.count {
                        shutdownWrite()
                        writeOpen = false
                    }
                } else if n < 0 && errno != EAGAIN && errno != EINTR {
                    result.error = errno
                    break
                }
            }
            if pfd.revents & Int16(POLLIN | POLLHUP | POLLERR) != 0 {
                let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress!, $0.count, 0) }
                if n > 0 {
                    result.bytes += buffer[0..<n]
                } else if n == 0 {
                    result.eof = true
                } else if errno != EAGAIN && errno != EINTR {
                    result.error = errno
                }
            }
        }
        return result
    }

    func close() {
        guard !closed else { return }
        closed = true
        Glibc.close(fd)
    }
}

extension Array where Element == UInt8 {
    func ends(with suffix: [UInt8]) -> Bool {
        count >= suffix.count && Array(self[(count - suffix.count)...]) == suffix
    }

    func starts(with prefix: [UInt8]) -> Bool {
        count >= prefix.count && Array(self[0..<prefix.count]) == prefix
    }
}

/// TCP one-shots.
enum TCP {
    /// Connects, sends `payload`, optionally half-closes, reads to EOF.
    static func exchange(
        _ host: String, _ port: UInt16, send payload: [UInt8] = [], shutdownWrite: Bool = true,
        timeout: Double = 5
    ) throws -> Connection.ReadResult {
        let connection = try Connection.tcp(host, port, timeout: timeout)
        if !payload.isEmpty { try connection.send(payload) }
        if shutdownWrite { connection.shutdownWrite() }
        return connection.readToEOF(timeout: timeout)
    }

    /// The errno of a connect attempt, 0 when it connected.
    static func connectErrno(_ host: String, _ port: UInt16) -> Int32 {
        do {
            _ = try Connection.tcp(host, port, timeout: 2)
            return 0
        } catch let error as SocketError {
            return error.code
        } catch {
            return -1
        }
    }

    /// Connects to a probe service and parses the report it writes.
    static func probe(_ host: String, _ port: UInt16, timeout: Double = 5) throws -> ProbeReport {
        let connection = try Connection.tcp(host, port, timeout: timeout)
        let result = connection.readToEOF(timeout: timeout)
        return ProbeReport(result.bytes)
    }
}

/// A UDP socket bound to a chosen (or ephemeral) local address.
final class UDPSocket {
    let fd: Int32

    init(bind host: String = "127.0.0.1", port: UInt16 = 0, reuse: Bool = false) throws {
        fd = socket(host.contains(":") ? AF_INET6 : AF_INET, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SocketError(call: "socket", code: errno) }
        if reuse {
            var one: Int32 = 1
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        }
        guard SocketAddress.bind(fd, host, port) else {
            let code = errno
            Glibc.close(fd)
            throw SocketError(call: "bind udp \(host) port \(port)", code: code)
        }
    }

    deinit { Glibc.close(fd) }

    var localPort: UInt16 { SocketAddress.localAddress(fd).1 }

    func send(_ payload: [UInt8], to host: String, _ port: UInt16) throws {
        var (storage, length, _) = SocketAddress.make(host, port)
        let n = withUnsafePointer(to: &storage) { sa in
            sa.withMemoryRebound(to: sockaddr.self, capacity: 1) { addr in
                payload.withUnsafeBytes { sendto(fd, $0.baseAddress, $0.count, 0, addr, length) }
            }
        }
        if n != payload.count { throw SocketError(call: "sendto", code: errno) }
    }

    /// One datagram and its source, or nil after `timeout` s.
    func receive(timeout: Double) -> (bytes: [UInt8], from: String, port: UInt16)? {
        var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let deadline = Clock.now + timeout
        while true {
            let left = deadline - Clock.now
            if left <= 0 { return nil }
            let r = poll(&pfd, 1, Int32(left * 1000))
            if r < 0 && errno == EINTR { continue }
            if r <= 0 { return nil }
            var buffer = [UInt8](repeating: 0, count: 65536)
            var storage = sockaddr_storage()
            var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
            let n = withUnsafeMutablePointer(to: &storage) { sa in
                sa.withMemoryRebound(to: sockaddr.self, capacity: 1) { addr in
                    buffer.withUnsafeMutableBytes { recvfrom(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT), addr, &length) }
                }
            }
            if n < 0 { continue }  // e.g. ECONNREFUSED from an ICMP error; keep waiting
            let (host, port) = SocketAddress.describe(storage)
            return (Array(buffer[0..<n]), host, port)
        }
    }

    /// Sends and waits for one reply.
    func exchange(_ payload: [UInt8], to host: String, _ port: UInt16, timeout: Double = 2) throws -> [UInt8]? {
        try send(payload, to: host, port)
        return receive(timeout: timeout)?.bytes
    }
}

/// Raw IPv4 UDP: datagrams with any source port, for the loop-guard test.
enum RawUDP {
    /// Sends one UDP datagram from 127.0.0.1:`sourcePort` to 127.0.0.1:`destinationPort`
    /// (the kernel writes the IP header; UDP checksum 0 means none, which IPv4 allows).
    static func send(_ payload: [UInt8], sourcePort: UInt16, destinationPort: UInt16) throws {
        let fd = socket(AF_INET, Int32(SOCK_RAW.rawValue), Int32(IPPROTO_UDP))
        guard fd >= 0 else { throw SocketError(call: "socket(SOCK_RAW, IPPROTO_UDP)", code: errno) }
        defer { close(fd) }
        let length = UInt16(8 + payload.count)
        var packet: [UInt8] = [
            UInt8(sourcePort >> 8), UInt8(sourcePort & 0xff), UInt8(destinationPort >> 8),
            UInt8(destinationPort & 0xff), UInt8(length >> 8), UInt8(length & 0xff), 0, 0,
        ]
        packet += payload
        var (storage, addressLength, _) = SocketAddress.make("127.0.0.1", 0)
        let n = withUnsafePointer(to: &storage) { sa in
            sa.withMemoryRebound(to: sockaddr.self, capacity: 1) { addr in
                packet.withUnsafeBytes { sendto(fd, $0.baseAddress, $0.count, 0, addr, addressLength) }
            }
        }
        if n != packet.count { throw SocketError(call: "sendto(raw)", code: errno) }
    }
}

/// Runs `body(i)` for i in 0..<count on `count` real threads and waits (bounded) for all of them.
/// Returns false if some did not finish within `timeout` s.
func runOnThreads(_ count: Int, timeout: Double, _ body: @escaping @Sendable (Int) -> Void) -> Bool {
    let group = DispatchGroup()
    for index in 0..<count {
        group.enter()
        let thread = Thread {
            body(index)
            group.leave()
        }
        thread.stackSize = 1 << 20
        thread.start()
    }
    return group.wait(timeout: .now() + timeout) == .success
}
