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
    /// Whether replies may go as UDP GSO runs (DatagramBatch.sendReplies); off for good once the
    /// kernel answers EIO (the route cannot segment).
    var segmentation = true

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

    /// Answers what is queued on `fd`: at most 256 datagrams per wake-up, received and answered
    /// DatagramBatch.capacity at a time with recvmmsg/sendmmsg. Every datagram still meets the
    /// loop guard, the service's datagram policy and the reply budget on its own, in order.
    static func serve(_ builtin: Builtin, fd: Int32, runtime: ServiceRuntime) {
        let supervisor = runtime.supervisor
        let state = runtime.datagramState
        let batch = DatagramBatch.shared
        var budget = 256
        while budget > 0 {
            let want = min(budget, DatagramBatch.capacity)
            let got = batch.receive(fd: fd, count: want)
            if got < 0 {
                if errno == EINTR { continue }
                return  // EAGAIN, or an ICMP error reported on the socket
            }
            if got == 0 { return }
            budget -= got
            if builtin != .discard {
                answer(builtin, batch: batch, count: got, fd: fd, runtime: runtime, state: state,
                       builtinPorts: supervisor.udpBuiltinPorts)
            }
            if got < want { return }  // drained
        }
    }

    /// Checks and answers datagrams 0..<count of the batch.
    private static func answer(
        _ builtin: Builtin, batch: DatagramBatch, count: Int, fd: Int32, runtime: ServiceRuntime,
        state: DatagramBuiltinState, builtinPorts: Set<UInt16>
    ) {
        let checkPolicy = !runtime.datagramPolicyIsEmpty
        // time and daytime: one reply for the whole batch (received within the same instant).
        var fixed: [UInt8] = []
        switch builtin {
        case .time: fixed = BuiltinData.timeBytes(unixSeconds: wallClockSeconds())
        case .daytime: fixed = BuiltinData.daytimeBytes(unixSeconds: wallClockSeconds())
        default: break
        }
        BuiltinData.chargenBuffer.withUnsafeBytes { chargen in
            fixed.withUnsafeBytes { fixedBytes in
                var replies = 0
                for i in 0..<count {
                    let sender = batch.sender(i)
                    let port = SocketAddressFormatting.port(from: sender)
                    if let reason = refusal(sender: sender, port: port, builtinPorts: builtinPorts) {
                        let address = SocketAddressFormatting.ipAddress(from: sender)
                        noteDrop(state, reason: "\(reason) from \(address.map { "\($0)" } ?? "?") port \(port)", runtime: runtime)
                        continue
                    }
                    if checkPolicy, let address = SocketAddressFormatting.ipAddress(from: sender),
                        let reason = runtime.datagramRefusal(from: address, port: port)
                    {
                        noteDrop(state, reason: "\(reason) from \(address)", runtime: runtime)
                        continue
                    }
                    guard state.takeToken() else {
                        noteDrop(state, reason: "over the reply rate", runtime: runtime)
                        continue
                    }
                    switch builtin {
                    case .echo:
                        batch.setReply(replies, to: i, bytes: batch.payload(i), count: batch.length(i))
                    case .time, .daytime:
                        batch.setReply(replies, to: i, bytes: fixedBytes.baseAddress!, count: fixedBytes.count)
                    case .chargen:
                        let start = (state.chargenLine % 95) * BuiltinData.chargenLineLength
                        state.chargenLine = (state.chargenLine + chargenLinesPerReply) % 95
                        batch.setReply(replies, to: i, bytes: chargen.baseAddress! + start,
                                       count: chargenLinesPerReply * BuiltinData.chargenLineLength)
                    case .discard, .tcpmux:
                        continue
                    }
                    replies += 1
                }
                batch.sendReplies(fd: fd, count: replies, segmentation: &state.segmentation)
            }
        }
    }

    /// `refusal(address:port:builtinPorts:)` straight from the socket address, without building an
    /// IPAddress (no allocation per datagram); the same answers.
    static func refusal(sender: UnsafePointer<sockaddr>, port: UInt16, builtinPorts: Set<UInt16>) -> String? {
        if port < 1024 { return "reserved source port" }
        if builtinPorts.contains(port) { return "source port of a UDP builtin" }
        switch Int32(sender.pointee.sa_family) {
        case AF_INET:
            let raw = sender.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee.sin_addr.s_addr }
            return v4Refusal(UInt32(bigEndian: raw))
        case AF_INET6:
            return sender.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { sin6 in
                withUnsafeBytes(of: sin6.pointee.sin6_addr) { b in
                    if b[0] == 0xff { return "multicast source" }
                    var zeroTo10 = true
                    for k in 0..<10 where b[k] != 0 { zeroTo10 = false }
                    if zeroTo10 && b[10] == 0 && b[11] == 0 && b[12] == 0 && b[13] == 0 && b[14] == 0 && b[15] == 0 {
                        return "unspecified source"
                    }
                    if zeroTo10 && b[10] == 0xff && b[11] == 0xff {
                        return v4Refusal(UInt32(b[12]) << 24 | UInt32(b[13]) << 16 | UInt32(b[14]) << 8 | UInt32(b[15]))
                    }
                    return nil
                }
            }
        default:
            return "unknown source"
        }
    }

    private static func v4Refusal(_ host: UInt32) -> String? {
        if host == 0 || host == 0xffff_ffff || host >> 28 == 0xe { return "broadcast/multicast source" }
        return nil
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
