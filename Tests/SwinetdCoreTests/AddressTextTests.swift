import Glibc
import Testing

@testable import SwinetdCore

/// The text form of addresses (System/SocketAddress.swift), which every child's environment and
/// every START line carry: swinetd's own IPv4 formatter must agree with inet_ntop(3) exactly.
@Suite struct AddressTextTests {
    static func inetNtop(_ raw: UInt32) -> String {
        var addr = in_addr(s_addr: raw)
        var buffer = [CChar](repeating: 0, count: 16)
        _ = inet_ntop(AF_INET, &addr, &buffer, 16)
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    static func raw(_ a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8) -> UInt32 {
        var value: UInt32 = 0
        withUnsafeMutableBytes(of: &value) { $0[0] = a; $0[1] = b; $0[2] = c; $0[3] = d }
        return value
    }

    @Test func dottedQuadAgreesWithInetNtop() {
        // Every octet at each digit-count boundary, in every position.
        let edges: [UInt8] = [0, 1, 9, 10, 11, 99, 100, 101, 199, 200, 249, 250, 255]
        for a in edges {
            for b in edges {
                for (c, d) in zip(edges, edges.reversed()) {
                    let value = Self.raw(a, b, c, d)
                    #expect(SocketAddressFormatting.dottedQuad(value) == Self.inetNtop(value))
                }
            }
        }
        // And a spread of others (a fixed linear congruential sequence, so a failure repeats).
        var state: UInt32 = 12345
        for _ in 0..<5000 {
            state = state &* 1_664_525 &+ 1_013_904_223
            #expect(SocketAddressFormatting.dottedQuad(state) == Self.inetNtop(state))
        }
        #expect(IPAddress.v4(Self.raw(127, 0, 0, 1)).description == "127.0.0.1")
        #expect(IPAddress.v4(Self.raw(255, 255, 255, 255)).description == "255.255.255.255")
    }

    @Test func ipv6TextIsInetNtopsWithMappedAddressesShownAsIPv4() {
        var loopback = [UInt8](repeating: 0, count: 16)
        loopback[15] = 1
        #expect(IPAddress.v6(loopback, scopeID: 0).description == "::1")
        #expect(IPAddress.v6([0xfe, 0x80] + [UInt8](repeating: 0, count: 13) + [7], scopeID: 3).description == "fe80::7%3")
        let mapped = [UInt8](repeating: 0, count: 10) + [0xff, 0xff, 192, 0, 2, 33]
        #expect(IPAddress.v6(mapped, scopeID: 0).description == "192.0.2.33")
        let documentation: [UInt8] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x12, 0x34]
        #expect(IPAddress.v6(documentation, scopeID: 0).description == "2001:db8::1234")
    }
}
