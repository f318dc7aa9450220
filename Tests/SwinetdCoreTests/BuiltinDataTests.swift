import Testing

@testable import SwinetdCore

@Suite struct BuiltinDataTests {
    /// The oracle from RFC 864: line N holds ring[(N + k) % 95] for k in 0..<72, then CRLF.
    private func oracleLine(_ n: Int) -> [UInt8] {
        let ring = Array(UInt8(32)...UInt8(126))
        return (0..<72).map { ring[(n + $0) % 95] } + [13, 10]
    }

    @Test func chargenLineZeroStartsWithSpace() {
        let line = BuiltinData.chargenLine(0)
        #expect(line.count == 74)
        #expect(line.first == 32)
        #expect(Array(line.suffix(2)) == [13, 10])
    }

    @Test func chargenBufferMatchesRingForThreeCycles() {
        let buffer = BuiltinData.chargenBuffer
        for n in 0..<(95 * 3) where (n + 1) * 74 <= buffer.count {
            #expect(Array(buffer[(n * 74)..<((n + 1) * 74)]) == oracleLine(n), "line \(n)")
        }
        // Any window of `chargenWindow` bytes from an offset inside one cycle is available.
        #expect(buffer.count >= BuiltinData.chargenCycleLength + BuiltinData.chargenWindow)
    }

    @Test(arguments: [0, 1_700_000_000, 2_085_978_495, 2_085_978_496, 2_085_978_497, 4_000_000_000])
    func timeIsSecondsSince1900ModuloTwoToThe32(unix: Int) {
        let bytes = BuiltinData.timeBytes(unixSeconds: unix)
        let value = UInt64(bytes[0]) << 24 | UInt64(bytes[1]) << 16 | UInt64(bytes[2]) << 8 | UInt64(bytes[3])
        #expect(value == UInt64((Int64(unix) + 2_208_988_800) % (1 << 32)))
    }

    @Test func daytimeIsCtimeFormWithCRLF() {
        let text = String(decoding: BuiltinData.daytimeBytes(unixSeconds: 0), as: UTF8.self)
        #expect(text.hasSuffix("\r\n"))
        #expect(text.utf8.count == 26)  // "Thu Jan  1 00:00:00 1970\r\n" in any time zone
    }
}

@Suite struct DatagramGuardTests {
    @Test func refusesReservedAndBuiltinSourcePorts() {
        let loopback = SocketAddressFormatting.parseNumeric("127.0.0.1")
        #expect(DatagramBuiltin.refusal(address: loopback, port: 19, builtinPorts: []) != nil)
        #expect(DatagramBuiltin.refusal(address: loopback, port: 1023, builtinPorts: []) != nil)
        #expect(DatagramBuiltin.refusal(address: loopback, port: 17019, builtinPorts: [17019]) != nil)
        #expect(DatagramBuiltin.refusal(address: loopback, port: 40000, builtinPorts: [17019]) == nil)
    }

    @Test func refusesBroadcastMulticastAndUnspecifiedSources() {
        for text in ["255.255.255.255", "224.0.0.1", "0.0.0.0", "ff02::1", "::", "::ffff:224.0.0.1"] {
            let address = SocketAddressFormatting.parseNumeric(text)
            #expect(address != nil, "\(text)")
            #expect(DatagramBuiltin.refusal(address: address, port: 40000, builtinPorts: []) != nil, "\(text)")
        }
        #expect(DatagramBuiltin.refusal(address: SocketAddressFormatting.parseNumeric("::1"), port: 40000, builtinPorts: []) == nil)
    }
}

@Suite struct LogSanitizingTests {
    @Test func escapesControlBytesAndBoundsLength() {
        #expect(sanitizedForLog(Array("a\r\nb\u{0}".utf8)) == "a\\x0d\\x0ab\\x00")
        #expect(sanitizedForLog([UInt8](repeating: 65, count: 1000), limit: 10) == "AAAAAAAAAA...")
        #expect(sanitizedForLog([0xff, 0x5c]) == "\\xff\\x5c")
    }
}

@Suite struct SocketAddressTests {
    @Test func parsesAndFormatsAddresses() {
        #expect(SocketAddressFormatting.parseNumeric("127.0.0.1")?.description == "127.0.0.1")
        #expect(SocketAddressFormatting.parseNumeric("[::1]")?.description == "::1")
        #expect(SocketAddressFormatting.parseNumeric("::ffff:10.1.2.3")?.description == "10.1.2.3")
        #expect(SocketAddressFormatting.parseNumeric("not-an-address") == nil)
        #expect(SocketAddressFormatting.parseNumeric("1.2.3") == nil)
    }
}
