import CSwinetd

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Conversions between `IPAddress` and the C socket address structures.
public enum SocketAddressFormatting {
    /// Text form of an address (inet_ntop), with an IPv4-mapped IPv6 address shown as IPv4.
    public static func string(for address: IPAddress) -> String {
        switch address {
        case .v4(let raw):
            return dottedQuad(raw)
        case .v6(let bytes, let scope):
            if let mapped = unmapped(bytes) { return string(for: mapped) }
            var addr = in6_addr()
            withUnsafeMutableBytes(of: &addr) { dst in
                for i in 0..<16 { dst[i] = bytes[i] }
            }
            let text = withUnsafeMutableBytes(of: &addr) { src in
                withUnsafeTemporaryAllocation(of: CChar.self, capacity: Int(INET6_ADDRSTRLEN) + 1) { buffer in
                    inet_ntop(AF_INET6, src.baseAddress, buffer.baseAddress, socklen_t(buffer.count)) == nil
                        ? "?" : String(cString: buffer.baseAddress!)
                }
            }
            return scope == 0 ? text : "\(text)%\(scope)"
        }
    }

    /// `a.b.c.d` from an `in_addr.s_addr`, written directly: glibc's inet_ntop formats IPv4 with
    /// sprintf, which was most of the cost of the peer's text (used for every child's environment
    /// and START line). At most 15 bytes: a small string, nothing allocated.
    static func dottedQuad(_ raw: UInt32) -> String {
        withUnsafeBytes(of: raw) { octets in  // memory order is network order
            String(unsafeUninitializedCapacity: 15) { text in
                var count = 0
                for index in 0..<4 {
                    if index > 0 {
                        text[count] = UInt8(ascii: ".")
                        count += 1
                    }
                    let octet = octets[index]
                    if octet >= 100 {
                        text[count] = UInt8(ascii: "0") + octet / 100
                        count += 1
                    }
                    if octet >= 10 {
                        text[count] = UInt8(ascii: "0") + octet / 10 % 10
                        count += 1
                    }
                    text[count] = UInt8(ascii: "0") + octet % 10
                    count += 1
                }
                return count
            }
        }
    }

    /// The IPv4 address inside `::ffff:a.b.c.d`, if it is one.
    static func unmapped(_ bytes: [UInt8]) -> IPAddress? {
        guard bytes.count == 16, bytes[0..<10].allSatisfy({ $0 == 0 }), bytes[10] == 0xff, bytes[11] == 0xff
        else { return nil }
        let raw = UInt32(bytes[12]) | UInt32(bytes[13]) << 8 | UInt32(bytes[14]) << 16 | UInt32(bytes[15]) << 24
        return .v4(raw)
    }

    /// Parses a numeric IPv4 or IPv6 literal (brackets allowed for IPv6, `%scope` allowed). nil if not numeric.
    public static func parseNumeric(_ text: String) -> IPAddress? {
        var text = text
        if text.hasPrefix("["), text.hasSuffix("]") { text = String(text.dropFirst().dropLast()) }
        var scope: UInt32 = 0
        if let percent = text.firstIndex(of: "%") {
            let scopeText = String(text[text.index(after: percent)...])
            text = String(text[..<percent])
            if let number = UInt32(scopeText) {
                scope = number
            } else {
                scope = if_nametoindex(scopeText)
                if scope == 0 { return nil }
            }
        }
        var v4 = in_addr()
        if !text.contains(":"), inet_pton(AF_INET, text, &v4) == 1 {
            return .v4(v4.s_addr)
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 {
            let bytes = withUnsafeBytes(of: &v6) { Array($0) }
            return .v6(bytes, scopeID: scope)
        }
        return nil
    }

    /// Resolves a host name or literal to its addresses (getaddrinfo, numeric first). Empty on failure.
    public static func resolve(_ host: String) -> [IPAddress] {
        if let numeric = parseNumeric(host) { return [numeric] }
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var result: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, nil, &hints, &result) == 0, let first = result else { return [] }
        defer { freeaddrinfo(first) }
        var addresses: [IPAddress] = []
        var cursor: UnsafeMutablePointer<addrinfo>? = first
        while let info = cursor {
            if let sa = info.pointee.ai_addr, let address = ipAddress(from: sa), !addresses.contains(address) {
                addresses.append(address)
            }
            cursor = info.pointee.ai_next
        }
        return addresses
    }

    /// Reads the IP address out of a `sockaddr_in` or `sockaddr_in6`.
    public static func ipAddress(from sa: UnsafePointer<sockaddr>) -> IPAddress? {
        switch Int32(sa.pointee.sa_family) {
        case AF_INET:
            return sa.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { .v4($0.pointee.sin_addr.s_addr) }
        case AF_INET6:
            return sa.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { sin6 in
                var addr = sin6.pointee.sin6_addr
                let bytes = withUnsafeBytes(of: &addr) { Array($0) }
                return .v6(bytes, scopeID: sin6.pointee.sin6_scope_id)
            }
        default:
            return nil
        }
    }

    /// The port of a `sockaddr_in` or `sockaddr_in6`, in host byte order.
    public static func port(from sa: UnsafePointer<sockaddr>) -> UInt16 {
        switch Int32(sa.pointee.sa_family) {
        case AF_INET:
            return sa.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { UInt16(bigEndian: $0.pointee.sin_port) }
        case AF_INET6:
            return sa.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) {
                UInt16(bigEndian: $0.pointee.sin6_port)
            }
        default:
            return 0
        }
    }

    /// Fills `storage` with the socket address for `address:port`; returns its length.
    public static func fill(_ storage: inout sockaddr_storage, address: IPAddress, port: UInt16) -> socklen_t {
        storage = sockaddr_storage()
        switch address {
        case .v4(let raw):
            return withUnsafeMutableBytes(of: &storage) { raw2 in
                let sin = raw2.baseAddress!.assumingMemoryBound(to: sockaddr_in.self)
                sin.pointee.sin_family = sa_family_t(AF_INET)
                sin.pointee.sin_port = port.bigEndian
                sin.pointee.sin_addr.s_addr = raw
                return socklen_t(MemoryLayout<sockaddr_in>.size)
            }
        case .v6(let bytes, let scope):
            return withUnsafeMutableBytes(of: &storage) { raw2 in
                let sin6 = raw2.baseAddress!.assumingMemoryBound(to: sockaddr_in6.self)
                sin6.pointee.sin6_family = sa_family_t(AF_INET6)
                sin6.pointee.sin6_port = port.bigEndian
                sin6.pointee.sin6_scope_id = scope
                withUnsafeMutableBytes(of: &sin6.pointee.sin6_addr) { dst in
                    for i in 0..<16 { dst[i] = bytes[i] }
                }
                return socklen_t(MemoryLayout<sockaddr_in6>.size)
            }
        }
    }
}
