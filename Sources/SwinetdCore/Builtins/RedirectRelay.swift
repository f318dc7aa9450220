import CSwinetd

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// xinetd's `redirect = host port`: relays a connection to another address in-process, no
/// program spawned. Each direction moves at most one buffer at a time and stops reading while it
/// cannot write (backpressure); a FIN from one side is passed on once its data is flushed.
final class RedirectRelay {
    /// One direction: bytes read from `from` and not yet written to `to`.
    private struct Direction {
        var buffer: [UInt8] = []
        var offset = 0
        var sourceClosed = false
        var shutDown = false
        var bytes: UInt64 = 0
        var pending: Bool { offset < buffer.count }
    }

    private let client: Int32
    private let server: Int32
    private let peer: PeerInfo
    private let runtime: ServiceRuntime
    private var clientToken: ReactorToken?
    private var serverToken: ReactorToken?
    private var connected = false
    private var upstream = Direction()  // client → server
    private var downstream = Direction()  // server → client
    private let started = monotonicNanoseconds()
    private var connectTimer: ReactorTimer?
    private var finished = false

    private var reactor: Reactor { runtime.supervisor.reactor }

    static func start(fd: Int32, peer: PeerInfo, target: RedirectTarget, runtime: ServiceRuntime) {
        Socket.setBlocking(fd, false)
        let family = target.address.isIPv6 ? AF_INET6 : AF_INET
        let server = socket(family, Int32(SOCK_STREAM.rawValue) | Socket.cloexec | Socket.nonblock, 0)
        guard server >= 0 else {
            runtime.log.fail("redirect (socket: \(errnoDescription(errno)))", peer: peer, user: nil)
            close(fd)
            return
        }
        var storage = sockaddr_storage()
        let length = SocketAddressFormatting.fill(&storage, address: target.address, port: target.port)
        let status = withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(server, $0, length) }
        }
        if status != 0 && errno != EINPROGRESS {
            runtime.log.fail("redirect (connect \(target): \(errnoDescription(errno)))", peer: peer, user: nil)
            close(server)
            close(fd)
            return
        }
        let relay = RedirectRelay(client: fd, server: server, peer: peer, runtime: runtime)
        runtime.inProcessStarted(peer: peer.address)
        relay.begin(target: target)
    }

    private init(client: Int32, server: Int32, peer: PeerInfo, runtime: ServiceRuntime) {
        self.client = client
        self.server = server
        self.peer = peer
        self.runtime = runtime
    }

    private func begin(target: RedirectTarget) {
        do {
            serverToken = try reactor.register(fd: server, events: Readiness.output, handler: Side(self, isClient: false))
            clientToken = try reactor.register(fd: client, events: 0, handler: Side(self, isClient: true))
        } catch {
            finish()
            return
        }
        runtime.log.start(pid: nil, peer: peer, user: nil)
        connectTimer = reactor.schedule(after: 10) { [weak self] in
            guard let self, !self.connected else { return }
            self.runtime.log.fail("redirect (connect \(target): timed out)", peer: self.peer, user: nil)
            self.finish()
        }
    }

    /// Routes readiness of either socket. The reactor holds the two sides and they hold the relay,
    /// so it lives exactly as long as it is registered.
    private final class Side: EventHandler {
        let relay: RedirectRelay
        let isClient: Bool
        init(_ relay: RedirectRelay, isClient: Bool) {
            self.relay = relay
            self.isClient = isClient
        }
        func handle(events: UInt32) { relay.ready(isClient: isClient, events: events) }
    }

    private func ready(isClient: Bool, events: UInt32) {
        if !connected {
            var error: Int32 = 0
            var size = socklen_t(4)
            getsockopt(server, SOL_SOCKET, SO_ERROR, &error, &size)
            if error != 0 || events & Readiness.error != 0 {
                runtime.log.fail("redirect (connect: \(errnoDescription(error)))", peer: peer, user: nil)
                finish()
                return
            }
            connected = true
            connectTimer?.cancel()
        }
        if events & (Readiness.input | Readiness.hangup | Readiness.error) != 0 {
            if isClient { pump(&upstream, from: client, to: server) } else { pump(&downstream, from: server, to: client) }
        }
        if events & Readiness.output != 0 {
            if isClient { flush(&downstream, to: client) } else { flush(&upstream, to: server) }
        }
        if finished { return }
        if upstream.shutDown && downstream.shutDown {
            finish()
            return
        }
        updateInterest()
    }

    private func pump(_ direction: inout Direction, from: Int32, to: Int32) {
        guard !direction.pending, !direction.sourceClosed else { return }
        let scratch = runtime.supervisor.scratch
        let n = Socket.receive(from, scratch.baseAddress!, scratch.count)
        if n > 0 {
            direction.buffer = Array(UnsafeRawBufferPointer(rebasing: scratch[0..<n]))
            direction.offset = 0
            direction.bytes += UInt64(n)
            flush(&direction, to: to)
        } else if n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK) {
            direction.sourceClosed = true
            flush(&direction, to: to)
        }
    }

    private func flush(_ direction: inout Direction, to: Int32) {
        while direction.pending {
            let n = direction.buffer.withUnsafeBytes {
                Socket.send(to, $0.baseAddress! + direction.offset, direction.buffer.count - direction.offset)
            }
            if n < 0 {
                if errno == EAGAIN || errno == EWOULDBLOCK { return }
                direction.sourceClosed = true
                direction.buffer = []
                direction.offset = 0
                break
            }
            direction.offset += n
        }
        direction.buffer = []
        direction.offset = 0
        if direction.sourceClosed && !direction.shutDown {
            shutdown(to, Int32(SHUT_WR))
            direction.shutDown = true
        }
    }

    private func updateInterest() {
        guard connected else { return }
        func events(reading: Direction, writing: Direction) -> UInt32 {
            var mask: UInt32 = 0
            if !reading.pending && !reading.sourceClosed { mask |= Readiness.input }
            if writing.pending { mask |= Readiness.output }
            return mask
        }
        if let clientToken {
            reactor.modify(fd: client, token: clientToken, events: events(reading: upstream, writing: downstream))
        }
        if let serverToken {
            reactor.modify(fd: server, token: serverToken, events: events(reading: downstream, writing: upstream))
        }
    }

    private func finish() {
        guard !finished else { return }
        finished = true
        connectTimer?.cancel()
        if let clientToken { reactor.unregister(fd: client, token: clientToken) }
        if let serverToken { reactor.unregister(fd: server, token: serverToken) }
        close(client)
        close(server)
        runtime.inProcessEnded(peer: peer.address)
        if connected {
            runtime.log.traffic(
                bytesIn: upstream.bytes, bytesOut: downstream.bytes,
                seconds: Double(monotonicNanoseconds() - started) / 1e9, peer: peer)
        }
    }
}
