import Glibc
import Testing

@testable import SwinetdCore

/// The log stamp is computed by hand (it runs twice per connection); it must agree with
/// gmtime_r + strftime everywhere, leap days and century rules included.
@Suite struct LogTimeTests {
    static func reference(_ seconds: Int) -> String {
        var value = time_t(seconds)
        var parts = tm()
        gmtime_r(&value, &parts)
        var buffer = [CChar](repeating: 0, count: 32)
        let n = strftime(&buffer, buffer.count, "%Y-%m-%dT%H:%M:%SZ", &parts)
        return String(decoding: buffer.prefix(n).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    @Test func agreesWithStrftimeOnEdgesAndAcrossCenturies() {
        let edges = [
            0, 59, 86_399, 86_400,
            951_782_400, 951_868_799, 951_868_800,  // 2000-02-29 (a leap century), its end, 03-01
            1_078_012_800,  // 2004-02-29
            1_709_164_800,  // 2024-02-29
            1_798_761_599,  // 2026-12-31T23:59:59
            2_147_483_647, 2_147_483_648,  // the 32-bit edge
            4_107_542_400,  // 2100-03-01 (2100 is not a leap year)
            253_402_300_799,  // 9999-12-31T23:59:59
        ]
        for seconds in edges {
            #expect(LogTime.utcTimestamp(seconds: seconds) == Self.reference(seconds), "\(seconds)")
        }
        // Every day of four centuries, at a time of day that changes with the day.
        var day = 0
        while day < 146_097 {
            let seconds = day * 86_400 + (day * 7_919) % 86_400
            #expect(LogTime.utcTimestamp(seconds: seconds) == Self.reference(seconds), "\(seconds)")
            day += 1
        }
        #expect(LogTime.utcTimestamp().count == 20)
    }
}
