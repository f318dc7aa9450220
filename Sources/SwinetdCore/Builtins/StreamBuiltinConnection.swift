import CSwinetd

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// One in-process stream connection of echo, discard, chargen, daytime or time. Non-blocking
/// throughout: a client that never reads stalls only its own connection (echo stops reading
/// while its output is unsent, so memory per connection is bounded by one read).
///
/// Echo starts here and, on its first bytes, moves to an echo pump thread that splices
/// (EchoPumps.swift); so an idle echo client costs one descriptor and no pump. This copying path
/// serves echo when splicing is off or impossible.
final class StreamBuiltinConnection: EventHandler {
    private let builtin: Builtin
    private let fd: Int32
    /// Counted per client for `per_source`.
    private let peerAddress: IPAddress?
    /// Strong: the service may leave the configuration while this connection is open.
    private let runtime: ServiceRuntime
    private var token: ReactorToken?
    /// Bytes read but not yet echoed.
    private var pending: [UInt8] = []
    private var pendingOffset = 0
    /// Where in the chargen cycle the next byte comes from.
    private var chargenOffset = 0
    /// Bytes of a one-shot reply (daytime, time) not yet sent.
    private var reply: [UInt8] = []
    /// Set once our side is done: wait for the client's EOF so our reply is not lost to an RST.
    private var lingering = false
    private var peerClosed = false
    private var lastActivity = monotonicNanoseconds()
    private var idleTimer: ReactorTimer?
    private var interest: UInt32 = 0

    private var reactor: Reactor { runtime.supervisor.reactor }

    private init(_ builtin: Builtin, fd: Int32, peerAddress: IPAddress?, runtime: ServiceRuntime) {
        self.builtin = builtin
        self.fd = fd
        self.peerAddress = peerAddress
        self.runtime = runtime
    }

    static func start(_ builtin: Builtin, fd: Int32, peer: PeerInfo, runtime: ServiceRuntime) {
        let connection = StreamBuiltinConnection(builtin, fd: fd, peerAddress: peer.address, runtime: runtime)
        runtime.inProcessStarted(peer: peer.address)
        connection.begin()
    }

    /// An echo connection an echo pump handed back before any byte moved (already counted).
    static func resumeEchoByCopying(fd: Int32, peerAddress: IPAddress?, runtime: ServiceRuntime) {
        let connection = StreamBuiltinConnection(.echo, fd: fd, peerAddress: peerAddress, runtime: runtime)
        connection.mayHandOver = false
        connection.begin()
    }

    /// Echo: whether the first input may still move this connection to an echo pump.
    private var mayHandOver = true

    /// Gives the connection to an echo pump (it then owns the descriptor and its end); true if so.
    private func handOverToPump() -> Bool {
        mayHandOver = false
        return EchoPumps.adopt(fd: fd, peerAddress: peerAddress, runtime: runtime) { [self] in
            // Detach without closing or uncounting: the pump owns the connection now.
            finished = true
            idleTimer?.cancel()
            if let token { reactor.unregister(fd: fd, token: token) }
            token = nil
        }
    }

    private func begin() {
        switch builtin {
        case .daytime: reply = BuiltinData.daytimeBytes(unixSeconds: wallClockSeconds())
        case .time: reply = BuiltinData.timeBytes(unixSeconds: wallClockSeconds())
        default: break
        }
        if !reply.isEmpty {
            // Usually the whole reply fits the socket buffer at once.
            flushReply()
            if finished { return }
        }
        let events = desiredInterest()
        do {
            token = try reactor.register(fd: fd, events: events, handler: self)
            interest = events
        } catch {
            finish()
            return
        }
        scheduleIdleCheck()
    }

    private func desiredInterest() -> UInt32 {
        if lingering { return Readiness.input }
        switch builtin {
        case .echo:
            if pendingOffset < pending.count { return Readiness.output }
            return Readiness.input
        case .chargen:
            return Readiness.output | (peerClosed ? 0 : Readiness.input)
        case .daytime, .time:
            return reply.isEmpty ? Readiness.input : Readiness.output
        default:
            return Readiness.input
        }
    }

    func handle(events: UInt32) {
        lastActivity = monotonicNanoseconds()
        if events & Readiness.error != 0 {
            finish()
            return
        }
        if builtin == .echo && mayHandOver && events & Readiness.input != 0 && handOverToPump() { return }
        if events & Readiness.input != 0 || events & Readiness.hangup != 0 {
            guard readInput() else { return }
        }
        if events & Readiness.output != 0 {
            guard writeOutput() else { return }
        }
        updateInterest()
    }

    /// Reads what is there; returns false when the connection was finished.
    private func readInput() -> Bool {
        let scratch = runtime.supervisor.scratch
        // Echo reads at most once per wake-up so a fast sender cannot outrun a slow reader.
        let rounds = builtin == .echo ? 1 : 16
        for _ in 0..<rounds {
            let n = Socket.receive(fd, scratch.baseAddress!, scratch.count)
            if n > 0 {
                runtime.metrics.bytesIn &+= UInt64(n)
                if builtin == .echo && !lingering {
                    return echo(UnsafeRawBufferPointer(rebasing: scratch[0..<n]))
                }
                continue
            }
            if n == 0 {
                peerClosed = true
                return peerFinished()
            }
            if errno == EAGAIN || errno == EWOULDBLOCK { return true }
            finish()
            return false
        }
        return true
    }

    /// The client closed its side: finish what we owe it, then close.
    private func peerFinished() -> Bool {
        switch builtin {
        case .echo where pendingOffset < pending.count:
            // Flush the rest, then FIN (half-close on echo).
            return true
        case .chargen:
            // Like the BSD inetds, keep generating until the client stops reading (a half-closed
            // client may still be reading).
            return true
        case .discard, .echo:
            finish()
            return false
        default:
            if lingering || reply.isEmpty {
                finish()
                return false
            }
            return true
        }
    }

    private func echo(_ bytes: UnsafeRawBufferPointer) -> Bool {
        let sent = Socket.send(fd, bytes.baseAddress!, bytes.count)
        if sent > 0 { runtime.metrics.bytesOut &+= UInt64(sent) }
        if sent < 0 {
            if errno != EAGAIN && errno != EWOULDBLOCK {
                finish()
                return false
            }
            pending = Array(bytes)
            pendingOffset = 0
        } else if sent < bytes.count {
            pending = Array(bytes[sent...])
            pendingOffset = 0
        }
        return true
    }

    private func writeOutput() -> Bool {
        switch builtin {
        case .echo:
            while pendingOffset < pending.count {
                let n = pending.withUnsafeBytes {
                    Socket.send(fd, $0.baseAddress! + pendingOffset, pending.count - pendingOffset)
                }
                if n < 0 {
                    if errno == EAGAIN || errno == EWOULDBLOCK { return true }
                    finish()
                    return false
                }
                pendingOffset += n
                runtime.metrics.bytesOut &+= UInt64(n)
            }
            pending = []
            pendingOffset = 0
            if peerClosed {
                finish()
                return false
            }
            return true
        case .chargen:
            for _ in 0..<4 {
                let n = BuiltinData.chargenBuffer.withUnsafeBytes {
                    Socket.send(fd, $0.baseAddress! + chargenOffset, BuiltinData.chargenWindow)
                }
                if n < 0 {
                    if errno == EAGAIN || errno == EWOULDBLOCK { return true }
                    finish()
                    return false
                }
                chargenOffset = (chargenOffset + n) % BuiltinData.chargenCycleLength
                runtime.metrics.bytesOut &+= UInt64(n)
            }
            return true
        case .daytime, .time:
            flushReply()
            return !finished
        default:
            return true
        }
    }

    /// Sends the one-shot reply; once it is out, half-closes and lingers for the client's EOF.
    private func flushReply() {
        while !reply.isEmpty {
            let n = reply.withUnsafeBytes { Socket.send(fd, $0.baseAddress!, $0.count) }
            if n < 0 {
                if errno == EAGAIN || errno == EWOULDBLOCK { return }
                reply = []
                finish()
                return
            }
            reply.removeFirst(n)
            runtime.metrics.bytesOut &+= UInt64(n)
        }
        shutdown(fd, Int32(SHUT_WR))
        lingering = true
    }

    private func updateInterest() {
        guard let token else { return }
        let events = desiredInterest()
        if events != interest {
            reactor.modify(fd: fd, token: token, events: events)
            interest = events
        }
    }

    /// Closes idle connections; a lingering close gets a short grace period only.
    private func scheduleIdleCheck() {
        let limit = lingering ? 5.0 : runtime.supervisor.options.builtinIdleSeconds
        let idleFor = Double(monotonicNanoseconds() - lastActivity) / 1e9
        let wait = max(0.05, limit - idleFor)
        idleTimer = reactor.schedule(after: wait) { [weak self] in
            guard let self, self.token != nil else { return }
            let limit = self.lingering ? 5.0 : self.runtime.supervisor.options.builtinIdleSeconds
            if Double(monotonicNanoseconds() - self.lastActivity) / 1e9 >= limit {
                self.finish()
            } else {
                self.scheduleIdleCheck()
            }
        }
    }

    private var finished = false

    private func finish() {
        guard !finished else { return }
        finished = true
        idleTimer?.cancel()
        if let token { reactor.unregister(fd: fd, token: token) }
        token = nil
        if builtin == .echo { shutdown(fd, Int32(SHUT_WR)) }
        close(fd)
        runtime.inProcessEnded(peer: peerAddress)
    }
}
