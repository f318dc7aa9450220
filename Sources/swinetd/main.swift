import ArgumentParser
import Logging
import SwinetdCore

#if canImport(Glibc)
import Glibc
#endif

// Before anything else, while this is the only thread: every later thread inherits the mask and
// the signals reach the reactor's signalfd and nowhere else.
DaemonProcess.blockSignals()

/// Options shared by `run` and `check`: which files to read.
struct ConfigOptions: ParsableArguments {
    @Option(name: [.customShort("f"), .customLong("config")], help: "Configuration file or directory, inetd.conf or xinetd.conf form (repeatable). Default: /etc/inetd.conf, /etc/inetd.d and /etc/xinetd.conf.")
    var configFiles: [String] = []

    @Argument(help: "Configuration files, as classic inetd takes them.")
    var positionalFiles: [String] = []

    /// Absolute, because the daemon changes to / when it detaches and re-reads them on SIGHUP.
    var paths: [String] {
        let all = configFiles + positionalFiles
        return all.isEmpty ? ConfigLoader.defaultPaths : all.map(DaemonProcess.absolutePath)
    }
}

struct Swinetd: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "swinetd",
        abstract: "The Internet super-server: listens on configured sockets and starts a program per connection.",
        version: "0.1.0",
        subcommands: [Run.self, Check.self, Convert.self, Status.self, Pause.self, Resume.self, Reload.self],
        defaultSubcommand: Run.self
    )
}

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the daemon (the default).")

    @OptionGroup var config: ConfigOptions

    @Flag(name: [.customShort("d"), .customShort("i"), .long], help: "Stay in the foreground and log to stderr.")
    var foreground = false

    @Option(help: "Write the daemon's pid to this file.")
    var pidfile: String?

    @Option(name: [.customShort("R"), .long], help: "Spawns per minute allowed per service before it is paused (0: unlimited). Default: 256 for wait services, unlimited for nowait.")
    var rate: Int?

    @Option(help: "Seconds a service stays paused after exceeding its rate.")
    var retryTime: Double = 600

    @Option(name: [.customShort("q"), .long], help: "listen(2) backlog for stream sockets.")
    var backlog: Int32 = 128

    @Flag(name: [.customShort("E"), .long], help: "Pass swinetd's own environment to children instead of a clean one.")
    var keepEnvironment = false

    @Option(help: "Threads that start children, so accepting never waits for a child to exec (default: CPUs + 1, at most 8; 0: all on the event loop thread, which otherwise starts a child itself only when the daemon is idle).")
    var spawnThreads: Int?

    @Option(help: "Cap on children of all services together.")
    var maxChildren: Int?

    @Option(help: "Idle timeout in seconds of in-process echo, discard and chargen connections.")
    var builtinTimeout: Double = 120

    @Option(help: "Seconds a tcpmux client has to send its service name.")
    var tcpmuxTimeout: Double = 10

    @Option(help: "Seconds a TLS client has to complete its handshake (services with tls_certificate).")
    var tlsHandshakeTimeout: Double = 30

    @Option(help: "Replies per second per UDP builtin service.")
    var udpBuiltinRate: Int = 10_000

    @Option(help: "Seconds a reverse DNS or ident (RFC 1413) lookup may take; then the answer counts as unknown.")
    var lookupTimeout: Double = 5

    @Flag(name: [.customShort("l"), .long], help: "Apply /etc/hosts.allow and /etc/hosts.deny to inetd.conf services too (xinetd services use them unless NOLIBWRAP).")
    var libwrap = false

    @Option(help: "tcpd allow rules.")
    var hostsAllow: String = "/etc/hosts.allow"

    @Option(help: "tcpd deny rules.")
    var hostsDeny: String = "/etc/hosts.deny"

    @Option(help: "Where SIGUSR1 writes the state dump.")
    var dumpFile: String = "/run/swinetd.dump"

    @OptionGroup var admin: AdminArguments

    func run() throws {
        // systemd socket activation: before the environment is read and before a fork changes our pid.
        let inherited = InheritedSockets.takeFromEnvironment()
        var options = DaemonOptions()
        options.configPaths = config.paths
        options.defaultRate = rate
        options.retrySeconds = retryTime
        options.keepEnvironment = keepEnvironment
        options.maxChildren = maxChildren
        options.spawnThreads = max(0, min(spawnThreads ?? DaemonOptions.defaultSpawnThreads, 64))
        options.builtinIdleSeconds = builtinTimeout
        options.tcpmuxTimeoutSeconds = tcpmuxTimeout
        options.tlsHandshakeSeconds = max(0.1, tlsHandshakeTimeout)
        options.udpBuiltinRate = udpBuiltinRate
        options.lookupTimeoutSeconds = lookupTimeout
        options.dumpPath = dumpFile
        options.hostsAllowPath = DaemonProcess.absolutePath(hostsAllow)
        options.hostsDenyPath = DaemonProcess.absolutePath(hostsDeny)
        options.loadOptions.defaultBacklog = backlog
        options.loadOptions.libwrapClassic = libwrap
        options.admin = try admin.options()

        let pidfile = pidfile.map(DaemonProcess.absolutePath)
        let configuration = ConfigLoader.load(paths: options.configPaths, options: options.loadOptions)
        if !foreground {
            // The terminal is about to go: show the configuration's problems there as well.
            for diagnostic in configuration.diagnostics {
                let line = Array("swinetd: \(diagnostic)\n".utf8)
                _ = line.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
            }
        }
        let startup = foreground ? nil : try DaemonProcess.detach()
        let useStderr = foreground
        let logFormat = options.admin.logFormat
        LoggingSystem.bootstrap { _ in
            useStderr ? (logFormat == .json ? JSONLogHandler() as any LogHandler : StderrLogHandler() as any LogHandler) : SyslogLogHandler() as any LogHandler
        }
        let logger = Logger(label: "swinetd")
        /// Logs a start-up failure and hands it to the waiting parent (stderr may be gone already).
        func startupFailed(_ error: any Error) -> any Error {
            logger.critical("\(error)")
            startup?.failed("\(error)")
            return error
        }
        for diagnostic in configuration.diagnostics {
            if diagnostic.severity == .error {
                logger.error("\(diagnostic)")
            } else {
                logger.warning("\(diagnostic)")
            }
        }
        if configuration.services.isEmpty {
            logger.warning("no services configured (read: \(configuration.files.joined(separator: ", ")))")
        }
        let supervisor: Supervisor
        do {
            supervisor = try Supervisor(options: options, logger: logger)
            try supervisor.installSignals()
            try supervisor.startSpawnThreads()
        } catch {
            throw startupFailed(error)
        }
        if let problem = inherited.problem { logger.warning("\(problem)") }
        supervisor.inheritedSockets = inherited
        supervisor.apply(configuration)
        supervisor.logListeners()
        inherited.logUnused(logger)
        do {
            try supervisor.startAdmin()
        } catch {
            throw startupFailed(error)
        }
        defer { supervisor.stopAdmin() }
        if let pidfile {
            do { try DaemonProcess.writePidfile(pidfile) } catch { throw startupFailed(error) }
        }
        defer { if let pidfile { DaemonProcess.removePidfile(pidfile) } }
        logger.info("ready: \(configuration.services.count) services")
        supervisor.notifier.notify("READY=1\nSTATUS=\(configuration.services.count) services\nMAINPID=\(DaemonProcess.pid)")
        startup?.ready()
        supervisor.run()
    }
}

struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Validate the configuration and print the effective service table (exit 1 on errors).")

    @OptionGroup var config: ConfigOptions

    @Flag(name: .long, help: "Do not print the service table, only problems.")
    var quiet = false

    func run() throws {
        let configuration = ConfigLoader.load(paths: config.paths, options: LoadOptions())
        let color = DaemonProcess.stderrIsTerminal
        for diagnostic in configuration.diagnostics {
            var line = "\(diagnostic)\n"
            if color {
                let mark = diagnostic.severity == .error ? "\u{1B}[1;31merror\u{1B}[0m" : "\u{1B}[1;33mwarning\u{1B}[0m"
                line = (diagnostic.location.map { "\($0): " } ?? "") + "\(mark): \(diagnostic.message)\n"
            }
            if let hint = DiagnosticHints.hint(for: diagnostic) { line += "    hint: \(hint)\n" }
            line.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
        }
        if !quiet {
            print(ServiceTable.render(configuration.services, color: DaemonProcess.stdoutIsTerminal), terminator: "")
        }
        let errors = configuration.diagnostics.filter { $0.severity == .error }.count
        let warnings = configuration.diagnostics.count - errors
        print("\(configuration.services.count) services, \(errors) errors, \(warnings) warnings")
        if errors > 0 { throw ExitCode(1) }
    }
}

Swinetd.main()
