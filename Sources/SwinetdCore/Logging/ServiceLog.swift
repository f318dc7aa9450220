import CSwinetd
import Logging

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A log file with xinetd's size limits: a warning once past `softLimit`, nothing more written
/// past `hardLimit`. Reopened on every reload, so rotation works with a SIGHUP.
final class LimitedLogFile {
    let path: String
    private var fd: Int32
    private var size: UInt64
    private let softLimit: UInt64?
    private let hardLimit: UInt64?
    private var warnedSoft = false
    private var warnedHard = false
    private let logger: Logger

    init(path: String, softLimit: UInt64?, hardLimit: UInt64?, logger: Logger) {
        self.path = path
        self.softLimit = softLimit
        self.hardLimit = hardLimit
        self.logger = logger
        fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o640)
        var info = stat()
        size = fd >= 0 && fstat(fd, &info) == 0 ? UInt64(info.st_size) : 0
        if fd < 0 { logger.error("cannot open log file \(path): \(errnoDescription(errno))") }
    }

    deinit { if fd >= 0 { close(fd) } }

    func write(_ line: String) {
        writeLine(capacity: line.utf8.count) { $0.append(line) }
    }

    /// Writes one line whose text `body` appends in place (the newline is added here).
    func writeLine(capacity: Int, _ body: (inout LineBuffer) -> Void) {
        guard fd >= 0, !warnedHard else { return }
        LineBuffer.with(capacity: capacity + 1) { line in
            body(&line)
            if !line.hasRoom(1) { line.dropLast() }
            line.append(UInt8(ascii: "\n"))
            if let hardLimit, size + UInt64(line.count) > hardLimit {
                warnedHard = true
                logger.error("log file \(path) reached its hard limit of \(hardLimit) bytes; no more lines are written to it")
                return
            }
            let n = Glibc.write(fd, line.bytes.baseAddress, line.count)
            if n > 0 { size += UInt64(n) }
        }
        if let softLimit, size > softLimit, !warnedSoft {
            warnedSoft = true
            logger.warning("log file \(path) passed its soft limit of \(softLimit) bytes")
        }
    }
}

/// Where one service's START/EXIT/FAIL lines go, in xinetd.log(5) form, with only the fields its
/// `log_on_success` / `log_on_failure` ask for. With `--log-format json` the same fields go out as
/// one JSON object per line (`event`, `service`, `pid`, `from`, `status`, ...; JSONLogHandler).
/// A class: as a struct it was copied, every field retained, at each of its per-connection calls.
final class ServiceLog {
    let settings: LogSettings
    let id: String
    let logger: Logger
    let file: LimitedLogFile?
    let json: Bool
    /// `settings.onSuccess` as plain flags: START and EXIT run for every connection, and each
    /// lookup in the set hashes.
    private let success: SuccessFlags
    /// Where the text form goes, decided once (see `emitLine`).
    private let sink: TextSink
    /// `START: id` and `EXIT: id` as bytes, and a bound on any line's length without its peer text.
    private let startPrefix: [UInt8], exitPrefix: [UInt8], userPrefix: [UInt8]
    private let lineCapacity: Int

    private struct SuccessFlags {
        let pid, host, userid, exit, duration: Bool
        init(_ fields: Set<LogSettings.SuccessField>) {
            (pid, host, userid) = (fields.contains(.pid), fields.contains(.host), fields.contains(.userid))
            (exit, duration) = (fields.contains(.exit), fields.contains(.duration))
        }
    }

    /// The per-connection lines are written as bytes straight to their destination; only a
    /// handler swinetd does not know (and the JSON form) gets a String through swift-log.
    private enum TextSink {
        case stderr(StderrLogHandler)
        case syslog(facilityAndPriority: Int32?)  // nil: the daemon's own syslog, by level
        case file
        case logger
    }

    init(settings: LogSettings, id: String, logger: Logger, file: LimitedLogFile?, json: Bool = false) {
        self.settings = settings
        self.id = id
        self.logger = logger
        self.file = file
        self.json = json
        success = SuccessFlags(settings.onSuccess)
        switch settings.destination {
        case .file: sink = .file
        case .syslog(let facility, let priority): sink = .syslog(facilityAndPriority: facility | priority)
        case nil:
            if let handler = logger.handler as? StderrLogHandler {
                sink = .stderr(handler)
            } else if logger.handler is SyslogLogHandler {
                sink = .syslog(facilityAndPriority: nil)
            } else {
                sink = .logger
            }
        }
        startPrefix = Array("START: \(id)".utf8)
        exitPrefix = Array("EXIT: \(id)".utf8)
        userPrefix = Array("USERID: \(id) ".utf8)
        lineCapacity = 256 + id.utf8.count
    }

    /// The fields of one line, in order, for the JSON form.
    private typealias Fields = [(String, Logger.MetadataValue)]

    /// `fields` is built only for the JSON form: the text form is the hot path (a START and an
    /// EXIT line per connection) and needs nothing but `line`.
    private func emit(_ line: String, event: String, _ fields: @autoclosure () -> Fields, level: Logger.Level = .info) {
        switch settings.destination {
        case .file:
            if json {
                file?.write(JSONLogHandler.line(level: level, message: line, metadata: [("event", "\(event)"), ("service", "\(id)")] + fields()))
            } else {
                let stamp = LogTime.localStamp()
                file?.write("\(stamp): \(line)")
            }
        case .syslog(let facility, let priority):
            sw_syslog(facility | priority, line)
        case nil:
            guard json else {
                logger.log(level: level, "\(line)")
                return
            }
            var metadata: Logger.Metadata = ["event": "\(event)", "service": "\(id)"]
            for (key, value) in fields() { metadata[key] = value }
            logger.log(level: level, "\(line)", metadata: metadata)
        }
    }

    /// Emits one line whose text `body` appends in place: the START, EXIT and USERID lines, which
    /// run for every connection. `extra` bounds what the line holds beyond `lineCapacity`.
    private func emitLine(
        event: String, _ fields: @autoclosure () -> Fields, extra: Int = 0, level: Logger.Level = .info,
        _ body: (inout LineBuffer) -> Void
    ) {
        let capacity = lineCapacity + extra
        if json {
            emit(LineBuffer.with(capacity: capacity) { line in body(&line); return line.string }, event: event, fields(), level: level)
            return
        }
        switch sink {
        case .logger:
            emit(LineBuffer.with(capacity: capacity) { line in body(&line); return line.string }, event: event, [], level: level)
        case .stderr(let handler):
            guard level >= logger.logLevel else { return }
            handler.writeLine(level: level, messageCapacity: capacity, body)
        case .syslog(let facilityAndPriority):
            guard facilityAndPriority != nil || level >= logger.logLevel else { return }
            LineBuffer.with(capacity: capacity + 1) { line in
                body(&line)
                line.withCString { sw_syslog(facilityAndPriority ?? SyslogLogHandler.priority(level), $0) }
            }
        case .file:
            file?.writeLine(capacity: 24 + capacity) { line in
                LogTime.appendLocalStamp(to: &line)
                line.append(": ")
                body(&line)
            }
        }
    }

    /// ` from=ADDRESS[ via=PROXY]` or ` from=unix pid=N uid=N`; nothing for a wait service's child.
    private func appendHost(_ peer: PeerInfo, to line: inout LineBuffer) {
        if let address = peer.address {
            line.append(" from=")
            line.append(address.description)
            if let proxy = peer.proxiedBy {
                line.append(" via=")
                line.append(proxy.description)
            }
        } else if let creds = peer.unixCredentials {
            line.append(" from=unix pid=")
            line.appendDecimal(creds.pid)
            line.append(" uid=")
            line.appendDecimal(creds.uid)
        }
    }

    private func host(_ peer: PeerInfo) -> String {
        if let address = peer.address { return "from=\(address)" + (peer.proxiedBy.map { " via=\($0)" } ?? "") }
        if let creds = peer.unixCredentials { return "from=unix pid=\(creds.pid) uid=\(creds.uid)" }
        return ""
    }

    private func hostFields(_ peer: PeerInfo) -> Fields {
        if let address = peer.address { return [("from", "\(address)"), ("port", .stringConvertible(Int(peer.port)))] }
        if let creds = peer.unixCredentials {
            return [("from", "unix"), ("peer_pid", .stringConvertible(Int(creds.pid))), ("peer_uid", .stringConvertible(Int(creds.uid)))]
        }
        return []
    }

    private static func join(_ parts: [String]) -> String { parts.filter { !$0.isEmpty }.joined(separator: " ") }

    func start(pid: pid_t?, peer: PeerInfo, user: String?) {
        let withPID = success.pid, withHost = success.host, withUser = success.userid
        guard withPID || withHost || withUser else { return }
        emitLine(event: "START", startFields(pid: pid, peer: peer, user: user)) { line in
            line.append(startPrefix)
            if withPID, let pid {
                line.append(" pid=")
                line.appendDecimal(pid)
            }
            if withHost { appendHost(peer, to: &line) }
        }
        if withUser, let user, !json {
            emitLine(event: "USERID", [("user", "\(user)")], extra: user.utf8.count) { line in
                line.append(userPrefix)
                line.append(user)
            }
        }
    }

    private func startFields(pid: pid_t?, peer: PeerInfo, user: String?) -> Fields {
        let fields = settings.onSuccess
        var extra: Fields = []
        if fields.contains(.pid), let pid { extra.append(("pid", .stringConvertible(Int(pid)))) }
        if fields.contains(.host) { extra += hostFields(peer) }
        if fields.contains(.userid), let user { extra.append(("user", "\(user)")) }
        return extra
    }

    func exit(pid: pid_t, status: Int32, seconds: Double) {
        // As xinetd: an EXIT line only when EXIT or DURATION is asked for (PID alone is a START field).
        let withExit = success.exit, withDuration = success.duration, withPID = success.pid
        guard withExit || withDuration else { return }
        // Clamped before the conversion, which would trap on a value out of Int's range.
        let milliseconds = seconds.isFinite ? Int(min(max(seconds * 1000, 0), 1e15).rounded()) : 0
        emitLine(event: "EXIT", exitFields(pid: pid, status: status, rounded: Double(milliseconds) / 1000)) { line in
            line.append(exitPrefix)
            if withExit {
                if status & 0x7f == 0 {
                    line.append(" status=")
                    line.appendDecimal((status >> 8) & 0xff)
                } else {
                    line.append(" signal=")
                    line.appendDecimal(status & 0x7f)
                }
            }
            if withPID {
                line.append(" pid=")
                line.appendDecimal(pid)
            }
            if withDuration {
                line.append(" duration=")
                line.appendSeconds(milliseconds: milliseconds)
                line.append("(sec)")
            }
        }
    }

    private func exitFields(pid: pid_t, status: Int32, rounded: Double) -> Fields {
        let fields = settings.onSuccess
        var extra: Fields = []
        if fields.contains(.exit) {
            extra.append(status & 0x7f == 0 ? ("status", .stringConvertible(Int((status >> 8) & 0xff))) : ("signal", .stringConvertible(Int(status & 0x7f))))
        }
        if fields.contains(.pid) { extra.append(("pid", .stringConvertible(Int(pid)))) }
        if fields.contains(.duration) { extra.append(("duration", .stringConvertible(rounded))) }
        return extra
    }

    /// The end of an in-process relay (redirect): xinetd's TRAFFIC field.
    func traffic(bytesIn: UInt64, bytesOut: UInt64, seconds: Double, peer: PeerInfo) {
        let fields = settings.onSuccess
        let rounded = (seconds * 1000).rounded() / 1000
        var extra: Fields = fields.contains(.host) ? hostFields(peer) : []
        if fields.contains(.traffic) {
            extra += [("bytes_in", .stringConvertible(Int(bytesIn))), ("bytes_out", .stringConvertible(Int(bytesOut)))]
        }
        if fields.contains(.duration) { extra.append(("duration", .stringConvertible(rounded))) }
        emit(
            Self.join([
                "EXIT: \(id)", fields.contains(.host) ? host(peer) : "",
                fields.contains(.traffic) ? "in=\(bytesIn)(bytes) out=\(bytesOut)(bytes)" : "",
                fields.contains(.duration) ? "duration=\(rounded)(sec)" : "",
            ]), event: "EXIT", extra)
    }

    /// Nothing when `log_on_failure` is empty, as in xinetd.
    func fail(_ reason: String, peer: PeerInfo, user: String?) {
        let fields = settings.onFailure
        guard !fields.isEmpty else { return }
        var extra: Fields = [("reason", "\(reason)")]
        if fields.contains(.host) { extra += hostFields(peer) }
        if fields.contains(.userid), let user { extra.append(("user", "\(user)")) }
        emit(Self.join(["FAIL: \(id) \(reason)", fields.contains(.host) ? host(peer) : ""]), event: "FAIL", extra, level: .notice)
        if fields.contains(.userid), let user, !json { emit("USERID: \(id) \(user)", event: "USERID", [("user", "\(user)")]) }
    }
}

extension LogTime {
    /// xinetd's file-log stamp: `YY/MM/DD@HH:MM:SS` in local time (followed by `: `).
    static func localStamp() -> String {
        LineBuffer.with(capacity: 24) { line in
            appendLocalStamp(to: &line)
            return line.string
        }
    }

    /// Appends `localStamp()` to `line`.
    static func appendLocalStamp(to line: inout LineBuffer) {
        var seconds = time_t(wallClockSeconds())
        var parts = tm()
        localtime_r(&seconds, &parts)
        withUnsafeTemporaryAllocation(of: CChar.self, capacity: 32) { buffer in
            let n = strftime(buffer.baseAddress!, buffer.count, "%y/%m/%d@%H:%M:%S", &parts)
            buffer.baseAddress!.withMemoryRebound(to: UInt8.self, capacity: n) {
                line.append(UnsafeBufferPointer(start: $0, count: n))
            }
        }
    }
}
