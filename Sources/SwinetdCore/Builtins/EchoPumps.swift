import CSwinetd

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// TCP echo connections, spliced on a few threads of their own ("pumps"), so that several echo
/// connections use several cores (openbsd-inetd forks a process per echo connection).
///
/// Ownership is simple: once handed over, a connection's descriptor and pipe belong to its pump
/// thread alone (its epoll set, its idle timeout, its close). The reactor keeps only the
/// bookkeeping (connection limits, which runtime), and hears of the end through an eventfd, like
/// WorkerPool's completions. A connection on which splice turns out to be impossible is handed
/// back to the reactor (before any byte moved), which then serves it by copying.
final class EchoPumps: EventHandler, @unchecked Sendable {
    /// Reactor thread only; made when a configuration with a TCP echo service is loaded (so the
    /// threads and their descriptors exist before clients come), or else on first use.
    nonisolated(unsafe) private static var shared: EchoPumps?
    /// When making the pumps last failed (out of descriptors?): retried after 10 s.
    nonisolated(unsafe) private static var failedAt: Int64?

    /// Starts the pumps if they are not running (reactor thread).
    static func prepare(reactor: Reactor) {
        guard shared == nil, EchoPipe.limit > 0 else { return }
        if let failedAt, monotonicNanoseconds() - failedAt < 10_000_000_000 { return }
        do {
            shared = try EchoPumps(reactor: reactor)
            failedAt = nil
        } catch {
            failedAt = monotonicNanoseconds()
        }
    }

    /// Pump threads: two per CPU (so four connections on two cores need not share a thread),
    /// at least 2, at most 8. Idle pumps sleep in epoll_wait.
    static let threadCount: Int = {
        let cpus = sysconf(Int32(_SC_NPROCESSORS_ONLN))
        return max(2, min(2 * (cpus > 0 ? cpus : 1), 8))
    }()

    private struct Handover {
        let runtime: ServiceRuntime
        let fd: Int32
        let peerAddress: IPAddress?
        let pump: Int
    }

    private var pumps: [EchoPump] = []
    private let wakeFD: Int32
    private var token: ReactorToken?
    // Reactor-thread state.
    private var handovers: [UInt64: Handover] = [:]
    private var load: [Int]
    private var nextID: UInt64 = 1
    // Shared with the pumps, under `lock`.
    private let lock = PthreadLock()
    private var ended: [(id: UInt64, handBack: Bool, bytes: UInt64)] = []

    /// All descriptors first, then the threads: a failure (EMFILE) leaves nothing behind.
    private init(reactor: Reactor) throws(SystemError) {
        wakeFD = sw_eventfd()
        guard wakeFD >= 0 else { throw SystemError("eventfd") }
        load = Array(repeating: 0, count: EchoPumps.threadCount)
        do {
            for _ in 0..<EchoPumps.threadCount { pumps.append(try EchoPump(owner: self)) }
            token = try reactor.register(fd: wakeFD, events: Readiness.input, handler: self)
        } catch {
            for pump in pumps { pump.closeDescriptors() }
            close(wakeFD)
            throw error
        }
        for pump in pumps {
            // A pump whose thread cannot start gets no connections (its load stays maximal).
            do { try startDetachedThread { pump.run() } } catch { load[pumps.firstIndex { $0 === pump }!] = Int.max / 2 }
        }
    }

    /// Hands an echo connection (counted with inProcessStarted, watched by the reactor) to the
    /// least busy pump: `detach` stops the reactor watching it, then the pump takes over. False,
    /// without calling `detach`, when it must stay in the reactor: splicing off, no pipe to be had
    /// (the cap of EchoPipe), or the pumps could not be started.
    static func adopt(fd: Int32, peerAddress: IPAddress?, runtime: ServiceRuntime, detach: () -> Void) -> Bool {
        guard EchoPipe.limit > 0, EchoPipe.descriptorsArePlentiful(above: fd) else { return false }
        prepare(reactor: runtime.supervisor.reactor)
        guard let pumps = shared, pumps.load.contains(where: { $0 < Int.max / 4 }), let pipe = EchoPipe.make() else {
            return false
        }
        detach()
        var best = 0
        for i in pumps.load.indices where pumps.load[i] < pumps.load[best] { best = i }
        let id = pumps.nextID
        pumps.nextID += 1
        let idle = runtime.supervisor.options.builtinIdleSeconds
        guard pumps.pumps[best].add(PumpedEcho(id: id, fd: fd, pipe: pipe, idleNanoseconds: Int64(idle * 1e9))) else {
            // Cannot happen for an open socket; serve it by copying, as if handed back.
            pipe.close()
            EchoPipe.released()
            StreamBuiltinConnection.resumeEchoByCopying(fd: fd, peerAddress: peerAddress, runtime: runtime)
            return true
        }
        pumps.handovers[id] = Handover(runtime: runtime, fd: fd, peerAddress: peerAddress, pump: best)
        pumps.load[best] += 1
        return true
    }

    /// Called on a pump thread when a connection ended (closed) or is handed back (still open).
    fileprivate func post(_ id: UInt64, handBack: Bool, bytes: UInt64) {
        lock.lock()
        let wasEmpty = ended.isEmpty
        ended.append((id, handBack, bytes))
        lock.unlock()
        if wasEmpty {
            var one: UInt64 = 1
            _ = write(wakeFD, &one, 8)
        }
    }

    func handle(events: UInt32) {
        var counter: UInt64 = 0
        _ = read(wakeFD, &counter, 8)
        lock.lock()
        let done = ended
        ended.removeAll(keepingCapacity: true)
        lock.unlock()
        for (id, handBack, bytes) in done {
            guard let handover = handovers.removeValue(forKey: id) else { continue }
            load[handover.pump] -= 1
            // Echoed bytes, booked when the pump lets go (the metrics belong to the reactor).
            handover.runtime.metrics.bytesIn &+= bytes
            handover.runtime.metrics.bytesOut &+= bytes
            EchoPipe.released()
            if handBack {
                StreamBuiltinConnection.resumeEchoByCopying(
                    fd: handover.fd, peerAddress: handover.peerAddress, runtime: handover.runtime)
            } else {
                handover.runtime.inProcessEnded(peer: handover.peerAddress)
            }
        }
    }
}

/// One echo connection on a pump thread.
private final class PumpedEcho {
    let id: UInt64
    let fd: Int32
    let pipe: EchoPipe
    let idleNanoseconds: Int64
    var lastActivity = monotonicNanoseconds()
    var peerClosed = false
    var interest = Readiness.input
    /// Bytes echoed (spliced back to the client).
    var echoed: UInt64 = 0

    init(id: UInt64, fd: Int32, pipe: EchoPipe, idleNanoseconds: Int64) {
        self.id = id
        self.fd = fd
        self.pipe = pipe
        self.idleNanoseconds = idleNanoseconds
    }
}

/// One pump thread: its own epoll set, its connections, an eventfd the reactor pokes after a
/// hand-over (so a connection that never sends still meets its idle timeout).
private final class EchoPump: @unchecked Sendable {
    private let epollFD: Int32
    private let wakeFD: Int32
    private unowned let owner: EchoPumps
    // Shared with the reactor, under `lock`.
    private let lock = PthreadLock()
    private var inbox: [PumpedEcho] = []
    // Pump-thread state.
    private var live: [UInt64: PumpedEcho] = [:]

    init(owner: EchoPumps) throws(SystemError) {
        self.owner = owner
        epollFD = sw_epoll_create()
        guard epollFD >= 0 else { throw SystemError("epoll_create1") }
        wakeFD = sw_eventfd()
        guard wakeFD >= 0 else {
            close(epollFD)
            throw SystemError("eventfd")
        }
        // Connection ids start at 1: 0 is the wake-up.
        guard sw_epoll_ctl(epollFD, EPOLL_CTL_ADD, wakeFD, Readiness.input, 0) == 0 else {
            closeDescriptors()
            throw SystemError("epoll_ctl(ADD)")
        }
    }

    /// Only for a pump whose thread never started.
    func closeDescriptors() {
        close(epollFD)
        close(wakeFD)
    }

    /// Reactor thread: watch, then queue. The epoll set is level-triggered, so an event that
    /// arrives before the pump has taken the connection from its inbox is reported again.
    func add(_ connection: PumpedEcho) -> Bool {
        guard sw_epoll_ctl(epollFD, EPOLL_CTL_ADD, connection.fd, Readiness.input, connection.id) == 0 else {
            return false
        }
        lock.lock()
        inbox.append(connection)
        lock.unlock()
        var one: UInt64 = 1
        _ = write(wakeFD, &one, 8)
        return true
    }

    func run() {
        var events = [UInt32](repeating: 0, count: 64)
        var datas = [UInt64](repeating: 0, count: 64)
        var lastScan = monotonicNanoseconds()
        while true {
            let timeout: Int32 = live.isEmpty ? -1 : 1000
            let count = sw_epoll_wait(epollFD, &events, &datas, 64, timeout)
            takeInbox()
            let now = monotonicNanoseconds()
            for i in 0..<max(0, Int(count)) {
                if datas[i] == 0 {
                    var counter: UInt64 = 0
                    _ = read(wakeFD, &counter, 8)
                    continue
                }
                guard let connection = live[datas[i]] else { continue }
                connection.lastActivity = now
                serve(connection, events: events[i])
            }
            if now - lastScan >= 1_000_000_000 || count == 0 {
                lastScan = now
                for connection in live.values where now - connection.lastActivity >= connection.idleNanoseconds {
                    end(connection, handBack: false)
                }
            }
        }
    }

    private func takeInbox() {
        lock.lock()
        let new = inbox
        inbox.removeAll(keepingCapacity: true)
        lock.unlock()
        for connection in new { live[connection.id] = connection }
    }

    /// Moves bytes socket → pipe → socket until the client has nothing more to send or stops
    /// reading, in at most 16 rounds (fairness).
    ///
    /// While bytes wait in the pipe and the socket is not writable, only output is watched: an
    /// EAGAIN from splice into a pipe holding bytes cannot tell "client sent nothing" from "pipe
    /// slots full", so reading then would spin. Memory is bounded by the pipe's capacity.
    private func serve(_ c: PumpedEcho, events: UInt32) {
        if events & Readiness.error != 0 {
            end(c, handBack: false)
            return
        }
        let pipe = c.pipe
        for _ in 0..<16 {
            var readBlocked = true
            if !c.peerClosed && pipe.buffered < pipe.capacity {
                let n = sw_splice(c.fd, pipe.writeEnd, pipe.capacity - pipe.buffered)
                if n > 0 {
                    pipe.buffered += n
                    pipe.used = true
                    readBlocked = false
                } else if n == 0 {
                    c.peerClosed = true
                } else if errno == EINTR {
                    readBlocked = false
                } else if errno != EAGAIN && errno != EWOULDBLOCK {
                    // Splicing impossible on this socket (before any byte): the reactor copies.
                    end(c, handBack: !pipe.used && (errno == EINVAL || errno == ENOSYS))
                    return
                }
            }
            var writeBlocked = false
            if pipe.buffered > 0 {
                let n = sw_splice(pipe.readEnd, c.fd, pipe.buffered)
                if n > 0 {
                    pipe.buffered -= n
                    c.echoed &+= UInt64(n)
                } else if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) {
                    writeBlocked = true
                } else if !(n < 0 && errno == EINTR) {
                    // EPIPE, ECONNRESET; 0 cannot happen with bytes in the pipe.
                    end(c, handBack: false)
                    return
                }
            }
            if c.peerClosed && pipe.buffered == 0 {
                // Everything echoed: FIN.
                end(c, handBack: false)
                return
            }
            if writeBlocked || (readBlocked && pipe.buffered == 0) { break }
        }
        let wanted = pipe.buffered > 0 ? Readiness.output : Readiness.input
        if wanted != c.interest {
            _ = sw_epoll_ctl(epollFD, EPOLL_CTL_MOD, c.fd, wanted, c.id)
            c.interest = wanted
        }
    }

    /// Stops watching; closes the pipe; closes the connection (after FIN) unless handing it back.
    private func end(_ c: PumpedEcho, handBack: Bool) {
        _ = sw_epoll_ctl(epollFD, EPOLL_CTL_DEL, c.fd, 0, 0)
        live.removeValue(forKey: c.id)
        c.pipe.close()
        if !handBack {
            shutdown(c.fd, Int32(SHUT_WR))
            close(c.fd)
        }
        owner.post(c.id, handBack: handBack, bytes: c.echoed)
    }
}
