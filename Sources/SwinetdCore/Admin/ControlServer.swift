#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The control socket (`--control PATH`, default /run/swinetd.sock): a Unix stream socket, mode
/// 0600, that only root and the daemon's own uid may use (SO_PEERCRED). One command line per
/// connection; the answer is `ok` or `error: MESSAGE` on the first line, then the body, then EOF.
///
///     status            the human table          status json      the same as JSON
///     pause NAME [SECS]  close NAME's sockets     resume NAME      re-open them
///     reload            as SIGHUP                check            `swinetd check` of the files on disk
enum ControlProtocol {
    static let defaultPath = "/run/swinetd.sock"

    static func answer(_ result: Result<String, AdminError>) -> String {
        switch result {
        case .success(let text): return "ok\n" + text + (text.hasSuffix("\n") || text.isEmpty ? "" : "\n")
        case .failure(let error): return "error: \(error)\n"
        }
    }
}

extension Supervisor {
    func makeControlServer(path: String) -> AdminServer {
        let allowed: Set<uid_t> = [0, geteuid()]
        return AdminServer(
            name: "control socket", address: .unix(path), reactor: reactor, allowedUIDs: allowed,
            framer: { $0.contains(UInt8(ascii: "\n")) }
        ) { [unowned self] bytes, _, tooLarge in
            if tooLarge { return Array("error: request too large\n".utf8) }
            let line = String(decoding: bytes.prefix { $0 != UInt8(ascii: "\n") }, as: UTF8.self)
            return Array(ControlProtocol.answer(controlCommand(line)).utf8)
        }
    }

    /// Runs one control command.
    func controlCommand(_ line: String) -> Result<String, AdminError> {
        let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" }).map(String.init)
        guard let command = words.first else { return .failure(AdminError("empty command")) }
        switch (command, words.count) {
        case ("status", 1): return .success(statusText())
        case ("status", 2) where words[1] == "json": return .success(statusJSON())
        case ("pause", 2): return adminPause(words[1], seconds: nil)
        case ("pause", 3):
            guard let seconds = Double(words[2]) else { return .failure(AdminError("bad duration \(words[2])")) }
            return adminPause(words[1], seconds: seconds)
        case ("resume", 2): return adminResume(words[1])
        case ("reload", 1): return adminReload()
        case ("check", 1):
            let report = checkReport()
            return report.hasErrors ? .failure(AdminError("the configuration has errors\n" + report.text)) : .success(report.text)
        default:
            return .failure(AdminError("unknown command \(sanitizedForLog(Array(line.utf8), limit: 64)); try status, status json, pause NAME [SECONDS], resume NAME, reload, check"))
        }
    }
}
