
import CSwinetd

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Who is on the other end of an admin connection.
struct AdminPeer {
    /// SO_PEERCRED of a Unix-socket peer.
    var uid: uid_t?
    var address: IPAddress?
}

/// A small request/response server on the reactor: the metrics endpoint, the control socket and
/// the web console. One request per connection (HTTP/1.1 with `Connection: close`, or one line),
/// at most `requestLimit` bytes, `timeoutSeconds` to send it and read the answer, and at most
/// `maxConnections` at a time (more are closed at once). Never blocks the reactor.
final class AdminServer: EventHandler {
    enum Address: CustomStringConvertible {
        case tcp(IPAddress, UInt16)
        case unix(String)

        var description: String {
            switch self {
            case .tcp(let address, let port): return address.isIPv6 ? "[\(address)]:\(port)" : "\(address):\(port)"
            case .unix(let path): return path
            }
        }
    }

    /// Whether the bytes so far hold a whole request.
    typealias Framer = ([UInt8]) -> Bool
    /// The response to a whole request (or to one that grew past the limit: `tooLarge`).
    typealias Responder = (_ request: [UInt8], _ peer: AdminPeer, _ tooLarge: Bool) -> [UInt8]

    let name: String
    private(set) var address: Address
    private(set) var fd: Int32 = -1
    private var token: ReactorToken?
    unowned let reactor: Reactor
    let maxConnections = 16
    let requestLimit = 8192
    let timeoutSeconds = 10.0
    fileprivate var connections = 0
    fileprivate let framer: Framer
    fileprivate let responder: Responder
    /// For Unix sockets: which peer uids may talk to it.
    fileprivate let allowedUIDs: Set<uid_t>?

    init(name: String, address: Address, reactor: Reactor, allowedUIDs: Set<uid_t>? = nil,
         framer: @escaping Framer, responder: @escaping Responder) {
        self.name = name
        self.address = address
        self.reactor = reactor
        self.allowedUIDs = allowedUIDs
        self.framer = framer
        self.responder = responder
    }

    /// Binds, listens and registers. For a Unix socket: a socket already there that still answers
    /// belongs to another daemon and is left alone (an error); a stale one is replaced; any other
    /// kind of file is an error. The socket is created mode 0600 (umask 0177 around bind).
    func start() throws(SystemError) {
        switch address {
        case .tcp(let ip, let port):
            let family = ip.isIPv6 ? AF_INET6 : AF_INET
            let sock = socket(family, Int32(SOCK_STREAM.rawValue) | Socket.cloexec | Socket.nonblock, 0)
            guard sock >= 0 else { throw SystemError("socket") }
            _ = Socket.setOption(sock, SOL_SOCKET, SO_REUSEADDR, 1)
            if ip.isIPv6 { _ = Socket.setOption(sock, Int32(IPPROTO_IPV6), IPV6_V6ONLY, 1) }
            var storage = sockaddr_storage()
            let length = SocketAddressFormatting.fill(&storage, address: ip, port: port)
            let bound = withUnsafePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(sock, $0, length) }
            }
            guard bound == 0 else {
                let error = SystemError("\(name): bind \(address)")
                close(sock)
                throw error
            }
            fd = sock
            if port == 0, let local = Socket.localAddress(sock) { self.address = .tcp(ip, local.1) }
        case .unix(let path):
            var info = stat()
            if lstat(path, &info) == 0 {
                guard info.st_mode & S_IFMT == S_IFSOCK else {
                    throw SystemError("\(name): \(path): exists and is not a socket", errno: EEXIST)
                }
                if Self.unixSocketAnswers(path) {
                    throw SystemError("\(name): \(path): in use by another process", errno: EADDRINUSE)
                }
                unlink(path)
            }
            let sock = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Socket.cloexec | Socket.nonblock, 0)
            guard sock >= 0 else { throw SystemError("socket") }
            guard var sun = Self.unixAddress(path) else {
                close(sock)
                throw SystemError("\(name): \(path): path too long", errno: ENAMETOOLONG)
            }
            let oldMask = umask(0o177)
            let bound = withUnsafePointer(to: &sun) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    bind(sock, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
                }
            }
            umask(oldMask)
            guard bound == 0 else {
                let error = SystemError("\(name): bind \(path)")
                close(sock)
                throw error
            }
            chmod(path, 0o600)
            fd = sock
        }
        guard listen(fd, 16) == 0 else {
            let error = SystemError("\(name): listen \(address)")
            stop()
            throw error
        }
        token = try reactor.register(fd: fd, events: Readiness.input, handler: self)
    }

    /// Closes the socket (and removes a Unix socket's path).
    func stop() {
        guard fd >= 0 else { return }
        if let token { reactor.unregister(fd: fd, token: token) }
        token = nil
        close(fd)
        fd = -1
        if case .unix(let path) = address { unlink(path) }
    }

    static func unixAddress(_ path: String) -> sockaddr_un? {
        var sun = sockaddr_un()
        sun.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: sun.sun_path) else { return nil }
        withUnsafeMutableBytes(of: &sun.sun_path) { dst in
            for (i, byte) in bytes.enumerated() { dst[i] = byte }
        }
        return sun
    }

    private static func unixSocketAnswers(_ path: String) -> Bool {
        guard var sun = unixAddress(path) else { return false }
        let sock = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Socket.cloexec | Socket.nonblock, 0)
        guard sock >= 0 else { return false }
        defer { close(sock) }
        let result = withUnsafePointer(to: &sun) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(sock, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        return result == 0 || errno == EAGAIN || errno == EINPROGRESS
    }

    func handle(events: UInt32) {
        for _ in 0..<16 {
            var storage = sockaddr_storage()
            var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
            let client = sw_accept4(fd, &storage, &length, Socket.cloexec | Socket.nonblock)
            if client < 0 {
                if errno == EINTR || errno == ECONNABORTED { continue }
                return
            }
            guard connections < maxConnections else {
                close(client)
                continue
            }
            var peer = AdminPeer()
            if case .unix = address {
                var pid: pid_t = 0
                var uid: uid_t = 0
                var gid: gid_t = 0
                guard sw_peer_credentials(client, &pid, &uid, &gid) == 0 else {
                    close(client)
                    continue
                }
                peer.uid = uid
            } else {
                peer.address = withUnsafePointer(to: &storage) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { SocketAddressFormatting.ipAddress(from: $0) }
                }
            }
            let connection = AdminConnection(fd: client, peer: peer, server: self)
            connection.begin()
        }
    }
}

/// One request and its response.
private final class AdminConnection: EventHandler {
    let fd: Int32
    let peer: AdminPeer
    unowned let server: AdminServer
    private var token: ReactorToken?
    private var input: [UInt8] = []
    private var output: [UInt8] = []
    private var sent = 0
    private var responding = false
    private var timer: ReactorTimer?
    /// Keeps itself alive while registered (the reactor holds handlers strongly too).
    private var selfReference: AdminConnection?

    init(fd: Int32, peer: AdminPeer, server: AdminServer) {
        self.fd = fd
        self.peer = peer
        self.server = server
    }

    func begin() {
        do {
            token = try server.reactor.register(fd: fd, events: Readiness.input, handler: self)
        } catch {
            close(fd)
            return
        }
        server.connections += 1
        selfReference = self
        timer = server.reactor.schedule(after: server.timeoutSeconds) { [weak self] in self?.finish() }
    }

    func handle(events: UInt32) {
        if responding {
            flush()
            return
        }
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = chunk.withUnsafeMutableBytes { Socket.receive(fd, $0.baseAddress!, $0.count) }
            if n > 0 {
                input += chunk[0..<n]
                if input.count > server.requestLimit {
                    respond(tooLarge: true)
                    return
                }
                if server.framer(input) {
                    respond(tooLarge: false)
                    return
                }
                continue
            }
            if n < 0, errno == EAGAIN || errno == EWOULDBLOCK { return }
            // EOF before a whole request (a control client may end its line with EOF), or an error.
            if n == 0, !input.isEmpty {
                respond(tooLarge: false)
            } else {
                finish()
            }
            return
        }
    }

    private func respond(tooLarge: Bool) {
        responding = true
        if let allowed = server.allowedUIDs, let uid = peer.uid, !allowed.contains(uid) {
            // Answered only after its request was read, so the refusal reaches the client.
            output = Array("error: permission denied (uid \(uid))\n".utf8)
        } else {
            output = server.responder(input, peer, tooLarge)
        }
        input = []
        if let token { server.reactor.modify(fd: fd, token: token, events: Readiness.output) }
        flush()
    }

    private func flush() {
        while sent < output.count {
            let n = output.withUnsafeBytes { Socket.send(fd, $0.baseAddress! + sent, output.count - sent) }
            if n > 0 {
                sent += n
                continue
            }
            if n < 0, errno == EAGAIN || errno == EWOULDBLOCK { return }
            break
        }
        finish()
    }

    private func finish() {
        guard let token else { return }
        timer?.cancel()
        server.reactor.unregister(fd: fd, token: token)
        self.token = nil
        shutdown(fd, Int32(SHUT_WR))
        close(fd)
        server.connections -= 1
        selfReference = nil
    }
}
