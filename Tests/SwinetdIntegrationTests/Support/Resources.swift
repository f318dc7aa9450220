import Foundation
import Glibc

/// What a process costs: CPU ticks, resident memory, descriptors, threads (all from /proc), for
/// the reliability and security tests that assert a daemon stays bounded.
extension ProcFS {
    /// utime + stime of `pid` in clock ticks (fields 14 and 15 of /proc/PID/stat).
    static func cpuTicks(_ pid: pid_t) -> Int? {
        let text = Files.read("/proc/\(pid)/stat")
        guard let close = text.lastIndex(of: ")") else { return nil }
        // After ")": state is field 3, so utime (14) and stime (15) are at offsets 11 and 12.
        let rest = text[text.index(after: close)...].split(separator: " ")
        guard rest.count > 12, let user = Int(rest[11]), let system = Int(rest[12]) else { return nil }
        return user + system
    }

    /// Clock ticks per second.
    static let ticksPerSecond = Int(sysconf(Int32(_SC_CLK_TCK)))

    /// CPU seconds `pid` used during `seconds` of wall time (sleeps meanwhile).
    static func cpuSeconds(of pid: pid_t, over seconds: Double) -> Double? {
        guard let before = cpuTicks(pid) else { return nil }
        usleep(useconds_t(seconds * 1e6))
        guard let after = cpuTicks(pid) else { return nil }
        return Double(after - before) / Double(ticksPerSecond)
    }

    /// A `Key:` field of /proc/PID/status, e.g. "VmRSS" → "1234 kB".
    static func statusField(_ pid: pid_t, _ key: String) -> String? {
        for line in Files.read("/proc/\(pid)/status").split(separator: "\n") where line.hasPrefix(key + ":") {
            return line.dropFirst(key.count + 1).trimmingCharacters(in: .whitespaces)
        }
        return nil
    }

    /// Resident set size in KiB.
    static func rssKiB(_ pid: pid_t) -> Int? {
        statusField(pid, "VmRSS").flatMap { Int($0.split(separator: " ").first ?? "") }
    }

    /// Private anonymous memory (heap, arenas, stacks) in KiB.
    static func rssAnonKiB(_ pid: pid_t) -> Int? {
        statusField(pid, "RssAnon").flatMap { Int($0.split(separator: " ").first ?? "") }
    }

    static func threadCount(_ pid: pid_t) -> Int? {
        statusField(pid, "Threads").flatMap { Int($0) }
    }

    /// Entries of /proc/PID/fd.
    static func openFDs(_ pid: pid_t) -> [Int32] {
        ((try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd")) ?? []).compactMap { Int32($0) }
    }

    /// The RLIMIT_NOFILE that leaves `pid` exactly `spare` free descriptor numbers: the limit
    /// caps fd numbers, and the open ones need not be contiguous (spawn slots, closed files).
    static func limitLeaving(_ spare: Int, freeFDsOf pid: pid_t) -> Int {
        let open = Set(openFDs(pid))
        var free = 0
        var fd: Int32 = 0
        while true {
            if !open.contains(fd) {
                if free == spare { return Int(fd) }  // the limit sits on the next free number
                free += 1
            }
            fd += 1
        }
    }

    /// What each descriptor of `pid` is (readlink of /proc/PID/fd/N), for failure messages.
    static func fdTargets(_ pid: pid_t) -> [String] {
        openFDs(pid).sorted().map { fd in
            var buffer = [CChar](repeating: 0, count: 512)
            let n = readlink("/proc/\(pid)/fd/\(fd)", &buffer, buffer.count - 1)
            return "\(fd)=" + (n > 0 ? cText(buffer) : "?")
        }
    }

    /// Udp6InDatagrams from /proc/net/snmp6.
    static func udp6InDatagrams() -> Int? {
        for line in Files.read("/proc/net/snmp6").split(separator: "\n") where line.hasPrefix("Udp6InDatagrams") {
            return Int(line.split(whereSeparator: { $0 == " " || $0 == "\t" }).last ?? "")
        }
        return nil
    }
}

extension Connection {
    /// Closes with SO_LINGER {1, 0}: the kernel sends RST instead of FIN.
    func resetClose() {
        var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
        close()
    }

    /// Non-blocking send of as much of `bytes` as the socket takes now; returns the count (0 when full).
    func sendSome(_ bytes: UnsafeRawBufferPointer) -> Int {
        let n = Glibc.send(fd, bytes.baseAddress!, bytes.count, Int32(MSG_NOSIGNAL | MSG_DONTWAIT))
        return max(0, n)
    }

    /// Shrinks the receive buffer (before data arrives) so a non-reading client stalls sooner.
    func setReceiveBuffer(_ bytes: Int32) {
        var size = bytes
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
    }
}

/// Latency samples of one-shot requests, in seconds.
struct LatencySamples: CustomStringConvertible {
    var values: [Double] = []
    var failures = 0

    mutating func add(_ value: Double) { values.append(value) }

    func percentile(_ p: Double) -> Double {
        guard !values.isEmpty else { return .infinity }
        let sorted = values.sorted()
        return sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]
    }

    /// How many samples exceed `limit`.
    func count(above limit: Double) -> Int { values.filter { $0 > limit }.count }

    var description: String {
        let ms = { (v: Double) in String(format: "%.1f ms", v * 1000) }
        return "n=\(values.count) failures=\(failures) p50=\(ms(percentile(0.5))) p99=\(ms(percentile(0.99))) max=\(ms(values.max() ?? 0))"
    }

    /// `count` daytime (or any one-shot reply) requests to `port`, `interval` s apart.
    static func measure(port: UInt16, count: Int, interval: Double, check: ([UInt8]) -> Bool) -> LatencySamples {
        var samples = LatencySamples()
        for _ in 0..<count {
            let started = Clock.now
            if let result = try? TCP.exchange("127.0.0.1", port, shutdownWrite: false, timeout: 3), check(result.bytes) {
                samples.add(Clock.now - started)
            } else {
                samples.failures += 1
            }
            let spent = Clock.now - started
            if spent < interval { usleep(useconds_t((interval - spent) * 1e6)) }
        }
        return samples
    }
}

/// A background load on other threads until `stop()` (bounded by `limit` iterations and a
/// deadline), counting what it did.
final class BackgroundLoad: @unchecked Sendable {
    private let running = Locked(true)
    private let counts = Locked((done: 0, failed: 0))
    private let group = DispatchGroup()

    /// `body` returns true for success; runs on `threads` threads.
    init(threads: Int, limit: Int = 1_000_000, seconds: Double = 30, _ body: @escaping @Sendable (Int) -> Bool) {
        let deadline = Clock.now + seconds
        for index in 0..<threads {
            group.enter()
            let thread = Thread { [self] in
                var n = 0
                while n < limit && Clock.now < deadline && running.withLock({ $0 }) {
                    n += 1
                    let ok = body(index)
                    counts.withLock { ok ? ($0.done += 1) : ($0.failed += 1) }
                }
                group.leave()
            }
            thread.stackSize = 1 << 20
            thread.start()
        }
    }

    var done: Int { counts.withLock { $0.done } }
    var failed: Int { counts.withLock { $0.failed } }

    /// Stops and waits (bounded) for the threads; returns (successes, failures).
    @discardableResult
    func stop(timeout: Double = 10) -> (done: Int, failed: Int) {
        running.withLock { $0 = false }
        _ = group.wait(timeout: .now() + timeout)
        return counts.withLock { $0 }
    }
}
