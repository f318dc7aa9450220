import Foundation
import Glibc

/// One real `swinetd --foreground` process with its own configuration and log file.
///
/// The configuration text may use `PROBE` for the probe binary's path. Create it with
/// `let daemon = try Daemon(config: ...)` and `defer { daemon.stop() }`; `deinit` stops it too,
/// so no path leaves a daemon behind.
final class Daemon {
    /// How the daemon process is started.
    enum Launcher {
        /// exec swinetd directly.
        case direct
        /// `sh -c "<prelude>; exec swinetd ARGS"`: the shell sets up signals, umask, fds, then execs,
        /// so the daemon keeps the shell's pid. The shell itself starts with every signal at its
        /// default (Tests/helpers/signal_state.py), so only what the prelude changes is changed.
        case shell(prelude: String)
        /// `<prefix...> swinetd ARGS`, for wrappers that exec their argument (setpriv).
        case prefix([String])
    }

    let dir: TempDir
    let configPath: String
    let logPath: String
    private(set) var pid: pid_t = -1
    private(set) var exitStatus: ExitStatus?

    /// Starts the daemon and waits (at most `readyTimeout` s) until its log says `ready:`.
    init(
        config: String, arguments: [String] = [], launcher: Launcher = .direct,
        environment: [String] = Processes.defaultEnvironment, blockAllSignals: Bool = false,
        readyTimeout: Double = 10
    ) throws {
        dir = try TempDir()
        configPath = dir.path + "/inetd.conf"
        logPath = dir.path + "/swinetd.log"
        try Files.write(configPath, Array(Daemon.expand(config).utf8))
        // No control socket unless a test asks for one (a later --control wins): the default,
        // /run/swinetd.sock, is one path for every daemon on the machine.
        let daemonArgs = [Binaries.swinetd, "--foreground", "-f", configPath, "--control", "none"] + arguments
        let argv: [String]
        switch launcher {
        case .direct:
            argv = daemonArgs
        case .shell(let prelude):
            argv = [
                "/usr/bin/python3", Binaries.helpers + "/signal_state.py", "default",
                "/bin/sh", "-c", prelude + "; exec \"$0\" \"$@\"",
            ] + daemonArgs
        case .prefix(let prefix):
            argv = prefix + daemonArgs
        }
        pid = try Processes.spawn(
            argv, environment: environment, stdout: logPath, stderr: logPath, blockAllSignals: blockAllSignals)
        let ready = Clock.poll(timeout: readyTimeout) { log.contains("ready:") || hasExited() }
        if !ready || exitStatus != nil {
            let why = exitStatus.map { "exited (\($0))" } ?? "did not log ready: within \(readyTimeout) s"
            let text = log
            stop()
            throw HarnessError("swinetd \(why); log:\n\(text)")
        }
    }

    deinit { stop() }

    /// Replaces `PROBE` with the probe's path.
    static func expand(_ config: String) -> String {
        config.replacingOccurrences(of: "PROBE", with: Binaries.probe)
    }

    // MARK: - Log

    var log: String { Files.read(logPath) }

    var logLines: [Substring] { log.split(separator: "\n") }

    func logLines(containing text: String) -> [Substring] { logLines.filter { $0.contains(text) } }

    func count(_ text: String) -> Int { logLines(containing: text).count }

    /// The number of `text` lines once `expected` of them have appeared (or 2 s passed), then
    /// 100 ms more for any extra ones. START lines are written when a spawn thread reports the
    /// pid, which may be after the child's output reached the client, so exact counts settle first.
    func settledCount(_ text: String, expected: Int) -> Int {
        waitForLog(text, count: expected, timeout: 2)
        usleep(100_000)
        return count(text)
    }

    /// Polls the log every 20 ms (at most `timeout` s) until it contains `substring`.
    @discardableResult
    func waitForLog(_ substring: String, timeout: Double = 5) -> Bool {
        Clock.poll(timeout: timeout) { log.contains(substring) }
    }

    /// Polls until at least `count` log lines contain `substring`.
    @discardableResult
    func waitForLog(_ substring: String, count: Int, timeout: Double = 5) -> Bool {
        Clock.poll(timeout: timeout) { self.count(substring) >= count }
    }

    /// Pids from `START:` lines (optionally of one service), in order.
    func startedPids(service: String? = nil) -> [pid_t] {
        logLines(containing: "START: " + (service.map { $0 + " " } ?? "")).compactMap { line in
            guard let range = line.range(of: " pid=") else { return nil }
            return pid_t(line[range.upperBound...].prefix { $0.isNumber })
        }
    }

    // MARK: - Control

    func signal(_ signal: Int32) {
        guard exitStatus == nil, pid > 0 else { return }
        kill(pid, signal)
    }

    /// Rewrites the configuration (with `PROBE` expanded).
    func writeConfig(_ text: String) throws {
        try Files.write(configPath, Array(Daemon.expand(text).utf8))
    }

    /// Rewrites the configuration, sends SIGHUP and waits for the daemon to log the outcome.
    /// Returns the log line: `reloaded ...` or `reload refused ...`, nil on timeout.
    @discardableResult
    func reload(_ text: String, timeout: Double = 5) throws -> String? {
        try writeConfig(text)
        return hangUp(timeout: timeout)
    }

    /// Sends SIGHUP and waits until one more `reloaded`/`reload refused` line appears.
    @discardableResult
    func hangUp(timeout: Double = 5) -> String? {
        let before = count("reloaded ") + count("reload refused")
        signal(SIGHUP)
        let done = Clock.poll(timeout: timeout) { count("reloaded ") + count("reload refused") > before }
        guard done else { return nil }
        return logLines.last { $0.contains("reloaded ") || $0.contains("reload refused") }.map(String.init)
    }

    /// Non-blocking check whether the daemon has exited (reaps it if so).
    @discardableResult
    func hasExited() -> Bool {
        if exitStatus != nil { return true }
        guard pid > 0 else { return true }
        var status: Int32 = 0
        if waitpid(pid, &status, WNOHANG) == pid {
            exitStatus = ExitStatus(raw: status)
            return true
        }
        return false
    }

    /// Waits for the daemon to exit on its own.
    func waitForExit(timeout: Double) -> ExitStatus? {
        if let exitStatus { return exitStatus }
        if let status = Processes.wait(pid, timeout: timeout) { exitStatus = status }
        return exitStatus
    }

    /// SIGTERM, wait up to 5 s, SIGKILL if needed; then kills any probe child it left running.
    /// Returns how the daemon ended.
    @discardableResult
    func stop() -> ExitStatus? {
        if pid > 0, exitStatus == nil {
            kill(pid, SIGTERM)
            if let status = Processes.wait(pid, timeout: 5) {
                exitStatus = status
            } else {
                Processes.killAndReap(pid)
                exitStatus = .signaled(SIGKILL)
            }
        }
        killLeftoverChildren()
        return exitStatus
    }

    /// Children this daemon started (from its START lines) that still run a program the tests
    /// configure (the probe, or /bin/sleep); each is a session leader, as swinetd's children are.
    private func killLeftoverChildren() {
        for child in Set(startedPids()) where ProcFS.isRunning(child) && ProcFS.stat(child)?.session == child {
            let command = ProcFS.commandLine(child)
            if command.contains("swinetd-probe") || command.hasPrefix("probe") || command.hasPrefix("sleep ") {
                kill(child, SIGKILL)
            }
        }
    }

    // MARK: - Processes

    func children() -> [ProcFS.Stat] { ProcFS.children(of: pid) }
    func zombies() -> [ProcFS.Stat] { ProcFS.zombies(of: pid) }
}
