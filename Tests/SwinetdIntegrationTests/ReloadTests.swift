import Foundation
import Glibc
import Testing

/// SIGHUP: the new configuration replaces the old one without dropping what did not change.
extension Integration {
    @Suite struct ReloadTests {
        /// ~200 connections to an unchanged service while 20 SIGHUPs reload the same configuration:
        /// not one connection may fail.
        @Test func unchangedListenersStayOpenDuringReloads() throws {
            let port = Ports.free()
            let other = Ports.free()
            let config = """
                127.0.0.1:\(port) stream tcp nowait root internal echo
                127.0.0.1:\(other) stream tcp nowait root PROBE probe
                """
            let daemon = try Daemon(config: config)
            defer { daemon.stop() }

            let failures = Locked<[String]>([])
            let attempts = Locked(0)
            let reloading = Locked(true)
            // Three clients, so that connections are usually in flight when a reload happens.
            let finished = runOnThreads(3, timeout: 30) { client in
                var n = 0
                // At least 200 connections in all, and keep going until the reloads are done.
                while n < 70 || reloading.withLock({ $0 }) {
                    if n >= 2000 { break }
                    n += 1
                    let message = Array("ping \(client)/\(n)\n".utf8)
                    do {
                        let result = try TCP.exchange("127.0.0.1", port, send: message, timeout: 3)
                        if result.bytes != message || !result.eof {
                            failures.withLock { $0.append("#\(n): got \(result.text.debugDescription) eof=\(result.eof)") }
                        }
                    } catch {
                        failures.withLock { $0.append("#\(n): \(error)") }
                    }
                }
                attempts.withLock { $0 += n }
            }
            var outcomes: [String?] = []
            for _ in 0..<20 {
                outcomes.append(daemon.hangUp(timeout: 3))
                usleep(15_000)
            }
            reloading.withLock { $0 = false }
            #expect(finished, "client loop did not finish")
            #expect(outcomes.allSatisfy { $0?.contains("reloaded") == true }, "\(outcomes)")
            let failed = failures.withLock { $0 }
            #expect(failed.isEmpty, "\(failed.count) of \(attempts.withLock { $0 }) connections failed: \(failed.prefix(5))")
            #expect(attempts.withLock { $0 } >= 200)
        }

        /// Connections already queued in an unchanged service's backlog when the reload runs are
        /// served, not reset: the socket is kept, not closed and bound again. Deterministic: with
        /// the daemon stopped, SIGHUP is queued before the connections, so on SIGCONT epoll reports
        /// the signalfd first and the reload runs before any of them is accepted.
        @Test func queuedConnectionsSurviveAReload() throws {
            let port = Ports.free()
            let config = "127.0.0.1:\(port) stream tcp nowait root internal echo\n"
            let daemon = try Daemon(config: config)
            defer {
                daemon.signal(SIGCONT)
                daemon.stop()
            }
            kill(daemon.pid, SIGSTOP)
            #expect(Clock.poll(timeout: 2) { ProcFS.stat(daemon.pid)?.state == "T" })
            kill(daemon.pid, SIGHUP)
            usleep(50_000)
            var queued: [Connection] = []
            for i in 0..<10 {
                let connection = try Connection.tcp("127.0.0.1", port)  // the kernel completes the handshake
                try connection.send("queued \(i)\n")
                connection.shutdownWrite()
                queued.append(connection)
            }
            kill(daemon.pid, SIGCONT)
            #expect(daemon.waitForLog("reloaded", timeout: 3), "\(daemon.log)")
            for (i, connection) in queued.enumerated() {
                let result = connection.readToEOF(timeout: 3)
                #expect(result.text == "queued \(i)\n" && result.error == nil,
                        "queued connection \(i): \(result.text.debugDescription), errno \(String(describing: result.error))")
            }
        }

        @Test func changedServicesRebindAndRemovedOnesClose() throws {
            let a = Ports.free()  // unchanged
            let b = Ports.free()  // program arguments change
            let c = Ports.free()  // removed
            let d = Ports.free()  // moves to port e
            let e = Ports.free()
            let daemon = try Daemon(
                config: """
                    127.0.0.1:\(a) stream tcp nowait root internal echo
                    127.0.0.1:\(b) stream tcp nowait root PROBE probe version-1
                    127.0.0.1:\(c) stream tcp nowait root internal echo
                    127.0.0.1:\(d) stream tcp nowait root internal echo
                    """)
            defer { daemon.stop() }
            #expect(try TCP.probe("127.0.0.1", b).argv == ["probe", "version-1"])
            #expect(TCP.connectErrno("127.0.0.1", c) == 0)
            #expect(TCP.connectErrno("127.0.0.1", e) == ECONNREFUSED)

            let outcome = try daemon.reload(
                """
                127.0.0.1:\(a) stream tcp nowait root internal echo
                127.0.0.1:\(b) stream tcp nowait root PROBE probe version-2
                127.0.0.1:\(e) stream tcp nowait root internal echo
                """)
            #expect(outcome?.contains("reloaded 3 services") == true, "\(String(describing: outcome))\n\(daemon.log)")
            #expect(try TCP.exchange("127.0.0.1", a, send: Array("a\n".utf8)).text == "a\n")
            #expect(try TCP.probe("127.0.0.1", b).argv == ["probe", "version-2"])
            #expect(TCP.connectErrno("127.0.0.1", c) == ECONNREFUSED, "removed service still listening")
            #expect(TCP.connectErrno("127.0.0.1", d) == ECONNREFUSED, "old port of a moved service still listening")
            #expect(try TCP.exchange("127.0.0.1", e, send: Array("e\n".utf8)).text == "e\n")
        }

        @Test func configurationWithErrorsIsRefusedAndTheOldOneStays() throws {
            let a = Ports.free()
            let b = Ports.free()
            let daemon = try Daemon(config: "127.0.0.1:\(a) stream tcp nowait root PROBE probe old\n")
            defer { daemon.stop() }

            let outcome = try daemon.reload(
                """
                127.0.0.1:\(a) stream tcp nowait root PROBE probe new
                127.0.0.1:\(b) stream tcp nowait root internal echo
                127.0.0.1:\(Ports.free()) stream tcp nowait no-such-user-xq PROBE probe
                """)
            #expect(outcome?.contains("reload refused") == true, "\(String(describing: outcome))\n\(daemon.log)")
            #expect(daemon.log.contains("inetd.conf:3:"), "the error must name file:line:\n\(daemon.log)")
            #expect(try TCP.probe("127.0.0.1", a).argv == ["probe", "old"], "the old configuration must stay")
            #expect(TCP.connectErrno("127.0.0.1", b) == ECONNREFUSED, "part of a refused configuration was applied")
            #expect(daemon.hasExited() == false)
        }

        /// A child of a service that a reload removes keeps running, and is still reaped and logged.
        @Test func runningChildrenSurviveAReload() throws {
            let keep = Ports.free()
            let doomed = Ports.free()
            let daemon = try Daemon(
                config: """
                    127.0.0.1:\(keep) stream tcp nowait root internal echo
                    127.0.0.1:\(doomed) stream tcp nowait root PROBE probe report-wait
                    """)
            defer { daemon.stop() }

            let connection = try Connection.tcp("127.0.0.1", doomed)
            let report = ProbeReport(connection.read(until: "end\n"))
            let child = try #require(report.pid, "\(report)")

            let outcome = try daemon.reload("127.0.0.1:\(keep) stream tcp nowait root internal echo\n")
            #expect(outcome?.contains("reloaded") == true, "\(String(describing: outcome))")
            #expect(TCP.connectErrno("127.0.0.1", doomed) == ECONNREFUSED)
            usleep(200_000)
            #expect(ProcFS.isRunning(child), "the reload killed a running child")
            #expect(ProcFS.stat(child)?.ppid == daemon.pid)

            connection.shutdownWrite()  // the child sees EOF and exits
            #expect(connection.readToEOF(timeout: 3).eof)
            #expect(daemon.waitForLog("EXIT: \(doomed) status=0 pid=\(child)", timeout: 3), "\(daemon.log)")
            #expect(Clock.poll(timeout: 2) { daemon.zombies().isEmpty })
        }

        /// In-process connections (echo, a tcpmux client still typing its name) outlive the removal
        /// of their service: they are finished normally and the daemon keeps running.
        @Test func openBuiltinConnectionsSurviveRemovalOfTheirService() throws {
            let echo = Ports.free()
            let mux = Ports.free()
            let keep = Ports.free()
            let daemon = try Daemon(
                config: """
                    127.0.0.1:\(echo) stream tcp nowait root internal echo
                    127.0.0.1:\(mux) stream tcp nowait root internal tcpmux
                    tcpmux/report stream tcp nowait nobody PROBE probe
                    127.0.0.1:\(keep) stream tcp nowait root internal echo
                    """)
            defer { daemon.stop() }
            let echoConnection = try Connection.tcp("127.0.0.1", echo)
            try echoConnection.send("before\n")
            #expect(echoConnection.read(count: 7) == Array("before\n".utf8))
            let muxConnection = try Connection.tcp("127.0.0.1", mux)
            try muxConnection.send("rep")

            let outcome = try daemon.reload("127.0.0.1:\(keep) stream tcp nowait root internal echo\n")
            #expect(outcome?.contains("reloaded 1 services") == true, "\(String(describing: outcome))\n\(daemon.log)")
            #expect(TCP.connectErrno("127.0.0.1", echo) == ECONNREFUSED)

            try echoConnection.send("after\n")
            echoConnection.shutdownWrite()
            let rest = echoConnection.readToEOF(timeout: 3)
            #expect(rest.text == "after\n" && rest.eof, "open echo connection after its service left: \(rest.text.debugDescription)")
            try muxConnection.send("ort\r\n")
            let answer = muxConnection.readToEOF(timeout: 3)
            #expect(answer.eof || answer.error != nil, "tcpmux connection left hanging")

            usleep(100_000)
            #expect(!daemon.hasExited(), "the daemon died: \(String(describing: daemon.exitStatus))\n\(daemon.log)")
            #expect(try TCP.exchange("127.0.0.1", keep, send: Array("alive\n".utf8)).text == "alive\n")
        }

        @Test func reloadUpdatesTCPMuxTargets() throws {
            let mux = Ports.free()
            let daemon = try Daemon(
                config: """
                    127.0.0.1:\(mux) stream tcp nowait root internal tcpmux
                    tcpmux/alpha stream tcp nowait nobody PROBE probe
                    """)
            defer { daemon.stop() }
            #expect(try TCP.exchange("127.0.0.1", mux, send: Array("HELP\r\n".utf8)).text == "alpha\r\n")
            try daemon.reload(
                """
                127.0.0.1:\(mux) stream tcp nowait root internal tcpmux
                tcpmux/+beta stream tcp nowait nobody PROBE probe
                """)
            #expect(try TCP.exchange("127.0.0.1", mux, send: Array("HELP\r\n".utf8)).text == "beta\r\n")
            #expect(try TCP.exchange("127.0.0.1", mux, send: Array("alpha\r\n".utf8)).text == "-Service name not found\r\n")
            #expect(try TCP.exchange("127.0.0.1", mux, send: Array("beta\r\n".utf8)).text.hasPrefix("+Go\r\nargv0=probe\n"))
        }
    }
}
