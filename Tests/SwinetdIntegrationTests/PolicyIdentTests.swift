import Foundation
import Glibc
import Testing

/// RFC 1413 ident: log_on_success USERID, flags IDONLY, and replies from a hostile ident server.
/// The ident server is a thread of this process on port 113 of a fresh 127.113.x.y address
/// (`FakeIdentd`); the client connects from that address, so that is where swinetd asks.
extension Integration {
    @Suite struct PolicyIdentTests {
        static let isRoot = getuid() == 0

        final class Setup {
            let who = Ports.free()
            let idOnly = Ports.free()
            let daemon: Daemon

            init() throws {
                daemon = try Daemon(
                    config: Xinetd.defaults(["cps = 1000 1"])
                        + Xinetd.probe(
                            "who", port: who,
                            ["log_on_success = PID HOST USERID EXIT", "log_on_failure = HOST USERID"])
                        + Xinetd.probe(
                            "idonly", port: idOnly,
                            ["flags = IDONLY", "log_on_success = PID HOST USERID", "log_on_failure = HOST"]),
                    arguments: ["--lookup-timeout", "2"])
            }

            func stop() { daemon.stop() }

            /// Log lines that contain `USERID:` for `service`.
            func userLines(_ service: String) -> [Substring] { daemon.logLines(containing: "USERID: \(service) ") }
        }

        @Test(.enabled(if: isRoot, "skipped: binding port 113 needs root"))
        func userIsLoggedAndTheQueryNamesBothPorts() throws {
            let identd = try FakeIdentd(reply: FakeIdentd.answer("alice"))
            defer { identd.stop() }
            let setup = try Setup()
            defer { setup.stop() }

            let connection = try Connection.tcp("127.0.0.1", setup.who, from: identd.address)
            let clientPort = connection.localPort
            let report = ProbeReport(connection.readToEOF().bytes)
            #expect(report.isComplete, "\(report)\n\(setup.daemon.log)")
            #expect(setup.daemon.waitForLog("USERID: who alice"), "\(setup.daemon.log)")
            #expect(setup.daemon.waitForLog("START: who pid=\(report.pid ?? -1) from=\(identd.address)"), "\(setup.daemon.log)")
            // RFC 1413: "<port on the client's host> , <port on the server's host>".
            #expect(identd.requests == ["\(clientPort) , \(setup.who)"], "\(identd.requests)")
        }

        @Test(.enabled(if: isRoot, "skipped: binding port 113 needs root"))
        func idOnlyServesIdentifiedClientsAndRefusesOthers() throws {
            let identd = try FakeIdentd(reply: FakeIdentd.answer("bob"))
            defer { identd.stop() }
            let setup = try Setup()
            defer { setup.stop() }

            #expect(Outcome.probe("127.0.0.1", setup.idOnly, from: identd.address) == .served, "\(setup.daemon.log)")
            #expect(setup.daemon.waitForLog("USERID: idonly bob"), "\(setup.daemon.log)")

            // An address with nothing on port 113: the lookup fails at once, IDONLY refuses.
            let silent = "127.0.0.9"
            try #require(
                ProcFS.tcpListeners(port: 113).allSatisfy { $0.address == identd.address },
                "something else listens on port 113: \(ProcFS.tcpListeners(port: 113))")
            var outcomes: [Outcome] = []
            for _ in 0..<2 { outcomes.append(Outcome.probe("127.0.0.1", setup.idOnly, from: silent)) }
            #expect(outcomes.allSatisfy { $0 == .closed(bytes: []) }, "\(outcomes)")
            #expect(setup.daemon.waitForLog("FAIL: idonly userid from=\(silent)", count: 2, timeout: 3), "\(setup.daemon.log)")
            // A service without IDONLY serves that address anyway, with no USERID line.
            #expect(Outcome.probe("127.0.0.1", setup.who, from: silent) == .served)
            #expect(setup.daemon.settledCount("START: idonly", expected: 1) == 1, "\(setup.daemon.log)")
        }

        /// An ident reply that injects CR LF and a forged log line, NULs, an escape sequence and
        /// 64 kB more: the daemon still serves, logs one bounded printable USERID line, and nothing
        /// of the forged line.
        @Test(.enabled(if: isRoot, "skipped: binding port 113 needs root"))
        func hostileIdentReplyGivesOneBoundedPrintableLogLine() throws {
            let injected = try FakeIdentd { request in
                Array("\(request) : USERID : UNIX : evil\u{0}\u{0}name\u{1b}[31m\\x\r\n".utf8)
                    + Array("2026-01-01T00:00:00Z swinetd[1]: info: START: forged pid=1 from=6.6.6.6\n".utf8)
                    + [UInt8](repeating: 0, count: 32 << 10) + [UInt8](repeating: 65, count: 32 << 10)
            }
            defer { injected.stop() }
            let endless = try FakeIdentd { request in
                Array("\(request) : USERID : UNIX : ".utf8) + [UInt8](repeating: UInt8(ascii: "B"), count: 64 << 10)
            }
            defer { endless.stop() }
            let garbage = try FakeIdentd { request in
                Array("\(request) : USERID : UNIX : ".utf8) + [0, 1, 2, 27, 0x7f, 0, 9, 0] + Array("\r\n".utf8)
            }
            defer { garbage.stop() }
            let setup = try Setup()
            defer { setup.stop() }
            let daemon = setup.daemon

            #expect(Outcome.probe("127.0.0.1", setup.who, from: injected.address) == .served, "\(daemon.log)")
            #expect(Outcome.probe("127.0.0.1", setup.who, from: endless.address) == .served, "\(daemon.log)")
            #expect(daemon.waitForLog("START: who", count: 2, timeout: 3))
            #expect(daemon.waitForLog("USERID: who", count: 2, timeout: 3), "\(daemon.log)")

            let lines = setup.userLines("who")
            #expect(lines.count == 2, "\(lines)")
            for line in lines {
                let user = line.components(separatedBy: "USERID: who ").last ?? ""
                #expect(!user.isEmpty && user.utf8.count <= 64 * 4, "unbounded user field (\(user.utf8.count) bytes)")
                #expect(line.utf8.count < 400, "a USERID line of \(line.utf8.count) bytes")
                #expect(line.utf8.allSatisfy { $0 >= 0x20 && $0 < 0x7f }, "unprintable byte in \(line.debugDescription)")
            }
            #expect(lines.contains { $0.contains("evil") && $0.contains("name") }, "\(lines)")
            #expect(lines.contains { $0.contains("BBBB") }, "\(lines)")
            #expect(!daemon.log.contains("forged"), "the injected log line reached the log:\n\(daemon.log)")
            #expect(!daemon.log.contains("6.6.6.6"))
            #expect(daemon.log.utf8.count < 16 << 10, "the log grew to \(daemon.log.utf8.count) bytes")
            #expect(daemon.log.utf8.allSatisfy { $0 == 10 || ($0 >= 0x20 && $0 < 0x7f) }, "unprintable bytes in the log")

            // A user field of nothing but control characters is no user: IDONLY refuses.
            #expect(Outcome.probe("127.0.0.1", setup.idOnly, from: garbage.address) == .closed(bytes: []), "\(daemon.log)")
            #expect(daemon.waitForLog("FAIL: idonly userid from=\(garbage.address)", timeout: 3), "\(daemon.log)")
            #expect(daemon.hasExited() == false, "the daemon died")
        }
    }
}
