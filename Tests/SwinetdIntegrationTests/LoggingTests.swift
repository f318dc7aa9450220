import Foundation
import Glibc
import Testing

/// Per-service logging (xinetd.log(5)): `log_type FILE` with soft and hard limits, which fields
/// `log_on_success` / `log_on_failure` select, and the SIGUSR1 state dump.
extension Integration {
    @Suite struct LoggingTests {
        /// `YY/MM/DD@HH:MM:SS ` for the given time (the daemon runs with TZ=UTC).
        static func stamp(unixSeconds: Int) -> String {
            var seconds = time_t(unixSeconds)
            var parts = tm()
            gmtime_r(&seconds, &parts)
            return String(
                format: "%02d/%02d/%02d@%02d:%02d:%02d", Int(parts.tm_year) % 100, Int(parts.tm_mon) + 1,
                Int(parts.tm_mday), Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec))
        }

        /// Waits until the daemon has reaped every child, then until a marker service's EXIT line
        /// is logged: after that, every earlier child's lines are in the log.
        static func settle(_ daemon: Daemon, markerPort: UInt16, marker: String = "marker") {
            _ = Clock.poll(timeout: 3) { daemon.children().isEmpty }
            let before = daemon.count("EXIT: \(marker) ")
            _ = try? TCP.probe("127.0.0.1", markerPort)
            daemon.waitForLog("EXIT: \(marker) ", count: before + 1, timeout: 3)
        }

        static func marker(_ port: UInt16) -> String {
            Xinetd.probe("marker", port: port, ["log_on_success = PID EXIT"])
        }

        // MARK: - syslog

        static let mountNamespaceWorks: Bool =
            (try? Processes.run(["/usr/bin/unshare", "-m", "/bin/true"], timeout: 10))?.status == .exited(0)

        /// Daemon mode logs through syslog(3): its own lines, and the START/EXIT lines of a service
        /// without `log_type`, at daemon.info (<30>); a service with `log_type = SYSLOG local3
        /// notice` at that facility and level (<157>). /dev/log is the test's socket, in a private
        /// mount namespace (Tests/helpers/with_syslog.sh).
        @Test(.enabled(if: mountNamespaceWorks, "skipped: `unshare -m true` fails here"))
        func daemonModeLogsThroughSyslog() throws {
            let dir = try TempDir()
            let (plain, local) = (Ports.free(), Ports.free())
            let config = try dir.write(
                "xinetd.conf",
                Daemon.expand(
                    Xinetd.defaults(["log_on_success = PID HOST EXIT DURATION"])
                        + Xinetd.probe("plainsys", port: plain)
                        + Xinetd.probe("localsys", port: local, ["log_type = SYSLOG local3 notice"])))
            let pidfile = dir.path + "/swinetd.pid"
            let syslog = dir.path + "/syslog.txt"
            let launched = try Processes.spawn(
                [
                    "/usr/bin/unshare", "-m", "/bin/sh", Binaries.helpers + "/with_syslog.sh", dir.path,
                    Binaries.swinetd, "-f", config, "--pidfile", pidfile, "--control", "none",
                ], stdout: dir.path + "/out", stderr: dir.path + "/out")
            var daemonPid: pid_t = 0
            defer {
                if daemonPid > 0, ProcFS.commandLine(daemonPid).contains("swinetd") { kill(daemonPid, SIGKILL) }
            }
            let parentStatus = Processes.wait(launched, timeout: 10)
            if parentStatus == nil { Processes.killAndReap(launched) }
            try #require(parentStatus == .exited(0), "\(String(describing: parentStatus)): \(Files.read(dir.path + "/out"))")
            daemonPid = Int32(Files.read(pidfile).trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
            try #require(daemonPid > 0, "no pid in \(pidfile); output:\n\(Files.read(dir.path + "/out"))")

            let plainReport = try TCP.probe("127.0.0.1", plain)
            let localReport = try TCP.probe("127.0.0.1", local)
            #expect(plainReport.isComplete && localReport.isComplete)
            let exited = Clock.poll(timeout: 5) {
                let text = Files.read(syslog)
                return text.contains("EXIT: plainsys") && text.contains("EXIT: localsys")
            }
            kill(daemonPid, SIGTERM)
            #expect(Clock.poll(timeout: 5) { Files.read(syslog).contains("shutting down") })
            #expect(Clock.poll(timeout: 5) { !ProcFS.isRunning(daemonPid) })
            daemonPid = 0
            let lines = Files.read(syslog).split(separator: "\n").map(String.init)
            #expect(exited, "\(lines)")

            func line(_ priority: Int, _ text: String) -> String? {
                lines.first { $0.hasPrefix("<\(priority)>") && $0.contains("swinetd[") && $0.contains(text) }
            }
            #expect(line(30, "]: ready: 2 services") != nil, "\(lines)")
            #expect(line(30, "signal 15: shutting down") != nil, "\(lines)")
            for (name, priority) in [("plainsys", 30), ("localsys", 157)] {
                let start = try #require(line(priority, "]: START: \(name) pid="), "\(lines)")
                let pid = try #require(Int(start.split(separator: "pid=")[1].prefix { $0.isNumber }), "\(start)")
                #expect(start.hasSuffix("START: \(name) pid=\(pid) from=127.0.0.1"), "\(start)")
                let exit = try #require(line(priority, "]: EXIT: \(name) status=0 pid=\(pid) duration="), "\(lines)")
                #expect(exit.hasSuffix("(sec)"), "\(exit)")
                // Nothing of a service's lines goes out at another priority.
                #expect(lines.filter { $0.contains("START: \(name) ") }.count == 1, "\(lines)")
            }
        }

        // MARK: - log_type FILE

        /// A 1K soft and 2K hard limit: lines in xinetd's form until the next one would pass 2048
        /// bytes, then nothing more (the file stops growing while the service keeps serving); the
        /// daemon's own log says when each limit is reached.
        @Test func fileLogStopsGrowingAtTheHardLimit() throws {
            let tree = try XinetdTree()
            let logFile = tree.path + "/filelog.log"
            let port = Ports.free()
            let daemon = try Daemon(
                config: Xinetd.defaults(["cps = 1000 1"])
                    + Xinetd.probe(
                        "filelog", port: port,
                        ["log_type = FILE \(logFile) 1K 2K", "log_on_success = PID HOST EXIT", "log_on_failure = HOST"]))
            defer { daemon.stop() }

            var served = 0
            var sizes: [Int] = []
            let started = Int(time(nil))
            for _ in 0..<40 {
                if (try? TCP.probe("127.0.0.1", port))?.isComplete == true { served += 1 }
                sizes.append(Files.read(logFile).utf8.count)
                if daemon.log.contains("reached its hard limit") && sizes.count >= 25 { break }
            }
            #expect(served == sizes.count, "served \(served) of \(sizes.count): the log limit must not refuse clients")
            #expect(daemon.waitForLog("reached its hard limit of 2048 bytes", timeout: 3), "\(daemon.log)")
            #expect(daemon.count("passed its soft limit of 1024 bytes") == 1, "\(daemon.log)")
            #expect(daemon.count("reached its hard limit") == 1, "warned more than once:\n\(daemon.log)")
            _ = Clock.poll(timeout: 3) { daemon.children().isEmpty }

            let full = Files.read(logFile)
            let size = full.utf8.count
            #expect(size <= 2048, "the file grew past its hard limit: \(size) bytes")
            #expect(size > 2048 - 80, "the file stopped at \(size) bytes, well before the limit")
            #expect(full.hasSuffix("\n"), "the last line was cut")
            // More connections are served; their lines are not written.
            for _ in 0..<5 { #expect(Outcome.probe("127.0.0.1", port) == .served) }
            _ = Clock.poll(timeout: 3) { daemon.children().isEmpty }
            #expect(Files.read(logFile).utf8.count <= 2048)

            let finished = Int(time(nil))
            let dates = Set((started - 1...finished + 1).map { String(Self.stamp(unixSeconds: $0).prefix(8)) })
            let lines = full.split(separator: "\n")
            #expect(lines.count >= 15, "\(lines.count) lines in 2 KB")
            for line in lines {
                let isStart = line.contains(" START: filelog pid=") && line.hasSuffix(" from=127.0.0.1")
                let isExit = line.contains(" EXIT: filelog status=0 pid=")
                #expect(isStart || isExit, "unexpected line \(line.debugDescription)")
                #expect(dates.contains(String(line.prefix(8))), "stamp \(line.prefix(17)) is not today's date (YY/MM/DD)")
                // xinetd 2.3.15 writes `YY/MM/DD@HH:MM:SS: START: ...`.
                #expect(line.dropFirst(8).hasPrefix("@") && line.dropFirst(17).hasPrefix(": "), "stamp form: \(line)")
            }
            // The lines went to the file only.
            #expect(daemon.count("START: filelog") == 0, "\(daemon.log)")
        }

        /// Once a line has been refused at the hard limit, nothing more is written, not even a
        /// shorter line that would still fit (xinetd: the file log is off for good). Lines have
        /// fixed lengths here (HOST only, no pid): 100 bytes for `long...`, 50 for `short...`,
        /// and the hard limit leaves a gap of 75 after 20 long lines.
        @Test func hardLimitStopsWritingEvenLinesThatWouldFit() throws {
            let tree = try XinetdTree()
            let logFile = tree.path + "/shared.log"
            // A line is `YY/MM/DD@HH:MM:SS: START: ID from=127.0.0.1\n`: 42 bytes + the id.
            let longID = "long" + String(repeating: "x", count: 54)  // 42 + 58 = 100 bytes a line
            let shortID = "shortxxx"  // 42 + 8 = 50 bytes a line
            let longPort = Ports.free()
            let shortPort = Ports.free()
            let logging = ["log_type = FILE \(logFile) 1K 2075", "log_on_success = HOST", "log_on_failure = HOST"]
            let daemon = try Daemon(
                config: Xinetd.defaults(["cps = 1000 1"])
                    + Xinetd.probe(longID, port: longPort, logging)
                    + Xinetd.probe(shortID, port: shortPort, logging))
            defer { daemon.stop() }

            for _ in 0..<21 { #expect(Outcome.probe("127.0.0.1", longPort) == .served) }
            #expect(daemon.waitForLog("reached its hard limit", timeout: 3), "\(daemon.log)")
            let lines = Files.read(logFile).split(separator: "\n")
            #expect(lines.count == 20 && lines.allSatisfy { $0.utf8.count == 99 }, "\(lines.map(\.utf8.count))")
            #expect(Files.read(logFile).utf8.count == 2000)

            for _ in 0..<3 { #expect(Outcome.probe("127.0.0.1", shortPort) == .served) }
            _ = Clock.poll(timeout: 3) { daemon.children().isEmpty }
            let after = Files.read(logFile)
            #expect(
                after.utf8.count == 2000,
                "written after the hard limit was reached: \(after.split(separator: "\n").dropFirst(20).map(String.init))")
        }

        // MARK: - Field selection

        /// Each `log_on_success` / `log_on_failure` field adds exactly its part of the line.
        @Test func successAndFailureFieldsSelectTheParts() throws {
            let names = ["pidhost", "hostonly", "exitonly", "duration", "exitcode", "none", "failhost", "failattempt"]
            var port: [String: UInt16] = [:]
            for name in names + ["marker"] { port[name] = Ports.free() }
            let deny = ["only_from = 127.0.0.1"]
            let daemon = try Daemon(
                config: Xinetd.defaults(["cps = 1000 1"])
                    + Xinetd.probe("pidhost", port: port["pidhost"]!, ["log_on_success = PID HOST"])
                    + Xinetd.probe("hostonly", port: port["hostonly"]!, ["log_on_success = HOST EXIT"])
                    + Xinetd.probe("exitonly", port: port["exitonly"]!, ["log_on_success = EXIT"])
                    + Xinetd.probe("duration", port: port["duration"]!, ["log_on_success = DURATION"])
                    + Xinetd.probe("exitcode", port: port["exitcode"]!, mode: "exit 3", ["log_on_success = PID EXIT"])
                    + Xinetd.probe("none", port: port["none"]!, ["log_on_success ="])
                    + Xinetd.probe("failhost", port: port["failhost"]!, deny + ["log_on_failure = HOST"])
                    + Xinetd.probe("failattempt", port: port["failattempt"]!, deny + ["log_on_failure = ATTEMPT"])
                    + Self.marker(port["marker"]!))
            defer { daemon.stop() }
            #expect(daemon.log.contains("ready: \(names.count + 1) services"), "\(daemon.log)")

            var pids: [String: Int32] = [:]
            for name in ["pidhost", "hostonly", "exitonly", "duration", "none"] {
                let report = try TCP.probe("127.0.0.1", port[name]!)
                #expect(report.isComplete, "\(name): \(report)")
                pids[name] = report.pid
            }
            _ = try TCP.exchange("127.0.0.1", port["exitcode"]!)
            for name in ["failhost", "failattempt"] {
                #expect(Outcome.probe("127.0.0.1", port[name]!, from: "127.0.0.2") == .closed(bytes: []))
            }
            Self.settle(daemon, markerPort: port["marker"]!)
            func only(_ prefix: String) -> String {
                let found = daemon.logLines(containing: prefix)
                #expect(found.count == 1, "\(prefix): \(found)")
                guard let line = found.first, let range = line.range(of: prefix) else { return "" }
                return String(line[range.lowerBound...])
            }

            #expect(only("START: pidhost ") == "START: pidhost pid=\(pids["pidhost"]!) from=127.0.0.1")
            #expect(only("START: hostonly ") == "START: hostonly from=127.0.0.1")
            #expect(only("EXIT: hostonly ") == "EXIT: hostonly status=0")
            #expect(only("EXIT: exitonly ") == "EXIT: exitonly status=0")
            let duration = only("EXIT: duration ")
            #expect(duration.hasPrefix("EXIT: duration duration=") && duration.hasSuffix("(sec)"), "\(duration)")
            #expect(!duration.contains("status=") && !duration.contains("pid="), "\(duration)")
            let code = only("EXIT: exitcode ")
            #expect(code.hasPrefix("EXIT: exitcode status=3 pid="), "\(code)")
            let noneLines = daemon.logLines.filter { $0.contains("START: none") || $0.contains("EXIT: none") }
            #expect(noneLines.isEmpty, "log_on_success = (nothing) logged: \(noneLines)")
            #expect(only("FAIL: failhost ") == "FAIL: failhost address from=127.0.0.2")
            #expect(only("FAIL: failattempt ") == "FAIL: failattempt address")
            #expect(daemon.count("USERID:") == 0)
        }

        /// xinetd writes an EXIT line only for EXIT or DURATION (log.c: SC_LOGS_ON_EXIT), and no
        /// FAIL line at all when log_on_failure is empty (SC_LOGS_ON_FAILURE): PID alone and an
        /// empty log_on_failure must not add lines.
        @Test func pidAloneLogsNoExitAndEmptyFailureLogsNoFail() throws {
            let pidOnly = Ports.free()
            let quiet = Ports.free()
            let markerPort = Ports.free()
            let daemon = try Daemon(
                config: Xinetd.probe("pidonly", port: pidOnly, ["log_on_success = PID"])
                    + Xinetd.probe("quiet", port: quiet, ["only_from = 127.0.0.1", "log_on_failure ="])
                    + Self.marker(markerPort))
            defer { daemon.stop() }
            let report = try TCP.probe("127.0.0.1", pidOnly)
            #expect(report.isComplete)
            #expect(Outcome.probe("127.0.0.1", quiet, from: "127.0.0.2") == .closed(bytes: []))
            Self.settle(daemon, markerPort: markerPort)
            #expect(daemon.settledCount("START: pidonly pid=\(report.pid ?? -1)", expected: 1) == 1, "\(daemon.log)")
            #expect(
                daemon.logLines(containing: "EXIT: pidonly").isEmpty,
                "log_on_success = PID logged an EXIT line: \(daemon.logLines(containing: "EXIT: pidonly"))")
            #expect(
                daemon.logLines(containing: "FAIL: quiet").isEmpty,
                "log_on_failure = (nothing) logged: \(daemon.logLines(containing: "FAIL: quiet"))")
        }

        // MARK: - SIGUSR1 dump

        /// SIGUSR1 writes services, listeners, running children and counters to --dump-file; the
        /// file is replaced, never written through a symlink planted at its path.
        @Test func sigusr1DumpsServicesChildrenAndCounters() throws {
            let tree = try XinetdTree()
            let dumpPath = tree.path + "/swinetd.dump"
            let victim = try tree.writeFile("victim", "do not touch\n")
            guard symlink(victim, dumpPath) == 0 else { throw HarnessError("symlink failed") }
            let held = Ports.free()
            let guarded = Ports.free()
            let daemon = try Daemon(
                config: Xinetd.loggingDefaults
                    + Xinetd.probe("held", port: held, mode: "report-wait")
                    + Xinetd.probe("guarded", port: guarded, ["only_from = 127.0.0.1"]),
                arguments: ["--dump-file", dumpPath])
            defer { daemon.stop() }

            let connection = try Connection.tcp("127.0.0.1", held)
            let report = ProbeReport(connection.read(until: "end\n"))
            try #require(report.isComplete)
            let child = try #require(report.pid)
            #expect(Outcome.probe("127.0.0.1", guarded, from: "127.0.0.2") == .closed(bytes: []))
            #expect(daemon.waitForLog("FAIL: guarded"))
            // The dump lists the children the daemon has booked; it books one (and logs its START)
            // when the spawn thread hands the pid back, which may be after the child's report arrived.
            #expect(daemon.waitForLog("START: held pid=\(child) "), "\(daemon.log)")

            daemon.signal(SIGUSR1)
            #expect(daemon.waitForLog("state dumped to \(dumpPath)"), "\(daemon.log)")
            var info = stat()
            #expect(lstat(dumpPath, &info) == 0 && info.st_mode & S_IFMT == S_IFREG, "the dump is not a regular file")
            #expect(Files.read(victim) == "do not touch\n", "the dump was written through a symlink")
            let dump = Files.read(dumpPath)
            #expect(dump.contains("services: 2"), "\(dump)")
            #expect(dump.contains("children: 1"), "\(dump)")
            #expect(dump.contains("refused: 1"), "\(dump)")
            #expect(dump.contains("service held"), "\(dump)")
            #expect(dump.contains("service guarded"), "\(dump)")
            #expect(dump.contains("127.0.0.1:\(held)"), "\(dump)")
            #expect(dump.contains("127.0.0.1:\(guarded)"), "\(dump)")
            #expect(dump.contains("pid=\(child) service=held peer=127.0.0.1"), "\(dump)")

            connection.shutdownWrite()
            #expect(connection.readToEOF(timeout: 3).eof)
            #expect(daemon.waitForLog("EXIT: held "), "\(daemon.log)")
            daemon.signal(SIGUSR1)
            #expect(daemon.waitForLog("state dumped to \(dumpPath)", count: 2), "\(daemon.log)")
            let second = Files.read(dumpPath)
            #expect(second.contains("children: 0"), "\(second)")
            #expect(!second.contains("pid=\(child) "), "\(second)")
        }
    }
}
