#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The counters of one service. They live on its `ServiceRuntime`, so they survive a reload with
/// it. Plain integers touched by the reactor thread only: no locks, nothing allocated per
/// connection (a refusal reason or an exit code is a dictionary key that exists after its first use).
final class ServiceMetrics {
    /// Fixed upper bounds (seconds) of the child duration histogram; +Inf is implied.
    static let durationBounds: [Double] = [0.01, 0.1, 0.5, 1, 5, 30, 60, 300, 1800, 3600]

    var accepted = 0
    var refused: [String: Int] = [:]
    var refusedTotal = 0
    var spawned = 0
    var spawnFailures = 0
    /// Children of connections started on the reactor thread, not a spawn thread (the daemon was
    /// otherwise idle, or `--spawn-threads 0`).
    var spawnedOnReactor = 0
    var exitCodes: [Int32: Int] = [:]
    var exitSignals: [Int32: Int] = [:]
    var durationBuckets = [Int](repeating: 0, count: ServiceMetrics.durationBounds.count)
    var durationSum = 0.0
    var durationCount = 0
    var bytesIn: UInt64 = 0
    var bytesOut: UInt64 = 0
    /// Samples for the console's graphs (every `Observability.sampleSeconds`).
    var history = SampleRing()

    /// A child was reaped: its wait status and how long it ran.
    func childExited(status: Int32, seconds: Double) {
        if status & 0x7f == 0 {
            exitCodes[(status >> 8) & 0xff, default: 0] += 1
        } else {
            exitSignals[status & 0x7f, default: 0] += 1
        }
        var bucket = 0
        while bucket < Self.durationBounds.count, seconds > Self.durationBounds[bucket] { bucket += 1 }
        if bucket < durationBuckets.count { durationBuckets[bucket] += 1 }
        durationSum += seconds
        durationCount += 1
    }
}

/// One sample of a service for the console graphs: cumulative counters and the live count.
struct MetricSample {
    var accepted: Int
    var refused: Int
    var spawned: Int
    var live: Int
}

/// A fixed ring of the most recent samples (10 minutes at one per 5 s).
struct SampleRing {
    static let capacity = 120
    private var items: [MetricSample] = []
    private var next = 0

    mutating func append(_ sample: MetricSample) {
        if items.count < Self.capacity {
            items.append(sample)
        } else {
            items[next] = sample
            next = (next + 1) % Self.capacity
        }
    }

    /// Oldest first.
    var samples: [MetricSample] { Array(items[next...] + items[..<next]) }
}

/// A refused connection, for the console's "recent refusals".
struct RefusalRecord {
    var wallSeconds: Int
    var service: String
    var reason: String
    var peer: String
}

/// Daemon-wide observability state: the recent refusals, the start time, and the admin servers
/// (metrics endpoint, control socket, web console). Owned by the supervisor, reactor thread only.
final class Observability {
    static let sampleSeconds = 5.0
    static let refusalCapacity = 100

    let startedWallSeconds = wallClockSeconds()
    let startedMonotonic = monotonicNanoseconds()
    private var refusals: [RefusalRecord] = []
    private var nextRefusal = 0
    var servers: [AdminServer] = []
    var controlPath: String?
    var samplerRunning = false

    /// Counts a refusal on its service and remembers it (the last 100) for the console.
    func refused(_ runtime: ServiceRuntime, reason: String, peer: PeerInfo) {
        runtime.metrics.refused[reason, default: 0] += 1
        runtime.metrics.refusedTotal += 1
        let record = RefusalRecord(
            wallSeconds: wallClockSeconds(), service: runtime.service.logName, reason: reason,
            peer: peer.address.map { "\($0)" } ?? peer.unixCredentials.map { "unix uid=\($0.uid)" } ?? "-")
        if refusals.count < Self.refusalCapacity {
            refusals.append(record)
        } else {
            refusals[nextRefusal] = record
            nextRefusal = (nextRefusal + 1) % Self.refusalCapacity
        }
    }

    /// Newest first.
    var recentRefusals: [RefusalRecord] { Array((refusals[nextRefusal...] + refusals[..<nextRefusal]).reversed()) }
}

extension ServiceRuntime {
    /// A connection was accepted (before any policy check).
    func countAccepted() { metrics.accepted += 1 }

    /// A connection or datagram was refused with `reason` (the FAIL reason of the log).
    func countRefused(_ reason: String, peer: PeerInfo) {
        supervisor.observability.refused(self, reason: reason, peer: peer)
    }

    /// The outcome of a spawn.
    func countSpawn(succeeded: Bool) {
        if succeeded { metrics.spawned += 1 } else { metrics.spawnFailures += 1 }
    }

    /// Bytes an in-process relay moved.
    func countBytes(in bytesIn: UInt64, out bytesOut: UInt64) {
        metrics.bytesIn += bytesIn
        metrics.bytesOut += bytesOut
    }
}

extension Supervisor {
    /// Open descriptors of the daemon (entries of /proc/self/fd, minus the one reading it).
    var openDescriptorCount: Int {
        guard let dir = opendir("/proc/self/fd") else { return -1 }
        defer { closedir(dir) }
        var count = 0
        while let entry = readdir(dir) {
            let first = withUnsafeBytes(of: entry.pointee.d_name) { $0[0] }
            if first != UInt8(ascii: ".") { count += 1 }
        }
        return count - 1
    }

    /// The soft RLIMIT_NOFILE.
    var descriptorLimit: Int {
        var limit = rlimit()
        guard getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return -1 }
        return limit.rlim_cur == rlim_t.max ? -1 : Int(limit.rlim_cur)
    }

    /// Takes a sample of every service every 5 s while the console is enabled.
    func startSampling() {
        guard !observability.samplerRunning else { return }
        observability.samplerRunning = true
        sampleNow()
    }

    private func sampleNow() {
        for runtime in runtimes {
            let m = runtime.metrics
            m.history.append(
                MetricSample(
                    accepted: m.accepted, refused: m.refusedTotal, spawned: m.spawned,
                    live: runtime.liveChildren + runtime.inProcessConnections))
        }
        reactor.schedule(after: Observability.sampleSeconds) { [weak self] in self?.sampleNow() }
    }
}
