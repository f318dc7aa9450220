/// A value in an xinetd attribute that could not be used; the message names the value and why.
struct XinetdValueError: Error {
    var message: String

    init(_ message: String) { self.message = message }
}

/// Parses xinetd `only_from` / `no_access` values into `AddressPattern`s.
///
/// Anything made of digits and dots must be a complete, valid IPv4 address: a typo such as
/// `10.0.0.256` or `10.1` is an error, never a host name that quietly matches nothing (xinetd's
/// inet_aton would read `10.1` as 10.0.0.1). Network prefixes are masked, so `10.1.2.3/8` is 10.0.0.0/8.
enum AddressPatternParser {
    static func parse(_ token: String) throws(XinetdValueError) -> [AddressPattern] {
        guard !token.isEmpty else { throw XinetdValueError("empty address") }
        if token.contains("{") || token.contains("}") { return try factorized(token) }
        if token.contains(",") {
            throw XinetdValueError("address \(token) has a comma in it: separate addresses with spaces")
        }
        if let slash = token.firstIndex(of: "/") {
            return [try cidr(String(token[..<slash]), prefix: String(token[token.index(after: slash)...]), token)]
        }
        if token.hasPrefix(".") {
            let suffix = token.dropFirst()
            guard isHostName(suffix) else { throw XinetdValueError("bad domain \(token)") }
            return [.domain(token.lowercased())]
        }
        if token.utf8.allSatisfy({ ConfigText.isDigit($0) || $0 == UInt8(ascii: ".") }) {
            let octets = try ipv4Octets(token, minimum: 4)
            // xinetd's wildcard form: trailing zero octets stand for "any" (10.0.0.0 is 10/8, 0.0.0.0 is everyone).
            let trailingZeros = octets.reversed().prefix { $0 == 0 }.count
            return [.network(ipv4(octets), prefixLength: 32 - 8 * trailingZeros)]
        }
        if token.contains(":") || token.hasPrefix("[") {
            guard let address = SocketAddressFormatting.parseNumeric(token), address.isIPv6 else {
                throw XinetdValueError("bad IPv6 address \(token)")
            }
            return [.network(address, prefixLength: 128)]
        }
        guard isHostName(Substring(token)) else { throw XinetdValueError("bad address or host name \(token)") }
        return [.hostname(token.lowercased())]
    }

    /// `a.b.c.d/n` or `v6/n`.
    private static func cidr(_ addressText: String, prefix prefixText: String, _ token: String) throws(XinetdValueError)
        -> AddressPattern
    {
        guard let address = SocketAddressFormatting.parseNumeric(addressText) else {
            throw XinetdValueError("bad network address in \(token)")
        }
        let maximum = address.isIPv6 ? 128 : 32
        guard let prefix = ConfigText.decimal(Substring(prefixText)), prefix <= maximum else {
            throw XinetdValueError("bad prefix length in \(token) (0-\(maximum))")
        }
        return .network(masked(address, prefix), prefixLength: prefix)
    }

    /// `a.b.{c,d}`: one network per element, as long as the octets written (`128.138.{209,210}` is two /24s).
    private static func factorized(_ token: String) throws(XinetdValueError) -> [AddressPattern] {
        guard let open = token.firstIndex(of: "{"), token.last == "}",
            token.filter({ $0 == "{" }).count == 1, token.filter({ $0 == "}" }).count == 1
        else { throw XinetdValueError("bad factorized address \(token) (expected a.b.{c,d})") }
        let head = String(token[..<open])
        guard head.hasSuffix("."), head.count > 1 else {
            throw XinetdValueError("bad factorized address \(token): the part before { must end in a dot")
        }
        let headOctets = try ipv4Octets(String(head.dropLast()), minimum: 1, in: token)
        let body = token[token.index(after: open)..<token.index(before: token.endIndex)]
        var patterns: [AddressPattern] = []
        for element in body.split(separator: ",", omittingEmptySubsequences: false) {
            guard !element.isEmpty else { throw XinetdValueError("empty element in \(token)") }
            let octets = headOctets + (try ipv4Octets(String(element), minimum: 1, in: token))
            guard octets.count <= 4 else { throw XinetdValueError("too many octets in \(token)") }
            let padded = octets + [UInt8](repeating: 0, count: 4 - octets.count)
            patterns.append(.network(ipv4(padded), prefixLength: 8 * octets.count))
        }
        return patterns
    }

    /// Dotted decimal octets, each 0-255 without leading zeros (which some parsers read as octal).
    private static func ipv4Octets(_ text: String, minimum: Int, in token: String? = nil) throws(XinetdValueError)
        -> [UInt8]
    {
        let whole = token ?? text
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count >= minimum, parts.count <= 4 else {
            if minimum == 4 {
                throw XinetdValueError(
                    "incomplete IPv4 address \(whole) (write all four octets; trailing .0 octets are wildcards)")
            }
            throw XinetdValueError("bad IPv4 address \(whole)")
        }
        var octets: [UInt8] = []
        for part in parts {
            guard let value = ConfigText.decimal(part), value <= 255, part == "0" || !part.hasPrefix("0") else {
                throw XinetdValueError("bad IPv4 address \(whole)")
            }
            octets.append(UInt8(value))
        }
        return octets
    }

    private static func ipv4(_ octets: [UInt8]) -> IPAddress {
        // Network byte order in memory: the first octet is the lowest byte of s_addr on little-endian hosts.
        let raw = UInt32(octets[0]) | UInt32(octets[1]) << 8 | UInt32(octets[2]) << 16 | UInt32(octets[3]) << 24
        return .v4(raw)
    }

    /// The address with every bit after `prefix` cleared.
    static func masked(_ address: IPAddress, _ prefix: Int) -> IPAddress {
        switch address {
        case .v4(let raw):
            let hostOrder = UInt32(bigEndian: raw)
            let mask: UInt32 = prefix == 0 ? 0 : ~UInt32(0) << (32 - prefix)
            return .v4((hostOrder & mask).bigEndian)
        case .v6(let bytes, let scope):
            var result = bytes
            for index in 0..<16 {
                let bitsKept = max(0, min(8, prefix - index * 8))
                result[index] &= bitsKept == 0 ? 0 : UInt8(truncatingIfNeeded: 0xFF << (8 - bitsKept))
            }
            return .v6(result, scopeID: scope)
        }
    }

    /// Letters, digits, `-`, `_` and dots, not starting or ending with a dot.
    static func isHostName(_ text: Substring) -> Bool {
        guard !text.isEmpty, text.first != ".", text.last != "." else { return false }
        return text.utf8.allSatisfy { byte in
            ConfigText.isDigit(byte) || (byte | 0x20 >= UInt8(ascii: "a") && byte | 0x20 <= UInt8(ascii: "z"))
                || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_") || byte == UInt8(ascii: ".")
        }
    }
}

/// Small value parsers shared by the xinetd reader and the converter.
enum XinetdValues {
    /// `hh:mm-hh:mm` (xinetd `access_times`); both ends inclusive.
    static func timeWindow(_ text: String) throws(XinetdValueError) -> TimeWindow {
        let ends = text.split(separator: "-", omittingEmptySubsequences: false)
        guard ends.count == 2, let start = minuteOfDay(ends[0]), let end = minuteOfDay(ends[1]) else {
            throw XinetdValueError("bad time range \(text) (expected hh:mm-hh:mm)")
        }
        return TimeWindow(startMinute: start, endMinute: end)
    }

    private static func minuteOfDay(_ text: Substring) -> Int? {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, (1...2).contains(parts[0].count), parts[1].count == 2,
            let hours = ConfigText.decimal(parts[0]), let minutes = ConfigText.decimal(parts[1]),
            hours < 24, minutes < 60
        else { return nil }
        return hours * 60 + minutes
    }

    /// A byte count with an optional K, M or G suffix (powers of 1024), as xinetd's sizes.
    static func size(_ text: String) -> UInt64? {
        var digits = Substring(text)
        var multiplier: UInt64 = 1
        switch text.last {
        case "k", "K": multiplier = 1 << 10
        case "m", "M": multiplier = 1 << 20
        case "g", "G": multiplier = 1 << 30
        default: break
        }
        if multiplier != 1 { digits = digits.dropLast() }
        guard let number = ConfigText.decimal(digits) else { return nil }
        let (product, overflow) = UInt64(number).multipliedReportingOverflow(by: multiplier)
        return overflow ? nil : product
    }

    /// xinetd's hard limit for a log file when only the soft one is given: 1% more, at least 5 KiB and at most 20 KiB.
    static func defaultHardLimit(soft: UInt64) -> UInt64 {
        let extra = min(max(soft / 100, 5 * 1024), 20 * 1024)
        let (sum, overflow) = soft.addingReportingOverflow(extra)
        return overflow ? UInt64.max : sum
    }

    /// <syslog.h> facility codes (already shifted, as `openlog` takes them), by xinetd's names.
    static let syslogFacilities: [String: Int32] = [
        "user": 1 << 3, "mail": 2 << 3, "daemon": 3 << 3, "auth": 4 << 3, "lpr": 6 << 3, "news": 7 << 3,
        "uucp": 8 << 3, "authpriv": 10 << 3, "ftp": 11 << 3,
        "local0": 16 << 3, "local1": 17 << 3, "local2": 18 << 3, "local3": 19 << 3,
        "local4": 20 << 3, "local5": 21 << 3, "local6": 22 << 3, "local7": 23 << 3,
    ]

    /// <syslog.h> priorities by xinetd's names.
    static let syslogLevels: [String: Int32] = [
        "emerg": 0, "alert": 1, "crit": 2, "err": 3, "warning": 4, "notice": 5, "info": 6, "debug": 7,
    ]

    /// The default level of `log_type = SYSLOG facility` (LOG_INFO).
    static let defaultSyslogLevel: Int32 = 6
}
