import Foundation
import Glibc
import Testing

/// Spawn rate (`nowait.N`), concurrent children (`nowait/N`), children per client address
/// (`nowait/0/0/N`), and reaping under load.
extension Integration {
    @Suite struct LimitsTests {
        @Test func rateLimitPausesTheServiceAndRetryTimeResumesIt() throws {
            let port = Ports.free()
            let daemon = try Daemon(
                config: "127.0.0.1:\(port) stream tcp nowait.3 root PROBE probe\n", arguments: ["--retry-time", "2"])
            defer { daemon.stop() }

            for i in 0..<3 {
                let report = try TCP.probe("127.0.0.1", port)
                #expect(report.isComplete, "spawn \(i + 1) of 3 must be served: \(report)\n\(daemon.log)")
            }
            // The fourth spawn in the minute trips the limit: no child, and the service pauses.
            let paused = Clock.now  // no later than the pause, however late this thread sees it
            let fourth = try TCP.exchange("127.0.0.1", port)
            #expect(fourth.bytes.isEmpty, "the 4th connection was served: \(fourth.text.prefix(80))")
            #expect(daemon.waitForLog("server failing", timeout: 2), "\(daemon.log)")
            #expect(TCP.connectErrno("127.0.0.1", port) == ECONNREFUSED, "a paused service must close its listener")
            #expect(daemon.settledCount("START: \(port) ", expected: 3) == 3)

            // --retry-time 2: listening again after about 2 s.
            #expect(Clock.poll(timeout: 4, interval: 0.05) { TCP.connectErrno("127.0.0.1", port) == 0 }, "\(daemon.log)")
            let resumed = Clock.now - paused
            #expect(resumed > 1.5, "resumed after \(resumed) s, before --retry-time 2")
            // The probe connection above was served by a fresh child; wait for it, then check one more.
            let report = try TCP.probe("127.0.0.1", port)
            #expect(report.isComplete, "after resuming: \(report)\n\(daemon.log)")
        }

        /// A `wait` datagram service whose program exits without reading leaves the datagram queued,
        /// so the socket stays readable: `wait.5` stops the loop after five spawns.
        @Test func loopingWaitServiceIsPausedAfterItsRate() throws {
            let port = Ports.free()
            let daemon = try Daemon(config: "127.0.0.1:\(port) dgram udp wait.5 root PROBE probe exit 0\n")
            defer { daemon.stop() }
            try UDPSocket().send(Array("never read".utf8), to: "127.0.0.1", port)
            #expect(daemon.waitForLog("server failing", timeout: 3), "\(daemon.log)")
            #expect(daemon.waitForLog("EXIT: \(port) ", count: 5, timeout: 2))
            usleep(300_000)
            #expect(daemon.settledCount("START: \(port) ", expected: 5) == 5, "\(daemon.log)")
            #expect(daemon.zombies().isEmpty)
        }

        /// FreeBSD `nowait/2`: at most two children at once; a third client waits in the backlog
        /// and is served when one finishes.
        @Test func maxChildrenQueuesTheExcessInTheBacklog() throws {
            let port = Ports.free()
            let daemon = try Daemon(config: "127.0.0.1:\(port) stream tcp nowait/2 root PROBE probe report-wait\n")
            defer { daemon.stop() }

            let first = try Connection.tcp("127.0.0.1", port)
            let second = try Connection.tcp("127.0.0.1", port)
            #expect(ProbeReport(first.read(until: "end\n")).isComplete)
            #expect(ProbeReport(second.read(until: "end\n")).isComplete)
            let third = try Connection.tcp("127.0.0.1", port)
            #expect(third.staysSilent(for: 0.6), "a third child started while two were running")
            #expect(daemon.settledCount("START: \(port) ", expected: 2) == 2)

            first.shutdownWrite()  // its child exits; the queued client gets the freed slot
            let report = ProbeReport(third.read(until: "end\n", timeout: 3))
            #expect(report.isComplete, "the queued client was not served after a child exited:\n\(daemon.log)")
            // The child's report can reach us before the daemon has logged its START line.
            #expect(daemon.waitForLog("START: \(port) ", count: 3, timeout: 2))
            #expect(daemon.settledCount("START: \(port) ", expected: 3) == 3)
            second.shutdownWrite()
            third.shutdownWrite()
        }

        /// The child count survives a reload that edits the entry (tcp → tcp4 on the same
        /// 127.0.0.1 socket): `nowait/1` still means one child at a time.
        @Test func maxChildrenHoldsAcrossAReload() throws {
            let port = Ports.free()
            let daemon = try Daemon(config: "127.0.0.1:\(port) stream tcp nowait/1 root PROBE probe report-wait\n")
            defer { daemon.stop() }
            let first = try Connection.tcp("127.0.0.1", port)
            #expect(ProbeReport(first.read(until: "end\n")).isComplete)

            let outcome = try daemon.reload("127.0.0.1:\(port) stream tcp4 nowait/1 root PROBE probe report-wait\n")
            #expect(outcome?.contains("reloaded") == true, "\(String(describing: outcome))")
            let second = try Connection.tcp("127.0.0.1", port)
            #expect(second.staysSilent(for: 0.6), "a second child started while the first runs (nowait/1):\n\(daemon.log)")
            first.shutdownWrite()
            #expect(ProbeReport(second.read(until: "end\n", timeout: 3)).isComplete, "\(daemon.log)")
            second.shutdownWrite()
        }

        /// FreeBSD `nowait/0/0/1`: one child per client address; a second connection from the same
        /// address is closed and logged, another address is served.
        @Test func perSourceLimitClosesTheExcessFromOneAddress() throws {
            let port = Ports.free()
            let daemon = try Daemon(config: "127.0.0.1:\(port) stream tcp nowait/0/0/1 root PROBE probe report-wait\n")
            defer { daemon.stop() }

            let first = try Connection.tcp("127.0.0.1", port, from: "127.0.0.1")
            #expect(ProbeReport(first.read(until: "end\n")).isComplete)
            let excess = try Connection.tcp("127.0.0.1", port, from: "127.0.0.1")
            let refused = excess.readToEOF(timeout: 3)
            #expect(refused.bytes.isEmpty, "the excess connection was served")
            #expect(refused.eof || refused.error != nil, "the excess connection must be closed")
            #expect(daemon.waitForLog("FAIL: \(port) per_source_limit from=127.0.0.1", timeout: 2), "\(daemon.log)")

            let other = try Connection.tcp("127.0.0.1", port, from: "127.0.0.2")
            let report = ProbeReport(other.read(until: "end\n"))
            #expect(report.isComplete, "another address must be served")
            #expect(report.env["TCPREMOTEIP"] == "127.0.0.2")

            // When the first child exits, the first address may connect again.
            first.shutdownWrite()
            #expect(first.readToEOF(timeout: 3).eof)
            #expect(daemon.waitForLog("EXIT: \(port) ", timeout: 3))
            let again = try Connection.tcp("127.0.0.1", port, from: "127.0.0.1")
            #expect(ProbeReport(again.read(until: "end\n")).isComplete, "\(daemon.log)")
            other.shutdownWrite()
            again.shutdownWrite()
        }

        /// 300 connections, 16 at a time, with the daemon stopped for 1 s in the middle: every
        /// connection gets a whole report, and no child is left a zombie.
        @Test func noZombiesAfterABurstWithTheDaemonStoppedMidway() throws {
            let port = Ports.free()
            let daemon = try Daemon(config: "127.0.0.1:\(port) stream tcp nowait root PROBE probe\n")
            defer {
                daemon.signal(SIGCONT)
                daemon.stop()
            }

            let total = 300
            let clients = 16
            let next = Locked(0)
            let complete = Locked(0)
            let failures = Locked<[String]>([])
            let doneAtStop = Locked(-1)
            let doneAtContinue = Locked(-1)
            let daemonPid = daemon.pid
            let finished = runOnThreads(clients + 1, timeout: 40) { index in
                if index == clients {
                    // The stopper: wait for a third of the burst, stop the daemon for 1 s.
                    _ = Clock.poll(timeout: 10, interval: 0.005) { complete.withLock { $0 } >= total / 3 }
                    kill(daemonPid, SIGSTOP)
                    doneAtStop.withLock { $0 = complete.withLock { $0 } }
                    usleep(1_000_000)
                    doneAtContinue.withLock { $0 = complete.withLock { $0 } }
                    kill(daemonPid, SIGCONT)
                    return
                }
                while true {
                    let n: Int = next.withLock { value in
                        value += 1
                        return value
                    }
                    if n > total { return }
                    do {
                        let report = try TCP.probe("127.0.0.1", port, timeout: 10)
                        if report.isComplete {
                            complete.withLock { $0 += 1 }
                        } else {
                            failures.withLock { $0.append("#\(n): incomplete report (\(report.raw.utf8.count) bytes)") }
                        }
                    } catch {
                        failures.withLock { $0.append("#\(n): \(error)") }
                    }
                }
            }
            kill(daemonPid, SIGCONT)
            #expect(finished, "clients did not finish")
            let failed = failures.withLock { $0 }
            #expect(failed.isEmpty, "\(failed.count) failures: \(failed.prefix(5))")
            #expect(complete.withLock { $0 } == total)
            let (atStop, atContinue) = (doneAtStop.withLock { $0 }, doneAtContinue.withLock { $0 })
            #expect(atStop >= 0 && atStop < total - 50, "the daemon was not stopped mid-burst (\(atStop) done)")
            // While it was stopped, at most the connections already being served could finish.
            #expect(atContinue - atStop <= clients, "\(atContinue - atStop) connections completed while stopped")

            #expect(
                Clock.poll(timeout: 2) { daemon.zombies().isEmpty },
                "zombie children of the daemon: \(daemon.zombies().map(\.pid))")
            #expect(daemon.waitForLog("EXIT: \(port) ", count: total, timeout: 3), "EXIT lines: \(daemon.count("EXIT: \(port) "))")
            #expect(daemon.settledCount("START: \(port) ", expected: total) == total)
            #expect(daemon.children().isEmpty, "children still running: \(daemon.children().map(\.pid))")
        }
    }
}
