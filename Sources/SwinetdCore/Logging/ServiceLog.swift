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
        guard fd >= 0 else { return }
        var text = line + "\n"
        if warnedHard { return }
        if let hardLimit, size + UInt64(text.utf8.count) > hardLimit {
            if !warnedHard {
                warnedHard = true
                logger.error("log file \(path) reached its hard limit of \(hardLimit) bytes; no more lines are written to it")
            }
            return
        }
        text.withUTF8 { buffer in
            let n = Glibc.write(fd, buffer.baseAddress, buffer.count)
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

    private struct SuccessFlags {
        let pid, host, userid, exit, duration: Bool
        init(_ fields: Set<LogSettings.SuccessField>) {
            (pid, host, userid) = (fields.contains(.pid), fields.contains(.host), fields.contains(.userid))
            (exit, duration) = (fields.contains(.exit), fields.contains(.duration))
        }
    }

    init(settings: LogSettings, id: String, logger: Logger, file: LimitedLogFile?, json: Bool = false) {
        self.settings = settings
        self.id = id
        self.logger = logger
        self.file = file
        self.json = json
        success = SuccessFlags(settings.onSuccess)
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
        var line = "START: " + id
        if withPID, let pid { line += " pid=\(pid)" }
        if withHost {
            let text = host(peer)
            if !text.isEmpty { line += " " + text }
        }
        emit(line, event: "START", startFields(pid: pid, peer: peer, user: user))
        if withUser, let user, !json { emit("USERID: \(id) \(user)", event: "USERID", [("user", "\(user)")]) }
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
        let withExit = success.exit, withDuration = success.duration
        guard withExit || withDuration else { return }
        let rounded = (seconds * 1000).rounded() / 1000
        var line = "EXIT: " + id
        if withExit { line += status & 0x7f == 0 ? " status=\((status >> 8) & 0xff)" : " signal=\(status & 0x7f)" }
        if success.pid { line += " pid=\(pid)" }
        if withDuration { line += " duration=\(rounded)(sec)" }
        emit(line, event: "EXIT", exitFields(pid: pid, status: status, rounded: rounded))
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
        var seconds = time_t(wallClockSeconds())
        var parts = tm()
        localtime_r(&seconds, &parts)
        var buffer = [CChar](repeating: 0, count: 32)
        let n = strftime(&buffer, buffer.count, "%y/%m/%d@%H:%M:%S", &parts)
        return String(decoding: buffer.prefix(n).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
