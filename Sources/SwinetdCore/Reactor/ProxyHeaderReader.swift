import Logging

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Reads the PROXY protocol header of a connection on a `proxy_protocol` service, in the reactor,
/// without blocking: peeks, consumes exactly the header's bytes (whatever follows belongs to the
/// program or builtin), bounded in size (ProxyProtocol.maximumLength) and in time
/// (`timeoutSeconds`). Then the connection goes through the ordinary admission pipeline with the
/// client the header names. A peer outside `proxy_trusted`, a malformed or truncated header, or a
/// timeout closes the connection with a FAIL line: the service never sees an unproxied client.
final class ProxyHeaderReader: EventHandler {
    /// How long a trusted proxy may take to send its header.
    static let timeoutSeconds: Double = 5

    private let fd: Int32
    private let peer: PeerInfo
    /// Strong: the service may leave the configuration while the header is read.
    private let runtime: ServiceRuntime
    private var token: ReactorToken?
    private var timer: ReactorTimer?
    private var received: [UInt8] = []
    private var finished = false

    private var supervisor: Supervisor { runtime.supervisor }

    private init(fd: Int32, peer: PeerInfo, runtime: ServiceRuntime) {
        self.fd = fd
        self.peer = peer
        self.runtime = runtime
    }

    /// Takes over `fd`: it is closed here or handed to `runtime.handleConnection`.
    static func start(fd: Int32, peer: PeerInfo, policy: ProxyProtocolPolicy, runtime: ServiceRuntime) {
        guard let address = peer.address, policy.trusts(address) else {
            runtime.log.fail("proxy_untrusted", peer: peer, user: nil)
            runtime.supervisor.logger.warning(
                "\(runtime.service.logName): PROXY protocol from untrusted peer \(peer.address.map { "\($0)" } ?? "?"); closed")
            runtime.supervisor.noteRefusal()
            close(fd)
            return
        }
        if runtime.supervisor.inProcessConnections >= runtime.supervisor.options.maxInProcessConnections {
            runtime.log.fail("process_limit", peer: peer, user: nil)
            runtime.supervisor.noteRefusal()
            close(fd)
            return
        }
        let reader = ProxyHeaderReader(fd: fd, peer: peer, runtime: runtime)
        // Counted like an in-process connection while it waits, so a flood of slow proxies is
        // bounded by the same cap.
        runtime.inProcessStarted(peer: nil)
        do {
            reader.token = try runtime.supervisor.reactor.register(fd: fd, events: Readiness.input, handler: reader)
        } catch {
            reader.fail("proxy_header (\(error))")
            return
        }
        reader.timer = runtime.supervisor.reactor.schedule(after: timeoutSeconds) { [weak reader] in
            guard let reader, !reader.finished else { return }
            reader.fail("proxy_header (timeout after \(Int(timeoutSeconds)) s, \(reader.received.count) bytes)")
        }
    }

    func handle(events: UInt32) {
        guard !finished else { return }
        let scratch = supervisor.scratch
        let room = ProxyProtocol.maximumLength - received.count
        let peeked = Socket.receive(fd, scratch.baseAddress!, room, flags: Int32(MSG_PEEK | MSG_DONTWAIT))
        if peeked < 0 {
            if errno == EAGAIN || errno == EWOULDBLOCK { return }
            fail("proxy_header (\(errnoDescription(errno)))")
            return
        }
        if peeked == 0 {
            fail("proxy_header (closed after \(received.count) bytes)")
            return
        }
        let view = received + UnsafeRawBufferPointer(rebasing: scratch[0..<peeked])
        switch ProxyProtocol.parse(view) {
        case .invalid(let reason):
            fail("proxy_header (\(reason))")
        case .needMore:
            // Every byte seen so far is header: consume it, so level-triggered readiness does not
            // repeat for bytes already looked at.
            guard consume(peeked) else { return }
            received = view
        case .header(let header):
            guard consume(header.length - received.count) else { return }
            finish(header)
        }
    }

    /// Reads exactly `count` bytes that a peek showed; false (and closed) when that fails.
    private func consume(_ count: Int) -> Bool {
        let scratch = supervisor.scratch
        let n = Socket.receive(fd, scratch.baseAddress!, count, flags: Int32(MSG_DONTWAIT))
        guard n == count else {
            fail("proxy_header (\(n < 0 ? errnoDescription(errno) : "short read"))")
            return false
        }
        return true
    }

    private func finish(_ header: ProxyProtocol.Header) {
        detach()
        runtime.inProcessEnded(peer: nil)
        var proxied = peer
        if let source = header.source {
            proxied.address = source.address
            proxied.port = source.port
            proxied.proxiedBy = peer.address
            if let destination = header.destination {
                proxied.local = (destination.address, destination.port)
            }
        }
        runtime.handleConnection(fd: fd, peer: proxied, proxyHeaderRead: true)
    }

    private func fail(_ reason: String) {
        guard !finished else { return }
        detach()
        runtime.log.fail(reason, peer: peer, user: nil)
        supervisor.logger.warning("\(runtime.service.logName): \(reason) \(peer.logText); closed")
        supervisor.noteRefusal()
        close(fd)
        runtime.inProcessEnded(peer: nil)
    }

    private func detach() {
        finished = true
        timer?.cancel()
        timer = nil
        if let token { supervisor.reactor.unregister(fd: fd, token: token) }
        token = nil
    }
}
