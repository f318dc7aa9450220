import CSwinetd

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// An RFC 1413 lookup of the user behind a connection, done in the reactor without blocking.
/// Whatever the peer's ident server sends is untrusted: at most 512 bytes are read, and the user
/// field is cut to 64 bytes of printable ASCII before anyone sees it.
final class IdentQuery: EventHandler {
    private let fd: Int32
    private let request: [UInt8]
    private var received: [UInt8] = []
    private var sent = false
    private var token: ReactorToken?
    private var timer: ReactorTimer?
    private let reactor: Reactor
    private var completion: ((String?) -> Void)?

    /// Starts the query; `completion` gets the user, or nil (no answer, error, timeout).
    @discardableResult
    static func start(
        peer: IPAddress, peerPort: UInt16, local: IPAddress, localPort: UInt16, timeout: Double, reactor: Reactor,
        completion: @escaping (String?) -> Void
    ) -> IdentQuery? {
        let family = peer.isIPv6 ? AF_INET6 : AF_INET
        let fd = socket(family, Int32(SOCK_STREAM.rawValue) | Socket.cloexec | Socket.nonblock, 0)
        guard fd >= 0 else {
            completion(nil)
            return nil
        }
        // From the address the client reached, so the answer is about this connection.
        var from = sockaddr_storage()
        let fromLength = SocketAddressFormatting.fill(&from, address: local, port: 0)
        _ = withUnsafePointer(to: &from) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, fromLength) } }
        var to = sockaddr_storage()
        let toLength = SocketAddressFormatting.fill(&to, address: peer, port: 113)
        let status = withUnsafePointer(to: &to) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, toLength) }
        }
        if status != 0 && errno != EINPROGRESS {
            close(fd)
            completion(nil)
            return nil
        }
        let query = IdentQuery(
            fd: fd, request: Array("\(peerPort) , \(localPort)\r\n".utf8), reactor: reactor, completion: completion)
        do {
            query.token = try reactor.register(fd: fd, events: Readiness.output, handler: query)
        } catch {
            query.finish(nil)
            return nil
        }
        query.timer = reactor.schedule(after: timeout) { [weak query] in query?.finish(nil) }
        return query
    }

    private init(fd: Int32, request: [UInt8], reactor: Reactor, completion: @escaping (String?) -> Void) {
        self.fd = fd
        self.request = request
        self.reactor = reactor
        self.completion = completion
    }

    func handle(events: UInt32) {
        if events & Readiness.error != 0 {
            finish(nil)
            return
        }
        if !sent {
            let n = request.withUnsafeBytes { Socket.send(fd, $0.baseAddress!, $0.count) }
            guard n == request.count else {
                finish(nil)
                return
            }
            sent = true
            if let token { reactor.modify(fd: fd, token: token, events: Readiness.input) }
            return
        }
        var buffer = [UInt8](repeating: 0, count: 512)
        let n = buffer.withUnsafeMutableBytes { Socket.receive(fd, $0.baseAddress!, 512 - received.count) }
        if n > 0 { received += buffer[0..<n] }
        if n == 0 || received.contains(10) || received.count >= 512 {
            finish(Self.parseUser(received))
        } else if n < 0, errno != EAGAIN {
            finish(nil)
        }
    }

    /// `ports : USERID : opsys : user` → user (bounded, printable); anything else → nil.
    static func parseUser(_ reply: [UInt8]) -> String? {
        let line = reply.prefix { $0 != 10 && $0 != 13 }
        let fields = line.split(separator: UInt8(ascii: ":"), maxSplits: 3, omittingEmptySubsequences: false)
        guard fields.count == 4 else { return nil }
        let kind = String(decoding: fields[1], as: UTF8.self).trimmingSpacesAndTabs()
        guard kind.uppercased() == "USERID" else { return nil }
        let user = fields[3].drop { $0 == 32 || $0 == 9 }.prefix(64).filter { $0 > 32 && $0 < 127 }
        return user.isEmpty ? nil : String(decoding: user, as: UTF8.self)
    }

    private func finish(_ user: String?) {
        guard let completion else { return }
        self.completion = nil
        timer?.cancel()
        if let token { reactor.unregister(fd: fd, token: token) }
        token = nil
        close(fd)
        completion(user)
    }
}

extension String {
    fileprivate func trimmingSpacesAndTabs() -> String {
        var slice = self[...]
        while let first = slice.first, first == " " || first == "\t" { slice = slice.dropFirst() }
        while let last = slice.last, last == " " || last == "\t" { slice = slice.dropLast() }
        return String(slice)
    }
}
