import Foundation
import Glibc
import Testing

/// xinetd `redirect = host port`: swinetd relays the connection itself, both ways, byte-exact,
/// passes a half-close on, and logs the byte counts (TRAFFIC) in the EXIT line.
extension Integration {
    @Suite struct RedirectTests {
        final class Setup {
            let echo = Ports.free()
            let counter = Ports.free()
            let toEcho = Ports.free()
            let toCounter = Ports.free()
            let toNothing = Ports.free()
            let nothing = Ports.free()
            let daytime = Ports.free()
            let toDaytime = Ports.free()
            let daemon: Daemon

            static func redirect(_ name: String, port: UInt16, to target: UInt16) -> String {
                Xinetd.service(
                    name,
                    [
                        "type = UNLISTED", "socket_type = stream", "wait = no", "port = \(port)",
                        "bind = 127.0.0.1", "user = nobody", "redirect = 127.0.0.1 \(target)",
                        "log_on_success = HOST DURATION TRAFFIC", "log_on_failure = HOST",
                    ])
            }

            init() throws {
                daemon = try Daemon(
                    config: Xinetd.defaults(["log_on_success = PID HOST EXIT", "cps = 1000 1"])
                        + Xinetd.service(
                            "echo",
                            [
                                "type = INTERNAL UNLISTED", "socket_type = stream", "wait = no", "port = \(echo)",
                                "bind = 127.0.0.1",
                            ])
                        + Xinetd.service(
                            "daytime",
                            [
                                "type = INTERNAL UNLISTED", "socket_type = stream", "wait = no",
                                "port = \(daytime)", "bind = 127.0.0.1",
                            ])
                        + Xinetd.helper("counter", port: counter, mode: "count")
                        + Self.redirect("todaytime", port: toDaytime, to: daytime)
                        + Self.redirect("toecho", port: toEcho, to: echo)
                        + Self.redirect("tocounter", port: toCounter, to: counter)
                        + Self.redirect("tonothing", port: toNothing, to: nothing))
            }

            func stop() { daemon.stop() }

            /// The `EXIT: <service>` lines of the relay.
            func exitLines(_ service: String) -> [Substring] { daemon.logLines(containing: "EXIT: \(service) ") }
        }

        /// 1 MB of every byte value through the relay to echo and back, read while writing.
        @Test func oneMegabyteBothWaysIsByteExactAndCounted() throws {
            let setup = try Setup()
            defer { setup.stop() }
            let payload = Expected.binary(size: 1 << 20)
            let connection = try Connection.tcp("127.0.0.1", setup.toEcho)
            let result = connection.duplex(payload, timeout: 15)
            #expect(result.bytes.count == payload.count, "relayed back \(result.bytes.count) of \(payload.count) bytes")
            #expect(result.bytes == payload, "the relayed bytes differ")
            #expect(result.eof && result.error == nil, "the relay must end with FIN after echo's")
            connection.close()

            #expect(setup.daemon.waitForLog("EXIT: toecho ", timeout: 3), "\(setup.daemon.log)")
            let lines = setup.exitLines("toecho")
            #expect(lines.count == 1, "\(lines)")
            let line = String(lines.first ?? "")
            #expect(line.contains("from=127.0.0.1"), "\(line)")
            #expect(line.contains("in=\(payload.count)(bytes) out=\(payload.count)(bytes)"), "\(line)")
            #expect(line.contains("duration="), "\(line)")
            #expect(setup.daemon.settledCount("START: toecho from=127.0.0.1", expected: 1) == 1, "\(setup.daemon.log)")
        }

        /// The client half-closes after 1 MB; the server answers only after its EOF, so the answer
        /// travels back over the half-open relay. TRAFFIC counts both directions exactly.
        @Test func halfCloseIsPassedOnAndTheAnswerStillComesBack() throws {
            let setup = try Setup()
            defer { setup.stop() }
            let payload = Expected.binary(size: 1 << 20)
            let expectedAnswer = "count=\(payload.count) sha256=\(Self.sha256Hex(payload))\n"
            let connection = try Connection.tcp("127.0.0.1", setup.toCounter)
            let result = connection.duplex(payload, timeout: 15)
            #expect(result.text == expectedAnswer, "\(result.text.prefix(200).debugDescription)\n\(setup.daemon.log)")
            #expect(result.eof)

            #expect(setup.daemon.waitForLog("EXIT: tocounter ", timeout: 3), "\(setup.daemon.log)")
            let line = String(setup.exitLines("tocounter").first ?? "")
            #expect(
                line.contains("in=\(payload.count)(bytes) out=\(expectedAnswer.utf8.count)(bytes)"),
                "\(line)\n\(setup.daemon.log)")
            // And the counter was a real child of the daemon, not relayed elsewhere.
            #expect(setup.daemon.settledCount("START: counter", expected: 1) == 1)
        }

        /// A connection that sends nothing and closes: both counts are 0; a second relay at the same
        /// time gets its own counts.
        @Test func emptyAndConcurrentRelaysKeepSeparateCounts() throws {
            let setup = try Setup()
            defer { setup.stop() }
            let a = try Connection.tcp("127.0.0.1", setup.toEcho)
            let b = try Connection.tcp("127.0.0.1", setup.toEcho)
            try b.send(Array(repeating: 0x42, count: 1000))
            #expect(b.read(count: 1000).count == 1000)
            a.shutdownWrite()
            #expect(a.readToEOF(timeout: 3).bytes.isEmpty)
            try b.send(Array(repeating: 0x43, count: 234))
            b.shutdownWrite()
            #expect(b.readToEOF(timeout: 3).bytes.count == 234)
            #expect(setup.daemon.waitForLog("EXIT: toecho ", count: 2, timeout: 3), "\(setup.daemon.log)")
            let traffic = setup.exitLines("toecho").compactMap { line in
                line.range(of: "in=").map { String(line[$0.lowerBound...].prefix { $0 != "d" }).trimmingCharacters(in: .whitespaces) }
            }
            #expect(Set(traffic) == ["in=0(bytes) out=0(bytes)", "in=1234(bytes) out=1234(bytes)"], "\(traffic)")
        }

        /// The server ends first (daytime writes and closes): the client gets the text and a FIN
        /// while its own side is still open; the relay ends when the client closes too.
        @Test func serverCloseFirstReachesTheClientAsFIN() throws {
            let setup = try Setup()
            defer { setup.stop() }
            let connection = try Connection.tcp("127.0.0.1", setup.toDaytime)
            let result = connection.readToEOF(timeout: 3)
            #expect(Expected.daytimeMatchesNow(result.text), "\(result.text.debugDescription)")
            #expect(result.eof, "no FIN after the server closed")
            #expect(setup.daemon.count("EXIT: todaytime ") == 0, "the relay ended while the client was still open")
            connection.close()
            #expect(setup.daemon.waitForLog("EXIT: todaytime ", timeout: 3), "\(setup.daemon.log)")
            let line = String(setup.exitLines("todaytime").first ?? "")
            #expect(line.contains("in=0(bytes) out=\(result.bytes.count)(bytes)"), "\(line)")
        }

        /// Twenty relays, half of them reset by the client mid-transfer: each ends with an EXIT
        /// line, and the daemon is left with the descriptors it had before.
        @Test func abortedRelaysLeaveNoDescriptorsBehind() throws {
            let setup = try Setup()
            defer { setup.stop() }
            let daemon = setup.daemon
            func openDescriptors() -> Int {
                ((try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(daemon.pid)/fd")) ?? []).count
            }
            let before = openDescriptors()
            for index in 0..<20 {
                let connection = try Connection.tcp("127.0.0.1", setup.toEcho)
                try connection.send(Expected.binary(size: 50_000))
                _ = connection.read(count: 1000)
                if index % 2 == 0 {
                    var linger = Glibc.linger(l_onoff: 1, l_linger: 0)  // close sends RST
                    setsockopt(connection.fd, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
                }
                connection.close()
            }
            #expect(daemon.waitForLog("EXIT: toecho ", count: 20, timeout: 4), "EXIT lines: \(daemon.count("EXIT: toecho "))")
            #expect(Clock.poll(timeout: 2) { openDescriptors() == before }, "descriptors: \(before) before, \(openDescriptors()) after")
            #expect(daemon.hasExited() == false)
        }

        /// The target refuses: the client is closed without data and the failure is logged.
        @Test func unreachableTargetClosesTheClientAndLogsAFailure() throws {
            let setup = try Setup()
            defer { setup.stop() }
            let result = try TCP.exchange("127.0.0.1", setup.toNothing, timeout: 5)
            #expect(result.bytes.isEmpty)
            #expect(result.eof || result.error != nil, "the client was left hanging")
            #expect(setup.daemon.waitForLog("FAIL: tonothing redirect", timeout: 3), "\(setup.daemon.log)")
            #expect(setup.daemon.count("EXIT: tonothing") == 0, "\(setup.daemon.log)")
        }

        static func sha256Hex(_ bytes: [UInt8]) -> String {
            // The helper prints hashlib's digest; compute the same here with a tiny SHA-256.
            SHA256.hex(bytes)
        }
    }
}
