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
    private let prefix = " swinetd[\(getpid())]: "

    public init() {}

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var line = "\(LogTime.utcTimestamp())\(prefix)\(event.level): \(event.message)\n"
        line.withUTF8 { buffer in
            var offset = 0
            while offset < buffer.count {
                let n = write(2, buffer.baseAddress! + offset, buffer.count - offset)
                if n <= 0 { if n < 0, errno == EINTR { continue }; return }
                offset += n
            }
        }
    }
}

/// Sends messages to syslog (/dev/log), facility daemon. Used when swinetd runs as a daemon.
public struct SyslogLogHandler: LogHandler {
    public var logLevel: Logger.Level = .info
    public var metadata: Logger.Metadata = [:]

    public init() {
        openlog("swinetd", LOG_PID | LOG_NDELAY, LOG_DAEMON)
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        let priority: Int32
        switch event.level {
        case .trace, .debug: priority = LOG_DEBUG
        case .info: priority = LOG_INFO
        case .notice: priority = LOG_NOTICE
        case .warning: priority = LOG_WARNING
        case .error: priority = LOG_ERR
        case .critical: priority = LOG_CRIT
        }
        sw_syslog(priority, "\(event.message)")
    }
}

enum LogTime {
    /// `YYYY-MM-DDTHH:MM:SSZ`, without Foundation.
    static func utcTimestamp() -> String {
        var seconds = time_t(wallClockSeconds())
        var parts = tm()
        gmtime_r(&seconds, &parts)
        var buffer = [CChar](repeating: 0, count: 32)
        let n = strftime(&buffer, buffer.count, "%Y-%m-%dT%H:%M:%SZ", &parts)
        return String(decoding: buffer.prefix(n).map { UInt8(bitPattern: $0) }, as: UTF8.self)
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
