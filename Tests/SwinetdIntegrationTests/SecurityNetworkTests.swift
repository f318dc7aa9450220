import Foundation
import Glibc
import Testing

/// security.md §3 recipes 1, 3, 4 and the "peer-supplied strings" rule, beyond what BuiltinTests
/// and TCPMuxTests already cover: spoofed UDP loops on the standard ports over IPv4 and IPv6 (raw
/// sockets inside a network namespace), the tcpmux inputs those suites do not send, and hostile
/// tcpmux names that must reach the log escaped and bounded, and never the target's argv or env.
extension Integration {
    @Suite struct SecurityNetworkTests {
        // MARK: - Recipe 1: UDP echo <-> chargen loops from spoofed standard ports

        static let udpBuiltins = """
            echo    dgram udp wait root internal
            discard dgram udp wait root internal
            daytime dgram udp wait root internal
            chargen dgram udp wait root internal
            time    dgram udp wait root internal
            """

        /// One raw datagram per (source, destination) pair from the classic loop ports (7, 9, 13,
        /// 19, 37, 53, 1019; 7→7 and 19→19 are self-loops) to the builtins on their standard ports,
        /// IPv4 and IPv6, inside a fresh network namespace: each window (0.25 s) sees fewer than 10
        /// datagrams (openbsd-inetd: 170k/s until killed).
        @Test(.enabled(if: NamespaceTests.unshareWorks, "skipped: cannot create a network namespace"))
        func spoofedLoopsFromStandardPortsNeverStartIPv4AndIPv6() throws {
            let (result, daemonLog) = try NamespaceTests.runInNamespace(config: Self.udpBuiltins, client: ["udploop.py", "0.25"])
            #expect(result.status == .exited(0), "\(result)\n--- swinetd log ---\n\(daemonLog)")
            let lines = result.stdout.split(separator: "\n").filter { $0.contains("datagrams=") }
            #expect(lines.count == 22, "\(result.stdout)")
            for line in lines {
                let count = Int(line.split(separator: "=").last ?? "") ?? .max
                #expect(count < 10, "\(line): a loop ran\n--- swinetd log ---\n\(daemonLog.suffix(2000))")
            }
            #expect(result.stdout.contains("SWINETD_EXIT=0"), "swinetd did not survive: \(result)")
            // Every spoofed datagram was dropped, not answered: the drops are logged (rate-limited).
            #expect(daemonLog.contains("dropped"), "\(daemonLog)")
        }

        // MARK: - Recipe 4: tcpmux input the other suites do not send

        final class Mux {
            let mux = Ports.free()
            let daemon: Daemon

            init(arguments: [String] = [], extra: String = "") throws {
                daemon = try Daemon(
                    config: """
                        127.0.0.1:\(mux) stream tcp nowait root internal tcpmux
                        tcpmux/+report stream tcp nowait nobody PROBE probe report
                        tcpmux/+limited stream tcp nowait.1 nobody PROBE probe report
                        \(extra)
                        """, arguments: arguments)
            }

            /// Connects, sends `bytes` (tolerating a reset once the daemon stopped reading),
            /// half-closes, reads to EOF.
            func ask(_ bytes: [UInt8], timeout: Double = 5) throws -> Connection.ReadResult {
                let connection = try Connection.tcp("127.0.0.1", mux)
                connection.setNonBlocking(true)
                var offset = 0
                let deadline = Clock.now + timeout
                while offset < bytes.count && Clock.now < deadline {
                    let n = bytes[offset...].withUnsafeBytes { connection.sendSome($0) }
                    if n > 0 {
                        offset += n
                        continue
                    }
                    // Full, or the daemon already answered and closed: stop writing then.
                    if errno != EAGAIN && errno != EWOULDBLOCK { break }
                    if connection.wait(for: Int16(POLLIN), timeout: 0.01) { break }
                    _ = connection.wait(for: Int16(POLLOUT), timeout: 0.05)
                }
                connection.setNonBlocking(false)
                connection.shutdownWrite()
                return connection.readToEOF(timeout: timeout)
            }

            func ask(_ text: String) throws -> Connection.ReadResult { try ask(Array(text.utf8)) }
        }

        /// A 1 MiB name (with and without a newline at the end): one `-` line, no NUL, close,
        /// after at most 256 bytes were consumed; the daemon is unharmed.
        @Test func oneMebibyteNameIsRefusedAfterTheByteCap() throws {
            let setup = try Mux()
            defer { setup.daemon.stop() }
            let rssBefore = ProcFS.rssKiB(setup.daemon.pid) ?? 0
            for terminated in [false, true] {
                let name = [UInt8](repeating: UInt8(ascii: "n"), count: 1 << 20) + (terminated ? [13, 10] : [])
                let result = try setup.ask(name)
                #expect(result.text == "-Service name too long\r\n", "\(result.text.prefix(100).debugDescription)")
                #expect(!result.bytes.contains(0))
            }
            #expect(setup.daemon.waitForLog("name too long", count: 2, timeout: 2), "\(setup.daemon.log)")
            let rssAfter = ProcFS.rssKiB(setup.daemon.pid) ?? .max
            #expect(rssAfter - rssBefore < 4096, "RSS grew from \(rssBefore) to \(rssAfter) KiB")
            #expect(try setup.ask("report\r\n").bytes.starts(with: Array("+Go\r\n".utf8)))
        }

        /// A name padded with blanks is the name; a name with blanks inside is invalid; an empty
        /// line is invalid; a bare CR is not a terminator.
        @Test func paddedEmptyAndInnerBlankNames() throws {
            let setup = try Mux()
            defer { setup.daemon.stop() }
            let padded = try setup.ask("  \treport \t \r\n")
            #expect(padded.bytes.starts(with: Array("+Go\r\n".utf8)), "\(padded.text.debugDescription)")
            #expect(ProbeReport(Array(padded.bytes.dropFirst(5))).isComplete)
            #expect(try setup.ask("rep ort\r\n").text == "-Invalid service name\r\n")
            #expect(try setup.ask("\r\n").text == "-Invalid service name\r\n")
            // CR alone ends nothing: the client's half-close ends the line without a name.
            let bareCR = try setup.ask("report\r")
            #expect(!bareCR.text.hasPrefix("+"), "\(bareCR.text.debugDescription)")
            #expect(bareCR.eof || bareCR.error != nil)
        }

        /// A target over its rate (`nowait.1`): the first request is served, the second trips the
        /// limit (no child), and while the target is paused tcpmux answers `-` at once.
        @Test func rateLimitedTargetIsRefusedWithoutAChild() throws {
            let setup = try Mux(arguments: ["--retry-time", "30"])
            defer { setup.daemon.stop() }
            let first = try setup.ask("limited\r\n")
            #expect(ProbeReport(Array(first.bytes.dropFirst(5))).isComplete, "\(first.text.prefix(80).debugDescription)")
            let second = try setup.ask("limited\r\n")
            #expect(!ProbeReport(Array(second.bytes.dropFirst(5))).isComplete, "a second child was started")
            #expect(setup.daemon.waitForLog("server failing", timeout: 2), "\(setup.daemon.log)")
            let third = try setup.ask("limited\r\n")
            #expect(third.text == "-Service temporarily unavailable\r\n", "\(third.text.debugDescription)")
            #expect(setup.daemon.settledCount("START: tcpmux/+limited ", expected: 1) == 1, "\(setup.daemon.log)")
            // Other targets are unaffected.
            #expect(try setup.ask("report\r\n").bytes.starts(with: Array("+Go\r\n".utf8)))
        }

        /// RFC 1078: after `+` the protocol starts. `tcpmux/+NAME` means swinetd sends the `+Go`,
        /// whatever serves NAME; a builtin target must get it too, or a client waiting for `+`
        /// (every RFC 1078 client) never starts. Found by the tcpmux fuzzer (Fuzz/), input
        /// `  E \t\nxyz\0\xff` against `tcpmux/+e ... internal echo`.
        @Test func plusTargetServedByABuiltinGetsGoFirst() throws {
            let setup = try Mux(extra: "tcpmux/+e stream tcp nowait root internal echo\ntcpmux/plain stream tcp nowait root internal echo")
            defer { setup.daemon.stop() }
            let plus = try setup.ask(Array("  E \t\nxyz".utf8) + [0, 0xff])
            #expect(plus.bytes == Array("+Go\r\nxyz".utf8) + [0, 0xff], "\(plus.text.debugDescription)")
            let plain = try setup.ask("plain\r\nabc")
            #expect(plain.text == "abc", "\(plain.text.debugDescription)")
        }

        /// Slow drip: one byte every 300 ms never finishes a name; the tcpmux timeout is absolute
        /// (bytes do not extend it), so the client is cut off after it.
        @Test func slowDripDoesNotExtendTheTCPMuxTimeout() throws {
            let setup = try Mux(arguments: ["--tcpmux-timeout", "1"])
            defer { setup.daemon.stop() }
            let connection = try Connection.tcp("127.0.0.1", setup.mux)
            let started = Clock.now
            var closedAfter: Double?
            for _ in 0..<12 {
                _ = Array("x".utf8).withUnsafeBytes { connection.sendSome($0) }
                if connection.wait(for: Int16(POLLIN), timeout: 0.3) {
                    closedAfter = Clock.now - started
                    break
                }
            }
            let result = connection.readToEOF(timeout: 1)
            let elapsed = try #require(closedAfter, "a dripping client was never cut off (3.6 s)")
            #expect(elapsed < 2.5, "cut off after \(elapsed) s with --tcpmux-timeout 1")
            #expect(result.text.isEmpty || result.text.hasPrefix("-"), "\(result.text.debugDescription)")
        }

        // MARK: - Peer-supplied strings

        /// Names carrying a forged log line, escape sequences, shell syntax, format directives and
        /// non-UTF-8: every reply is one `-` line, every log line is printable, bounded and names
        /// no forged service; and the target of a good name never sees the client's text in its
        /// argv or environment.
        @Test func hostileTCPMuxNamesReachTheLogEscapedAndNothingElse() throws {
            let setup = try Mux()
            defer { setup.daemon.stop() }
            let hostile: [[UInt8]] = [
                Array("x\rSTART: forged pid=1 from=6.6.6.6\r\n".utf8),
                Array("a\"from=10.9.9.9\r\n".utf8),
                Array("\u{1b}[31mred\u{1b}]0;title\u{07}\r\n".utf8),
                Array("$(touch /tmp/swinetd-pwned)`id`;|&\r\n".utf8),
                Array("%s%n%x%p\r\n".utf8),
                [0xff, 0xfe, 0xc3, 0x28, 0x80, 13, 10],
                Array(String(repeating: "\u{7f}", count: 250).utf8) + [13, 10],
                [UInt8](repeating: 0, count: 100) + [10],
            ]
            for name in hostile {
                let result = try setup.ask(name)
                #expect(result.text.hasPrefix("-") && result.text.hasSuffix("\r\n"), "\(name): \(result.text.debugDescription)")
                #expect(result.bytes.filter { $0 == 10 }.count == 1, "\(result.text.debugDescription)")
            }
            // A valid but unknown name with shell syntax is "not found", logged escaped.
            #expect(try setup.ask("a;b\r\n").text == "-Service name not found\r\n")
            #expect(setup.daemon.waitForLog("FAIL: ", count: hostile.count + 1, timeout: 3), "\(setup.daemon.log)")
            let log = setup.daemon.log
            #expect(!log.contains("info: START: forged"), "a forged log line got in:\n\(log)")
            #expect(log.utf8.allSatisfy { $0 == 10 || ($0 >= 0x20 && $0 < 0x7f) }, "unprintable bytes in the log")
            for line in setup.daemon.logLines(containing: "FAIL: ") {
                #expect(line.utf8.count < 1400, "unbounded log line of \(line.utf8.count) bytes")
                // The client's text must not be able to forge the daemon's own fields: exactly one
                // `from=` (the real client address) per line, however the name was spelled.
                #expect(line.components(separatedBy: "from=").count == 2, "a client-supplied from= field: \(line)")
            }
            #expect(!FileManager.default.fileExists(atPath: "/tmp/swinetd-pwned"))

            // The target gets its configured argv and the standard environment, nothing the
            // client sent beyond the name it chose.
            let good = try setup.ask("  REPORT\r\n")
            let report = ProbeReport(Array(good.bytes.dropFirst(5)))
            try #require(report.isComplete, "\(good.text.prefix(100).debugDescription)")
            #expect(report.argv == ["probe", "report"])
            for (key, value) in report.env {
                #expect(!value.lowercased().contains("report") || key == "PWD", "\(key)=\(value)")
            }
            #expect(Set(report.env.keys).isSubset(of: [
                "PATH", "PROTO", "TCPREMOTEIP", "TCPREMOTEPORT", "TCPLOCALIP", "TCPLOCALPORT", "REMOTE_HOST",
            ]), "\(report.env)")
        }
    }
}
