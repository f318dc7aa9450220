/// HAProxy's PROXY protocol header, versions 1 (text) and 2 (binary), as specified in
/// haproxy's doc/proxy-protocol.txt. A pure parser: it is given the bytes read so far and says
/// whether they hold a complete header, need more, or can never be one.
///
/// Bounded: a v1 header is at most 107 bytes (CRLF included); a v2 header at most
/// `maximumV2Length` bytes (16 fixed + addresses + TLVs, which are skipped).
public enum ProxyProtocol {
    public static let maximumV1Length = 107
    /// 16 bytes fixed part + at most 2032 of addresses and TLVs.
    public static let maximumV2Length = 2048
    /// The longest header this parser ever needs to see.
    public static let maximumLength = maximumV2Length

    static let v2Signature: [UInt8] = [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A]
    static let v1Prefix: [UInt8] = Array("PROXY ".utf8)

    /// A complete header.
    public struct Header: Equatable, Sendable {
        /// 1 or 2.
        public var version: Int
        /// Bytes the header occupies; what follows belongs to the application.
        public var length: Int
        /// The client and the address it connected to; nil for v1 `UNKNOWN`, v2 `LOCAL` and v2
        /// families other than TCP over IPv4/IPv6: the connection's own addresses then stay.
        public var source: Endpoint?
        public var destination: Endpoint?
    }

    public struct Endpoint: Equatable, Sendable {
        public var address: IPAddress
        public var port: UInt16
    }

    public enum Outcome: Equatable, Sendable {
        /// The bytes are a valid beginning, and the header does not end within them.
        case needMore
        case header(Header)
        /// Never a valid header; the reason is fit for a log line.
        case invalid(String)
    }

    public static func parse(_ bytes: [UInt8]) -> Outcome {
        guard let first = bytes.first else { return .needMore }
        if first == v2Signature[0] { return parseV2(bytes) }
        if first == v1Prefix[0] { return parseV1(bytes) }
        return .invalid("not a PROXY protocol header")
    }

    // MARK: v1

    private static func parseV1(_ bytes: [UInt8]) -> Outcome {
        let prefixLength = min(bytes.count, v1Prefix.count)
        guard bytes[0..<prefixLength].elementsEqual(v1Prefix[0..<prefixLength]) else {
            return .invalid("not a PROXY protocol header")
        }
        guard let newline = bytes.firstIndex(of: 10) else {
            if bytes.count >= maximumV1Length { return .invalid("v1 header longer than \(maximumV1Length) bytes") }
            return .needMore
        }
        guard newline < maximumV1Length else { return .invalid("v1 header longer than \(maximumV1Length) bytes") }
        guard newline > 0, bytes[newline - 1] == 13 else { return .invalid("v1 header does not end in CRLF") }
        let line = bytes[0..<(newline - 1)]
        guard line.allSatisfy({ $0 >= 32 && $0 < 127 }) else { return .invalid("v1 header has a control byte") }
        let fields = line.split(separator: 32, omittingEmptySubsequences: false).map {
            String(decoding: $0, as: UTF8.self)
        }
        let length = newline + 1
        guard fields.count >= 2, fields[0] == "PROXY" else { return .invalid("v1 header is malformed") }
        switch fields[1] {
        case "UNKNOWN":
            // The sender does not know the client (a health check): the rest is ignored.
            return .header(Header(version: 1, length: length, source: nil, destination: nil))
        case "TCP4", "TCP6":
            guard fields.count == 6 else { return .invalid("v1 \(fields[1]) header needs 4 fields") }
            let wantsV6 = fields[1] == "TCP6"
            guard let source = v1Address(fields[2], v6: wantsV6), let destination = v1Address(fields[3], v6: wantsV6)
            else { return .invalid("v1 header has a bad \(wantsV6 ? "IPv6" : "IPv4") address") }
            guard let sourcePort = v1Port(fields[4]), let destinationPort = v1Port(fields[5]) else {
                return .invalid("v1 header has a bad port")
            }
            return .header(
                Header(
                    version: 1, length: length, source: Endpoint(address: source, port: sourcePort),
                    destination: Endpoint(address: destination, port: destinationPort)))
        default:
            return .invalid("v1 header has an unknown protocol \(fields[1].prefix(8))")
        }
    }

    private static func v1Address(_ text: String, v6: Bool) -> IPAddress? {
        // Numeric only, no brackets, no scope.
        guard !text.isEmpty, !text.contains("["), !text.contains("%") else { return nil }
        guard let address = SocketAddressFormatting.parseNumeric(text), address.isIPv6 == v6 else { return nil }
        return address
    }

    /// 0-65535, decimal, no sign, no leading zero (the specification forbids them).
    private static func v1Port(_ text: String) -> UInt16? {
        guard !text.isEmpty, text.count <= 5, text.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }) else { return nil }
        if text.count > 1, text.hasPrefix("0") { return nil }
        return UInt16(text)
    }

    // MARK: v2

    private static func parseV2(_ bytes: [UInt8]) -> Outcome {
        let prefixLength = min(bytes.count, v2Signature.count)
        guard bytes[0..<prefixLength].elementsEqual(v2Signature[0..<prefixLength]) else {
            return .invalid("not a PROXY protocol header")
        }
        guard bytes.count >= 16 else { return .needMore }
        let versionCommand = bytes[12]
        guard versionCommand >> 4 == 2 else { return .invalid("v2 header has version \(versionCommand >> 4)") }
        let command = versionCommand & 0x0F
        guard command <= 1 else { return .invalid("v2 header has an unknown command \(command)") }
        let family = bytes[13] >> 4
        let transport = bytes[13] & 0x0F
        let addressLength = Int(bytes[14]) << 8 | Int(bytes[15])
        let length = 16 + addressLength
        guard length <= maximumV2Length else {
            return .invalid("v2 header of \(length) bytes is longer than \(maximumV2Length)")
        }
        guard family <= 3, transport <= 2 else { return .invalid("v2 header has an unknown address family") }
        guard bytes.count >= length else { return .needMore }
        if command == 0 {
            // LOCAL: the proxy's own connection (health checks); the real peer stays.
            return .header(Header(version: 2, length: length, source: nil, destination: nil))
        }
        switch (family, transport) {
        case (1, 1):
            guard addressLength >= 12 else { return .invalid("v2 IPv4 header is too short") }
            let body = Array(bytes[16..<28])
            func v4(_ offset: Int) -> IPAddress {
                // Network byte order, as in_addr.s_addr: the bytes as they are, read in memory order.
                .v4(UInt32(body[offset]) | UInt32(body[offset + 1]) << 8 | UInt32(body[offset + 2]) << 16
                    | UInt32(body[offset + 3]) << 24)
            }
            return .header(
                Header(
                    version: 2, length: length, source: Endpoint(address: v4(0), port: port(body, 8)),
                    destination: Endpoint(address: v4(4), port: port(body, 10))))
        case (2, 1):
            guard addressLength >= 36 else { return .invalid("v2 IPv6 header is too short") }
            let body = Array(bytes[16..<52])
            return .header(
                Header(
                    version: 2, length: length,
                    source: Endpoint(address: .v6(Array(body[0..<16]), scopeID: 0), port: port(body, 32)),
                    destination: Endpoint(address: .v6(Array(body[16..<32]), scopeID: 0), port: port(body, 34))))
        case (0, _):
            // UNSPEC: the sender does not know the client; keep the connection's addresses.
            return .header(Header(version: 2, length: length, source: nil, destination: nil))
        case (3, _):
            // AF_UNIX addresses carry nothing ACLs can use; keep the connection's addresses.
            return .header(Header(version: 2, length: length, source: nil, destination: nil))
        default:
            return .invalid("v2 header is not TCP (family \(family), transport \(transport))")
        }
    }

    private static func port(_ body: [UInt8], _ offset: Int) -> UInt16 {
        UInt16(body[offset]) << 8 | UInt16(body[offset + 1])
    }
}
