import Foundation
import Glibc
import Testing

/// RFC 1078 tcpmux: name lookup, `+Go`, HELP, the error replies, and the targets' identity.
extension Integration {
    @Suite struct TCPMuxTests {
        /// A tcpmux port, targets `report` (plain), `+secure` (swinetd sends +Go), `+cat` (copies
        /// input), and an ordinary echo service that tcpmux must not reach.
        final class Setup {
            let mux = Ports.free()
            let echo = Ports.free()
            let daemon: Daemon

            init(arguments: [String] = []) throws {
                daemon = try Daemon(
                    config: """
                        127.0.0.1:\(mux) stream tcp nowait root internal tcpmux
                        tcpmux/report stream tcp nowait nobody PROBE probe report
                        tcpmux/+secure stream tcp nowait nobody PROBE probe report
                        tcpmux/+cat stream tcp nowait nobody PROBE probe cat
                        127.0.0.1:\(echo) stream tcp nowait root internal echo
                        """, arguments: arguments)
            }

            /// Sends `request` (optionally in pieces, 200 ms apart), half-closes, reads to EOF.
            func ask(_ pieces: [[UInt8]], shutdownWrite: Bool = true) throws -> Connection.ReadResult {
                let connection = try Connection.tcp("127.0.0.1", mux)
                for (index, piece) in pieces.enumerated() {
                    if index > 0 { usleep(200_000) }
                    try connection.send(piece)
                }
                if shutdownWrite { connection.shutdownWrite() }
                return connection.readToEOF(timeout: 5)
            }

            func ask(_ request: String) throws -> Connection.ReadResult { try ask([Array(request.utf8)]) }

            func stop() { daemon.stop() }
        }

        static let goLine = Array("+Go\r\n".utf8)

        @Test func plusTargetGetsGoThenProgramOutputAsItsOwnUser() throws {
            let setup = try Setup()
            defer { setup.stop() }
            let result = try setup.ask("secure\r\n")
            #expect(result.bytes.starts(with: Self.goLine), "reply: \(result.text.debugDescription)")
            let report = ProbeReport(Array(result.bytes.dropFirst(Self.goLine.count)))
            try #require(report.isComplete, "reply: \(result.text.debugDescription)")
            #expect(report.argv == ["probe", "report"])
            // CVE-2013-4342: the target must run as its configured user, not as the tcpmux service's.
            #expect(report.uids == [65534, 65534, 65534, 65534], "Uid=\(report["Uid"] ?? "?")")
            #expect(report.gids.first == 65534)
            #expect(report.fds == [0, 1, 2])
            #expect(report.env["TCPREMOTEIP"] == "127.0.0.1")
            #expect(report.env["TCPLOCALPORT"] == "\(setup.mux)")
        }

        @Test func plainTargetOutputComesDirectlyAndNamesAreCaseInsensitive() throws {
            let setup = try Setup()
            defer { setup.stop() }
            for name in ["report", "REPORT", "RePoRt"] {
                let result = try setup.ask(name + "\r\n")
                #expect(result.text.hasPrefix("argv0=probe\n"), "\(name): \(result.text.debugDescription)")
                let report = ProbeReport(result.bytes)
                #expect(report.isComplete)
                #expect(report.uids.first == 65534)
            }
        }

        @Test func helpListsTargetNamesAndCloses() throws {
            let setup = try Setup()
            defer { setup.stop() }
            let result = try setup.ask("HELP\r\n")
            #expect(result.eof)
            #expect(result.text.hasSuffix("\r\n"), "\(result.text.debugDescription)")
            let lines = result.text.components(separatedBy: "\r\n").dropLast()
            #expect(Set(lines) == ["report", "secure", "cat"], "\(result.text.debugDescription)")
            #expect(lines.count == 3)
            // Lowercase works too.
            #expect(try setup.ask("help\n").text == result.text)
        }

        @Test func unknownNamesAndOrdinaryServicesAreNotFound() throws {
            let setup = try Setup()
            defer { setup.stop() }
            let notFound = "-Service name not found\r\n"
            for name in ["nosuch", "tcpmux", "\(setup.echo)", "echo", "+secure", "tcpmux/report"] {
                let result = try setup.ask(name + "\r\n")
                #expect(result.text == notFound, "\(name): \(result.text.debugDescription)")
                #expect(!result.bytes.contains(0), "NUL in the reply")
            }
        }

        @Test func lineLengthLimitIs256BytesIncludingCRLF() throws {
            let setup = try Setup()
            defer { setup.stop() }
            // 254 characters + CRLF = 256 bytes: a name (unknown), not too long.
            let fits = try setup.ask(String(repeating: "a", count: 254) + "\r\n")
            #expect(fits.text == "-Service name not found\r\n", "\(fits.text.debugDescription)")
            let long = try setup.ask(String(repeating: "b", count: 255) + "\r\n")
            #expect(long.text == "-Service name too long\r\n", "\(long.text.debugDescription)")
            let veryLong = try setup.ask(String(repeating: "c", count: 5000) + "\r\n")
            #expect(veryLong.text == "-Service name too long\r\n", "\(veryLong.text.debugDescription)")
        }

        @Test func nameWithNULIsInvalid() throws {
            let setup = try Setup()
            defer { setup.stop() }
            let result = try setup.ask([Array("rep".utf8) + [0] + Array("ort\r\n".utf8)])
            #expect(result.text == "-Invalid service name\r\n", "\(result.text.debugDescription)")
        }

        @Test func lfOnlyTerminatorAndSplitNameWork() throws {
            let setup = try Setup()
            defer { setup.stop() }
            let lf = try setup.ask("secure\n")
            #expect(lf.bytes.starts(with: Self.goLine), "\(lf.text.debugDescription)")
            #expect(ProbeReport(Array(lf.bytes.dropFirst(5))).isComplete)

            let split = try setup.ask([Array("sec".utf8), Array("ure\r\n".utf8)])
            #expect(split.bytes.starts(with: Self.goLine), "\(split.text.debugDescription)")
            #expect(ProbeReport(Array(split.bytes.dropFirst(5))).isComplete)
        }

        /// Bytes after the name line belong to the program: nothing is swallowed.
        @Test func bytesAfterTheNameReachTheProgram() throws {
            let setup = try Setup()
            defer { setup.stop() }
            let sameWrite = try setup.ask("CAT\r\nhello")
            #expect(sameWrite.text == "+Go\r\nhello", "\(sameWrite.text.debugDescription)")

            let payload = Expected.binary(size: 20_000)
            let connection = try Connection.tcp("127.0.0.1", setup.mux)
            let result = connection.duplex(Array("cat\r\n".utf8) + payload)
            #expect(result.bytes == Self.goLine + payload, "got \(result.bytes.count) bytes")
        }

        @Test func idleClientIsClosedAfterTheTimeout() throws {
            let setup = try Setup(arguments: ["--tcpmux-timeout", "1"])
            defer { setup.stop() }
            let started = Clock.now  // before the daemon's timer can start, so the lower bound holds under load
            let connection = try Connection.tcp("127.0.0.1", setup.mux)
            try connection.send("sec")  // an unfinished name
            let result = connection.readToEOF(timeout: 4)
            let elapsed = Clock.now - started
            #expect(result.eof || result.error != nil, "idle tcpmux client still connected after 4 s")
            #expect(elapsed >= 0.8 && elapsed < 3.5, "closed after \(elapsed) s")
            #expect(!result.text.hasPrefix("+"), "\(result.text.debugDescription)")
        }
    }
}
