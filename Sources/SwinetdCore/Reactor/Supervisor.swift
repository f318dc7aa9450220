import CSwinetd
import Logging

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Daemon-wide settings from the command line.
public struct DaemonOptions: Sendable {
    public var configPaths: [String] = ConfigLoader.defaultPaths
    /// Default spawns per minute for every service (`-R`); nil: 256 for wait services, unlimited for nowait.
    public var defaultRate: Int?
    /// How long a service tripped by its rate limit stays paused.
    public var retrySeconds: Double = 600
    /// Keep the daemon's environment in children instead of a clean one.
    public var keepEnvironment = false
    /// Idle timeout of in-process stream builtins (echo, discard, chargen).
    public var builtinIdleSeconds: Double = 120
    /// Time a tcpmux client has to send its service name.
    public var tcpmuxTimeoutSeconds: Double = 10
    /// Time a TLS client has to complete its handshake (docs/TLS.md).
    public var tlsHandshakeSeconds: Double = 30
    /// Replies per second per UDP builtin service (a flood and loop guard).
    public var udpBuiltinRate: Int = 10_000
    /// Cap on children of all services together; nil: none.
    public var maxChildren: Int?
    /// Cap on in-process (builtin) connections of all services together.
    public var maxInProcessConnections = 4096
    /// How often a failed bind is retried.
    public var bindRetrySeconds: Double = 60
    /// Threads that run spawns so the reactor never waits for a vfork (which, on a loaded
    /// machine, lasts until the child is scheduled and execs); 0: spawn on the reactor thread.
    public var spawnThreads = DaemonOptions.defaultSpawnThreads

    /// One spawn thread per CPU plus one, at most 8: a spawn thread waits while its child runs up
    /// to execve, so one more than the CPUs keeps every CPU creating children. Measured on 2 CPUs
    /// (BENCHMARKS.md): 3 threads 0.99× the C floor, 2 threads 0.94×, same p99.
    public static var defaultSpawnThreads: Int {
        min(max(Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))), 1) + 1, 8)
    }
    /// How long a reverse DNS or ident lookup may take before the answer counts as unknown.
    public var lookupTimeoutSeconds: Double = 5
    public var hostsAllowPath = "/etc/hosts.allow"
    /// Where SIGUSR1 writes the state dump.
    public var dumpPath = "/run/swinetd.dump"
    public var hostsDenyPath = "/etc/hosts.deny"
    public var loadOptions = LoadOptions()
    /// Metrics endpoint, control socket, web console and log format (docs/OBSERVABILITY.md).
    public var admin = AdminOptions()

    public init() {}
}

/// A running child and what it counts against.
struct ChildRecord {
    let runtime: ServiceRuntime
    let startedAt: Int64
    let peer: IPAddress?
    let isWaitChild: Bool
}

/// Delivers the readiness of one child's pidfd (its exit) to the supervisor.
final class ChildExitWatch: EventHandler {
    let pid: pid_t
    let pidfd: Int32
    var token: ReactorToken?
    unowned let supervisor: Supervisor

    init(pid: pid_t, pidfd: Int32, supervisor: Supervisor) {
        self.pid = pid
        self.pidfd = pidfd
        self.supervisor = supervisor
    }

    func handle(events: UInt32) { supervisor.reapWatched(self) }
}

/// The daemon: owns the reactor, the service table, the children and the signals.
public final class Supervisor {
    let options: DaemonOptions
    let logger: Logger
    let reactor: Reactor
    private var signalFD: Int32 = -1
    private var signalToken: ReactorToken?
    private(set) var runtimes: [ServiceRuntime] = []
    private var children: [pid_t: ChildRecord] = [:]
    /// Exits reaped before their spawn result arrived from a worker thread.
    private var unclaimedExits: [pid_t: Int32] = [:]
    /// The pidfds the reactor watches, by pid.
    private var exitWatches: [pid_t: ChildExitWatch] = [:]
    /// Children without a pidfd, reaped by the SIGCHLD sweep.
    private var unwatchedChildren = 0 {
        didSet {
            // SIGCHLD is read only while some child has no pidfd (sw_signalfd_watch_child_exits).
            if (oldValue == 0) != (unwatchedChildren == 0), signalFD >= 0 {
                _ = sw_signalfd_watch_child_exits(signalFD, unwatchedChildren > 0 ? 1 : 0)
            }
        }
    }
    private var trimTimer: ReactorTimer?
    /// When the heap was last busy (monotonic ns), for the trim a second later.
    private var lastHeapActivity: Int64 = 0
    /// Workers that run spawns, when `--spawn-threads` > 0.
    private(set) var spawnWorkers: WorkerPool<SpawnJob, Result<SpawnedChild, SpawnPlan.Failure>>?
    /// tcpmux targets by lower-cased name.
    private(set) var tcpmuxTargets: [String: ServiceRuntime] = [:]
    /// Ports of every UDP builtin, which the loop guard refuses as source ports.
    private(set) var udpBuiltinPorts: Set<UInt16> = []
    private(set) var liveChildren = 0
    var inProcessConnections = 0
    private let baseEnvironment: [String]
    /// swinetd's own environment, for `passenv`.
    let daemonEnvironment: [String: String]
    /// Signals a child must reset to default; all of them until `installSignals` has looked.
    private(set) var signalsToReset: UInt64 = ~0
    /// The daemon's nice at start-up, which children inherit (Autogroup).
    let daemonNice = Autogroup.currentNice()
    /// Whether the kernel schedules sessions as groups; read on each apply (Autogroup).
    private(set) var autogroupsEnabled = false
    /// Scratch space for in-process I/O; one thread uses it at a time.
    let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 65536, alignment: 16)
    let policyState = PolicyState()
    public private(set) var reloadCount = 0
    /// Tells systemd (Type=notify) about readiness, reloads and shutdown.
    public let notifier = SystemdNotifier()
    /// Listening sockets passed by systemd (socket activation); set by main before the first apply.
    public var inheritedSockets = InheritedSockets()
    /// Counters, recent refusals and the admin servers (Admin/).
    let observability = Observability()

    public init(options: DaemonOptions, logger: Logger) throws(SystemError) {
        self.options = options
        self.logger = logger
        self.reactor = try Reactor()
        var inherited: [String] = []
        var cursor = environ
        while let entry = cursor.pointee {
            inherited.append(String(cString: entry))
            cursor += 1
        }
        var byName: [String: String] = [:]
        for entry in inherited {
            guard let equals = entry.firstIndex(of: "=") else { continue }
            byName[String(entry[..<equals])] = String(entry[entry.index(after: equals)...])
        }
        daemonEnvironment = byName
        baseEnvironment = options.keepEnvironment ? inherited.filter(SpawnPlan.isSafeToKeep) : [SpawnPlan.standardPath]
    }

    deinit { scratch.deallocate() }

    /// Starts the spawn threads. Called after `installSignals`, so they inherit the blocked mask.
    public func startSpawnThreads() throws(SystemError) {
        // One slot group per thread that spawns: the workers and the reactor (wait services).
        let setup = sw_spawn_setup(Int32(options.spawnThreads + 1))
        if setup != 0 {
            logger.notice("spawn: no low descriptor slots (\(errnoDescription(setup))); each spawn copies the descriptor table")
        }
        guard options.spawnThreads > 0 else { return }
        spawnWorkers = try WorkerPool(reactor: reactor, threads: options.spawnThreads, threadSetup: sw_spawn_thread_init) { job in
            let result = job.plan.spawn(fd: job.fd, environment: job.environment)
            close(job.fd)
            return result
        }
    }

    /// Takes over the signals the daemon handles. `main` must already have blocked them
    /// (`sw_block_daemon_signals`) before any thread started.
    public func installSignals() throws(SystemError) {
        var set = sigset_t()
        sw_block_daemon_signals(&set)
        // A signal ignored at exec time would never reach the signalfd: SIG_IGN discards it.
        for signal in [SIGCHLD, SIGHUP, SIGTERM, SIGINT, SIGUSR1, SIGUSR2, SIGALRM] {
            Glibc.signal(signal, SIG_DFL)
        }
        Glibc.signal(SIGPIPE, SIG_IGN)
        signalsToReset = sw_non_default_signals()
        signalFD = sw_signalfd(&set)
        guard signalFD >= 0 else { throw SystemError("signalfd") }
        // No child without a pidfd yet: SIGCHLD stays blocked and unread (see unwatchedChildren).
        _ = sw_signalfd_watch_child_exits(signalFD, 0)
        signalToken = try reactor.register(fd: signalFD, events: Readiness.input, handler: SignalReader(self))
    }

    /// Applies a configuration: the first one at start-up, later ones on reload.
    public func apply(_ configuration: LoadedConfiguration) {
        reopenLogFiles()
        autogroupsEnabled = Autogroup.isEnabled()
        loadHostsRules(for: configuration.services)
        var previous: [String: ServiceRuntime] = [:]
        for runtime in runtimes { previous[runtime.identity] = runtime }
        var openListeners: [ListenerSpec.Key: Listener] = [:]
        for runtime in runtimes {
            for listener in runtime.listeners { openListeners[listener.spec.key] = listener }
        }

        var next: [ServiceRuntime] = []
        var claimed = Set<ObjectIdentifier>()
        for service in configuration.services {
            // The same service: same identity, or else the one that owns one of its sockets now
            // (an edit such as tcp → tcp4 on the same address). Keeping the runtime keeps its
            // children, wait child, limits and pause.
            let identity = ServiceRuntime.identity(of: service)
            let owner = service.listeners.lazy.compactMap { openListeners[$0.key]?.owner }
                .first { !claimed.contains(ObjectIdentifier($0)) }
            let candidate = previous[identity].flatMap { claimed.contains(ObjectIdentifier($0)) ? nil : $0 } ?? owner
            let runtime: ServiceRuntime
            if let candidate {
                runtime = candidate
                previous.removeValue(forKey: candidate.identity)
            } else {
                runtime = ServiceRuntime(supervisor: self, service: service)
            }
            claimed.insert(ObjectIdentifier(runtime))
            runtime.configure(service, baseEnvironment: baseEnvironment)
            runtime.listeners = service.listeners.map { spec in
                let listener = openListeners.removeValue(forKey: spec.key) ?? Listener(spec: spec)
                listener.reapply(spec)
                listener.owner = runtime
                return listener
            }
            next.append(runtime)
        }
        for listener in openListeners.values {
            logger.info("closing \(listener.spec)")
            listener.closeSocket(reactor: reactor)
        }
        for removed in previous.values where !claimed.contains(ObjectIdentifier(removed)) { removed.retire() }

        runtimes = next
        tcpmuxTargets = [:]
        for runtime in next {
            if case .target(let name, _) = runtime.service.tcpmux { tcpmuxTargets[name.lowercased()] = runtime }
        }
        for runtime in next { runtime.activate() }
        udpBuiltinPorts = Set(
            next.filter { $0.service.builtin != nil && $0.service.socketType == .dgram }
                .flatMap { $0.listeners.compactMap(\.boundPort) })
        if next.contains(where: { $0.service.builtin == .echo && $0.service.socketType == .stream }) {
            EchoPumps.prepare(reactor: reactor)
        }
    }

    /// Runs until SIGTERM or SIGINT.
    public func run() {
        reactor.run()
        shutdown()
    }

    private func shutdown() {
        notifier.notify("STOPPING=1")
        for runtime in runtimes {
            for listener in runtime.listeners { listener.closeSocket(reactor: reactor) }
        }
        logger.info("exiting; \(liveChildren) children left running")
    }

    // MARK: - Children

    /// Counts a child that is about to be spawned.
    func reserveChildSlot() {
        liveChildren += 1
        noteHeapActivity()
    }

    /// A second after the last activity, gives the heap's free pages back to the system: glibc
    /// keeps the high-water mark of a burst (2-3 MB with 64 clients at once) mapped otherwise,
    /// though every connection's memory was freed. Starts, exits and the ends of in-process
    /// connections all count as activity, so the trim follows the last of them. The tables a burst
    /// grew (children, pidfd watches, the reactor's slots, the spawn queues) are shrunk first:
    /// Swift's arrays and dictionaries keep their largest capacity (about 300 KB after a 64-client
    /// burst, 800 KB after 1,500 children at once). Armed by activity, so an idle daemon never
    /// wakes for it; under steady load the timer only moves on (trimming memory about to be reused
    /// is wasted work), and the trim runs once the daemon has been quiet for a second.
    func noteHeapActivity() {
        lastHeapActivity = monotonicNanoseconds()
        guard trimTimer == nil else { return }
        armTrim(after: 1)
    }

    private func armTrim(after seconds: Double) {
        trimTimer = reactor.schedule(after: seconds) { [unowned self] in
            trimTimer = nil
            let quiet = Double(monotonicNanoseconds() - lastHeapActivity) / 1e9
            if quiet < 0.99 {
                armTrim(after: 1 - quiet)
                return
            }
            children.releaseSpareCapacity()
            exitWatches.releaseSpareCapacity()
            unclaimedExits.releaseSpareCapacity()
            reactor.releaseSpareCapacity()
            spawnWorkers?.releaseSpareCapacity()
            _ = sw_malloc_trim()
        }
    }

    /// Gives back the slot of a spawn that produced no process.
    func releaseChildSlot() { liveChildren -= 1 }

    /// Tracks a started child. A child with a pidfd is reaped when its pidfd becomes readable. One
    /// without (no descriptor left for a pidfd, or an old kernel) is reaped by the SIGCHLD sweep.
    /// With spawn threads a child may exit, and a sweep reap it, before its spawn result reaches
    /// the reactor; then its exit is booked now.
    func registerChild(_ child: SpawnedChild, record: ChildRecord) {
        if let early = unclaimedExits.removeValue(forKey: child.pid) {
            if child.pidfd >= 0 { close(child.pidfd) }
            childExited(pid: child.pid, record: record, status: early)
            return
        }
        children[child.pid] = record
        if child.pidfd >= 0 {
            let watch = ChildExitWatch(pid: child.pid, pidfd: child.pidfd, supervisor: self)
            if let token = try? reactor.register(fd: child.pidfd, events: Readiness.input, handler: watch) {
                watch.token = token
                exitWatches[child.pid] = watch
                return
            }
            // epoll_ctl fails only without memory: fall back to the sweep.
            close(child.pidfd)
        }
        unwatchedChildren += 1
        // Its SIGCHLD may have come and gone while no sweep was needed.
        reapChildren()
    }

    /// A pidfd became readable: reap exactly that child (O(1), whatever the number of children).
    fileprivate func reapWatched(_ watch: ChildExitWatch) {
        var status: Int32 = 0
        let reaped = sw_pidfd_reap(watch.pidfd, &status)
        if reaped == 0 { return }  // spurious: still running
        unwatch(watch)
        guard let record = children.removeValue(forKey: watch.pid) else { return }
        if reaped < 0 {
            // Someone else reaped it (nothing in swinetd does): its status is lost.
            logger.error("cannot reap child \(watch.pid): \(errnoDescription(errno))")
            status = 0
        }
        childExited(pid: watch.pid, record: record, status: status)
    }

    private func unwatch(_ watch: ChildExitWatch) {
        if let token = watch.token { reactor.unregister(fd: watch.pidfd, token: token) }
        close(watch.pidfd)
        exitWatches.removeValue(forKey: watch.pid)
    }

    private func childExited(pid: pid_t, record: ChildRecord, status: Int32) {
        liveChildren -= 1
        noteHeapActivity()  // children outlive their connections: trim after the last exit too
        let seconds = Double(monotonicNanoseconds() - record.startedAt) / 1e9
        record.runtime.log.exit(pid: pid, status: status, seconds: seconds)
        record.runtime.metrics.childExited(status: status, seconds: seconds)
        record.runtime.childExited(record)
    }

    /// The live children, read-only, for status and the console.
    var childRecords: [pid_t: ChildRecord] { children }

    /// Whether the global child cap allows one more.
    var hasRoomForChild: Bool {
        guard let cap = options.maxChildren else { return true }
        return liveChildren < cap
    }

    /// On SIGCHLD, while children without a pidfd live: reaps every exited child without blocking
    /// (SIGCHLD is only a hint and may be coalesced). waitpid(-1) walks the kernel's list of all
    /// children, so it runs only when some child has no pidfd; it may then reap watched ones too.
    func reapChildren() {
        guard unwatchedChildren > 0 else { return }
        while true {
            var status: Int32 = 0
            let pid = waitpid(-1, &status, WNOHANG)
            if pid <= 0 { break }
            if let watch = exitWatches[pid] {
                unwatch(watch)
            } else if children[pid] != nil {
                unwatchedChildren -= 1
            }
            guard let record = children.removeValue(forKey: pid) else {
                // Spawned on a worker thread whose result is still on its way.
                unclaimedExits[pid] = status
                continue
            }
            childExited(pid: pid, record: record, status: status)
        }
    }

    // MARK: - Signals

    fileprivate func handleSignal(_ signal: Int32) {
        switch signal {
        case SIGCHLD:
            reapChildren()
        case SIGHUP, SIGUSR2:
            reload()
        case SIGTERM, SIGINT:
            logger.info("signal \(signal): shutting down")
            reactor.stop()
        case SIGUSR1:
            dumpState()
        default:
            break
        }
    }

    /// Re-reads the configuration; a configuration with errors is reported and not applied.
    public func reload() {
        let started = monotonicNanoseconds()
        notifier.notify("RELOADING=1\nMONOTONIC_USEC=\(started / 1000)")
        defer { notifier.notify("READY=1\nSTATUS=\(runtimes.count) services") }
        let configuration = ConfigLoader.load(paths: options.configPaths, options: options.loadOptions)
        for diagnostic in configuration.diagnostics {
            if diagnostic.severity == .error {
                logger.error("\(diagnostic)")
            } else {
                logger.warning("\(diagnostic)")
            }
        }
        if configuration.hasErrors {
            logger.error("reload refused: the configuration has errors; the running configuration stays")
            return
        }
        apply(configuration)
        reloadCount += 1
        let ms = Double(monotonicNanoseconds() - started) / 1e6
        logger.info("reloaded \(configuration.services.count) services in \((ms * 10).rounded() / 10) ms")
    }

    /// SIGUSR1: writes the state (services, listeners, children, counters) to `--dump-file`,
    /// like xinetd's /var/run/xinetd.dump, and says so in the log.
    func dumpState() {
        let now = monotonicNanoseconds()
        var text = "swinetd state dump at \(LogTime.utcTimestamp())\n"
        text += "services: \(runtimes.count)  children: \(liveChildren)  in-process connections: \(inProcessConnections)"
        text += "  refused: \(policyState.refusals)  reloads: \(reloadCount)  banned addresses: \(policyState.bans.count)\n\n"
        for runtime in runtimes {
            let service = runtime.service
            text += "service \(service.logName) (\(service.location))\n"
            text += "  state: \(runtime.stateDescription)  children: \(runtime.liveChildren)  in-process: \(runtime.inProcessConnections)\n"
            if !service.sandbox.isEmpty { text += "  sandbox: \(service.sandbox.summary)\n" }
            if let tls = service.tls { text += "  tls: \(tls.summary)\n" }
            for listener in runtime.listeners {
                text += "  listener: \(service.protocolName) \(listener.spec)\(listener.isOpen ? "" : " (not bound)")\(listener.isArmed ? "" : " (not watched)")\n"
            }
        }
        text += "\nchildren:\n"
        for (pid, record) in children.sorted(by: { $0.key < $1.key }) {
            let age = Double(now - record.startedAt) / 1e9
            text += "  pid=\(pid) service=\(record.runtime.service.logName) peer=\(record.peer.map { "\($0)" } ?? "-") age=\((age * 10).rounded() / 10)s\n"
        }
        let path = options.dumpPath
        unlink(path)
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            logger.error("state dump: cannot create \(path): \(errnoDescription(errno))")
            return
        }
        text.withUTF8 { _ = write(fd, $0.baseAddress, $0.count) }
        close(fd)
        logger.info("state dumped to \(path): \(runtimes.count) services, \(liveChildren) children")
    }

    /// Every address the daemon listens on, for the start-up banner and tests.
    public func logListeners() {
        for runtime in runtimes {
            for listener in runtime.listeners where listener.isOpen {
                let what: String
                switch runtime.service.program {
                case .builtin(let builtin): what = "internal \(builtin.rawValue)"
                case .external(let path, _): what = path
                }
                logger.info("listening on \(runtime.service.protocolName) \(listener.spec.address) for \(runtime.service.name) (\(what))")
            }
        }
    }
}

/// Reads the signalfd and hands each signal to the supervisor.
private final class SignalReader: EventHandler {
    unowned let supervisor: Supervisor

    init(_ supervisor: Supervisor) { self.supervisor = supervisor }

    func handle(events: UInt32) {
        var pending = Set<Int32>()
        while true {
            let signal = sw_signalfd_read(supervisorSignalFD)
            if signal <= 0 { break }
            pending.insert(signal)
        }
        // Reap before anything else so a reload sees exact counts.
        if pending.remove(SIGCHLD) != nil { supervisor.handleSignal(SIGCHLD) }
        for signal in pending.sorted() { supervisor.handleSignal(signal) }
    }

    private var supervisorSignalFD: Int32 { supervisor.signalDescriptor }
}

extension Supervisor {
    fileprivate var signalDescriptor: Int32 { signalFD }
}

extension Dictionary {
    /// A Swift dictionary keeps the capacity of its largest size: the child tables would hold a
    /// burst's high-water mark (hundreds of KB) for good. Rebuilt small once mostly empty.
    mutating func releaseSpareCapacity() {
        guard capacity > 64, count < capacity / 4 else { return }
        var smaller = Dictionary(minimumCapacity: count)
        for (key, value) in self { smaller[key] = value }
        self = smaller
    }
}
