import CSwinetd
import Logging

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Writes one line per message to stderr: `2026-11-22T05:12:00Z swinetd[42]: info: message`.
/// Used in the foreground. Lines go out in a single write(2) so concurrent writers never interleave.
public struct StderrLogHandler: LogHandler {
    public var logLevel: Logger.Level = .info
    public var metadata: Logger.Metadata = [:]
    /// Taken once: the handler is made after any fork into the background.
    private let prefix = Array(" swinetd[\(getpid())]: ".utf8)

    public init() {}

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        let message = event.message.description
        writeLine(level: event.level, messageCapacity: message.utf8.count) { $0.append(message) }
    }

    /// Writes one line whose message `body` appends in place (ServiceLog's START and EXIT lines
    /// come this way, with no String in between); `messageCapacity` bounds the message.
    func writeLine(level: Logger.Level, messageCapacity: Int, _ body: (inout LineBuffer) -> Void) {
        LineBuffer.with(capacity: 20 + prefix.count + 10 + messageCapacity + 1) { line in
            LogTime.appendUTCTimestamp(to: &line)
            line.append(prefix)
            line.append(level.rawValue)  // the raw value: interpolating the enum goes through reflection
            line.append(": ")
            body(&line)
            if !line.hasRoom(1) { line.dropLast() }
            line.append(UInt8(ascii: "\n"))
            writeAll(2, line.bytes)
        }
    }
}

/// Writes all of `bytes` to `fd`, retrying partial writes and EINTR; gives up on any other error.
private func writeAll(_ fd: Int32, _ bytes: UnsafeBufferPointer<UInt8>) {
    var offset = 0
    while offset < bytes.count {
        let n = write(fd, bytes.baseAddress! + offset, bytes.count - offset)
        if n <= 0 {
            if n < 0, errno == EINTR { continue }
            return
        }
        offset += n
    }
}

/// Sends messages to syslog (/dev/log), facility daemon. Used when swinetd runs as a daemon.
public struct SyslogLogHandler: LogHandler {
    public var logLevel: Logger.Level = .info
    public var metadata: Logger.Metadata = [:]

    public init() {
        sw_openlog()
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        sw_syslog(Self.priority(event.level), "\(event.message)")
    }

    static func priority(_ level: Logger.Level) -> Int32 {
        switch level {
        case .trace, .debug: LOG_DEBUG
        case .info: LOG_INFO
        case .notice: LOG_NOTICE
        case .warning: LOG_WARNING
        case .error: LOG_ERR
        case .critical: LOG_CRIT
        }
    }
}

enum LogTime {
    /// `YYYY-MM-DDTHH:MM:SSZ`, without Foundation, and without gmtime/strftime: this runs for
    /// every START and EXIT line, so it is plain arithmetic (civil date from days since 1970).
    static func utcTimestamp(seconds: Int = wallClockSeconds()) -> String {
        LineBuffer.with(capacity: 20) { line in
            appendUTCTimestamp(to: &line, seconds: seconds)
            return line.string
        }
    }

    /// Appends the 20 bytes of `utcTimestamp` to `line`.
    static func appendUTCTimestamp(to line: inout LineBuffer, seconds: Int = wallClockSeconds()) {
        let days = seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400
        let secondOfDay = seconds - days * 86_400
        // Howard Hinnant's civil_from_days (proleptic Gregorian calendar).
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let shiftedMonth = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * shiftedMonth + 2) / 5 + 1
        let month = shiftedMonth < 10 ? shiftedMonth + 3 : shiftedMonth - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        line.append(width: 20) { text in
            func put(_ value: Int, _ width: Int, at offset: Int) {
                var rest = value
                for index in stride(from: offset + width - 1, through: offset, by: -1) {
                    text[index] = UInt8(ascii: "0") + UInt8(truncatingIfNeeded: rest % 10)
                    rest /= 10
                }
            }
            put(year, 4, at: 0)
            text[4] = UInt8(ascii: "-")
            put(month, 2, at: 5)
            text[7] = UInt8(ascii: "-")
            put(day, 2, at: 8)
            text[10] = UInt8(ascii: "T")
            put(secondOfDay / 3600, 2, at: 11)
            text[13] = UInt8(ascii: ":")
            put(secondOfDay / 60 % 60, 2, at: 14)
            text[16] = UInt8(ascii: ":")
            put(secondOfDay % 60, 2, at: 17)
            text[19] = UInt8(ascii: "Z")
        }
    }
}

/// Makes a peer-supplied or otherwise untrusted string safe for one log line: printable ASCII kept,
/// everything else as `\xNN`, and at most `limit` bytes of input shown. Blanks, `=` and `"` are
/// escaped too, so the text can never pose as another `key=value` field of the line.
public func sanitizedForLog(_ bytes: some Collection<UInt8>, limit: Int = 256) -> String {
    var out = ""
    var count = 0
    for byte in bytes {
        if count == limit {
            out += "..."
            break
        }
        count += 1
        if byte > 0x20, byte < 0x7f, byte != UInt8(ascii: "\\"), byte != UInt8(ascii: "="), byte != UInt8(ascii: "\"") {
            out.unicodeScalars.append(Unicode.Scalar(byte))
        } else {
            let hex = String(byte, radix: 16)
            out += "\\x" + (hex.count == 1 ? "0" + hex : hex)
        }
    }
    return out
}
