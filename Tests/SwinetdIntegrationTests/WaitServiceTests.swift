import Foundation
import Glibc
import Testing

/// `wait` services: the child gets the listening (or datagram) socket itself, and swinetd leaves
/// that socket alone until the child exits.
extension Integration {
    @Suite struct WaitServiceTests {
        @Test func streamWaitChildGetsTheListeningSocket() throws {
            let port = Ports.free()
            let daemon = try Daemon(config: "127.0.0.1:\(port) stream tcp wait root PROBE probe accept\n")
            defer { daemon.stop() }

            var pids: [Int32] = []
            for round in 0..<3 {
                let report = try TCP.probe("127.0.0.1", port)
                try #require(report.isComplete, "round \(round): \(report)\nlog:\n\(daemon.log)")
                #expect(report["socktype0"] == "stream-listening")
                #expect(report.fds == [0, 1, 2])
                #expect(report.env["TCPLOCALPORT"] == "\(port)")
                #expect(report.env["TCPREMOTEIP"] == nil, "a wait child has no single peer")
                if let pid = report.pid { pids.append(pid) }
                // The next connection needs the next child: wait for this one to be reaped.
                #expect(daemon.waitForLog("EXIT: \(port) status=0", count: round + 1, timeout: 5), "\(daemon.log)")
            }
            #expect(Set(pids).count == 3, "each connection needs a new child: \(pids)")
            // Exactly one child per connection: swinetd did not keep watching the socket.
            usleep(200_000)
            #expect(daemon.settledCount("START: \(port) ", expected: 3) == 3, "\(daemon.log)")
            #expect(daemon.children().isEmpty, "children left: \(daemon.children().map(\.pid))")
        }

        /// While a wait child owns the socket, a pending connection must not start more children;
        /// once the child exits, swinetd watches the socket again and starts the next one.
        @Test func streamWaitSocketIsNotWatchedWhileTheChildRuns() throws {
            let port = Ports.free()
            // /bin/sleep never touches the socket: the queued connection keeps it readable.
            let daemon = try Daemon(config: "127.0.0.1:\(port) stream tcp wait root /bin/sleep sleep 20\n")
            defer { daemon.stop() }

            let connection = try Connection.tcp("127.0.0.1", port)
            defer { connection.close() }
            #expect(daemon.waitForLog("START: \(port) ", timeout: 3), "\(daemon.log)")
            usleep(700_000)
            let first = daemon.startedPids(service: "\(port)")
            #expect(first.count == 1, "swinetd started \(first.count) children for one pending connection")
            let child = try #require(first.first)
            #expect(ProcFS.isRunning(child))

            kill(child, SIGTERM)
            #expect(daemon.waitForLog("EXIT: \(port) signal=\(SIGTERM) pid=\(child)", timeout: 3), "\(daemon.log)")
            // The connection is still pending, so a second child starts.
            #expect(daemon.waitForLog("START: \(port) ", count: 2, timeout: 3), "\(daemon.log)")
            usleep(300_000)
            #expect(daemon.settledCount("START: \(port) ", expected: 2) == 2, "\(daemon.log)")
        }

        /// A reload of an unchanged configuration leaves the wait child in charge of its socket, and
        /// swinetd takes the socket back when that child exits.
        @Test func unchangedReloadKeepsAWaitChildsSocketUnwatched() throws {
            let port = Ports.free()
            let config = "127.0.0.1:\(port) stream tcp wait root /bin/sleep sleep 20\n"
            let daemon = try Daemon(config: config)
            defer { daemon.stop() }
            let connection = try Connection.tcp("127.0.0.1", port)
            defer { connection.close() }
            #expect(daemon.waitForLog("START: \(port) ", timeout: 3), "\(daemon.log)")
            let child = try #require(daemon.startedPids(service: "\(port)").first)
            #expect(try daemon.reload(config)?.contains("reloaded") == true)
            usleep(500_000)
            #expect(daemon.settledCount("START: \(port) ", expected: 1) == 1, "\(daemon.log)")
            kill(child, SIGKILL)
            #expect(daemon.waitForLog("START: \(port) ", count: 2, timeout: 3), "not re-armed after the reload:\n\(daemon.log)")
        }

        /// A reload that edits the entry (here only its protocol name, tcp → tcp4, which binds the very
        /// same 127.0.0.1 socket) must not start a second child on a socket a wait child still owns.
        @Test func reloadKeepsAWaitChildsSocketUnwatched() throws {
            let port = Ports.free()
            let daemon = try Daemon(config: "127.0.0.1:\(port) stream tcp wait root /bin/sleep sleep 20\n")
            defer { daemon.stop() }
            let connection = try Connection.tcp("127.0.0.1", port)  // stays pending: sleep never accepts
            defer { connection.close() }
            #expect(daemon.waitForLog("START: \(port) ", timeout: 3), "\(daemon.log)")
            let child = try #require(daemon.startedPids(service: "\(port)").first)

            let outcome = try daemon.reload("127.0.0.1:\(port) stream tcp4 wait root /bin/sleep sleep 20\n")
            #expect(outcome?.contains("reloaded") == true, "\(String(describing: outcome))")
            usleep(700_000)
            #expect(ProcFS.isRunning(child))
            #expect(
                daemon.settledCount("START: \(port) ", expected: 1) == 1,
                "a second wait child started while pid \(child) still owns the socket:\n\(daemon.log)")
        }

        /// A wait child has no single peer; its START line must not call a TCP or UDP socket `unix`.
        @Test func waitStartLineDoesNotClaimAUnixPeer() throws {
            let tcp = Ports.free()
            let udp = Ports.free()
            let daemon = try Daemon(
                config: """
                    127.0.0.1:\(tcp) stream tcp wait root PROBE probe accept
                    127.0.0.1:\(udp) dgram udp wait root PROBE probe dgram
                    """)
            defer { daemon.stop() }
            _ = try TCP.probe("127.0.0.1", tcp)
            _ = try UDPSocket().exchange([1], to: "127.0.0.1", udp)
            #expect(daemon.waitForLog("START: \(tcp) ") && daemon.waitForLog("START: \(udp) "), "\(daemon.log)")
            for line in daemon.logLines(containing: "START: ") {
                #expect(!line.contains("from=unix"), "START line of an IP wait service: \(line)")
            }
        }

        @Test func dgramWaitChildAnswersOneDatagram() throws {
            let port = Ports.free()
            let daemon = try Daemon(config: "127.0.0.1:\(port) dgram udp wait root PROBE probe dgram\n")
            defer { daemon.stop() }

            let client = try UDPSocket()
            var pids: [Int32] = []
            for round in 0..<2 {
                let reply = try #require(
                    try client.exchange(Array("report please".utf8), to: "127.0.0.1", port, timeout: 3),
                    "no reply in round \(round); log:\n\(daemon.log)")
                let report = ProbeReport(reply)
                #expect(report.isComplete, "\(report)")
                #expect(report["socktype0"] == "dgram")
                #expect(report.fds == [0, 1, 2])
                #expect(report.argv == ["probe", "dgram"])
                if let pid = report.pid { pids.append(pid) }
                #expect(daemon.waitForLog("EXIT: \(port) status=0", count: round + 1, timeout: 5), "\(daemon.log)")
            }
            #expect(Set(pids).count == 2, "\(pids)")
            #expect(daemon.settledCount("START: \(port) ", expected: 2) == 2, "\(daemon.log)")
        }
    }
}
