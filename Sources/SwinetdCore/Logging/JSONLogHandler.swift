import Logging

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// `--log-format json`: one JSON object per line on stderr, for log shippers. Every line has
/// `ts` (UTC, RFC 3339), `level`, `daemon_pid` and `message`; service events add `event`
/// (START, EXIT, FAIL), `service`, and the fields the service logs (`pid`, `from`, `port`,
/// `status` or `signal`, `duration`, `reason`, `user`, `bytes_in`, `bytes_out`). Numbers are JSON
/// numbers; strings are escaped (RFC 8259), so peer-supplied text cannot break the line.
public struct JSONLogHandler: LogHandler {
    public var logLevel: Logger.Level = .info
    public var metadata: Logger.Metadata = [:]
    private let daemonPID = Int(getpid())

    public init() {}

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    static func line(level: Logger.Level, message: String, metadata: [(String, Logger.MetadataValue)], pid: Int? = nil) -> String {
        var json = JSONText()
        json.beginObject()
        json.string("ts", LogTime.utcTimestamp())
        json.string("level", "\(level)")
        if let pid { json.number("daemon_pid", pid) }
        for (key, value) in metadata {
            switch value {
            case .stringConvertible(let number as Int): json.number(key, number)
            case .stringConvertible(let number as Double): json.number(key, number)
            default: json.string(key, "\(value)")
            }
        }
        json.string("message", message)
        json.endObject()
        return json.text
    }

    public func log(event: LogEvent) {
        var merged = metadata
        if let extra = event.metadata { merged.merge(extra) { $1 } }
        let order = ["event", "service", "pid", "from", "port", "status", "signal", "duration", "reason", "user"]
        var fields: [(String, Logger.MetadataValue)] = []
        for key in order { if let value = merged.removeValue(forKey: key) { fields.append((key, value)) } }
        for (key, value) in merged.sorted(by: { $0.key < $1.key }) { fields.append((key, value)) }
        var text = Self.line(level: event.level, message: "\(event.message)", metadata: fields, pid: daemonPID) + "\n"
        text.withUTF8 { buffer in
            var offset = 0
            while offset < buffer.count {
                let n = write(2, buffer.baseAddress! + offset, buffer.count - offset)
                if n <= 0 { if n < 0, errno == EINTR { continue }; return }
                offset += n
            }
        }
    }
}
