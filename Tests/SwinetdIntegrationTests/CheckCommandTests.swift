import Foundation
import Glibc
import Testing

/// `swinetd check`: diagnostics as `file:line: error: ...` on stderr, the table on stdout, exit 1 on
/// errors. (The `-f` spelling has its own test in ChildProcessTests; these use `--config`.)
extension Integration {
    @Suite struct CheckCommandTests {
        static func check(_ config: String) throws -> (file: String, result: Processes.CommandResult, dir: TempDir) {
            let dir = try TempDir()
            let file = try dir.write("inetd.conf", Daemon.expand(config))
            return (file, try Processes.run([Binaries.swinetd, "check", "--config", file]), dir)
        }

        @Test func validFileExitsZeroAndListsServices() throws {
            let echo = Ports.free()
            let probe = Ports.free()
            let (_, result, _) = try Self.check(
                """
                # a comment

                127.0.0.1:\(echo) stream tcp nowait root internal echo
                127.0.0.1:\(probe) stream tcp nowait nobody PROBE probe report
                \(echo) dgram udp wait root internal echo
                """)
            #expect(result.status == .exited(0), "\(result)")
            #expect(result.stderr.isEmpty, "\(result)")
            let rows = result.stdout.split(separator: "\n")
            #expect(rows.first?.contains("SERVICE") == true, "\(result)")
            #expect(rows.contains { $0.contains("\(echo)") && $0.contains("internal echo") && $0.contains("stream") }, "\(result)")
            #expect(rows.contains { $0.contains("\(probe)") && $0.contains(Binaries.probe) && $0.contains("nobody") }, "\(result)")
            #expect(rows.contains { $0.contains("\(echo)") && $0.contains("dgram") }, "\(result)")
            #expect(result.stdout.contains("3 services, 0 errors"), "\(result)")
        }

        /// Each kind of error names its file and line, and refuses only that line.
        @Test(arguments: [
            ("missing program", "127.0.0.1:PORT stream tcp nowait root /nonexistent/swinetd-nothing nothing", "/nonexistent/swinetd-nothing"),
            ("unknown user", "127.0.0.1:PORT stream tcp nowait no-such-user-xq PROBE probe", "no-such-user-xq"),
            ("bad port", "127.0.0.1:70000 stream tcp nowait root internal echo", "70000"),
            ("port zero", "127.0.0.1:0 stream tcp nowait root internal echo", "port"),
            ("duplicate listener", "127.0.0.1:GOOD stream tcp nowait root internal discard", "GOOD"),
        ])
        func errorNamesFileAndLine(kind: String, line: String, mentions: String) throws {
            let good = Ports.free()
            let port = Ports.free()
            let badLine = line.replacingOccurrences(of: "GOOD", with: "\(good)").replacingOccurrences(of: "PORT", with: "\(port)")
            let mention = mentions.replacingOccurrences(of: "GOOD", with: "\(good)")
            let (file, result, _) = try Self.check(
                """
                # line 1: comment
                127.0.0.1:\(good) stream tcp nowait root internal echo

                \(badLine)
                127.0.0.1:\(Ports.free()) stream tcp nowait root internal chargen
                """)
            #expect(result.status == .exited(1), "\(kind): \(result)")
            let errors = result.stderr.split(separator: "\n").filter { $0.contains(": error: ") }
            #expect(errors.count == 1, "\(kind): expected one error: \(result)")
            let error = errors.first ?? ""
            #expect(error.hasPrefix("\(file):4: error: "), "\(kind): \(error)")
            #expect(error.contains(mention), "\(kind): the message should mention \(mention): \(error)")
            #expect(result.stdout.contains("2 services, 1 errors"), "\(kind): the other lines must stay valid: \(result)")
        }

        /// Two entries whose TCP sockets cannot both be bound (the kernel refuses the second with
        /// EADDRINUSE) are a duplicate listener too, though their addresses are spelled differently.
        @Test(arguments: [
            ("tcp and tcp46 on the same port", "PORT stream tcp nowait root internal echo", "PORT stream tcp46 nowait root internal discard"),
            ("an address and the wildcard", "127.0.0.1:PORT stream tcp nowait root internal echo", "PORT stream tcp4 nowait root internal discard"),
        ])
        func overlappingTCPListenersAreDuplicates(kind: String, first: String, second: String) throws {
            let port = "\(Ports.free())"
            let (file, result, _) = try Self.check(
                first.replacingOccurrences(of: "PORT", with: port) + "\n"
                    + second.replacingOccurrences(of: "PORT", with: port) + "\n")
            #expect(result.status == .exited(1), "\(kind): \(result)")
            #expect(result.stderr.contains("\(file):2: error: "), "\(kind): \(result)")
        }

        @Test func severalErrorsAreAllReportedWithTheirLines() throws {
            let (file, result, _) = try Self.check(
                """
                127.0.0.1:\(Ports.free()) stream tcp nowait no-such-user-xq PROBE probe
                # comment
                127.0.0.1:99999 stream tcp nowait root internal echo
                127.0.0.1:\(Ports.free()) stream tcp nowait root /nonexistent/prog prog
                127.0.0.1:\(Ports.free()) stream tcp nowait root internal echo
                """)
            #expect(result.status == .exited(1))
            for line in [1, 3, 4] {
                #expect(result.stderr.contains("\(file):\(line): error: "), "line \(line): \(result)")
            }
            #expect(!result.stderr.contains("\(file):5:"), "\(result)")
        }
    }
}
