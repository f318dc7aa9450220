import CSwinetd
import Logging

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// What swinetd learned about a client before deciding: its forward-confirmed host name and its
/// RFC 1413 user, when the service's policy or logging needs them.
struct ClientFacts {
    var hostName: String?
    var nameMismatch = false
    var user: String?
}

/// The admission pipeline of a connection: cheap checks first (bans, rates, load, time, limits,
/// numeric ACLs), then the lookups some policies need, then the checks that use them. A denial
/// never starts a process: the client gets banner_fail (if any) and the connection closes.
extension ServiceRuntime {
    /// A new connection on a nowait or builtin service, or one handed over by tcpmux
    /// (`viaTCPMux`: refusals then answer `-...` as RFC 1078 wants).
    /// On a `proxy_protocol` service the PROXY header is read first (ProxyHeaderReader), which
    /// calls back with `proxyHeaderRead` and the client the header names.
    func handleConnection(fd: Int32, peer: PeerInfo, viaTCPMux: Bool = false, proxyHeaderRead: Bool = false) {
        if let proxy = service.proxyProtocol, !viaTCPMux, !proxyHeaderRead {
            ProxyHeaderReader.start(fd: fd, peer: peer, policy: proxy, runtime: self)
            return
        }
        applySocketOptions(fd)
        countAccepted()
        if let reason = quickRefusal(for: peer) {
            refuse(fd: fd, peer: peer, reason: reason, facts: ClientFacts(), viaTCPMux: viaTCPMux)
            return
        }
        let needsName = service.access.needsHostName || supervisor.hostsRulesNeedName(daemon: service.access.libwrapName)
        let needsUser = wantsIdent
        guard let address = peer.address, needsName || needsUser else {
            admit(fd: fd, peer: peer, facts: ClientFacts(), viaTCPMux: viaTCPMux)
            return
        }
        // Held open while the lookups run; counted like an in-process connection so a flood of
        // slow lookups is bounded by the same cap.
        inProcessStarted(peer: nil)
        supervisor.lookUp(address: address, peer: peer, name: needsName, user: needsUser) { [self] facts in
            inProcessEnded(peer: nil)
            admit(fd: fd, peer: peer, facts: facts, viaTCPMux: viaTCPMux)
        }
    }

    private var wantsIdent: Bool {
        service.flags.identOnly || service.logging.onSuccess.contains(.userid)
            || service.logging.onFailure.contains(.userid) || supervisor.hostsRulesNeedUser(daemon: service.access.libwrapName)
    }

    private func applySocketOptions(_ fd: Int32) {
        if service.setup.tcpNoDelay { _ = Socket.setOption(fd, Int32(IPPROTO_TCP), TCP_NODELAY, 1) }
        if service.setup.keepAlive { _ = Socket.setOption(fd, SOL_SOCKET, SO_KEEPALIVE, 1) }
    }

    /// Checks that need nothing but the address, in xinetd's order.
    private func quickRefusal(for peer: PeerInfo) -> String? {
        if let address = peer.address, supervisor.isBanned(address) { return "address (sensor)" }
        if let reason = connectionRateRefusal() { return reason }
        if let maxLoad = service.limits.maxLoad {
            let load = sw_loadavg1()
            if load >= 0, load > maxLoad { return "load" }
        }
        if !AddressAccess.withinAccessTimes(service.access.accessTimes) { return "time" }
        if let reason = limitRefusal(for: peer) { return reason }
        if let address = peer.address, !service.access.needsHostName,
            let reason = AddressAccess.denial(service.access, address: address, hostName: nil)
        {
            return reason
        }
        return nil
    }

    /// The policy a datagram's sender meets before a UDP builtin answers it or a wait service is
    /// started for it (xinetd peeks at the sender the same way). No lookups: a datagram cannot
    /// wait for DNS, so host-name patterns and tcpd name rules cannot match and so deny.
    func datagramRefusal(from address: IPAddress, port: UInt16) -> String? {
        if supervisor.isBanned(address) { return "address (sensor)" }
        if !AddressAccess.withinAccessTimes(service.access.accessTimes) { return "time" }
        if let reason = AddressAccess.denial(service.access, address: address, hostName: nil) { return reason }
        var peer = PeerInfo()
        peer.address = address
        peer.port = port
        return supervisor.hostsRulesRefusal(
            daemon: service.access.libwrapName, serviceName: service.logName, peer: peer, facts: ClientFacts())
    }

    /// True when `datagramRefusal` refuses no sender (no bans, access times, address rules or tcpd
    /// rules): the UDP builtins then skip it, and building each sender's IPAddress.
    var datagramPolicyIsEmpty: Bool {
        supervisor.policyState.bans.isEmpty && service.access.accessTimes.isEmpty && service.access.onlyFrom == nil
            && service.access.noAccess.isEmpty
            && (service.access.libwrapName == nil || supervisor.policyState.hostsRules == nil)
    }

    /// xinetd `cps`: more than `rate` connections within one second pause the service.
    private func connectionRateRefusal() -> String? {
        guard let cps = service.limits.connectionRate else { return nil }
        let now = monotonicNanoseconds()
        if now - cpsWindowStart >= 1_000_000_000 {
            cpsWindowStart = now
            cpsCount = 0
        }
        cpsCount += 1
        guard cpsCount > cps.rate else { return nil }
        supervisor.logger.warning(
            "Deactivating service \(service.logName) due to excessive incoming connections. Restarting in \(cps.pauseSeconds) seconds."
        )
        pause(seconds: Double(cps.pauseSeconds))
        return "connections per second"
    }

    /// The checks that may use the looked-up name and user, then serving.
    private func admit(fd: Int32, peer: PeerInfo, facts: ClientFacts, viaTCPMux: Bool) {
        if let address = peer.address {
            if let reason = AddressAccess.denial(service.access, address: address, hostName: facts.hostName) {
                refuse(fd: fd, peer: peer, reason: reason, facts: facts, viaTCPMux: viaTCPMux)
                return
            }
            if service.flags.identOnly && facts.user == nil {
                refuse(fd: fd, peer: peer, reason: "userid", facts: facts, viaTCPMux: viaTCPMux)
                return
            }
            if let reason = supervisor.hostsRulesRefusal(
                daemon: service.access.libwrapName, serviceName: service.logName, peer: peer, facts: facts) {
                refuse(fd: fd, peer: peer, reason: reason, facts: facts, viaTCPMux: viaTCPMux)
                return
            }
            if service.flags.sensor {
                supervisor.ban(address, seconds: service.flags.denyTimeSeconds, by: service)
                refuse(fd: fd, peer: peer, reason: "sensor", facts: facts, viaTCPMux: viaTCPMux)
                return
            }
        }
        sendFile(service.setup.banner, to: fd)
        sendFile(service.setup.bannerSuccess, to: fd)
        serve(fd: fd, peer: peer, facts: facts, viaTCPMux: viaTCPMux)
    }

    private func serve(fd: Int32, peer: PeerInfo, facts: ClientFacts, viaTCPMux: Bool) {
        let answersPlus: Bool
        if viaTCPMux, case .target(_, true) = service.tcpmux { answersPlus = true } else { answersPlus = false }
        if answersPlus && (service.redirect != nil || service.builtin != nil) { sendText("+Go\r\n", to: fd) }
        if let target = service.redirect {
            RedirectRelay.start(fd: fd, peer: peer, target: target, runtime: self)
            return
        }
        if let builtin = service.builtin {
            if builtin == .tcpmux {
                TCPMuxConnection.start(fd: fd, peer: peer, runtime: self)
            } else {
                StreamBuiltinConnection.start(builtin, fd: fd, peer: peer, runtime: self)
            }
            return
        }
        guard allowSpawn() else {
            if viaTCPMux { sendText("-Service temporarily unavailable\r\n", to: fd) }
            close(fd)
            return
        }
        if viaTCPMux {
            Socket.setBlocking(fd, true)
            if answersPlus { sendText("+Go\r\n", to: fd) }
        }
        if let tls = service.tls {
            // The program starts once the TLS handshake is done, on a socketpair (docs/TLS.md).
            TLSRelay.start(fd: fd, peer: peer, user: facts.user, tls: tls, runtime: self)
            return
        }
        spawnConnection(fd: fd, peer: peer, user: facts.user)
    }

    private func refuse(fd: Int32, peer: PeerInfo, reason: String, facts: ClientFacts, viaTCPMux: Bool) {
        log.fail(reason, peer: peer, user: facts.user)
        supervisor.noteRefusal()
        countRefused(reason, peer: peer)
        sendFile(service.setup.banner, to: fd)
        sendFile(service.setup.bannerFail, to: fd)
        if viaTCPMux { sendText("-Service not available\r\n", to: fd) }
        close(fd)
    }

    /// Sends a banner file, at most 64 KiB, without blocking the reactor (what does not fit the
    /// socket buffer at once is dropped: banners are short by nature).
    private func sendFile(_ path: String?, to fd: Int32) {
        guard let path else { return }
        // Non-blocking: a FIFO planted as a banner must not freeze the reactor; only regular files.
        let file = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK)
        guard file >= 0 else {
            supervisor.logger.warning("\(service.location): banner \(path): \(errnoDescription(errno))")
            return
        }
        defer { close(file) }
        var info = stat()
        guard fstat(file, &info) == 0, info.st_mode & S_IFMT == S_IFREG else {
            supervisor.logger.warning("\(service.location): banner \(path): not a regular file")
            return
        }
        let scratch = supervisor.scratch
        let n = read(file, scratch.baseAddress, scratch.count)
        if n > 0 { _ = Glibc.send(fd, scratch.baseAddress, n, Int32(MSG_NOSIGNAL | MSG_DONTWAIT)) }
    }

    func sendText(_ text: String, to fd: Int32) {
        let bytes = Array(text.utf8)
        _ = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL | MSG_DONTWAIT)) }
    }
}
