import Logging

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// RFC 1078 tcpmux: reads one service name terminated by LF (CR optional), never a byte past it
/// (the bytes after it belong to the target's protocol), with a byte cap and a timeout. Only
/// services configured as tcpmux targets can be named; each runs with its own user and limits.
final class TCPMuxConnection: EventHandler {
    /// Longest accepted request line, CRLF included.
    static let maximumLineLength = 256

    private let fd: Int32
    private let peer: PeerInfo
    /// Strong: the service may leave the configuration while this connection is open.
    private let runtime: ServiceRuntime
    private var token: ReactorToken?
    private var line: [UInt8] = []
    private var timer: ReactorTimer?
    private var finished = false

    private var supervisor: Supervisor { runtime.supervisor }

    private init(fd: Int32, peer: PeerInfo, runtime: ServiceRuntime) {
        self.fd = fd
        self.peer = peer
        self.runtime = runtime
    }

    static func start(fd: Int32, peer: PeerInfo, runtime: ServiceRuntime) {
        let connection = TCPMuxConnection(fd: fd, peer: peer, runtime: runtime)
        runtime.inProcessStarted(peer: peer.address)
        do {
            connection.token = try runtime.supervisor.reactor.register(
                fd: fd, events: Readiness.input, handler: connection)
        } catch {
            connection.end(reply: nil)
            return
        }
        connection.timer = runtime.supervisor.reactor.schedule(after: runtime.supervisor.options.tcpmuxTimeoutSeconds) {
            [weak connection] in
            guard let connection, !connection.finished else { return }
            connection.log("timeout")
            connection.end(reply: "-Timed out waiting for a service name\r\n")
        }
    }

    func handle(events: UInt32) {
        let scratch = supervisor.scratch
        let room = Self.maximumLineLength - line.count
        // Peek first so we consume only up to the end of the line.
        let peeked = Socket.receive(fd, scratch.baseAddress!, room, flags: Int32(MSG_PEEK))
        if peeked < 0 {
            if errno == EAGAIN || errno == EWOULDBLOCK { return }
            end(reply: nil)
            return
        }
        if peeked == 0 {
            end(reply: nil)
            return
        }
        let view = UnsafeRawBufferPointer(rebasing: scratch[0..<peeked])
        let newline = view.firstIndex(of: 10)
        let take = newline.map { $0 + 1 } ?? peeked
        let consumed = Socket.receive(fd, scratch.baseAddress!, take)
        guard consumed == take else {
            end(reply: nil)
            return
        }
        line += UnsafeRawBufferPointer(rebasing: scratch[0..<take])
        if newline != nil {
            line.removeLast()  // LF
            if line.last == 13 { line.removeLast() }
            dispatch()
        } else if line.count >= Self.maximumLineLength {
            log("name too long")
            end(reply: "-Service name too long\r\n")
        }
    }

    private func dispatch() {
        var name = line[...]
        while let first = name.first, first == 32 || first == 9 { name = name.dropFirst() }
        while let last = name.last, last == 32 || last == 9 { name = name.dropLast() }
        guard !name.isEmpty, name.allSatisfy({ $0 > 32 && $0 < 127 }) else {
            log("invalid name \"\(sanitizedForLog(name))\"")
            end(reply: "-Invalid service name\r\n")
            return
        }
        let text = String(decoding: name, as: UTF8.self).lowercased()
        if text == "help" {
            let names = supervisor.tcpmuxTargets.values.compactMap { runtime -> String? in
                if case .target(let name, _) = runtime.service.tcpmux { return name }
                return nil
            }.sorted()
            end(reply: names.map { "\($0)\r\n" }.joined())
            return
        }
        guard let target = supervisor.tcpmuxTargets[text] else {
            log("unknown service \"\(sanitizedForLog(name))\"")
            end(reply: "-Service name not found\r\n")
            return
        }
        if target.isPaused {
            supervisor.logger.info("FAIL: \(target.service.logName) paused \(peer.logText)")
            end(reply: "-Service temporarily unavailable\r\n")
            return
        }
        // Hand the connection over: it leaves the reactor and goes through the target's own
        // admission (ACLs, limits, rate), and runs with the target's credentials.
        detach()
        runtime.inProcessEnded(peer: peer.address)
        target.handleConnection(fd: fd, peer: peer, viaTCPMux: true)
    }

    private func log(_ what: String) {
        supervisor.logger.info("FAIL: \(runtime.service.logName) \(what) \(peer.logText)")
    }

    private func detach() {
        finished = true
        timer?.cancel()
        if let token { supervisor.reactor.unregister(fd: fd, token: token) }
        token = nil
    }

    /// Sends an optional final reply and closes.
    private func end(reply: String?) {
        guard !finished else { return }
        detach()
        if let reply {
            let bytes = Array(reply.utf8)
            _ = bytes.withUnsafeBytes { Socket.send(fd, $0.baseAddress!, $0.count) }
        }
        close(fd)
        runtime.inProcessEnded(peer: peer.address)
    }
}
