import CSwinetd
import Logging

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Per-service state of a UDP builtin: its reply budget and what was dropped.
final class DatagramBuiltinState {
    /// Token bucket: replies per second, with one second of burst.
    private let rate: Double
    private var tokens: Double
    private var lastRefill = monotonicNanoseconds()
    /// RFC 864 over UDP: each reply continues the ring where the last one stopped (per service,
    /// never shared with TCP streams).
    var chargenLine = 0
    var dropped = 0
    var lastDropReason = ""
    var lastDropLog: Int64 = 0

    init(rate: Int) {
        self.rate = Double(max(rate, 1))
        self.tokens = Double(max(rate, 1))
    }

    func takeToken() -> Bool {
        let now = monotonicNanoseconds()
        tokens = min(rate, tokens + Double(now - lastRefill) / 1e9 * rate)
        lastRefill = now
        guard tokens >= 1 else { return false }
        tokens -= 1
        return true
    }
}

/// The UDP builtins, served in the reactor. The loop guard refuses to answer datagrams that could
/// come from another echo-like service: source ports below 1024, the port of any UDP builtin
/// swinetd serves, and broadcast/multicast/unspecified sources. A reply budget bounds the rest.
enum DatagramBuiltin {
    /// Largest chargen reply (RFC 864 allows 0-512 characters): six full lines.
    static let chargenLinesPerReply = 6

    static func serve(_ builtin: Builtin, fd: Int32, runtime: ServiceRuntime) {
        let supervisor = runtime.supervisor
        let scratch = supervisor.scratch
        let state = runtime.datagramState
        for _ in 0..<256 {
            var storage = sockaddr_storage()
            var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
            let n = withUnsafeMutablePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    recvfrom(fd, scratch.baseAddress!, scratch.count, Int32(MSG_DONTWAIT), $0, &length)
                }
            }
            if n < 0 {
                if errno == EINTR { continue }
                break  // EAGAIN, or an ICMP error reported on the socket
            }
            let (address, port) = withUnsafePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    (SocketAddressFormatting.ipAddress(from: $0), SocketAddressFormatting.port(from: $0))
                }
            }
            guard builtin != .discard else { continue }
            if let reason = refusal(address: address, port: port, builtinPorts: supervisor.udpBuiltinPorts) {
                noteDrop(state, reason: "\(reason) from \(address.map { "\($0)" } ?? "?") port \(port)", runtime: runtime)
                continue
            }
            if let address, let reason = runtime.datagramRefusal(from: address, port: port) {
                noteDrop(state, reason: "\(reason) from \(address)", runtime: runtime)
                continue
            }
            guard state.takeToken() else {
                noteDrop(state, reason: "over the reply rate", runtime: runtime)
                continue
            }
            reply(builtin, received: n, to: &storage, length: length, fd: fd, scratch: scratch, state: state)
        }
    }

    /// Why a datagram from this source must not be answered, or nil.
    static func refusal(address: IPAddress?, port: UInt16, builtinPorts: Set<UInt16>) -> String? {
        if port < 1024 { return "reserved source port" }
        if builtinPorts.contains(port) { return "source port of a UDP builtin" }
        guard let address else { return "unknown source" }
        switch address {
        case .v4(let raw):
            let host = UInt32(bigEndian: raw)
            if host == 0 || host == 0xffff_ffff || host >> 28 == 0xe { return "broadcast/multicast source" }
        case .v6(let bytes, _):
            if bytes[0] == 0xff { return "multicast source" }
            if bytes.allSatisfy({ $0 == 0 }) { return "unspecified source" }
            if let mapped = SocketAddressFormatting.unmapped(bytes) {
                return refusal(address: mapped, port: port, builtinPorts: builtinPorts)
            }
        }
        return nil
    }

    private static func reply(
        _ builtin: Builtin, received: Int, to storage: inout sockaddr_storage, length: socklen_t, fd: Int32,
        scratch: UnsafeMutableRawBufferPointer, state: DatagramBuiltinState
    ) {
        func send(_ pointer: UnsafeRawPointer, _ count: Int) {
            _ = withUnsafePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    sendto(fd, pointer, count, Int32(MSG_DONTWAIT | MSG_NOSIGNAL), $0, length)
                }
            }
        }
        switch builtin {
        case .echo:
            send(scratch.baseAddress!, received)
        case .time:
            let bytes = BuiltinData.timeBytes(unixSeconds: wallClockSeconds())
            bytes.withUnsafeBytes { send($0.baseAddress!, $0.count) }
        case .daytime:
            let bytes = BuiltinData.daytimeBytes(unixSeconds: wallClockSeconds())
            bytes.withUnsafeBytes { send($0.baseAddress!, $0.count) }
        case .chargen:
            let start = (state.chargenLine % 95) * BuiltinData.chargenLineLength
            state.chargenLine = (state.chargenLine + chargenLinesPerReply) % 95
            BuiltinData.chargenBuffer.withUnsafeBytes {
                send($0.baseAddress! + start, chargenLinesPerReply * BuiltinData.chargenLineLength)
            }
        case .discard, .tcpmux:
            break
        }
    }

    /// Counts a dropped datagram; logs at most once per 10 s per service.
    private static func noteDrop(_ state: DatagramBuiltinState, reason: String, runtime: ServiceRuntime) {
        state.dropped += 1
        state.lastDropReason = reason
        let now = monotonicNanoseconds()
        if now - state.lastDropLog >= 10_000_000_000 {
            runtime.supervisor.logger.warning(
                "FAIL: \(runtime.service.logName) dropped \(state.dropped) datagram(s); last: \(reason)")
            state.lastDropLog = now
            state.dropped = 0
        }
    }
}
