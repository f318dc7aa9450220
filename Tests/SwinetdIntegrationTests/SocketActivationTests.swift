import Foundation
import Glibc
import Testing

/// swinetd under systemd socket activation (docs/SYSTEMD.md): it adopts the listening sockets it
/// is given (LISTEN_FDS, LISTEN_PID, LISTEN_FDNAMES) instead of binding, binds what it is not
/// given, keeps adopted sockets across reloads, and children never see LISTEN_*. Started by
/// Tests/helpers/listen_fds_launcher.py (the same protocol, written for the tests) and by
/// systemd's own `systemd-socket-activate` (Debian package systemd, installed by .ci/run).
extension Integration {
    @Suite struct SocketActivationTests {
        static func launcher(_ specs: [String], names: String? = nil, wrongPID: Bool = false) -> Daemon.Launcher {
            var argv = ["/usr/bin/python3", Binaries.helpers + "/listen_fds_launcher.py"]
            if let names { argv += ["--names", names] }
            if wrongPID { argv.append("--wrong-pid") }
            return .prefix(argv + specs + ["--"])
        }

        static func echo(_ host: String, _ port: UInt16) -> String {
            (try? TCP.exchange(host, port, send: Array("ping\n".utf8)).text) ?? "<connect failed>"
        }

        @Test func adoptsMatchingSocketsBindsTheRestAndHidesListenVariables() throws {
            let (echo, dual, daytime, unused, mismatched, probe) =
                (Ports.free(), Ports.free(), Ports.free(), Ports.free(), Ports.free(), Ports.free())
            let dir = try TempDir()
            let unixPath = dir.path + "/echo.sock"
            let daemon = try Daemon(
                config: """
                    127.0.0.1:\(echo) stream tcp4 nowait root internal echo
                    [::]:\(dual) stream tcp46 nowait root internal echo
                    \(unixPath) stream unix nowait root internal echo
                    127.0.0.1:\(daytime) stream tcp4 nowait root internal daytime
                    [::]:\(mismatched) stream tcp46 nowait root internal echo
                    127.0.0.1:\(probe) stream tcp4 nowait root PROBE probe report

                    """,
                arguments: ["-E"],
                launcher: Self.launcher([
                    "tcp:127.0.0.1:\(echo)", "tcp46:[::]:\(dual)", "unix:\(unixPath)",
                    "tcp:127.0.0.1:\(unused)", "tcp6:[::]:\(mismatched)",
                ]))
            defer { daemon.stop() }
            #expect(daemon.count("adopted inherited socket fd 3 for stream 127.0.0.1:\(echo)") == 1, "\(daemon.log)")
            #expect(daemon.count("adopted inherited socket fd 4 for stream [::]:\(dual) (v4+v6)") == 1)
            #expect(daemon.count("adopted inherited socket fd 5 for stream \(unixPath)") == 1)
            // Not inherited: bound as usual.
            #expect(daemon.count("adopted inherited socket") == 3)
            #expect(!TCP.exchange_text("127.0.0.1", daytime).isEmpty)
            // Inherited but configured nowhere: logged, kept open.
            #expect(daemon.count("inherited fd 6: stream 127.0.0.1:\(unused) matches no configured listener; kept open") == 1)
            // IPV6_V6ONLY differs (tcp6 socket, tcp46 entry): not adopted; the bind then fails.
            #expect(daemon.count("inherited fd 7: stream [::]:\(mismatched) matches no configured listener") == 1)
            #expect(daemon.count("bind [::]:\(mismatched) (v4+v6): Address already in use") == 1, "\(daemon.log)")

            #expect(Self.echo("127.0.0.1", echo) == "ping\n")
            #expect(Self.echo("::1", dual) == "ping\n")
            #expect(Self.echo("127.0.0.1", dual) == "ping\n")  // dual stack: the adopted socket's own setting
            let unix = try Connection.unix(unixPath)
            try unix.send("ping\n")
            unix.shutdownWrite()
            #expect(unix.readToEOF().text == "ping\n")

            // -E passes swinetd's own environment, but never the LISTEN_* it was started with.
            let report = try TCP.probe("127.0.0.1", probe)
            #expect(report.isComplete)
            #expect(report.env["LISTEN_FDS"] == nil && report.env["LISTEN_PID"] == nil, "\(report)")
            #expect(report.env["TZ"] != nil)  // the daemon's environment did reach the child
            // The inherited fds are close-on-exec in swinetd and never reach a child.
            #expect(report.fds == [0, 1, 2])
        }

        @Test func reloadKeepsAnAdoptedSocketForALaterConfiguration() throws {
            let echo = Ports.free()
            let other = Ports.free()
            let line = "127.0.0.1:\(echo) stream tcp4 nowait root internal echo\n"
            let otherLine = "127.0.0.1:\(other) stream tcp4 nowait root internal echo\n"
            let daemon = try Daemon(config: line, launcher: Self.launcher(["tcp:127.0.0.1:\(echo)"]))
            defer { daemon.stop() }
            #expect(Self.echo("127.0.0.1", echo) == "ping\n")
            // Removed: the socket goes back to the inherited pool, still open (no bind error later).
            #expect(try daemon.reload(otherLine)?.contains("reloaded") == true)
            #expect(Self.echo("127.0.0.1", other) == "ping\n")
            // Back: adopted again, the same fd.
            #expect(try daemon.reload(line + otherLine)?.contains("reloaded") == true)
            #expect(daemon.waitForLog("adopted inherited socket fd 3 for stream 127.0.0.1:\(echo)", count: 2))
            #expect(Self.echo("127.0.0.1", echo) == "ping\n")
            #expect(daemon.count("Address already in use") == 0, "\(daemon.log)")
        }

        @Test func namesAndLISTEN_PIDRules() throws {
            let mine = Ports.free()
            let theirs = Ports.free()
            // fd 3 is named after the service on `theirs` but bound to `mine`: the service on
            // `mine` must not take it. fd 4 is named after its own service: taken.
            let daemon = try Daemon(
                config: """
                    127.0.0.1:\(mine) stream tcp4 nowait root internal echo
                    127.0.0.1:\(theirs) stream tcp4 nowait root internal echo

                    """,
                launcher: Self.launcher(["tcp:127.0.0.1:\(mine)", "tcp:127.0.0.1:\(theirs)"], names: "\(theirs):\(theirs)"))
            defer { daemon.stop() }
            #expect(daemon.count("adopted inherited socket fd 4 for stream 127.0.0.1:\(theirs)") == 1, "\(daemon.log)")
            #expect(daemon.count("adopted inherited socket fd 3") == 0)
            #expect(daemon.count("inherited fd 3 (\(theirs)): stream 127.0.0.1:\(mine) matches no configured listener") == 1)

            // LISTEN_PID of another process: nothing is adopted (and every bind fails here).
            let port = Ports.free()
            let wrong = try Daemon(
                config: "127.0.0.1:\(port) stream tcp4 nowait root internal echo\n",
                launcher: Self.launcher(["tcp:127.0.0.1:\(port)"], wrongPID: true))
            defer { wrong.stop() }
            #expect(wrong.count("is not swinetd's pid; no sockets adopted") == 1, "\(wrong.log)")
            #expect(wrong.count("adopted inherited socket") == 0)
        }

        /// systemd's own launcher: it execs swinetd only once a client connects, so the client
        /// connects first (from another thread) and is served by the adopted socket.
        @Test func underSystemdSocketActivate() throws {
            let tool = "/usr/bin/systemd-socket-activate"
            guard access(tool, X_OK) == 0 else {
                throw HarnessError("systemd-socket-activate is not installed (Debian package systemd; .ci/run installs it)")
            }
            let port = Ports.free()
            let answer = Locked<String?>(nil)
            let client = Thread {
                let deadline = Clock.now + 10
                while Clock.now < deadline {
                    if let result = try? TCP.exchange("127.0.0.1", port, send: Array("first\n".utf8)) {
                        answer.withLock { $0 = result.text }
                        return
                    }
                    usleep(50_000)
                }
            }
            client.start()
            let daemon = try Daemon(
                config: "127.0.0.1:\(port) stream tcp4 nowait root internal echo\n",
                launcher: .prefix([tool, "-l", "127.0.0.1:\(port)", "--fdname=\(port)", "-E", "TZ"]))
            defer { daemon.stop() }
            #expect(Clock.poll(timeout: 10) { answer.withLock { $0 } != nil })
            #expect(answer.withLock { $0 } == "first\n")
            #expect(daemon.count("adopted inherited socket fd 3 for stream 127.0.0.1:\(port)") == 1, "\(daemon.log)")
            #expect(Self.echo("127.0.0.1", port) == "ping\n")
        }
    }
}

extension TCP {
    /// What a service sends to a client that sends nothing ("" when the connect fails).
    static func exchange_text(_ host: String, _ port: UInt16) -> String {
        (try? exchange(host, port).text) ?? ""
    }
}
