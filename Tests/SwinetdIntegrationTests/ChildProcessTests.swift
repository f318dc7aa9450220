import Foundation
import Glibc
import Testing

/// What a spawned child gets: descriptors, environment, session, signals, umask, identity, argv;
/// and what the daemon logs about it.
extension Integration {
    @Suite struct ChildProcessTests {
        static let standardPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

        @Test func childGetsOnlyTheSocketAndACleanEnvironment() throws {
            let port = Ports.free()
            let daemon = try Daemon(config: "127.0.0.1:\(port) stream tcp nowait root PROBE probe report\n")
            defer { daemon.stop() }

            let connection = try Connection.tcp("127.0.0.1", port)
            let clientPort = connection.localPort
            let report = ProbeReport(connection.readToEOF().bytes)
            try #require(report.isComplete, "probe report incomplete:\n\(report)")

            #expect(report.fds == [0, 1, 2], "child must have exactly fds 0,1,2 open")
            #expect(report["socktype0"] == "stream")
            #expect(report["socktype1"] == "stream")
            #expect(report["socktype2"] == "stream")
            // 0, 1 and 2 are the same socket (one connection).
            #expect(report["fd0"] != nil && report["fd0"] == report["fd1"] && report["fd1"] == report["fd2"])

            let expected: [String: String] = [
                "PATH": Self.standardPath,
                "PROTO": "TCP",
                "TCPREMOTEIP": "127.0.0.1",
                "TCPREMOTEPORT": "\(clientPort)",
                "TCPLOCALIP": "127.0.0.1",
                "TCPLOCALPORT": "\(port)",
                "REMOTE_HOST": "127.0.0.1",
            ]
            #expect(report.env == expected, "environment was:\n\(report.environment)")
            #expect(report.environment.count == expected.count, "duplicate environment entries")
            #expect(report.env["SWINETD_TEST_MARKER"] == nil, "the daemon's environment leaked")
        }

        @Test func keepEnvironmentPassesTheDaemonsEnvironment() throws {
            let port = Ports.free()
            let daemon = try Daemon(
                config: "127.0.0.1:\(port) stream tcp nowait root PROBE probe\n", arguments: ["-E"])
            defer { daemon.stop() }

            let report = try TCP.probe("127.0.0.1", port)
            try #require(report.isComplete, "\(report)")
            #expect(report.env["SWINETD_TEST_MARKER"] == "must-not-leak")
            #expect(report.env["TZ"] == "UTC")
            #expect(report.env["HOME"] == "/root")
            #expect(report.env["PROTO"] == "TCP")
            #expect(report.env["TCPLOCALPORT"] == "\(port)")
        }

        /// The spec's hostile start: the daemon is started by a shell that ignores PIPE, INT, QUIT
        /// and HUP, sets umask 077, leaves extra descriptors open and changes directory. The child
        /// still gets default dispositions, umask 022 and only fds 0-2.
        @Test func childStartsCleanAfterAShellThatIgnoredSignals() throws {
            let port = Ports.free()
            let daemon = try Daemon(
                config: "127.0.0.1:\(port) stream tcp nowait root PROBE probe report\n",
                launcher: .shell(prelude: "trap '' PIPE INT QUIT HUP; umask 077; exec 5</etc/hostname 7>/dev/null; cd /tmp"))
            defer { daemon.stop() }
            // The traps took effect: QUIT (3) stays ignored in the daemon, which does not handle it.
            let daemonIgnores = Files.read("/proc/\(daemon.pid)/status").split(separator: "\n").first { $0.hasPrefix("SigIgn:") }
            let ignoredMask = daemonIgnores.flatMap { UInt64($0.split(separator: "\t").last ?? "", radix: 16) } ?? 0
            #expect(ignoredMask & (1 << (UInt64(SIGQUIT) - 1)) != 0, "the launcher did not ignore QUIT: \(String(describing: daemonIgnores))")

            let report = try TCP.probe("127.0.0.1", port)
            try #require(report.isComplete, "\(report)")
            #expect(report["SigIgn"] == "0000000000000000", "ignored signals leaked into the child")
            #expect(report["SigBlk"] == "0000000000000000", "blocked signals leaked into the child")
            #expect(report["Umask"] == "0022")
            #expect(report.fds == [0, 1, 2], "descriptors leaked into the child")
        }

        /// The daemon inherits a mask with every signal blocked; the child's mask is empty.
        @Test func childSignalMaskIsEmptyWhenTheDaemonStartedWithEverythingBlocked() throws {
            let port = Ports.free()
            let daemon = try Daemon(
                config: "127.0.0.1:\(port) stream tcp nowait root PROBE probe report\n", blockAllSignals: true)
            defer { daemon.stop() }
            let report = try TCP.probe("127.0.0.1", port)
            try #require(report.isComplete, "\(report)")
            #expect(report["SigBlk"] == "0000000000000000", "blocked signals leaked into the child")
        }

        /// The daemon starts with all 62 catchable signals ignored, glibc's internal 32 and 33
        /// included (Tests/helpers/signal_state.py ignore) — glibc's posix_spawn alone leaves 32 and
        /// 33 ignored in every process it starts. The child still starts with none ignored.
        @Test func childDispositionsAreDefaultWhenTheDaemonStartedWithEverySignalIgnored() throws {
            let port = Ports.free()
            let daemon = try Daemon(
                config: "127.0.0.1:\(port) stream tcp nowait root PROBE probe report\n",
                launcher: .prefix(["/usr/bin/python3", Binaries.helpers + "/signal_state.py", "ignore"]))
            defer { daemon.stop() }
            let report = try TCP.probe("127.0.0.1", port)
            try #require(report.isComplete, "\(report)")
            #expect(report["SigIgn"] == "0000000000000000", "ignored signals leaked into the child")
            #expect(report["SigBlk"] == "0000000000000000")
            // SIGCHLD was ignored at exec too: the daemon must still see its children exit.
            #expect(daemon.waitForLog("EXIT: \(port) status=0 pid=\(report.pid ?? -1)", timeout: 3), "\(daemon.log)")
        }

        /// The spawn shim parks each child's socket in a low descriptor slot and the child keeps a
        /// private copy of only the low descriptors (spawn.c, "Descriptor slots"). With many
        /// listeners and live children (one pidfd each) in the daemon and 16 clients at once on two
        /// spawn threads, every child still gets exactly fds 0-2, and they are its own connection
        /// (not a neighbour's parked in the next slot). Children get the descriptor limit the
        /// daemon was started with, not the one it raised for itself.
        @Test func childrenGetOnlyTheirOwnSocketWhileTheDaemonHoldsManyDescriptors() throws {
            let report = Ports.free()
            let sleeper = Ports.free()
            let sockets = try TempDir()
            var config = """
                127.0.0.1:\(report) stream tcp nowait root PROBE probe report
                127.0.0.1:\(sleeper) stream tcp nowait root PROBE probe sleep 30

                """
            for i in 0..<60 { config += "\(sockets.path)/s\(i).sock stream unix nowait root /bin/true true\n" }
            let daemon = try Daemon(config: config, launcher: .prefix(["/usr/bin/prlimit", "--nofile=1000:8192"]))
            defer { daemon.stop() }
            let limits = Files.read("/proc/\(daemon.pid)/limits")
            #expect(limits.split(separator: "\n").contains { $0.hasPrefix("Max open files") && $0.contains("8192                 8192") },
                    "the daemon keeps its soft limit at the hard one for pidfds:\n\(limits)")

            let sleepers = try (0..<40).map { _ in try Connection.tcp("127.0.0.1", sleeper) }
            defer { for connection in sleepers { connection.close() } }
            #expect(daemon.waitForLog("START: \(sleeper) ", count: 40, timeout: 10))
            #expect(ProcFS.openFDs(daemon.pid).count >= 60 + 40, "the daemon should hold a listener per service and a pidfd per child")

            let results = Locked<[(port: UInt16, report: ProbeReport)]>([])
            DispatchQueue.concurrentPerform(iterations: 16) { _ in
                guard let connection = try? Connection.tcp("127.0.0.1", report) else { return }
                let probe = ProbeReport(connection.readToEOF().bytes)
                results.withLock { $0.append((connection.localPort, probe)) }
            }
            let reports = results.withLock { $0 }
            #expect(reports.count == 16)
            for (port, probe) in reports {
                #expect(probe.isComplete, "\(probe)")
                #expect(probe.fds == [0, 1, 2], "fds \(probe.fds)")
                #expect(probe.env["TCPREMOTEPORT"] == "\(port)", "a child got another client's socket")
                #expect(probe["rlimit_nofile"] == "1000", "children get the limit the daemon was started with")
            }
        }

        /// With no descriptor left for a pidfd, a child is started without one and reaped through
        /// SIGCHLD instead (which the daemon reads only while such children live). A tight limit
        /// (64, soft = hard) leaves the daemon one free descriptor after some children: the rest
        /// run without pidfds. Every child's EXIT is booked, none stays a zombie, and the daemon
        /// serves on afterwards, through two rounds of switching between the two ways of reaping.
        @Test func childrenWithoutAPidfdAreReapedThroughSIGCHLD() throws {
            let port = Ports.free()
            let scripts = try TempDir()
            let script = try scripts.write("waiter.sh", "#!/bin/sh\necho up\nread line\nexit 3\n")
            chmod(script, 0o755)
            let daemon = try Daemon(
                config: "127.0.0.1:\(port) stream tcp nowait root \(script) waiter\n",
                launcher: .prefix(["/usr/bin/prlimit", "--nofile=64:64"]))
            defer { daemon.stop() }
            for round in 1...2 {
                var clients: [Connection] = []
                for _ in 0..<70 {
                    let client = try Connection.tcp("127.0.0.1", port)
                    #expect(String(decoding: client.read(until: "up\n", timeout: 5), as: UTF8.self) == "up\n", "round \(round): a child did not start")
                    clients.append(client)
                }
                // Polled: a spawn thread may still hold the last connection's descriptor. (At most
                // 64: the harness passes the daemon no descriptor of its own above 2.)
                var descriptors = 0
                #expect(
                    Clock.poll(timeout: 3) {
                        descriptors = ProcFS.openFDs(daemon.pid).count
                        return descriptors <= 64 && descriptors >= 60
                    }, "round \(round): the daemon should be at its limit, holds \(descriptors)")
                for client in clients { try client.send("bye\n") }
                for client in clients { _ = client.readToEOF(timeout: 5) }
                #expect(daemon.waitForLog("EXIT: \(port) status=3", count: 70 * round, timeout: 10), "round \(round):\n\(daemon.log.suffix(2000))")
                #expect(Clock.poll(timeout: 5) { ProcFS.children(of: daemon.pid).isEmpty },
                        "round \(round): children left: \(ProcFS.children(of: daemon.pid).map { "\($0.pid) \($0.state)" })")
                for client in clients { client.close() }
            }
        }

        @Test func childLeadsANewSession() throws {
            let port = Ports.free()
            let daemon = try Daemon(config: "127.0.0.1:\(port) stream tcp nowait root PROBE probe\n")
            defer { daemon.stop() }

            let report = try TCP.probe("127.0.0.1", port)
            try #require(report.isComplete, "\(report)")
            let pid = try #require(report.pid)
            #expect(report.sid == pid, "child is not a session leader")
            #expect(report.pgid == pid, "child is not a process group leader")
            #expect(report.sid != daemon.pid)
        }

        /// With the kernel's autogroups on, a session is scheduled as a group whose weight is the
        /// group's nice: the child's new session group gets the nice the child runs at, here the
        /// daemon's (3 below the test's, inherited). Off, the group is left alone (nice 0).
        @Test(.enabled(if: ProcFS.autogroupsExist, "skipped: this kernel has no autogroups"))
        func childSessionGroupGetsTheDaemonsNice() throws {
            let port = Ports.free()
            let daemon = try Daemon(
                config: "127.0.0.1:\(port) stream tcp nowait root PROBE probe\n",
                launcher: .prefix(["/usr/bin/nice", "-n", "-3"]))
            defer { daemon.stop() }
            let report = try TCP.probe("127.0.0.1", port)
            try #require(report.isComplete, "\(report)")
            let nice = max(ProcFS.ownNice - 3, -20)
            #expect(report["nice"] == "\(nice)")
            #expect(report["autogroup_nice"] == (ProcFS.autogroupsEnabled ? "\(nice)" : "0"), "\(report)")
        }

        /// A daemon at nice 0 writes nothing: the new group keeps the default, 0.
        @Test(.enabled(if: ProcFS.autogroupsExist && ProcFS.ownNice == 0, "skipped: no autogroups, or the tests run niced"))
        func childSessionGroupStaysAtZeroForADaemonAtZero() throws {
            let port = Ports.free()
            let daemon = try Daemon(config: "127.0.0.1:\(port) stream tcp nowait root PROBE probe\n")
            defer { daemon.stop() }
            let report = try TCP.probe("127.0.0.1", port)
            try #require(report.isComplete, "\(report)")
            #expect(report["nice"] == "0")
            #expect(report["autogroup_nice"] == "0", "\(report)")
        }

        @Test func argvIsExactlyAsConfiguredWithoutShellExpansion() throws {
            let port = Ports.free()
            let args = ["report", "$HOME", "*", "a;b", "'q'", "\"d\"", "back\\slash", "%s%n", "ü-é", "`id`", "x=1"]
            let daemon = try Daemon(
                config: "127.0.0.1:\(port) stream tcp nowait root PROBE my-argv0 \(args.joined(separator: " "))\n")
            defer { daemon.stop() }

            let report = try TCP.probe("127.0.0.1", port)
            try #require(report.isComplete, "\(report)")
            #expect(report.argv == ["my-argv0"] + args)
        }

        @Test func ipv6ClientEnvironment() throws {
            let port = Ports.free()
            let daemon = try Daemon(config: "[::1]:\(port) stream tcp6 nowait root PROBE probe\n")
            defer { daemon.stop() }

            let connection = try Connection.tcp("::1", port)
            let clientPort = connection.localPort
            let report = ProbeReport(connection.readToEOF().bytes)
            try #require(report.isComplete, "\(report)")
            #expect(report.env["TCPREMOTEIP"] == "::1")
            #expect(report.env["REMOTE_HOST"] == "::1")
            #expect(report.env["TCPREMOTEPORT"] == "\(clientPort)")
            #expect(report.env["TCPLOCALIP"] == "::1")
            // tcp6 is IPv6 only.
            #expect(TCP.connectErrno("127.0.0.1", port) == ECONNREFUSED)
        }

        /// tcp46: one dual-stack socket; an IPv4 client shows as plain 127.0.0.1, not ::ffff:127.0.0.1.
        @Test func dualStackSocketShowsIPv4PeersUnmapped() throws {
            let port = Ports.free()
            let daemon = try Daemon(config: "*:\(port) stream tcp46 nowait root PROBE probe\n")
            defer { daemon.stop() }

            let v4 = try TCP.probe("127.0.0.1", port)
            try #require(v4.isComplete, "\(v4)")
            #expect(v4.env["TCPREMOTEIP"] == "127.0.0.1")
            #expect(v4.env["REMOTE_HOST"] == "127.0.0.1")
            #expect(v4.env["TCPLOCALIP"] == "127.0.0.1")
            let v6 = try TCP.probe("::1", port)
            #expect(v6.env["TCPREMOTEIP"] == "::1")
            #expect(v6.env["TCPLOCALIP"] == "::1")
            // A wildcard socket: each connection's own local address, not the first one's.
            let other = try TCP.probe("127.0.0.2", port)
            #expect(other.env["TCPLOCALIP"] == "127.0.0.2")
            #expect(other.env["TCPLOCALPORT"] == "\(port)")
            #expect(daemon.waitForLog("START: \(port) ", count: 3, timeout: 3))
            #expect(daemon.log.contains(" from=127.0.0.1"), "the log must show the IPv4 peer as 127.0.0.1:\n\(daemon.log)")
            #expect(!daemon.log.contains("ffff"), "the log shows a mapped address:\n\(daemon.log)")
        }

        /// `tcp` means separate IPv4 and IPv6 sockets: both families connect.
        @Test func tcpListensOnIPv4AndIPv6() throws {
            let port = Ports.free()
            let daemon = try Daemon(config: "\(port) stream tcp nowait root internal echo\n")
            defer { daemon.stop() }
            #expect(try TCP.exchange("127.0.0.1", port, send: Array("four\n".utf8)).text == "four\n")
            #expect(try TCP.exchange("::1", port, send: Array("six\n".utf8)).text == "six\n")
        }

        /// The start-up banner: one `listening on PROTO ADDRESS for SERVICE` line per socket, then
        /// `ready: N services`.
        @Test func startupBannerListsEverySocket() throws {
            let v4 = Ports.free()
            let both = Ports.free()
            let daemon = try Daemon(
                config: """
                    127.0.0.1:\(v4) stream tcp nowait root PROBE probe
                    \(both) stream tcp nowait root internal echo
                    """)
            defer { daemon.stop() }
            let listening = daemon.logLines(containing: "listening on ")
            #expect(listening.count == 3, "expected 3 sockets (one IPv4, and IPv4+IPv6):\n\(daemon.log)")
            #expect(
                daemon.log.contains("listening on tcp 127.0.0.1:\(v4) for \(v4)"),
                "no `listening on tcp 127.0.0.1:\(v4) for \(v4) ...` line:\n\(daemon.log)")
            #expect(
                daemon.log.contains("listening on tcp 0.0.0.0:\(both) for \(both)"),
                "no `listening on tcp 0.0.0.0:\(both) for \(both) ...` line:\n\(daemon.log)")
            let ready = daemon.logLines(containing: "ready:")
            #expect(ready.count == 1 && ready[0].hasSuffix("swinetd[\(daemon.pid)]: info: ready: 2 services"), "\(ready)")
            // The banner comes before ready.
            let text = daemon.log
            if let readyRange = text.range(of: "ready:"), let lastListen = text.range(of: "listening on ", options: .backwards) {
                #expect(lastListen.lowerBound < readyRange.lowerBound)
            }
        }

        @Test func logLinesForStartExitAndFailure() throws {
            let port = Ports.free()
            let exitPort = Ports.free()
            let missingPort = Ports.free()
            // A copy of the probe that is deleted after start: exec then fails at run time.
            let scratch = try TempDir()
            let doomed = scratch.path + "/doomed-probe"
            try FileManager.default.copyItem(atPath: Binaries.probe, toPath: doomed)
            let daemon = try Daemon(
                config: """
                    127.0.0.1:\(port) stream tcp nowait root PROBE probe
                    127.0.0.1:\(exitPort) stream tcp nowait root PROBE probe exit 3
                    127.0.0.1:\(missingPort) stream tcp nowait root \(doomed) doomed
                    """)
            defer { daemon.stop() }
            #expect(daemon.log.contains("ready: 3 services"), "\(daemon.log)")

            let connection = try Connection.tcp("127.0.0.1", port)
            let report = ProbeReport(connection.readToEOF().bytes)
            let childPid = try #require(report.pid, "\(report)")
            // xinetd.log(5) form, nothing after from=ADDR: log tooling (fail2ban's xinetd filters)
            // anchors its patterns at the end of the line.
            let startLine = "swinetd[\(daemon.pid)]: info: START: \(port) pid=\(childPid) from=127.0.0.1"
            #expect(daemon.waitForLog(startLine), "\(daemon.log)")
            #expect(daemon.logLines(containing: startLine).first?.hasSuffix(startLine) == true, "\(daemon.log)")
            #expect(daemon.waitForLog("EXIT: \(port) status=0 pid=\(childPid) duration="), "\(daemon.log)")
            let exitLine = daemon.logLines(containing: "EXIT: \(port) ").first ?? ""
            #expect(exitLine.hasSuffix("(sec)"), "\(exitLine)")

            _ = try TCP.exchange("127.0.0.1", exitPort)
            #expect(daemon.waitForLog("EXIT: \(exitPort) status=3 pid="), "\(daemon.log)")

            try FileManager.default.removeItem(atPath: doomed)
            let failed = try TCP.exchange("127.0.0.1", missingPort)
            #expect(failed.bytes.isEmpty)
            #expect(failed.eof || failed.error != nil, "connection must be closed after a failed exec")
            #expect(daemon.waitForLog("FAIL: \(missingPort) "), "\(daemon.log)")
            let failLine = daemon.logLines(containing: "FAIL: \(missingPort) ").first ?? ""
            #expect(failLine.contains("from=127.0.0.1"), "\(failLine)")
            // The child that failed to exec is reaped too.
            #expect(Clock.poll(timeout: 2) { daemon.zombies().isEmpty }, "zombies: \(daemon.zombies().map(\.pid))")
        }

        @Test func sigtermExitsZeroAndClosesListeners() throws {
            let port = Ports.free()
            let daemon = try Daemon(config: "127.0.0.1:\(port) stream tcp nowait root internal echo\n")
            defer { daemon.stop() }
            #expect(TCP.connectErrno("127.0.0.1", port) == 0)
            daemon.signal(SIGTERM)
            let status = daemon.waitForExit(timeout: 5)
            #expect(status == .exited(0), "daemon ended with \(String(describing: status)); log:\n\(daemon.log)")
            #expect(TCP.connectErrno("127.0.0.1", port) == ECONNREFUSED)
        }

        /// Without --foreground, swinetd forks and the parent exits 0 once the detached daemon is
        /// ready: its pid file is written and it serves (no polling needed), and it removes the
        /// file on SIGTERM.
        @Test func daemonModeDetachesAndWritesThePidFile() throws {
            let port = Ports.free()
            let dir = try TempDir()
            let config = try dir.write("inetd.conf", "127.0.0.1:\(port) stream tcp nowait root internal echo\n")
            let pidfile = dir.path + "/swinetd.pid"
            let launched = try Processes.spawn(
                [Binaries.swinetd, "--config", config, "--pidfile", pidfile],
                stdout: dir.path + "/out", stderr: dir.path + "/out")
            var daemonPid: pid_t = 0
            defer {
                if daemonPid > 0, ProcFS.commandLine(daemonPid).contains("swinetd") { kill(daemonPid, SIGKILL) }
            }
            let parentStatus = Processes.wait(launched, timeout: 5)
            if parentStatus == nil { Processes.killAndReap(launched) }
            #expect(parentStatus == .exited(0), "the launching process must exit 0 after forking")

            // Read once, right after the parent's exit: it waits for the daemon to be ready.
            daemonPid = Int32(Files.read(pidfile).trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
            if daemonPid == 0 {  // stop a daemon that was late, so it does not outlive the run
                _ = Clock.poll(timeout: 5) {
                    daemonPid = Int32(Files.read(pidfile).trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
                    return daemonPid > 0
                }
                Issue.record("the parent exited before the daemon wrote \(pidfile)")
            }
            try #require(daemonPid > 0, "no pid in \(pidfile); output:\n\(Files.read(dir.path + "/out"))")
            #expect(daemonPid != launched)
            #expect(ProcFS.isRunning(daemonPid))
            #expect(ProcFS.stat(daemonPid)?.session == daemonPid, "the daemon must lead its own session")
            #expect(TCP.connectErrno("127.0.0.1", port) == 0, "the parent exited before the daemon listened")
            #expect(try TCP.exchange("127.0.0.1", port, send: Array("detached\n".utf8)).text == "detached\n")

            kill(daemonPid, SIGTERM)
            #expect(Clock.poll(timeout: 5) { !ProcFS.isRunning(daemonPid) }, "daemon did not exit on SIGTERM")
            #expect(Clock.poll(timeout: 2) { !FileManager.default.fileExists(atPath: pidfile) }, "pid file left behind")
            daemonPid = 0
        }

        /// Daemon mode started from a directory with relative paths (`cd /etc && swinetd -f
        /// inetd.conf --pidfile swinetd.pid`): detaching changes to /, but the pid file must still
        /// be written where it was asked for, and SIGHUP must re-read the same configuration file.
        @Test func daemonModeWithRelativePaths() throws {
            let first = Ports.free()
            let second = Ports.free()
            let dir = try TempDir()
            try dir.write("inetd.conf", "127.0.0.1:\(first) stream tcp nowait root internal echo\n")
            let pidName = "swinetd-it-\(getpid())-\(first).pid"  // unique: also identifies the daemon
            let launched = try Processes.spawn(
                ["/bin/sh", "-c", "cd \"$0\" && exec \"$1\" -f inetd.conf --pidfile \(pidName)", dir.path, Binaries.swinetd],
                stdout: dir.path + "/out", stderr: dir.path + "/out")
            func daemonPids() -> [pid_t] {
                ProcFS.allPids().filter { $0 != launched && ProcFS.commandLine($0).contains(pidName) && ProcFS.isRunning($0) }
            }
            defer {
                for pid in daemonPids() { kill(pid, SIGKILL) }
                unlink("/" + pidName)  // where a daemon that ignored the working directory wrote it
            }
            let status = Processes.wait(launched, timeout: 5)
            if status == nil { Processes.killAndReap(launched) }
            #expect(status == .exited(0))
            // The parent exits once the daemon is ready: listening, pid file written.
            #expect(TCP.connectErrno("127.0.0.1", first) == 0)
            #expect(Clock.poll(timeout: 5) { !daemonPids().isEmpty })
            let daemonPid = try #require(daemonPids().first, "no detached daemon; output:\n\(Files.read(dir.path + "/out"))")

            let local = dir.path + "/" + pidName
            #expect(FileManager.default.fileExists(atPath: local), "pid file not written to \(local)")
            #expect(!FileManager.default.fileExists(atPath: "/" + pidName), "pid file written to /\(pidName)")

            try dir.write(
                "inetd.conf",
                "127.0.0.1:\(first) stream tcp nowait root internal echo\n127.0.0.1:\(second) stream tcp nowait root internal echo\n")
            kill(daemonPid, SIGHUP)
            #expect(
                Clock.poll(timeout: 3) { TCP.connectErrno("127.0.0.1", second) == 0 },
                "SIGHUP did not load the changed configuration file (relative -f resolved against / after detaching?)")
            #expect(TCP.connectErrno("127.0.0.1", first) == 0)

            kill(daemonPid, SIGTERM)
            #expect(Clock.poll(timeout: 5) { !ProcFS.isRunning(daemonPid) })
        }

        /// The spec's spelling: `-f FILE` names the configuration for both `run` and `check`.
        @Test func dashFNamesTheConfigurationFile() throws {
            let port = Ports.free()
            let dir = try TempDir()
            let config = try dir.write("inetd.conf", "127.0.0.1:\(port) stream tcp nowait root internal echo\n")
            let check = try Processes.run([Binaries.swinetd, "check", "-f", config])
            #expect(check.status == .exited(0), "swinetd check -f FILE: \(check)")
            #expect(check.stdout.contains("\(port)"), "\(check)")

            // Without --foreground, `-f FILE` must not turn foreground mode on: the process detaches.
            let pidfile = dir.path + "/pid"
            let launched = try Processes.spawn(
                [Binaries.swinetd, "-f", config, "--pidfile", pidfile], stdout: dir.path + "/out",
                stderr: dir.path + "/out")
            let status = Processes.wait(launched, timeout: 3)
            if status == nil { Processes.killAndReap(launched) }
            // The detached daemon writes its pid file after the parent exits: wait for it, so the
            // daemon is always stopped (it would otherwise outlive the test run).
            var detached: pid_t = 0
            _ = Clock.poll(timeout: 5) {
                detached = Int32(Files.read(pidfile).trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
                return detached > 0
            }
            if detached > 0, detached != launched, ProcFS.commandLine(detached).contains("swinetd") {
                kill(detached, SIGTERM)
            }
            #expect(status == .exited(0), "`swinetd -f CONF --pidfile P` did not detach (it ran in the foreground)")
        }

        /// A detached start that fails after the fork (here: the pid file cannot be written) is
        /// not hidden: the launching process waits for the daemon's report and exits 1 with the
        /// reason on stderr, no daemon is left behind, and the listeners it had bound are closed.
        /// Configuration problems are shown on the terminal too, before it is given up.
        @Test func daemonModeStartupFailureReachesTheCaller() throws {
            let port = Ports.free()
            let dir = try TempDir()
            let marker = "swinetd-fail-\(getpid())-\(port)"
            let config = try dir.write(
                "inetd.conf",
                "127.0.0.1:\(port) stream tcp nowait root internal echo\n127.0.0.1:\(port + 1) stream tcp bogus root /bin/true true\n")
            let pidfile = dir.path + "/\(marker)/missing-dir/swinetd.pid"
            let launched = try Processes.spawn(
                [Binaries.swinetd, "-f", config, "--pidfile", pidfile], stdout: dir.path + "/out", stderr: dir.path + "/err")
            func daemonPids() -> [pid_t] {
                ProcFS.allPids().filter { $0 != launched && ProcFS.commandLine($0).contains(marker) && ProcFS.isRunning($0) }
            }
            defer { for pid in daemonPids() { kill(pid, SIGKILL) } }
            let status = Processes.wait(launched, timeout: 5)
            if status == nil { Processes.killAndReap(launched) }
            let stderr = Files.read(dir.path + "/err")
            #expect(status == .exited(1), "a failed detached start must exit 1; stderr:\n\(stderr)")
            #expect(stderr.contains("swinetd: open \(pidfile)"), "the reason must reach the caller; stderr:\n\(stderr)")
            #expect(stderr.contains("inetd.conf:2"), "configuration errors must be shown before detaching; stderr:\n\(stderr)")
            #expect(Clock.poll(timeout: 5) { daemonPids().isEmpty }, "the failed daemon is still running")
            // An exiting process loses its command line (its memory) before its descriptors are
            // closed, so daemonPids() can be empty while the listener still accepts.
            #expect(
                Clock.poll(timeout: 3) { TCP.connectErrno("127.0.0.1", port) == ECONNREFUSED },
                "the failed daemon's listener is still open")
        }
    }
}

/// The user field: who the child runs as.
extension Integration {
    @Suite struct PrivilegeTests {
        static let nobody: UInt32 = 65534

        @Test func userFieldSetsUidGidAndGroups() throws {
            let ports = (0..<6).map { _ in Ports.free() }
            let users = ["nobody", "nobody:nogroup", "nobody.root", "nobody:root", "65534", "root"]
            let config = zip(ports, users).map { port, user in
                "127.0.0.1:\(port) stream tcp nowait \(user) PROBE probe \(user)"
            }.joined(separator: "\n")
            let daemon = try Daemon(config: config + "\n")
            defer { daemon.stop() }
            #expect(daemon.log.contains("ready: 6 services"), "\(daemon.log)")

            var reports: [String: ProbeReport] = [:]
            for (port, user) in zip(ports, users) {
                let report = try TCP.probe("127.0.0.1", port)
                #expect(report.isComplete, "\(user): \(report)")
                reports[user] = report
            }
            let n = Self.nobody
            for user in ["nobody", "nobody:nogroup", "65534"] {
                let report = try #require(reports[user])
                #expect(report.uids == [n, n, n, n], "\(user): Uid=\(report["Uid"] ?? "?")")
                #expect(report.gids == [n, n, n, n], "\(user): Gid=\(report["Gid"] ?? "?")")
                #expect(report.groups.allSatisfy { $0 == n }, "\(user): Groups=\(report["Groups"] ?? "?")")
                #expect(report["CapEff"] == "0000000000000000", "\(user) kept capabilities")
            }
            for user in ["nobody.root", "nobody:root"] {
                let report = try #require(reports[user])
                #expect(report.uids == [n, n, n, n], "\(user): Uid=\(report["Uid"] ?? "?")")
                #expect(report.gids == [0, 0, 0, 0], "\(user): Gid=\(report["Gid"] ?? "?")")
                #expect(report.groups.allSatisfy { $0 == 0 || $0 == n }, "\(user): Groups=\(report["Groups"] ?? "?")")
            }
            let root = try #require(reports["root"])
            #expect(root.uids == [0, 0, 0, 0])
            #expect(root.gids == [0, 0, 0, 0])
        }

        /// An unknown user refuses that line only: `check` names file:line and exits 1, and the
        /// daemon still serves the other lines.
        @Test func unknownUserRefusesOnlyItsLine() throws {
            let good1 = Ports.free()
            let bad = Ports.free()
            let good2 = Ports.free()
            let config = """
                # services
                127.0.0.1:\(good1) stream tcp nowait nobody PROBE probe

                127.0.0.1:\(bad) stream tcp nowait no-such-user-xq PROBE probe
                127.0.0.1:\(good2) stream tcp nowait root internal echo

                """
            let dir = try TempDir()
            let file = try dir.write("inetd.conf", Daemon.expand(config))
            let check = try Processes.run([Binaries.swinetd, "check", "--config", file])
            #expect(check.status == .exited(1), "\(check)")
            #expect(check.stderr.contains("\(file):4: error:"), "\(check)")
            #expect(check.stderr.contains("no-such-user-xq"), "\(check)")
            #expect(!check.stderr.contains("\(file):2:") && !check.stderr.contains("\(file):5:"), "\(check)")

            let daemon = try Daemon(config: config)
            defer { daemon.stop() }
            #expect(daemon.log.contains("inetd.conf:4:"), "the daemon must log the refused line:\n\(daemon.log)")
            let report = try TCP.probe("127.0.0.1", good1)
            #expect(report.uids.first == Self.nobody, "\(report)")
            #expect(try TCP.exchange("127.0.0.1", good2, send: Array("ok\n".utf8)).text == "ok\n")
            #expect(TCP.connectErrno("127.0.0.1", bad) == ECONNREFUSED)
        }

        /// swinetd itself running as nobody cannot switch users: it warns and runs `root` services
        /// as itself.
        @Test func nonRootDaemonRunsChildrenAsItself() throws {
            let port = Ports.free()
            let daemon = try Daemon(
                config: "127.0.0.1:\(port) stream tcp nowait root PROBE probe\n",
                launcher: .prefix(["/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]))
            defer { daemon.stop() }

            #expect(daemon.log.contains("because swinetd is not root"), "\(daemon.log)")
            let report = try TCP.probe("127.0.0.1", port)
            try #require(report.isComplete, "\(report)\nlog:\n\(daemon.log)")
            #expect(report.uids == [Self.nobody, Self.nobody, Self.nobody, Self.nobody])
            #expect(report.gids.first == Self.nobody)
        }
    }
}
