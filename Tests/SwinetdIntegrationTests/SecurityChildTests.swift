import Foundation
import Glibc
import Testing

/// security.md §3 recipe 11 (environment) with the hostile start the recipe names, which
/// ChildProcessTests does not use: LD_PRELOAD, a hostile PATH, IFS, BASH_ENV and extra variables
/// in the daemon's own environment.
extension Integration {
    @Suite struct SecurityChildTests {
        static let hostileEnvironment = [
            "PATH=/evil:/tmp",
            "LD_PRELOAD=/nonexistent/evil.so",
            "LD_LIBRARY_PATH=/evil/lib",
            "LD_AUDIT=/evil/audit.so",
            "IFS=/",
            "BASH_ENV=/evil/rc",
            "ENV=/evil/rc",
            "FOO=bar",
            "TZ=UTC",
            "HOME=/root",
        ]

        /// Started with that environment, the daemon gives children the documented clean one:
        /// none of the daemon's variables, the standard PATH.
        @Test func hostileDaemonEnvironmentNeverReachesChildren() throws {
            let port = Ports.free()
            let nobodyPort = Ports.free()
            let daemon = try Daemon(
                config: """
                    127.0.0.1:\(port) stream tcp nowait root PROBE probe
                    127.0.0.1:\(nobodyPort) stream tcp nowait nobody PROBE probe
                    """, environment: Self.hostileEnvironment)
            defer { daemon.stop() }
            for target in [port, nobodyPort] {
                let report = try TCP.probe("127.0.0.1", target)
                try #require(report.isComplete, "\(report.raw.prefix(300))\n\(daemon.log)")
                #expect(report.env["PATH"] == ChildProcessTests.standardPath)
                for name in ["LD_PRELOAD", "LD_LIBRARY_PATH", "LD_AUDIT", "IFS", "BASH_ENV", "ENV", "FOO", "TZ", "HOME"] {
                    #expect(report.env[name] == nil, "\(name)=\(report.env[name] ?? "") reached the child")
                }
                #expect(report.fds == [0, 1, 2])
            }
        }

        /// With -E the daemon's environment is passed on (xinetd's behaviour, documented), but
        /// never the dynamic loader's variables to a child that changes user: a root daemon must
        /// not preload an attacker-chosen library into a program it runs as someone else, nor
        /// the other way round.
        @Test func keptEnvironmentNeverPassesLoaderVariablesAcrossAUserChange() throws {
            let port = Ports.free()
            // A library that exists, so that a child that does get LD_PRELOAD still runs and reports.
            let libm = ["/lib/x86_64-linux-gnu/libm.so.6", "/lib/aarch64-linux-gnu/libm.so.6", "/usr/lib64/libm.so.6"]
                .first { FileManager.default.fileExists(atPath: $0) } ?? "/nonexistent.so"
            let daemon = try Daemon(
                config: "127.0.0.1:\(port) stream tcp nowait nobody PROBE probe\n", arguments: ["-E"],
                environment: ["PATH=/usr/bin:/bin", "LD_PRELOAD=\(libm)", "LD_LIBRARY_PATH=/tmp", "FOO=bar"])
            defer { daemon.stop() }
            let report = try TCP.probe("127.0.0.1", port)
            try #require(report.isComplete, "\(report.raw.prefix(300))")
            #expect(report.uids.first == 65534)
            #expect(report.env["FOO"] == "bar", "-E must keep ordinary variables")
            #expect(report.env["LD_PRELOAD"] == nil, "LD_PRELOAD passed to a child run as nobody")
            #expect(report.env["LD_LIBRARY_PATH"] == nil, "LD_LIBRARY_PATH passed to a child run as nobody")
        }
    }
}
