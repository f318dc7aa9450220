import Foundation
import Glibc
import Testing

/// `listen_fds` (docs/SYSTEMD.md): a wait service's program is started as systemd starts a
/// socket-activated daemon. The probe's `listen-fds` mode is such a daemon: it checks LISTEN_PID
/// against its own pid, LISTEN_FDS, that fds 3.. are listening sockets, then accepts one
/// connection on whichever is ready and reports.
extension Integration {
    @Suite struct ListenFDsTests {
        @Test func inetdServiceGetsBothSocketsAsFD3And4() throws {
            let port = Ports.free()
            let daemon = try Daemon(
                config: "127.0.0.1,[::1]:\(port) stream tcp,listen_fds wait root PROBE probe listen-fds\n")
            defer { daemon.stop() }
            for (host, fd) in [("::1", "4"), ("127.0.0.1", "3")] {
                let report = try TCP.probe(host, port)
                #expect(report.isComplete, "\(report)")
                #expect(report["listen_pid_ok"] == "yes")
                #expect(report["listen_fds"] == "2")
                #expect(report["listen_fd3"] == "stream-listening")
                #expect(report["listen_fd4"] == "stream-listening")
                #expect(report["accepted_on"] == fd, "\(host)")
                #expect(report.env["LISTEN_FDS"] == "2")
                #expect(report.env["LISTEN_FDNAMES"] == "\(port):\(port)")
                #expect(report.env["LISTEN_PID"].flatMap(Int32.init) == report.pid)
                #expect(report.fds == [0, 1, 2, 3, 4])
                #expect(report["fd0"] == "/dev/null" && report["fd1"] == "/dev/null" && report["fd2"] == "/dev/null")
                // The child's pid is the one swinetd logged (the START line may come after the
                // child has already answered).
                #expect(Clock.poll(timeout: 3) { daemon.startedPids().contains(report.pid ?? -1) }, "\(daemon.log)")
            }
        }

        @Test func xinetdServiceWithListenFDsAndNamesFromTheID() throws {
            let port = Ports.free()
            let daemon = try Daemon(
                config: Xinetd.loggingDefaults
                    + Xinetd.service(
                        "sd-daemon",
                        [
                            "id = web:main", "type = UNLISTED", "socket_type = stream", "wait = yes",
                            "user = nobody", "bind = 127.0.0.1", "port = \(port)", "server = PROBE",
                            "server_args = listen-fds", "listen_fds = yes",
                        ]))
            defer { daemon.stop() }
            let report = try TCP.probe("127.0.0.1", port)
            #expect(report["listen_pid_ok"] == "yes", "\(report)")
            #expect(report["listen_fds"] == "1")
            #expect(report["accepted_on"] == "3")
            // `:` separates names, so it cannot be part of one.
            #expect(report.env["LISTEN_FDNAMES"] == "web_main")
            #expect(report.uids.first == 65534)
        }

        @Test func classicWaitServiceIsUnchanged() throws {
            let port = Ports.free()
            let daemon = try Daemon(config: "127.0.0.1:\(port) stream tcp4 wait root PROBE probe accept\n")
            defer { daemon.stop() }
            let report = try TCP.probe("127.0.0.1", port)
            #expect(report.env["LISTEN_FDS"] == nil && report.env["LISTEN_PID"] == nil, "\(report)")
            #expect(report.fds == [0, 1, 2])
        }
    }
}
