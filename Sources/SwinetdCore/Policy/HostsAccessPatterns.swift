#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The pattern language of hosts.allow / hosts.deny, as Debian's libwrap (7.6.q) implements it.
/// Every comparison is on ASCII-lowercased bytes (tcpd uses strcasecmp).
///
/// Matching is three-valued: `nil` means "cannot tell" (a pattern tcpd would misread or that
/// swinetd cannot evaluate). The rule that contains it then resolves `nil` to whatever makes the
/// rule stricter, so swinetd's verdict is never more permissive than tcpd's.
enum TCPWrappers {
    static let unknown: [UInt8] = Array("unknown".utf8)
    static let paranoid: [UInt8] = Array("paranoid".utf8)

    // MARK: - Subjects

    /// One side of a connection as the patterns see it (tcpd's `host_info`): the address text and
    /// the host name text, where an unknown name is the word `unknown` and a name that did not
    /// forward-confirm is the word `paranoid`, exactly as tcpd stores them.
    struct Endpoint {
        var address: IPAddress?
        var addressText: [UInt8]
        var nameText: [UInt8]
        /// False for the server: swinetd does not look up its own names, so a pattern that needs
        /// the server's name cannot be told (tcpd would look it up).
        var nameLookedUp = true

        init(address: IPAddress?, name: String?, nameMismatch: Bool) {
            let unmapped = address.map(TCPWrappers.unmap)
            self.address = unmapped
            addressText =
                unmapped.map { TCPWrappers.lowered(Array(TCPWrappers.text(of: $0).utf8)) } ?? TCPWrappers.unknown
            if nameMismatch {
                nameText = TCPWrappers.paranoid
            } else if let name, !name.isEmpty {
                nameText = TCPWrappers.lowered(Array(name.utf8))
            } else {
                nameText = TCPWrappers.unknown
            }
        }

        /// tcpd's HOSTNAME_KNOWN: neither `unknown` nor `paranoid`.
        var nameKnown: Bool { nameText != TCPWrappers.unknown && nameText != TCPWrappers.paranoid }

        var addressSubject: Subject {
            if case .v6(let bytes, _)? = address { return Subject(text: addressText, v6: bytes) }
            return Subject(text: addressText, v6: nil)
        }

        var nameSubject: Subject { Subject(text: nameText, v6: nil) }
    }

    /// A string a `StringPattern` is matched against, with the IPv6 address it spells when it is one
    /// (for `[v6]` patterns, which compare addresses rather than text).
    struct Subject {
        var text: [UInt8]
        var v6: [UInt8]?
    }

    /// Everything a rule is matched against.
    struct Request {
        var daemon: Subject
        var serverPort: UInt16?
        var server: Endpoint
        var client: Endpoint
        var user: Subject
    }

    // MARK: - Patterns

    /// tcpd's `string_match`: used for daemon names, user names, and host names / addresses.
    enum StringPattern: Sendable, Equatable {
        case all
        /// Anything but the word `unknown`.
        case known
        /// `*` and `?` wildcards (tcpd checks these first, before every other form).
        case wildcard([UInt8])
        /// `.example.com`: the string ends with this and is longer.
        case suffix([UInt8])
        /// `192.168.`: the string starts with this.
        case prefix([UInt8])
        case exact([UInt8])
        /// `[v6]`: the subject is this IPv6 address.
        case v6Address([UInt8])
        /// `[...]` that is not an IPv6 address: tcpd never matches it.
        case badBracket

        init(_ token: [UInt8]) {
            let lower = TCPWrappers.lowered(token)
            if lower.contains(UInt8(ascii: "*")) || lower.contains(UInt8(ascii: "?")) {
                self = .wildcard(lower)
            } else if lower.first == UInt8(ascii: ".") {
                self = .suffix(lower)
            } else if lower == Array("all".utf8) {
                self = .all
            } else if lower == Array("known".utf8) {
                self = .known
            } else if lower.last == UInt8(ascii: ".") {
                self = .prefix(lower)
            } else if lower.count >= 2, lower.first == UInt8(ascii: "["), lower.last == UInt8(ascii: "]") {
                if let bytes = TCPWrappers.parseV6(lower.dropFirst().dropLast()) {
                    self = .v6Address(bytes)
                } else {
                    self = .badBracket
                }
            } else {
                self = .exact(lower)
            }
        }

        func matches(_ subject: Subject) -> Bool? {
            let text = subject.text
            switch self {
            case .all: return true
            case .known: return text != TCPWrappers.unknown
            case .wildcard(let pattern): return TCPWrappers.glob(pattern, text)
            case .suffix(let suffix):
                return text.count > suffix.count && text.suffix(suffix.count).elementsEqual(suffix)
            case .prefix(let prefix):
                return text.count >= prefix.count && text.prefix(prefix.count).elementsEqual(prefix)
            case .exact(let exact): return text == exact
            case .v6Address(let bytes): return subject.v6 == bytes
            case .badBracket: return nil
            }
        }

        var isWildcard: Bool {
            if case .wildcard = self { return true }
            return false
        }
    }

    /// tcpd's `host_match`: one client (or server endpoint) pattern.
    indirect enum HostPattern: Sendable, Equatable {
        /// `@netgroup`: not supported; resolved strictly (an allowing rule does not match, a
        /// denying rule does), so an unsupported pattern never widens access.
        case netgroup(String)
        /// `/path`: the patterns read from the file when the rules were loaded. nil: unreadable.
        case file(path: String, entries: [HostPattern]?)
        /// Name and address both known.
        case known
        /// A known host name without a dot.
        case local
        /// `n.n.n.n/m.m.m.m` or `n.n.n.n/len`; host byte order.
        case network4(net: UInt32, mask: UInt32)
        /// `[v6]/len`.
        case network6(net: [UInt8], prefixLength: Int)
        /// Matched against the address text, and against the name when `matchesName`.
        case string(StringPattern, matchesName: Bool)
        /// A pattern tcpd would misread or never match (bad mask, host bits set, ...).
        case invalid

        func matches(_ endpoint: Endpoint) -> Bool? {
            switch self {
            case .netgroup:
                return nil  // cannot be evaluated: resolved strictly, like an unreadable /file
            case .file(_, let entries):
                guard let entries else { return nil }
                return TCPWrappers.any(entries) { $0.matches(endpoint) }
            case .known:
                if endpoint.addressText == TCPWrappers.unknown { return false }
                return endpoint.nameLookedUp ? endpoint.nameKnown : nil
            case .local:
                guard endpoint.nameLookedUp else { return nil }
                return endpoint.nameKnown && !endpoint.nameText.contains(UInt8(ascii: "."))
            case .network4(let net, let mask):
                guard case .v4(let raw)? = endpoint.address else { return false }
                return UInt32(bigEndian: raw) & mask == net
            case .network6(let net, let prefixLength):
                guard case .v6(let bytes, _)? = endpoint.address else { return false }
                return TCPWrappers.samePrefix(bytes, net, prefixLength)
            case .string(let pattern, let matchesName):
                let byAddress = pattern.matches(endpoint.addressSubject)
                if byAddress == true || !matchesName { return byAddress }
                return TCPWrappers.or(byAddress, endpoint.nameLookedUp ? pattern.matches(endpoint.nameSubject) : nil)
            case .invalid:
                return nil
            }
        }

        /// Whether matching may look at the host name (so the caller must look it up).
        var usesName: Bool {
            switch self {
            case .netgroup, .network4, .network6, .invalid: return false
            case .known, .local: return true
            case .file(_, let entries): return entries?.contains { $0.usesName } ?? false
            case .string(let pattern, let matchesName):
                switch pattern {
                case .all, .v6Address, .badBracket: return false
                default: return matchesName
                }
            }
        }
    }

    /// One daemon-list entry: `name`, `port` (Debian: a number matches the server port) and
    /// optionally `@host` (the server endpoint).
    struct DaemonPattern: Sendable, Equatable {
        enum Name: Sendable, Equatable {
            case string(StringPattern)
            /// nil: a number too large to be a port (never matches).
            case port(UInt16?)
        }

        var name: Name
        var host: HostPattern?

        func matches(_ request: Request) -> Bool? {
            let byName: Bool?
            switch name {
            case .string(let pattern):
                byName = pattern.matches(request.daemon)
            case .port(let port):
                if let port {
                    byName = request.serverPort.map { $0 == port }
                } else {
                    byName = false
                }
            }
            guard let host else { return byName }
            return TCPWrappers.and(byName) { host.matches(request.server) }
        }
    }

    /// One client-list entry: a host pattern, optionally `user@` in front.
    struct ClientPattern: Sendable, Equatable {
        var user: StringPattern?
        var host: HostPattern

        func matches(_ request: Request) -> Bool? {
            let byHost = host.matches(request.client)
            guard let user else { return byHost }
            return TCPWrappers.and(byHost) { user.matches(request.user) }
        }

        var usesUser: Bool {
            guard let user else { return false }
            return user != .all
        }
    }

    /// `a b EXCEPT c d EXCEPT e`: `levels` = [[a, b], [c, d], [e]], read right-associatively:
    /// a|b and not (c|d and not e).
    struct PatternList<Element: Sendable & Equatable>: Sendable, Equatable {
        var levels: [[Element]]

        func matches(_ match: (Element) -> Bool?) -> Bool? { matches(from: 0, match) }

        private func matches(from level: Int, _ match: (Element) -> Bool?) -> Bool? {
            guard level < levels.count else { return false }
            let first = TCPWrappers.any(levels[level], match)
            if first == false || level + 1 == levels.count { return first }
            return TCPWrappers.and(first) { TCPWrappers.not(matches(from: level + 1, match)) }
        }

        var all: [Element] { levels.flatMap { $0 } }
    }

    // MARK: - Three-valued logic

    static func any<S: Sequence>(_ items: S, _ match: (S.Element) -> Bool?) -> Bool? {
        var result: Bool? = false
        for item in items {
            switch match(item) {
            case true?: return true
            case nil: result = nil
            case false?: break
            }
        }
        return result
    }

    static func and(_ left: Bool?, _ right: () -> Bool?) -> Bool? {
        if left == false { return false }
        let rightValue = right()
        if rightValue == false { return false }
        if left == true, rightValue == true { return true }
        return nil
    }

    static func or(_ left: Bool?, _ right: Bool?) -> Bool? {
        if left == true || right == true { return true }
        if left == false, right == false { return false }
        return nil
    }

    static func not(_ value: Bool?) -> Bool? { value.map { !$0 } }

    // MARK: - Bytes and addresses

    static func lowered(_ bytes: some Sequence<UInt8>) -> [UInt8] {
        bytes.map { $0 >= 0x41 && $0 <= 0x5a ? $0 | 0x20 : $0 }
    }

    /// `*` any run, `?` any one byte; the whole subject must match. Iterative with one backtrack
    /// point, so a hostile 10 kB name costs O(pattern x name), never exponential time.
    static func glob(_ pattern: [UInt8], _ text: [UInt8]) -> Bool {
        let star = UInt8(ascii: "*")
        let question = UInt8(ascii: "?")
        var p = 0
        var t = 0
        var starP = -1
        var starT = 0
        while t < text.count {
            if p < pattern.count, pattern[p] == question || (pattern[p] != star && pattern[p] == text[t]) {
                p += 1
                t += 1
            } else if p < pattern.count, pattern[p] == star {
                starP = p
                starT = t
                p += 1
            } else if starP >= 0 {
                p = starP + 1
                starT += 1
                t = starT
            } else {
                return false
            }
        }
        while p < pattern.count, pattern[p] == star { p += 1 }
        return p == pattern.count
    }

    /// IPv4-mapped IPv6 addresses are IPv4 here, as in Debian's libwrap (`::ffff:1.2.3.4` matches
    /// `1.2.3.4` and `1.2.3.0/24`). The scope is dropped: tcpd ignores it too.
    static func unmap(_ address: IPAddress) -> IPAddress {
        switch address {
        case .v4: return address
        case .v6(let bytes, _):
            if bytes.count == 16, bytes[0..<10].allSatisfy({ $0 == 0 }), bytes[10] == 0xff, bytes[11] == 0xff {
                let raw = UInt32(bytes[12]) | UInt32(bytes[13]) << 8 | UInt32(bytes[14]) << 16 | UInt32(bytes[15]) << 24
                return .v4(raw)
            }
            return .v6(bytes, scopeID: 0)
        }
    }

    /// inet_ntop text, without a scope.
    static func text(of address: IPAddress) -> String {
        switch address {
        case .v4: return SocketAddressFormatting.string(for: address)
        case .v6(let bytes, _): return SocketAddressFormatting.string(for: .v6(bytes, scopeID: 0))
        }
    }

    /// A numeric IPv6 address (a `%scope` suffix is accepted and ignored, as tcpd does).
    static func parseV6(_ text: some Collection<UInt8>) -> [UInt8]? {
        var body = Array(text)
        if let percent = body.firstIndex(of: UInt8(ascii: "%")) { body = Array(body[..<percent]) }
        guard !body.isEmpty, body.contains(UInt8(ascii: ":")), body.count < 64 else { return nil }
        var address = in6_addr()
        let ok = (body.map { CChar(bitPattern: $0) } + [0]).withUnsafeBufferPointer {
            inet_pton(AF_INET6, $0.baseAddress, &address)
        }
        guard ok == 1 else { return nil }
        return withUnsafeBytes(of: &address) { Array($0) }
    }

    /// A dotted quad in plain decimal (`10.0.0.0`), host byte order. Forms inet_addr would also
    /// take (`010.0.0.0` is octal there, `0x0a.0.0.0` hex, `10.0`) are refused: they are ambiguous.
    static func parseDottedQuad(_ text: some Collection<UInt8>) -> UInt32? {
        let parts = text.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var value: UInt32 = 0
        for part in parts {
            guard let number = decimal(part, max: 255) else { return nil }
            value = value << 8 | UInt32(number)
        }
        return value
    }

    /// A plain decimal number without sign or leading zeros, at most `max`.
    static func decimal(_ text: some Collection<UInt8>, max: Int) -> Int? {
        guard !text.isEmpty, text.count <= 6, text.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
        if text.count > 1, text.first == UInt8(ascii: "0") { return nil }
        var value = 0
        for digit in text { value = value * 10 + Int(digit - 0x30) }
        return value <= max ? value : nil
    }

    static func samePrefix(_ a: [UInt8], _ b: [UInt8], _ bits: Int) -> Bool {
        var remaining = bits
        var index = 0
        while remaining >= 8 {
            if a[index] != b[index] { return false }
            index += 1
            remaining -= 8
        }
        guard remaining > 0 else { return true }
        let mask = UInt8(truncatingIfNeeded: 0xff << (8 - remaining))
        return a[index] & mask == b[index] & mask
    }
}
