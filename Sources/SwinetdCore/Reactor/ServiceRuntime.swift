import CSwinetd
import Logging

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Who is on the other end of a connection, as far as the kernel says.
struct PeerInfo {
    var address: IPAddress?
    var port: UInt16 = 0
    var local: (IPAddress, UInt16)?
    /// SO_PEERCRED of a Unix-socket peer.
    var unixCredentials: (pid: pid_t, uid: uid_t, gid: gid_t)?
    /// The load balancer that sent a PROXY protocol header naming `address` (docs/PROXY.md).
    var proxiedBy: IPAddress?

    var logText: String {
        if let address { return "from=\(address) port=\(port)" + (proxiedBy.map { " via=\($0)" } ?? "") }
        if let creds = unixCredentials { return "from=unix pid=\(creds.pid) uid=\(creds.uid)" }
        return ""  // a wait service's child: the peer is whoever it accepts or reads from
    }
}

/// The live state of one configured service: its sockets, children, rate window and pause.
/// Survives a reload when the service's identity is unchanged, so counts stay exact.
final class ServiceRuntime {
    unowned let supervisor: Supervisor
    /// Not optional on purpose: reading a field of an optional struct copied the whole `Service`
    /// (and retained each of its fields) about 30 times per connection (Benchmarks/callgrind.sh).
    private(set) var service: Service
    private var plan: SpawnPlan?
    /// Where this service's START/EXIT/FAIL lines go.
    private(set) var log: ServiceLog!
    var listeners: [Listener] = []
    private(set) var liveChildren = 0
    private var perIPChildren: [IPAddress: Int] = [:]
    private var perIPWindowStart: Int64 = 0
    private var perIPWindowCounts: [IPAddress: Int] = [:]
    private var spawnWindowStart: Int64 = 0
    private var spawnCount = 0
    /// xinetd `cps` window.
    var cpsWindowStart: Int64 = 0
    var cpsCount = 0
    private var resumeTimer: ReactorTimer?
    /// The child that owns the socket of a `wait` service.
    private var waitChild: pid_t?
    private var retired = false
    /// Seconds of the current back-off after a wait service's program failed to start.
    private var waitFailureBackoff: Double = 0
    /// Listeners stay unwatched until then (monotonic ns); 0: no back-off.
    private var notBeforeNanoseconds: Int64 = 0
    private var lastAcceptErrorLog: Int64 = 0
    /// Set while the connection being handled arrived with the daemon otherwise idle.
    private var acceptedWhileIdle = false
    private var acceptBackoff: ReactorTimer?
    /// In-process connections of this service (builtins).
    var inProcessConnections = 0
    lazy var datagramState = DatagramBuiltinState(rate: supervisor.options.udpBuiltinRate)
    /// Counters for /metrics, status and the console (Admin/MetricsRegistry.swift).
    let metrics = ServiceMetrics()

    /// Call `configure` before anything else: it makes the log and the spawn plan.
    init(supervisor: Supervisor, service: Service) {
        self.supervisor = supervisor
        self.service = service
    }

    private var logger: Logger { supervisor.logger }
    private var reactor: Reactor { supervisor.reactor }

    /// What makes two configurations of a service "the same service" across a reload.
    static func identity(of service: Service) -> String {
        let keys = service.listeners.map { "\($0.key)" }.sorted().joined(separator: ",")
        return "\(service.name)|\(service.socketType)|\(keys)"
    }

    /// The identity of the configuration this runtime currently serves.
    var identity: String { Self.identity(of: service) }

    var isPaused: Bool { resumeTimer != nil }

    var stateDescription: String {
        if isPaused { return "paused" }
        if waitChild != nil { return "busy(wait child \(waitChild!))" }
        return "active"
    }

    func configure(_ service: Service, baseEnvironment: [String]) {
        self.service = service
        retired = false
        log = supervisor.serviceLog(for: service)
        if case .external(let path, let arguments) = service.program {
            plan = SpawnPlan(
                path: path, arguments: arguments, credentials: service.credentials, setup: service.setup,
                baseEnvironment: baseEnvironment, daemonEnvironment: supervisor.daemonEnvironment,
                signalsToReset: supervisor.signalsToReset, sandbox: service.sandbox, serviceID: service.id,
                cgroupRoot: supervisor.options.loadOptions.cgroupRoot,
                sessionNice: Autogroup.sessionNice(
                    serviceNice: service.setup.nice, daemonNice: supervisor.daemonNice,
                    enabled: supervisor.autogroupsEnabled))
            if let problem = plan?.sandbox?.setupProblem {
                logger.error("\(service.location): \(service.logName): sandbox: \(problem); connections are refused")
            }
        } else {
            plan = nil
        }
    }

    /// Binds what is not bound and arms what may accept now.
    func activate() {
        guard !isPaused else { return }
        for listener in listeners {
            if !listener.isOpen { bind(listener) }
            guard listener.isOpen else { continue }
            // We accept from nowait listeners ourselves and must never block there; a wait child
            // shares the socket's file description and expects the ordinary blocking socket.
            Socket.setBlocking(listener.fd, !acceptsItself)
            updateArming(listener)
        }
    }

    private var acceptsItself: Bool {
        service.builtin != nil || !service.wait
    }

    private func bind(_ listener: Listener) {
        let inherited = supervisor.inheritedSockets
        if let fd = inherited.take(
            for: listener.spec, serviceID: service.id,
            configuredIDs: { [supervisor] in Set(supervisor.runtimes.map { $0.service.id }) })
        {
            listener.adopt(fd, from: inherited)
            listener.bindRetry = nil
            logger.info("\(service.name): adopted inherited socket fd \(fd) for \(listener.spec)")
            return
        }
        do {
            try listener.open()
            listener.bindRetry = nil
        } catch {
            logger.error("\(service.location): \(service.name): \(error); retrying every \(Int(supervisor.options.bindRetrySeconds)) s")
            listener.bindRetry = reactor.schedule(after: supervisor.options.bindRetrySeconds) { [weak self, weak listener] in
                guard let self, let listener, !self.retired, listener.owner === self else { return }
                listener.bindRetry = nil
                self.activate()
                if listener.isOpen { self.logger.info("listening on \(self.service.protocolName) \(listener.spec.address) for \(self.service.name) (bind retried)") }
            }
        }
    }

    /// Arms a listener unless a wait child owns it or the child cap is reached (FreeBSD max-child:
    /// excess connections wait in the backlog).
    private func updateArming(_ listener: Listener) {
        let atCap = service.limits.maxChildren.map { liveChildren + inProcessConnections >= $0 } ?? false
        let backingOff = notBeforeNanoseconds > monotonicNanoseconds()
        if retired || isPaused || waitChild != nil || backingOff || (atCap && service.builtin == nil) {
            listener.disarm(reactor)
        } else {
            listener.arm(reactor)
        }
    }

    private func updateArmingAll() {
        for listener in listeners { updateArming(listener) }
    }

    /// The service is gone from the configuration; running children finish on their own.
    func retire() {
        retired = true
        resumeTimer?.cancel()
        resumeTimer = nil
        for listener in listeners where listener.owner === self { listener.disarm(reactor) }
    }

    // MARK: - Readiness

    func listenerReady(_ listener: Listener, events: UInt32) {
        if let builtin = service.builtin {
            if service.socketType == .dgram {
                DatagramBuiltin.serve(builtin, fd: listener.fd, runtime: self)
            } else {
                acceptConnections(listener)
            }
            return
        }
        if service.wait {
            startWaitChild(listener)
        } else {
            acceptConnections(listener)
        }
    }

    /// Accepts until the backlog is empty (bounded per wake-up so other sockets get their turn).
    private func acceptConnections(_ listener: Listener) {
        let flags = Socket.cloexec | (service.builtin != nil ? Socket.nonblock : 0)
        for _ in 0..<64 {
            var storage = sockaddr_storage()
            var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
            let fd = sw_accept4(listener.fd, &storage, &length, flags)
            if fd < 0 {
                switch errno {
                case EAGAIN, EWOULDBLOCK:
                    return
                case EINTR, ECONNABORTED, EPROTO, EPERM, ENETDOWN, ENOPROTOOPT, EHOSTDOWN, ENONET, EHOSTUNREACH,
                    EOPNOTSUPP, ENETUNREACH:
                    continue
                case EMFILE, ENFILE, ENOBUFS, ENOMEM:
                    // accept4 takes a descriptor before it looks at the queue: with one free
                    // descriptor, the call after a successful accept fails EMFILE though nothing
                    // waits. Only a connection still queued means real exhaustion.
                    let code = errno
                    if code == EMFILE || code == ENFILE, !Socket.isReadable(listener.fd) { return }
                    acceptResourceExhausted(listener, errno: code)
                    return
                default:
                    logger.error("\(service.name): accept: \(errnoDescription(errno))")
                    return
                }
            }
            var peer = PeerInfo()
            withUnsafePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa in
                    peer.address = SocketAddressFormatting.ipAddress(from: sa)
                    peer.port = SocketAddressFormatting.port(from: sa)
                }
            }
            if peer.address == nil {
                var pid: pid_t = 0
                var uid: uid_t = 0
                var gid: gid_t = 0
                if sw_peer_credentials(fd, &pid, &uid, &gid) == 0 { peer.unixCredentials = (pid, uid, gid) }
            } else {
                peer.local = listener.fixedLocalAddress ?? Socket.localAddress(fd)
            }
            // Nothing else to do (no spawn in flight, no other event, no other connection queued):
            // its child may start on this thread (spawnConnection).
            acceptedWhileIdle =
                plan != nil && supervisor.spawnWorkers?.inFlight == 0 && reactor.eventsLeftInBatch == 0
                && !Socket.isReadable(listener.fd)
            handleConnection(fd: fd, peer: peer)
            acceptedWhileIdle = false
            if waitChild != nil || !listener.isArmed { return }
        }
    }

    /// Out of descriptors or memory: log once per burst and stop accepting for a second instead
    /// of spinning on a listener that stays readable.
    private func acceptResourceExhausted(_ listener: Listener, errno code: Int32) {
        let now = monotonicNanoseconds()
        if now - lastAcceptErrorLog > 10_000_000_000 {
            lastAcceptErrorLog = now
            logger.error("\(service.name): accept: \(errnoDescription(code)); pausing accepts for 1 s")
        }
        listener.disarm(reactor)
        acceptBackoff?.cancel()
        acceptBackoff = reactor.schedule(after: 1) { [weak self, weak listener] in
            guard let self, let listener else { return }
            self.acceptBackoff = nil
            if listener.owner === self { self.updateArming(listener) }
        }
    }

    /// Which concurrency or per-IP limit refuses a connection now, or nil.
    func limitRefusal(for peer: PeerInfo) -> String? {
        let limits = service.limits
        if service.builtin != nil {
            if supervisor.inProcessConnections >= supervisor.options.maxInProcessConnections { return "process_limit" }
            if let cap = limits.maxChildren, inProcessConnections >= cap { return "service_limit" }
        } else {
            if !supervisor.hasRoomForChild { return "process_limit" }
            if let cap = limits.maxChildren, liveChildren >= cap { return "service_limit" }
        }
        if let address = peer.address {
            if let cap = limits.maxChildrenPerIP, perIPChildren[address, default: 0] >= cap {
                return "per_source_limit"
            }
            if let cap = limits.maxConnectionsPerIPPerMinute {
                let now = monotonicNanoseconds()
                if now - perIPWindowStart >= 60_000_000_000 {
                    perIPWindowStart = now
                    perIPWindowCounts.removeAll(keepingCapacity: true)
                }
                let count = perIPWindowCounts[address, default: 0] + 1
                perIPWindowCounts[address] = count
                if count > cap { return "per_source_rate" }
            }
        }
        return nil
    }

    /// Counts a spawn against the per-minute rate; trips the service when it is exceeded.
    func allowSpawn() -> Bool {
        let configured = service.limits.maxSpawnsPerMinute ?? supervisor.options.defaultRate ?? (service.wait ? 256 : 0)
        guard configured > 0 else { return true }
        let now = monotonicNanoseconds()
        if now - spawnWindowStart >= 60_000_000_000 {
            spawnWindowStart = now
            spawnCount = 0
        }
        spawnCount += 1
        if spawnCount <= configured { return true }
        logger.error(
            "\(service.location): \(service.name)/\(service.protocolName) server failing (looping or over its rate: more than \(configured) spawns in 60 s); service paused for \(Int(supervisor.options.retrySeconds)) s"
        )
        pause()
        return false
    }

    /// Closes the service's sockets until the retry time has passed (OpenBSD inetd's behaviour:
    /// clients get a fast refusal instead of a silent backlog).
    func pause(seconds: Double? = nil) {
        for listener in listeners { listener.closeSocket(reactor: reactor) }
        resumeTimer?.cancel()
        resumeTimer = reactor.schedule(after: seconds ?? supervisor.options.retrySeconds) { [weak self] in
            guard let self else { return }
            self.resumeTimer = nil
            self.spawnCount = 0
            self.spawnWindowStart = monotonicNanoseconds()
            guard !self.retired else { return }
            self.logger.info("\(self.service.name): resuming after pause")
            self.activate()
        }
    }

    /// When a pause ends (monotonic ns), for status; nil when not paused.
    var resumeDeadline: Int64? { resumeTimer?.deadlineNanoseconds }

    /// Ends a pause now (an administrator's `resume`), as if its time had run out.
    func resume() {
        guard let timer = resumeTimer else { return }
        timer.cancel()
        resumeTimer = nil
        spawnCount = 0
        spawnWindowStart = monotonicNanoseconds()
        guard !retired else { return }
        activate()
    }

    // MARK: - Spawning

    /// Starts the program for one connection and closes swinetd's copy of `fd`. With spawn
    /// threads (`--spawn-threads`) the vfork happens on a worker, so the reactor never waits for a
    /// child to exec; the child counts against every limit from this moment, so limits stay exact.
    /// A connection accepted while the daemon was otherwise idle, for a program whose start needs
    /// only the quick steps, starts on the reactor thread instead: at light load that saves the
    /// two thread wake-ups of the hand-over and back (docs/DESIGN.md, "Spawn threads").
    /// `extraEnvironment` is added after the connection's own variables (TLS facts, docs/TLS.md).
    func spawnConnection(fd: Int32, peer: PeerInfo, user: String?, extraEnvironment: [String] = []) {
        guard let plan else {
            close(fd)
            return
        }
        var environment = connectionEnvironment(peer)
        environment.add(contentsOf: extraEnvironment)
        reserveChild(peer: peer.address)
        if let workers = supervisor.spawnWorkers, !(acceptedWhileIdle && plan.startsQuickly) {
            workers.submit(SpawnJob(plan: plan, fd: fd, environment: environment)) { [self] result in
                finishSpawn(result, peer: peer, user: user, isWaitChild: false)
            }
        } else {
            metrics.spawnedOnReactor += 1
            let result = plan.spawn(fd: fd, environment: environment)
            close(fd)
            finishSpawn(result, peer: peer, user: user, isWaitChild: false)
        }
    }

    /// Starts the child of a wait service with the shared socket (inline: its pid is needed now).
    private func spawnWaitChild(fd: Int32, peer: PeerInfo) -> pid_t? {
        guard let plan else { return nil }
        reserveChild(peer: nil)
        let result =
            service.listenFDs
            ? ListenFDs.spawn(
                plan, sockets: listeners.filter(\.isOpen).map(\.fd), id: service.id,
                environment: connectionEnvironment(peer))
            : plan.spawn(fd: fd, environment: connectionEnvironment(peer))
        return finishSpawn(result, peer: peer, user: nil, isWaitChild: true)
    }

    /// Peeks at the sender of the next datagram of a wait service; a refused one is consumed and
    /// logged, and no child starts for it. Returns the reason, or nil to go on.
    private func refuseDatagramSender(_ listener: Listener) -> String? {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        var byte: UInt8 = 0
        let n = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                recvfrom(listener.fd, &byte, 1, Int32(MSG_PEEK | MSG_DONTWAIT), $0, &length)
            }
        }
        guard n >= 0 else { return nil }
        let (address, port) = withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                (SocketAddressFormatting.ipAddress(from: $0), SocketAddressFormatting.port(from: $0))
            }
        }
        guard let address, let reason = datagramRefusal(from: address, port: port) else { return nil }
        _ = recv(listener.fd, &byte, 1, Int32(MSG_DONTWAIT))  // drop it
        var peer = PeerInfo()
        peer.address = address
        peer.port = port
        log.fail(reason, peer: peer, user: nil)
        supervisor.noteRefusal()
        countRefused(reason, peer: peer)
        return reason
    }

    /// Counts a child before it exists.
    private func reserveChild(peer: IPAddress?) {
        liveChildren += 1
        if let peer { perIPChildren[peer, default: 0] += 1 }
        supervisor.reserveChildSlot()
        if let cap = service.limits.maxChildren, liveChildren >= cap { updateArmingAll() }
    }

    /// Books the outcome of a spawn: a child to track (also one that died before exec: it is
    /// reaped like any other), or a reservation to give back.
    @discardableResult
    private func finishSpawn(
        _ result: Result<SpawnedChild, SpawnPlan.Failure>, peer: PeerInfo, user: String?, isWaitChild: Bool
    ) -> pid_t? {
        let record = ChildRecord(runtime: self, startedAt: monotonicNanoseconds(), peer: peer.address, isWaitChild: isWaitChild)
        switch result {
        case .success(let child):
            log.start(pid: child.pid, peer: peer, user: user)
            countSpawn(succeeded: true)
            supervisor.registerChild(child, record: record)
            return child.pid
        case .failure(let failure):
            log.fail("\(failure.step == "execve" ? "exec" : "fork") (\(failure))", peer: peer, user: user)
            countSpawn(succeeded: false)
            supervisor.logger.error("\(service.location): \(service.logName): cannot start the program: \(failure)")
            if let child = failure.child {
                supervisor.registerChild(child, record: ChildRecord(runtime: self, startedAt: record.startedAt, peer: peer.address, isWaitChild: false))
            } else {
                supervisor.releaseChildSlot()
                childExited(record)
            }
            return nil
        }
    }

    func childExited(_ record: ChildRecord) {
        liveChildren -= 1
        if let peer = record.peer { releasePerIP(peer) }
        if record.isWaitChild { waitChild = nil }
        if !retired { updateArmingAll() }
    }

    /// A wait service's socket became readable: hand it to one child and stop watching it.
    private func startWaitChild(_ listener: Listener) {
        guard waitChild == nil else {
            listener.disarm(reactor)
            return
        }
        guard limitRefusal(for: PeerInfo()) == nil, allowSpawn() else {
            if !isPaused {
                // Nothing can serve it now; stop watching for a moment instead of spinning.
                listener.disarm(reactor)
                reactor.schedule(after: 1) { [weak self, weak listener] in
                    guard let self, let listener, listener.owner === self else { return }
                    self.updateArming(listener)
                }
            }
            return
        }
        if service.socketType == .dgram, refuseDatagramSender(listener) != nil { return }
        var peer = PeerInfo()
        peer.local = Socket.localAddress(listener.fd)
        for other in listeners { other.disarm(reactor) }
        if let pid = spawnWaitChild(fd: listener.fd, peer: peer) {
            waitChild = pid
            waitFailureBackoff = 0
        } else {
            // The program could not be started and the socket is still readable: retrying at once
            // would storm. Back off, 1 s doubling to 60 s, until a start succeeds.
            waitFailureBackoff = min(max(waitFailureBackoff * 2, 1), 60)
            notBeforeNanoseconds = monotonicNanoseconds() + Int64(waitFailureBackoff * 1e9)
            reactor.schedule(after: waitFailureBackoff) { [weak self] in
                guard let self, !self.retired else { return }
                self.updateArmingAll()
            }
        }
    }

    /// The per-connection environment: UCSPI (tcp-environ(5)) variables and xinetd's REMOTE_HOST.
    private func connectionEnvironment(_ peer: PeerInfo) -> ChildEnvironment {
        var environment = ChildEnvironment()
        if let address = peer.address {
            let text = address.description
            environment.add("PROTO=", "TCP")
            environment.add("TCPREMOTEIP=", text)
            environment.add("TCPREMOTEPORT=", decimal: peer.port)
            environment.add("REMOTE_HOST=", text)
        } else if let creds = peer.unixCredentials {
            environment.add("PROTO=", "UNIX")
            environment.add("UNIXREMOTEPID=", decimal: creds.pid)
            environment.add("UNIXREMOTEEUID=", decimal: creds.uid)
            environment.add("UNIXREMOTEEGID=", decimal: creds.gid)
        } else if case .unix = listeners.first?.spec.address {
            environment.add("PROTO=", "UNIX")
        } else {
            environment.add("PROTO=", service.socketType == .dgram ? "UDP" : "TCP")
        }
        if service.socketType != .dgram, let (address, port) = peer.local {
            environment.add("TCPLOCALIP=", address.description)
            environment.add("TCPLOCALPORT=", decimal: port)
        }
        if let proxy = peer.proxiedBy { environment.add("PROXY_PEER=", proxy.description) }
        return environment
    }

    // MARK: - In-process services

    /// Counts an in-process connection (builtin, relay, tcpmux, pending lookup), per client too,
    /// so `per_source` holds for services that spawn nothing.
    func inProcessStarted(peer: IPAddress?) {
        supervisor.noteHeapActivity()
        inProcessConnections += 1
        supervisor.inProcessConnections += 1
        if let peer { perIPChildren[peer, default: 0] += 1 }
    }

    func inProcessEnded(peer: IPAddress?) {
        supervisor.noteHeapActivity()  // what it freed is trimmed once the daemon is quiet
        inProcessConnections -= 1
        supervisor.inProcessConnections -= 1
        if let peer { releasePerIP(peer) }
    }

    private func releasePerIP(_ peer: IPAddress) {
        let remaining = perIPChildren[peer, default: 1] - 1
        if remaining <= 0 { perIPChildren.removeValue(forKey: peer) } else { perIPChildren[peer] = remaining }
    }
}
