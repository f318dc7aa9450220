#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// xinetd's `only_from` / `no_access` decision: when both lists match, the most specific match wins
/// (a longer prefix beats a shorter one; a host name beats any address pattern; a longer domain
/// beats a shorter one); a tie denies. An empty `only_from` denies everyone; an absent one allows
/// everyone not in `no_access`. A host-name pattern never matches a client whose name is unknown,
/// so a failed or timed-out lookup can only deny (Debian #65757).
public enum AddressAccess {
    /// Returns nil when allowed, or the reason when denied.
    public static func denial(
        _ policy: AccessPolicy, address: IPAddress, hostName: String?
    ) -> String? {
        let denyScore = bestMatch(policy.noAccess, address: address, hostName: hostName)
        guard let onlyFrom = policy.onlyFrom else { return denyScore == nil ? nil : "address" }
        guard let allowScore = bestMatch(onlyFrom, address: address, hostName: hostName) else { return "address" }
        if let denyScore, denyScore >= allowScore { return "address" }
        return nil
    }

    /// The specificity of the best pattern in `patterns` that matches, or nil.
    static func bestMatch(_ patterns: [AddressPattern], address: IPAddress, hostName: String?) -> Int? {
        var best: Int?
        for pattern in patterns {
            guard let score = specificity(of: pattern, address: address, hostName: hostName) else { continue }
            best = max(best ?? score, score)
        }
        return best
    }

    static func specificity(of pattern: AddressPattern, address: IPAddress, hostName: String?) -> Int? {
        switch pattern {
        case .network(let network, let prefix):
            return matches(address, network: network, prefixLength: prefix) ? prefix : nil
        case .hostname(let name):
            guard let hostName, hostName.lowercased() == name.lowercased() else { return nil }
            return 1000
        case .domain(let suffix):
            guard let hostName else { return nil }
            let host = hostName.lowercased()
            let tail = suffix.lowercased()
            guard host.hasSuffix(tail), host.count > tail.count else { return nil }
            return 500 + tail.split(separator: ".").count
        }
    }

    /// Prefix match; an IPv4 network also matches the v4-mapped IPv6 form of its addresses.
    public static func matches(_ address: IPAddress, network: IPAddress, prefixLength: Int) -> Bool {
        switch (address, network) {
        case (.v4(let a), .v4(let n)):
            guard prefixLength > 0 else { return true }
            let shift = UInt32(32 - min(prefixLength, 32))
            let mask: UInt32 = prefixLength >= 32 ? .max : ~((1 << shift) - 1)
            return UInt32(bigEndian: a) & mask == UInt32(bigEndian: n) & mask
        case (.v6(let bytes, _), .v4):
            guard let mapped = SocketAddressFormatting.unmapped(bytes) else { return false }
            return matches(mapped, network: network, prefixLength: prefixLength)
        case (.v6(let a, _), .v6(let n, _)):
            var remaining = min(prefixLength, 128)
            for i in 0..<16 where remaining > 0 {
                let bits = min(8, remaining)
                let mask = UInt8(truncatingIfNeeded: 0xff << (8 - bits))
                if a[i] & mask != n[i] & mask { return false }
                remaining -= bits
            }
            return true
        case (.v4, .v6):
            return false
        }
    }

    /// Whether `windows` allows a connection now (local time). Empty: always.
    public static func withinAccessTimes(_ windows: [TimeWindow], unixSeconds: Int = wallClockSeconds()) -> Bool {
        guard !windows.isEmpty else { return true }
        var seconds = time_t(unixSeconds)
        var parts = tm()
        localtime_r(&seconds, &parts)
        let minute = Int(parts.tm_hour) * 60 + Int(parts.tm_min)
        return windows.contains { $0.contains(minuteOfDay: minute) }
    }
}
