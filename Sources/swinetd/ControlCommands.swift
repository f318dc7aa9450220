import ArgumentParser
import SwinetdCore

#if canImport(Glibc)
import Glibc
#endif

extension LogFormat: ExpressibleByArgument {}

/// The observability and admin options of `run` (docs/OBSERVABILITY.md).
struct AdminArguments: ParsableArguments {
    @Option(help: ArgumentHelp("Serve Prometheus metrics on GET /metrics at this address (no authentication).", valueName: "addr:port"))
    var metrics: String?

    @Option(help: ArgumentHelp("The control socket for `swinetd status`, pause, resume and reload (root only), or `none`. Default: /run/swinetd.sock.", valueName: "path"))
    var control: String?

    @Option(help: ArgumentHelp("Serve the web console at this address (loopback unless --admin-allow-remote).", valueName: "addr:port"))
    var admin: String?

    @Option(help: ArgumentHelp("File holding the console's access token (16+ characters, not readable by others).", valueName: "path"))
    var adminTokenFile: String?

    @Flag(help: "Allow a non-loopback --admin address.")
    var adminAllowRemote = false

    @Option(help: "Log format on stderr and in service log files: text or json (one object per line).")
    var logFormat: LogFormat = .text

    func options() throws -> AdminOptions {
        var options = AdminOptions()
        options.metricsAddress = metrics
        if let control {
            options.controlPath = control == "none" ? nil : DaemonProcess.absolutePath(control)
            options.controlExplicit = true
        }
        options.consoleAddress = admin
        options.consoleTokenFile = adminTokenFile.map(DaemonProcess.absolutePath)
        options.consoleAllowRemote = adminAllowRemote
        options.logFormat = logFormat
        if let problem = options.problems().first { throw ValidationError(problem) }
        return options
    }
}

/// Where the control socket is, for the client commands.
struct ControlClientOptions: ParsableArguments {
    @Option(help: ArgumentHelp("The daemon's control socket.", valueName: "path"))
    var control: String = ControlClient.defaultPath

    /// Sends one command and prints the answer; exits 1 when the daemon answers with an error.
    func send(_ command: String) throws {
        let reply: String
        do {
            reply = try ControlClient.send(command, path: control)
        } catch {
            print("swinetd: \(error)", to: &standardError)
            throw ExitCode(2)
        }
        if reply.hasPrefix("ok\n") {
            print(reply.dropFirst(3), terminator: "")
        } else {
            print("swinetd: \(reply)", terminator: reply.hasSuffix("\n") ? "" : "\n", to: &standardError)
            throw ExitCode(1)
        }
    }
}

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show the running daemon's services, listeners, pauses and live children (via the control socket).")

    @OptionGroup var client: ControlClientOptions

    @Flag(help: "Print JSON instead of a table.")
    var json = false

    func run() throws { try client.send(json ? "status json" : "status") }
}

struct Pause: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Pause a service: its sockets are closed, so clients are refused, until resumed or for --seconds.")

    @OptionGroup var client: ControlClientOptions

    @Argument(help: "The service (its id or service field).")
    var service: String

    @Option(help: "Resume by itself after this many seconds.")
    var seconds: Double?

    func run() throws { try client.send("pause \(service)" + (seconds.map { " \($0)" } ?? "")) }
}

struct Resume: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Resume a paused service.")

    @OptionGroup var client: ControlClientOptions

    @Argument(help: "The service (its id or service field).")
    var service: String

    func run() throws { try client.send("resume \(service)") }
}

struct Reload: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Reload the configuration, as SIGHUP does; exit 1 if the files have errors (nothing changes then).")

    @OptionGroup var client: ControlClientOptions

    func run() throws { try client.send("reload") }
}

nonisolated(unsafe) var standardError = StandardError()

struct StandardError: TextOutputStream {
    mutating func write(_ string: String) {
        var text = string
        text.withUTF8 { _ = Glibc.write(2, $0.baseAddress, $0.count) }
    }
}
