import Logging

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// How log lines are written: xinetd-style text, or one JSON object per line (`--log-format json`).
public enum LogFormat: String, Sendable, CaseIterable {
    case text
    case json
}

/// Command-line settings of the observability and admin side (docs/OBSERVABILITY.md).
public struct AdminOptions: Sendable {
    /// `--metrics ADDR:PORT`: Prometheus text on GET /metrics; nil: off.
    public var metricsAddress: String?
    /// `--control PATH`; nil (`--control none`): no control socket.
    public var controlPath: String? = ControlProtocol.defaultPath
    /// Whether `--control` was given: then a socket that cannot be created stops the start.
    public var controlExplicit = false
    /// `--admin ADDR:PORT`: the web console; nil: off.
    public var consoleAddress: String?
    /// `--admin-token-file PATH`: the console's bearer token (required with `--admin`).
    public var consoleTokenFile: String?
    /// `--admin-allow-remote`: allow a console address that is not loopback.
    public var consoleAllowRemote = false
    public var logFormat: LogFormat = .text

    public init() {}

    /// Parses `ADDR:PORT`, `[V6]:PORT` or `localhost:PORT` (numeric addresses only otherwise).
    public static func parseAddress(_ text: String) -> (IPAddress, UInt16)? {
        guard let colon = text.lastIndex(of: ":"), let port = UInt16(text[text.index(after: colon)...]) else { return nil }
        var host = String(text[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        if host == "localhost" { host = "127.0.0.1" }
        return SocketAddressFormatting.parseNumeric(host).map { ($0, port) }
    }

    static func isLoopback(_ address: IPAddress) -> Bool {
        let text = "\(address)"
        return text.hasPrefix("127.") || text == "::1" || text.hasPrefix("::ffff:127.")
    }

    /// Problems with the settings, as messages for the command line; empty when all is well.
    public func problems() -> [String] {
        var problems: [String] = []
        if let metricsAddress, Self.parseAddress(metricsAddress) == nil {
            problems.append("--metrics \(metricsAddress): expected ADDRESS:PORT (numeric address, [v6]:port or localhost:port)")
        }
        if let consoleAddress {
            if let (address, _) = Self.parseAddress(consoleAddress) {
                if !Self.isLoopback(address) && !consoleAllowRemote {
                    problems.append("--admin \(consoleAddress): not a loopback address; add --admin-allow-remote to serve the console there (the token then crosses the network in clear text)")
                }
            } else {
                problems.append("--admin \(consoleAddress): expected ADDRESS:PORT (numeric address, [v6]:port or localhost:port)")
            }
            if consoleTokenFile == nil { problems.append("--admin needs --admin-token-file") }
        } else if consoleTokenFile != nil {
            problems.append("--admin-token-file needs --admin")
        }
        if let path = consoleTokenFile, consoleAddress != nil {
            if case .failure(let error) = Self.readToken(path) { problems.append("--admin-token-file \(path): \(error)") }
        }
        if let controlPath, !controlPath.hasPrefix("/") {
            problems.append("--control \(controlPath): expected an absolute path or none")
        }
        return problems
    }

    /// Reads the console token: the file's first line, at least 16 bytes, and the file must not be
    /// readable or writable by others.
    static func readToken(_ path: String) -> Result<String, AdminError> {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK)
        guard fd >= 0 else { return .failure(AdminError(errnoDescription(errno))) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, info.st_mode & S_IFMT == S_IFREG else { return .failure(AdminError("not a regular file")) }
        guard info.st_mode & 0o006 == 0 else { return .failure(AdminError("readable or writable by others; chmod o-rw it")) }
        var buffer = [UInt8](repeating: 0, count: 4096)
        let n = read(fd, &buffer, buffer.count)
        guard n > 0 else { return .failure(AdminError("empty")) }
        let token = String(decoding: buffer[0..<n].prefix { $0 != 10 && $0 != 13 }, as: UTF8.self).trimmingCharacters()
        guard token.utf8.count >= 16 else { return .failure(AdminError("the token must be at least 16 characters")) }
        guard token.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7f }) else {
            return .failure(AdminError("the token must be printable ASCII without blanks"))
        }
        return .success(token)
    }
}

extension Supervisor {
    /// Opens the metrics endpoint, the control socket and the console, as configured. A failure of
    /// an explicitly requested one stops the start; the default control socket only warns (an
    /// unprivileged run has no /run to write to).
    public func startAdmin() throws(SystemError) {
        let admin = options.admin
        if let text = admin.metricsAddress, let (address, port) = AdminOptions.parseAddress(text) {
            let server = makeMetricsServer(address: .tcp(address, port))
            try server.start()
            observability.servers.append(server)
            logger.info("metrics on http://\(server.address)/metrics")
        }
        if let path = admin.controlPath {
            let server = makeControlServer(path: path)
            do {
                try server.start()
                observability.servers.append(server)
                observability.controlPath = path
                logger.info("control socket \(path)")
            } catch {
                if admin.controlExplicit { throw error }
                // Expected when not root (no /run to write to): then it is only information.
                logger.log(level: geteuid() == 0 ? .warning : .info, "\(error); running without a control socket (--control PATH or none)")
            }
        }
        if let text = admin.consoleAddress, let (address, port) = AdminOptions.parseAddress(text),
            let tokenFile = admin.consoleTokenFile
        {
            let token: String
            switch AdminOptions.readToken(tokenFile) {
            case .success(let value): token = value
            case .failure(let error): throw SystemError("--admin-token-file \(tokenFile): \(error)", errno: EINVAL)
            }
            let server = makeConsoleServer(address: .tcp(address, port), token: token)
            try server.start()
            observability.servers.append(server)
            startSampling()
            logger.info("web console on http://\(server.address)/")
        }
    }

    /// Closes the admin sockets (and removes the control socket).
    public func stopAdmin() {
        for server in observability.servers { server.stop() }
        observability.servers = []
    }
}
