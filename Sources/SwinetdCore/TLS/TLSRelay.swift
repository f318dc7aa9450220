import CSwinetd
import NIOCore
import NIOEmbedded
import NIOSSL
import NIOTLS

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// TLS termination for one connection (docs/TLS.md). NIOSSL's server handler runs inside an
/// `EmbeddedChannel` that this relay drives from the reactor: ciphertext read from the client is
/// fed in, plaintext comes out and goes to the program over a socketpair, and the other way round.
/// No NIO event loop runs; every socket stays non-blocking in the one reactor.
///
/// The program is started only once the handshake is complete (so a client that fails it, or
/// stalls it, never costs a process), with one end of the socketpair as fds 0-2. Each direction
/// stops reading while the other side has more than `maximumPending` bytes it has not taken
/// (backpressure). EOF travels both ways: the client's close_notify or FIN becomes a half-close
/// of the socketpair (the program reads EOF); the program's EOF becomes close_notify and a FIN.
final class TLSRelay {
    /// Unsent bytes in one direction above which the other side is no longer read.
    static let maximumPending = 256 * 1024
    /// After swinetd has closed its side, how long a client may take to close its own.
    static let lingerSeconds: Double = 5
    /// Once the program has closed its output, how long the client may go without taking any of
    /// what is still queued for it before the connection is dropped.
    static let drainSeconds: Double = 60

    private let network: Int32
    private var application: Int32 = -1
    private let peer: PeerInfo
    private let user: String?
    private let runtime: ServiceRuntime
    private let channel: EmbeddedChannel
    private let sslHandler: NIOSSLServerHandler
    private let networkTap = NetworkTap()
    private let applicationTap = ApplicationTap()
    private var networkToken: ReactorToken?
    private var applicationToken: ReactorToken?
    /// Plaintext from the client not yet written to the program.
    private var toApplication = CircularBuffer<ByteBuffer>()
    private var toApplicationBytes = 0

    private var handshakeDone = false
    private var handshakeFailed = false
    /// Counted as an in-process connection until the program is started.
    private var countedInProcess = false
    /// The client will send nothing more (close_notify, FIN, or an error).
    private var networkInputDone = false
    /// swinetd sent its FIN to the client.
    private var networkOutputShut = false
    /// The program closed its output (EOF on the socketpair).
    private var applicationInputDone = false
    /// swinetd half-closed the socketpair towards the program.
    private var applicationOutputShut = false
    /// The program's end is closed entirely (it exited): what the client sends is dropped.
    private var applicationGone = false
    private var finished = false
    private var handshakeTimer: ReactorTimer?
    private var lingerTimer: ReactorTimer?
    private var drainTimer: ReactorTimer?
    private var lastNetworkProgress = monotonicNanoseconds()

    private var reactor: Reactor { runtime.supervisor.reactor }

    /// Takes over an admitted connection: the handshake starts, the program follows it.
    static func start(fd: Int32, peer: PeerInfo, user: String?, tls: ServiceTLS, runtime: ServiceRuntime) {
        let supervisor = runtime.supervisor
        guard let context = tls.context?.context else {
            runtime.log.fail("tls (no context)", peer: peer, user: user)
            close(fd)
            return
        }
        // Handshakes in progress are in-process connections: one cap bounds them with the builtins.
        if supervisor.inProcessConnections >= supervisor.options.maxInProcessConnections {
            runtime.log.fail("process_limit", peer: peer, user: user)
            supervisor.noteRefusal()
            close(fd)
            return
        }
        Socket.setBlocking(fd, false)
        TLSRelay(fd: fd, peer: peer, user: user, context: context, runtime: runtime).begin()
    }

    /// Why the pipeline could not be set up (never expected); `begin` then ends the connection.
    private var setupError: (any Error)?

    private init(fd: Int32, peer: PeerInfo, user: String?, context: NIOSSLContext, runtime: ServiceRuntime) {
        self.network = fd
        self.peer = peer
        self.user = user
        self.runtime = runtime
        self.sslHandler = NIOSSLServerHandler(context: context)
        self.channel = EmbeddedChannel()
        channel.allowRemoteHalfClosure = true
        do {
            try channel.pipeline.syncOperations.addHandlers([networkTap, sslHandler, applicationTap])
        } catch {
            setupError = error
        }
    }

    private func begin() {
        runtime.inProcessStarted(peer: peer.address)
        countedInProcess = true
        if let setupError {
            runtime.log.fail("tls (\(setupError))", peer: peer, user: user)
            finish()
            return
        }
        do {
            networkToken = try reactor.register(fd: network, events: Readiness.input, handler: Side(self, isNetwork: true))
        } catch {
            runtime.log.fail("tls (\(error))", peer: peer, user: user)
            finish()
            return
        }
        // Activating the channel starts the server side of the handshake (it waits for ClientHello).
        if let address = try? SocketAddress(ipAddress: "127.0.0.1", port: 1) {
            channel.connect(to: address, promise: nil)
        }
        let seconds = runtime.supervisor.options.tlsHandshakeSeconds
        handshakeTimer = reactor.schedule(after: seconds) { [weak self] in
            guard let self, !self.finished, !self.handshakeDone else { return }
            self.runtime.log.fail("tls handshake (timed out after \(seconds) s)", peer: self.peer, user: self.user)
            self.runtime.supervisor.noteRefusal()
            self.finish()
        }
        step()
    }

    /// Routes readiness of either socket; the reactor holds the sides and they hold the relay.
    private final class Side: EventHandler {
        let relay: TLSRelay
        let isNetwork: Bool
        init(_ relay: TLSRelay, isNetwork: Bool) {
            self.relay = relay
            self.isNetwork = isNetwork
        }
        func handle(events: UInt32) {
            if isNetwork { relay.networkReady(events) } else { relay.applicationReady(events) }
        }
    }

    // MARK: - Events

    private func networkReady(_ events: UInt32) {
        guard !finished else { return }
        if events & Readiness.error != 0 {
            finish()  // reset
            return
        }
        if events & Readiness.output != 0 { flushNetwork() }
        if finished { return }
        if events & (Readiness.input | Readiness.hangup) != 0 {
            if networkInputDone {
                // Both directions are gone (hang-up after our FIN, or a reset): nothing more to do.
                finish()
                return
            }
            readNetwork()
        }
        step()
    }

    private func applicationReady(_ events: UInt32) {
        guard !finished else { return }
        if events & Readiness.output != 0 { flushApplication() }
        if events & (Readiness.input | Readiness.hangup | Readiness.error) != 0 {
            if !applicationInputDone { readApplication() }
            if events & (Readiness.hangup | Readiness.error) != 0 && applicationInputDone {
                // The program's end is closed: nothing more can be written to it.
                applicationGone = true
            }
        }
        step()
    }

    // MARK: - Network side (ciphertext)

    private func readNetwork() {
        let scratch = runtime.supervisor.scratch
        let n = Socket.receive(network, scratch.baseAddress!, scratch.count)
        if n > 0 {
            if networkOutputShut && applicationGone {
                return  // lingering close: what the client still sends is dropped
            }
            var buffer = channel.allocator.buffer(capacity: n)
            buffer.writeBytes(UnsafeRawBufferPointer(rebasing: scratch[0..<n]))
            channel.pipeline.syncOperations.fireChannelRead(NIOAny(buffer))
            channel.pipeline.syncOperations.fireChannelReadComplete()
            absorb()
        } else if n == 0 {
            networkInputDone = true
            // A FIN without close_notify: NIOSSL reports an unclean shutdown (or a failed handshake).
            channel.pipeline.syncOperations.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
            absorb()
        } else if errno != EAGAIN && errno != EWOULDBLOCK {
            finish()
        }
    }

    /// Takes what the TLS handler produced: plaintext for the program, events.
    private func absorb() {
        while let plaintext = applicationTap.plaintext.popFirst() {
            if applicationGone { continue }
            toApplicationBytes += plaintext.readableBytes
            toApplication.append(plaintext)
        }
        // close_notify from the client; or NIOSSL closed the whole connection (a TLS error): no
        // more input either way.
        if applicationTap.inputClosed || networkTap.closeMode == .all { networkInputDone = true }
        if !handshakeDone, applicationTap.handshakeCompleted, networkTap.closeMode == nil {
            handshakeDone = true
            handshakeTimer?.cancel()
            startProgram()
        }
        if !handshakeDone, !handshakeFailed, networkTap.closeMode != nil || networkInputDone {
            // The handshake failed (NIOSSL closed) or the client left in the middle of it.
            handshakeFailed = true
            let reason = applicationTap.error.map(TLSNames.reason) ?? "client closed the connection"
            runtime.log.fail("tls handshake (\(reason))", peer: peer, user: user)
            runtime.supervisor.noteRefusal()
            networkInputDone = true
            if networkTap.closeMode == nil { channel.pipeline.syncOperations.close(mode: .all, promise: nil) }
        }
    }

    private func flushNetwork() {
        while var buffer = networkTap.ciphertext.first {
            let n = buffer.withUnsafeReadableBytes { Socket.send(network, $0.baseAddress!, $0.count) }
            if n < 0 {
                if errno == EAGAIN || errno == EWOULDBLOCK { return }
                finish()  // the client reset or is gone
                return
            }
            lastNetworkProgress = monotonicNanoseconds()
            networkTap.ciphertextBytes -= n
            if n == buffer.readableBytes {
                networkTap.ciphertext.removeFirst()
            } else {
                buffer.moveReaderIndex(forwardBy: n)
                networkTap.ciphertext[networkTap.ciphertext.startIndex] = buffer
            }
        }
    }

    // MARK: - Program side (plaintext)

    /// The handshake is done: start the program on one end of a socketpair, with the TLS facts in
    /// its environment.
    private func startProgram() {
        if countedInProcess {
            countedInProcess = false
            runtime.inProcessEnded(peer: peer.address)
        }
        var pair: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Socket.cloexec, 0, &pair) == 0 else {
            runtime.log.fail("fork (socketpair: \(errnoDescription(errno)))", peer: peer, user: user)
            closeTLS()
            applicationInputDone = true
            applicationGone = true
            return
        }
        application = pair[0]
        Socket.setBlocking(application, false)
        do {
            applicationToken = try reactor.register(
                fd: application, events: Readiness.input, handler: Side(self, isNetwork: false))
        } catch {
            close(pair[1])
            runtime.log.fail("fork (\(error))", peer: peer, user: user)
            close(application)
            application = -1
            closeTLS()
            applicationInputDone = true
            applicationGone = true
            return
        }
        // The spawn path closes pair[1] once the child has it (also when the spawn fails: the
        // program's side then reads as closed and the client gets close_notify).
        runtime.spawnConnection(fd: pair[1], peer: peer, user: user, extraEnvironment: tlsEnvironment())
    }

    /// TLS_VERSION, and the verified client certificate's subject and issuer.
    private func tlsEnvironment() -> [String] {
        var environment: [String] = []
        if let version = sslHandler.tlsVersion { environment.append("TLS_VERSION=\(TLSNames.version(version))") }
        if let certificate = sslHandler.peerCertificate {
            environment.append("TLS_CLIENT_SUBJECT=\(TLSNames.rfc2253(certificate.subjectName))")
            environment.append("TLS_CLIENT_ISSUER=\(TLSNames.rfc2253(certificate.issuerName))")
        }
        return environment
    }

    private func readApplication() {
        let scratch = runtime.supervisor.scratch
        let n = Socket.receive(application, scratch.baseAddress!, scratch.count)
        if n > 0 {
            var buffer = channel.allocator.buffer(capacity: n)
            buffer.writeBytes(UnsafeRawBufferPointer(rebasing: scratch[0..<n]))
            channel.pipeline.syncOperations.write(NIOAny(buffer), promise: nil)
            channel.pipeline.syncOperations.flush()
            absorb()
        } else if n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK) {
            applicationInputDone = true
            closeTLS()
        }
    }

    /// Sends close_notify (NIOSSL then asks to close the output, which the network tap records).
    private func closeTLS() {
        guard networkTap.closeMode == nil else { return }
        channel.pipeline.syncOperations.close(mode: .output, promise: nil)
        absorb()
        if drainTimer == nil { scheduleDrainCheck() }
    }

    private func flushApplication() {
        while var buffer = toApplication.first {
            let n = buffer.withUnsafeReadableBytes { Socket.send(application, $0.baseAddress!, $0.count) }
            if n < 0 {
                if errno == EAGAIN || errno == EWOULDBLOCK { return }
                // The program closed its end: what is queued for it can never be delivered.
                toApplication.removeAll()
                toApplicationBytes = 0
                applicationGone = true
                return
            }
            toApplicationBytes -= n
            if n == buffer.readableBytes {
                toApplication.removeFirst()
            } else {
                buffer.moveReaderIndex(forwardBy: n)
                toApplication[toApplication.startIndex] = buffer
            }
        }
    }

    // MARK: - Progress

    /// Moves what can move, passes EOFs on, decides whether the connection is over, and updates
    /// what the reactor watches.
    private func step() {
        guard !finished else { return }
        if application >= 0 && !applicationGone { flushApplication() }
        if networkInputDone && toApplication.isEmpty && application >= 0 && !applicationOutputShut && !applicationGone {
            shutdown(application, Int32(SHUT_WR))  // the program reads EOF
            applicationOutputShut = true
        }
        if applicationInputDone && applicationGone && application >= 0 {
            if let applicationToken { reactor.unregister(fd: application, token: applicationToken) }
            applicationToken = nil
            close(application)
            application = -1
        }
        flushNetwork()
        if finished { return }
        if networkTap.closeMode != nil && networkTap.ciphertext.isEmpty && !networkOutputShut {
            shutdown(network, Int32(SHUT_WR))
            networkOutputShut = true
        }
        if networkOutputShut {
            let applicationDone = toApplication.isEmpty || applicationGone || application < 0
            if (networkInputDone && applicationDone) || !handshakeDone {
                finish()
                return
            }
            if applicationGone && lingerTimer == nil {
                // Wait a moment for the client's own close, so our last bytes are not lost to a reset.
                lingerTimer = reactor.schedule(after: Self.lingerSeconds) { [weak self] in self?.finish() }
            }
        }
        updateInterest()
    }

    private func updateInterest() {
        let pendingOut = networkTap.ciphertextBytes
        if let networkToken {
            var mask: UInt32 = 0
            let lingering = networkOutputShut && applicationGone
            if !networkInputDone
                && (lingering || (toApplicationBytes < Self.maximumPending && pendingOut < Self.maximumPending))
            {
                mask |= Readiness.input
            }
            if !networkTap.ciphertext.isEmpty { mask |= Readiness.output }
            reactor.modify(fd: network, token: networkToken, events: mask)
        }
        if let applicationToken {
            var mask: UInt32 = 0
            if !applicationInputDone && pendingOut < Self.maximumPending { mask |= Readiness.input }
            if !toApplication.isEmpty && !applicationGone { mask |= Readiness.output }
            reactor.modify(fd: application, token: applicationToken, events: mask)
        }
    }

    /// After the program's EOF: drop a client that takes nothing of what is queued for
    /// `drainSeconds`.
    private func scheduleDrainCheck() {
        drainTimer = reactor.schedule(after: Self.drainSeconds / 4) { [weak self] in
            guard let self, !self.finished else { return }
            let now = monotonicNanoseconds()
            if self.networkTap.ciphertext.isEmpty {
                self.lastNetworkProgress = now  // nothing queued: nothing to wait for
                self.scheduleDrainCheck()
            } else if now - self.lastNetworkProgress > Int64(Self.drainSeconds * 1e9) {
                self.finish()
            } else {
                self.scheduleDrainCheck()
            }
        }
    }

    private func finish() {
        guard !finished else { return }
        finished = true
        handshakeTimer?.cancel()
        lingerTimer?.cancel()
        drainTimer?.cancel()
        if let networkToken { reactor.unregister(fd: network, token: networkToken) }
        networkToken = nil
        close(network)
        if application >= 0 {
            if let applicationToken { reactor.unregister(fd: application, token: applicationToken) }
            applicationToken = nil
            close(application)
            application = -1
        }
        if countedInProcess {
            countedInProcess = false
            runtime.inProcessEnded(peer: peer.address)
        }
        // Close the channel below NIOSSL (which would otherwise wait for the client's
        // close_notify), then let it drop its handlers and NIOSSL's state.
        networkTap.passClose = true
        networkTap.closeChannel()
        _ = try? channel.finish(acceptAlreadyClosed: true)
        networkTap.ciphertext.removeAll()
        toApplication.removeAll()
    }
}

/// Nearest the network: takes the ciphertext NIOSSL writes, and its requests to close.
private final class NetworkTap: ChannelOutboundHandler {
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    var ciphertext = CircularBuffer<ByteBuffer>()
    var ciphertextBytes = 0
    /// What NIOSSL asked for once it is done with a direction (after close_notify, or an error).
    var closeMode: CloseMode?
    /// Set when the relay ends, so the channel itself can close.
    var passClose = false
    private var context: ChannelHandlerContext?

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }
    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    /// Closes the channel from below the TLS handler.
    func closeChannel() { context?.close(mode: .all, promise: nil) }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let buffer = unwrapOutboundIn(data)
        if buffer.readableBytes > 0 {
            ciphertextBytes += buffer.readableBytes
            ciphertext.append(buffer)
        }
        promise?.succeed(())
    }

    func flush(context: ChannelHandlerContext) {}

    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        if passClose {
            context.close(mode: mode, promise: promise)
            return
        }
        if closeMode != .all { closeMode = mode }
        promise?.succeed(())
    }
}

/// Nearest the program: takes plaintext, the handshake's completion, EOF and errors.
private final class ApplicationTap: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    var plaintext = CircularBuffer<ByteBuffer>()
    var handshakeCompleted = false
    var inputClosed = false
    var error: (any Error)?

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        if buffer.readableBytes > 0 { plaintext.append(buffer) }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? TLSUserEvent, case .handshakeCompleted = event { handshakeCompleted = true }
        if let event = event as? ChannelEvent, event == .inputClosed { inputClosed = true }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if self.error == nil { self.error = error }
    }
}
