import Foundation
import Glibc

/// xinetd.conf text for the tests.
///
/// `Xinetd.service("echo", ["type = INTERNAL UNLISTED", "port = 7000"])` renders one block as an
/// admin writes it (`service NAME`, then `{` and `}` on lines of their own). `PROBE` in any text is
/// replaced with the probe's path by `Daemon` (top file) or `XinetdTree.write` (included files).
enum Xinetd {
    static func block(_ header: String, _ attributes: [String]) -> String {
        "\(header)\n{\n" + attributes.map { "    \($0)\n" }.joined() + "}\n"
    }

    static func service(_ name: String, _ attributes: [String]) -> String {
        block("service \(name)", attributes)
    }

    static func defaults(_ attributes: [String]) -> String {
        block("defaults", attributes)
    }

    /// The defaults most tests want: START lines with a pid (so `Daemon.stop()` finds leftover
    /// children), EXIT lines with status, FAIL lines with the address.
    static let loggingDefaults = defaults([
        "log_on_success = PID HOST EXIT DURATION",
        "log_on_failure = HOST ATTEMPT",
    ])

    /// A probe service on 127.0.0.1:`port`, `type = UNLISTED`, with `extra` attributes.
    static func probe(_ name: String, port: UInt16, mode: String = "report", user: String = "root", _ extra: [String] = [])
        -> String
    {
        service(
            name,
            [
                "type = UNLISTED", "socket_type = stream", "protocol = tcp", "wait = no", "user = \(user)",
                "bind = 127.0.0.1", "port = \(port)", "server = PROBE", "server_args = \(mode)",
            ] + extra)
    }

    /// The Python helper service (Tests/helpers/xinetd_service.py MODE) on 127.0.0.1:`port`.
    static func helper(_ name: String, port: UInt16, mode: String, _ extra: [String] = []) -> String {
        service(
            name,
            [
                "type = UNLISTED", "socket_type = stream", "wait = no", "user = root", "bind = 127.0.0.1",
                "port = \(port)", "server = /usr/bin/python3",
                "server_args = \(Binaries.helpers)/xinetd_service.py \(mode)",
            ] + extra)
    }
}

/// A directory for an xinetd `includedir`, plus room for banners and log files, removed when
/// released. The top file is the `Daemon`'s own configuration text; it names `includeDir`.
final class XinetdTree {
    let dir: TempDir
    let includeDir: String

    init() throws {
        dir = try TempDir()
        includeDir = dir.path + "/xinetd.d"
        guard mkdir(includeDir, 0o755) == 0 else { throw HarnessError("mkdir \(includeDir) failed") }
        chmod(includeDir, 0o755)
    }

    var path: String { dir.path }

    /// Writes `text` (with `PROBE` expanded) as `includeDir/name`.
    func write(_ name: String, _ text: String) throws {
        try Files.write(includeDir + "/" + name, Array(Daemon.expand(text).utf8))
    }

    /// Writes a file next to the include directory (a banner, say) and returns its path.
    @discardableResult
    func writeFile(_ name: String, _ text: String) throws -> String {
        try dir.write(name, text)
    }

    func remove(_ name: String) {
        unlink(includeDir + "/" + name)
    }

    /// `includedir` line for the top file.
    var includedirLine: String { "includedir \(includeDir)\n" }
}

/// `swinetd check -f FILE` on a configuration text.
enum CheckCommand {
    static func run(configPath: String) throws -> Processes.CommandResult {
        try Processes.run([Binaries.swinetd, "check", "-f", configPath])
    }
}
