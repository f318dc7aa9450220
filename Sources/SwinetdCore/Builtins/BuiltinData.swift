#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The bytes the builtin services send, computed per RFC.
public enum BuiltinData {
    /// RFC 864 chargen: the 95 printable ASCII characters form a ring; line N holds characters
    /// N..N+71 (mod 95) followed by CRLF. The stream repeats every 95 lines.
    public static let chargenLineLength = 74
    public static let chargenCycleLength = 95 * chargenLineLength

    public static func chargenLine(_ n: Int) -> [UInt8] {
        var line = [UInt8]()
        line.reserveCapacity(chargenLineLength)
        for k in 0..<72 { line.append(UInt8(32 + (n + k) % 95)) }
        line.append(13)
        line.append(10)
        return line
    }

    /// One full cycle plus enough of the next to write `chargenWindow` bytes from any offset in
    /// the cycle with a single send.
    static let chargenWindow = 65536
    static let chargenBuffer: [UInt8] = {
        var cycle = [UInt8]()
        for n in 0..<95 { cycle += chargenLine(n) }
        var buffer = cycle
        while buffer.count < chargenCycleLength + chargenWindow { buffer += cycle }
        return buffer
    }()

    /// RFC 868 time: seconds since 1900-01-01 UTC as a 32-bit big-endian number, wrapping in 2036.
    public static func timeBytes(unixSeconds: Int) -> [UInt8] {
        let value = UInt32(truncatingIfNeeded: Int64(unixSeconds) + 2_208_988_800)
        return [UInt8(value >> 24), UInt8((value >> 16) & 0xff), UInt8((value >> 8) & 0xff), UInt8(value & 0xff)]
    }

    /// RFC 867 daytime: the ctime(3) form in local time, `Sun Nov 22 04:02:57 2026\r\n`, as
    /// openbsd-inetd and FreeBSD inetd send it.
    public static func daytimeBytes(unixSeconds: Int) -> [UInt8] {
        var seconds = time_t(unixSeconds)
        var parts = tm()
        localtime_r(&seconds, &parts)
        var buffer = [CChar](repeating: 0, count: 64)
        let n = strftime(&buffer, buffer.count, "%a %b %e %H:%M:%S %Y\r\n", &parts)
        return buffer.prefix(n).map { UInt8(bitPattern: $0) }
    }
}
