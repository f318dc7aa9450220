import CSwinetd

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// One bound socket of a service. It survives a reload when its key is unchanged, which is what
/// keeps unchanged services answering while the configuration is swapped.
final class Listener: EventHandler {
    var spec: ListenerSpec
    private(set) var fd: Int32 = -1
    private var token: ReactorToken?
    /// The service this socket currently belongs to.
    weak var owner: ServiceRuntime?
    /// Pending retry of a failed bind.
    var bindRetry: ReactorTimer?
    /// Where an adopted (inherited, systemd) socket goes back when this listener closes it; nil:
    /// swinetd bound the socket itself.
    private var adoptedFrom: InheritedSockets?

    init(spec: ListenerSpec) {
        self.spec = spec
    }

    var isOpen: Bool { fd >= 0 }
    /// The local address of every connection accepted here, when the socket is bound to one
    /// address (not a wildcard): accepting then needs no getsockname. nil: ask each connection.
    private(set) var fixedLocalAddress: (IPAddress, UInt16)?
    var isArmed: Bool { token != nil }

    /// The port this listener is bound to, for the UDP loop guard.
    var boundPort: UInt16? {
        guard isOpen, let local = Socket.localAddress(fd) else { return nil }
        return local.1
    }

    func handle(events: UInt32) {
        owner?.listenerReady(self, events: events)
    }

    /// Creates, configures and binds the socket. Throws with a message fit for the log.
    func open() throws(SystemError) {
        guard !isOpen else { return }
        let type: Int32
        switch spec.socketType {
        case .stream: type = Int32(SOCK_STREAM.rawValue)
        case .dgram: type = Int32(SOCK_DGRAM.rawValue)
        case .seqpacket: type = Int32(SOCK_SEQPACKET.rawValue)
        }
        switch spec.address {
        case .inet(let address, let port, let v6Only):
            let family = address.isIPv6 ? AF_INET6 : AF_INET
            let socketFD = socket(family, type | Socket.cloexec, 0)
            guard socketFD >= 0 else { throw SystemError("socket") }
            _ = Socket.setOption(socketFD, SOL_SOCKET, SO_REUSEADDR, 1)
            if address.isIPv6 { _ = Socket.setOption(socketFD, Int32(IPPROTO_IPV6), IPV6_V6ONLY, v6Only ? 1 : 0) }
            var storage = sockaddr_storage()
            let length = SocketAddressFormatting.fill(&storage, address: address, port: port)
            let bound = withUnsafePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(socketFD, $0, length) }
            }
            if bound != 0 {
                let error = SystemError("bind \(spec.address)")
                close(socketFD)
                throw error
            }
            fd = socketFD
        case .unix(let path, let owner, let group, let mode):
            let socketFD = socket(AF_UNIX, type | Socket.cloexec, 0)
            guard socketFD >= 0 else { throw SystemError("socket") }
            // Replace a stale socket, never a file of another kind.
            var info = stat()
            if lstat(path, &info) == 0 {
                guard info.st_mode & S_IFMT == S_IFSOCK else {
                    close(socketFD)
                    throw SystemError("bind \(path): exists and is not a socket", errno: EEXIST)
                }
                unlink(path)
            }
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_UNIX)
            let pathBytes = Array(path.utf8)
            let capacity = MemoryLayout.size(ofValue: address.sun_path)
            guard pathBytes.count < capacity else {
                close(socketFD)
                throw SystemError("bind \(path): path too long", errno: ENAMETOOLONG)
            }
            withUnsafeMutableBytes(of: &address.sun_path) { dst in
                for (i, byte) in pathBytes.enumerated() { dst[i] = byte }
            }
            // Bind with a closed umask so nobody can connect before chmod sets the configured mode.
            let oldMask = umask(0o177)
            let bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    bind(socketFD, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
                }
            }
            umask(oldMask)
            if bound != 0 {
                let error = SystemError("bind \(path)")
                close(socketFD)
                throw error
            }
            if owner != nil || group != nil {
                if chown(path, owner.map { uid_t($0) } ?? uid_t.max, group.map { gid_t($0) } ?? gid_t.max) != 0 {
                    let error = SystemError("chown \(path)")
                    close(socketFD)
                    unlink(path)
                    throw error
                }
            }
            if chmod(path, mode_t(mode)) != 0 {
                let error = SystemError("chmod \(path)")
                close(socketFD)
                unlink(path)
                throw error
            }
            fd = socketFD
        }
        if let size = spec.receiveBuffer { _ = Socket.setOption(fd, SOL_SOCKET, SO_RCVBUF, size) }
        if let size = spec.sendBuffer { _ = Socket.setOption(fd, SOL_SOCKET, SO_SNDBUF, size) }
        if spec.socketType != .dgram, listen(fd, spec.backlog) != 0 {
            let error = SystemError("listen \(spec.address)")
            closeSocket(reactor: nil)
            throw error
        }
        learnFixedLocalAddress()
    }

    private func learnFixedLocalAddress() {
        fixedLocalAddress = nil
        guard let local = Socket.localAddress(fd) else { return }
        let unspecified: Bool
        switch local.0 {
        case .v4(let bits): unspecified = bits == 0
        case .v6(let bytes, _): unspecified = bytes.allSatisfy { $0 == 0 }
        }
        if !unspecified { fixedLocalAddress = local }
    }

    /// Uses an inherited socket instead of binding one (InheritedSockets).
    func adopt(_ socketFD: Int32, from pool: InheritedSockets) {
        fd = socketFD
        adoptedFrom = pool
        if let size = spec.receiveBuffer { _ = Socket.setOption(fd, SOL_SOCKET, SO_RCVBUF, size) }
        if let size = spec.sendBuffer { _ = Socket.setOption(fd, SOL_SOCKET, SO_SNDBUF, size) }
        var accepting: Int32 = 0
        var size = socklen_t(MemoryLayout<Int32>.size)
        if spec.socketType != .dgram, getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &size) == 0, accepting == 0 {
            _ = listen(fd, spec.backlog)
        }
        learnFixedLocalAddress()
    }

    /// Applies options that may change on reload without re-binding.
    func reapply(_ newSpec: ListenerSpec) {
        let old = spec
        spec = newSpec
        guard isOpen else { return }
        if newSpec.backlog != old.backlog, newSpec.socketType != .dgram { _ = listen(fd, newSpec.backlog) }
        if let size = newSpec.receiveBuffer, size != old.receiveBuffer {
            _ = Socket.setOption(fd, SOL_SOCKET, SO_RCVBUF, size)
        }
        if let size = newSpec.sendBuffer, size != old.sendBuffer {
            _ = Socket.setOption(fd, SOL_SOCKET, SO_SNDBUF, size)
        }
    }

    /// Starts delivering readiness to the owner.
    func arm(_ reactor: Reactor) {
        guard isOpen, token == nil else { return }
        token = try? reactor.register(fd: fd, events: Readiness.input, handler: self)
    }

    /// Stops delivering readiness; the socket stays open (connections queue in the backlog).
    func disarm(_ reactor: Reactor) {
        guard let token else { return }
        reactor.unregister(fd: fd, token: token)
        self.token = nil
    }

    /// Closes the socket, removing a Unix socket path swinetd created.
    func closeSocket(reactor: Reactor?) {
        if let reactor { disarm(reactor) }
        bindRetry?.cancel()
        bindRetry = nil
        guard isOpen else { return }
        fixedLocalAddress = nil
        if let pool = adoptedFrom {
            // systemd's socket: kept for a later reload, never closed or unlinked here.
            pool.giveBack(fd)
            adoptedFrom = nil
            fd = -1
            return
        }
        close(fd)
        fd = -1
        if case .unix(let path, _, _, _) = spec.address { unlink(path) }
    }
}
