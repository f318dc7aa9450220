import Testing

@testable import SwinetdCore

/// The START/EXIT lines and the child's environment are written as bytes, by hand; they must say
/// exactly what the String forms they replaced said.
@Suite struct LineBufferTests {
    static func text(capacity: Int = 256, _ body: (inout LineBuffer) -> Void) -> String {
        LineBuffer.with(capacity: capacity) { line in
            body(&line)
            return line.string
        }
    }

    @Test func decimalsAgreeWithSwift() {
        var values: [Int] = [0, 1, 9, 10, 99, 100, 65_535, Int(Int32.max), Int(Int32.min), Int.max, Int.min + 1, -1, -10]
        var value = 7
        while value < Int.max / 13 {
            values.append(value)
            values.append(-value)
            value = value * 13 + 5
        }
        for value in values {
            #expect(Self.text { $0.appendDecimal(value) } == "\(value)")
        }
        #expect(Self.text { $0.appendDecimal(UInt16(65_535)) } == "65535")
        #expect(Self.text { $0.appendDecimal(Int32(-2_147_483_648)) } == "-2147483648")
    }

    /// The EXIT line's duration used to be the Double `ms / 1000` interpolated.
    @Test func secondsAgreeWithTheDoubleTheyReplaced() {
        var samples = Array(0...2_100)
        samples += [9_999, 10_000, 10_001, 59_990, 86_400_000, 123_456_789, 3_600_000_001]
        for milliseconds in samples {
            let expected = "\(Double(milliseconds) / 1000)"
            #expect(Self.text { $0.appendSeconds(milliseconds: milliseconds) } == expected, "\(milliseconds)")
        }
    }

    @Test func appendsStopAtTheCapacityInsteadOfOverflowing() {
        #expect(Self.text(capacity: 5) { $0.append("START: a-long-service-name") } == "START")
        #expect(Self.text(capacity: 6) { line in
            line.append("abc")
            line.appendDecimal(123_456)  // does not fit: left out whole, never a partial number
            line.append("de")
        } == "abcde")
        #expect(Self.text(capacity: 3) { $0.appendDecimal(-123) } == "")  // no lone minus sign
        #expect(Self.text(capacity: 4) { $0.appendDecimal(-123) } == "-123")
        #expect(Self.text(capacity: 4) { line in
            line.append("ab")
            line.append(String(repeating: "é", count: 10))
        }.utf8.count == 4)
        let cString = LineBuffer.with(capacity: 3) { line in
            line.append("abcdef")
            return line.withCString { String(cString: $0) }
        }
        #expect(cString == "ab")  // the NUL takes the last byte
    }

    @Test func utcTimestampIsTwentyBytesInLine() {
        let line = Self.text { line in
            line.append("[")
            LogTime.appendUTCTimestamp(to: &line, seconds: 1_798_761_599)
            line.append("]")
        }
        #expect(line == "[2026-12-31T23:59:59Z]")
    }

    @Test func childEnvironmentHoldsEachEntryWithItsNUL() {
        var environment = ChildEnvironment(capacity: 8)  // grows past its first capacity
        environment.add("PROTO=", "TCP")
        environment.add("TCPREMOTEIP=", "192.0.2.7")
        environment.add("TCPREMOTEPORT=", decimal: UInt16(65_535))
        environment.add("UNIXREMOTEPID=", decimal: Int32(-1))
        environment.add("TCPLOCALPORT=", decimal: 0)
        environment.add(contentsOf: ["SSL_PROTOCOL=TLSv1.3", "EMPTY="])
        environment.add("CUT=a\u{0}b")
        let expected = [
            "PROTO=TCP", "TCPREMOTEIP=192.0.2.7", "TCPREMOTEPORT=65535", "UNIXREMOTEPID=-1", "TCPLOCALPORT=0",
            "SSL_PROTOCOL=TLSv1.3", "EMPTY=", "CUT=a",
        ]
        #expect(environment.count == expected.count)
        #expect(environment.entries == expected)
        let seen = environment.withEntryPointers { pointers in pointers.map { String(cString: $0) } }
        #expect(seen == expected)
        #expect(ChildEnvironment(["A=1", "B=2"]).entries == ["A=1", "B=2"])
        #expect(ChildEnvironment().withEntryPointers { $0.count } == 0)
    }
}
