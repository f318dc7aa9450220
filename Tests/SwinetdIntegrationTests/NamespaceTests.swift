import Foundation
import Glibc
import Testing

/// The builtins on their standard ports (tcpmux 1, echo 7, discard 9, daytime 13, chargen 19,
/// time 37), named by service (resolved through /etc/services), inside a private network namespace
/// so nothing on the host is touched. The client is Tests/helpers/stdports_client.py.
extension Integration {
    @Suite struct NamespaceTests {
        /// Whether this machine lets us create a network namespace.
        static let unshareWorks: Bool = {
            guard FileManager.default.isExecutableFile(atPath: "/usr/bin/unshare") else { return false }
            return (try? Processes.run(["/usr/bin/unshare", "-n", "/bin/true"], timeout: 10))?.status == .exited(0)
        }()

        /// A network namespace, and a PID namespace whose init is the script: if the run times out
        /// and unshare is killed, --kill-child kills the script and with it everything inside,
        /// swinetd included. Falls back to a network namespace only where PID namespaces fail.
        static let unsharePrefix: [String] = {
            let both = ["/usr/bin/unshare", "-n", "-p", "-f", "--kill-child"]
            let works = (try? Processes.run(both + ["/bin/true"], timeout: 10))?.status == .exited(0)
            return works ? both : ["/usr/bin/unshare", "-n"]
        }()

        static let config = """
            tcpmux  stream tcp nowait root internal
            tcpmux/+hello stream tcp nowait nobody PROBE probe
            echo    stream tcp nowait root internal
            echo    dgram  udp wait   root internal
            discard stream tcp nowait root internal
            discard dgram  udp wait   root internal
            daytime stream tcp nowait root internal
            daytime dgram  udp wait   root internal
            chargen stream tcp nowait root internal
            chargen dgram  udp wait   root internal
            time    stream tcp nowait root internal
            time    dgram  udp wait   root internal
            """

        /// Runs swinetd with `config` and then `client` (a helper in Tests/helpers with its
        /// arguments, run by python3) in a fresh network namespace (Tests/helpers/in_netns.sh);
        /// returns what the client printed and swinetd's log.
        static func runInNamespace(config: String, client: [String]) throws -> (result: Processes.CommandResult, log: String) {
            let dir = try TempDir()
            let conf = try dir.write("inetd.conf", config + "\n")
            let log = dir.path + "/swinetd.log"
            let result = try Processes.run(
                unsharePrefix + ["/bin/sh", Binaries.helpers + "/in_netns.sh", Binaries.swinetd, conf, log, "/usr/bin/python3"]
                    + [Binaries.helpers + "/" + client[0]] + client.dropFirst(),
                timeout: 60)
            return (result, Files.read(log))
        }

        static func runInNamespace(host: String) throws -> (result: Processes.CommandResult, log: String) {
            try runInNamespace(config: Daemon.expand(config), client: ["stdports_client.py", host])
        }

        @Test(.enabled(if: unshareWorks, "skipped: `unshare -n true` fails here (no permission to create a network namespace)"))
        func builtinsOnStandardPortsIPv4() throws {
            let (result, log) = try Self.runInNamespace(host: "127.0.0.1")
            #expect(result.status == .exited(0), "\(result)\n--- swinetd log ---\n\(log)")
            #expect(result.stdout.contains("ALL OK"), "\(result)")
            #expect(!result.stdout.contains("FAIL"), "\(result)")
            #expect(result.stdout.contains("SWINETD_EXIT=0"), "swinetd did not exit 0 on SIGTERM: \(result)")
            #expect(log.contains("ready: 12 services"), "\(log)")
            for port in [1, 7, 9, 13, 19, 37] {
                #expect(log.contains("0.0.0.0:\(port) "), "not listening on port \(port):\n\(log)")
            }
        }

        @Test(.enabled(if: unshareWorks, "skipped: `unshare -n true` fails here (no permission to create a network namespace)"))
        func builtinsOnStandardPortsIPv6() throws {
            let (result, log) = try Self.runInNamespace(host: "::1")
            #expect(result.status == .exited(0), "\(result)\n--- swinetd log ---\n\(log)")
            #expect(result.stdout.contains("ALL OK"), "\(result)")
        }
    }
}
