import Foundation
import Glibc
import Testing

/// tcpd rules (hosts.allow / hosts.deny, given with --hosts-allow / --hosts-deny): xinetd services
/// use them under their daemon name unless `flags = NOLIBWRAP`; inetd.conf services only with `-l`.
extension Integration {
    @Suite struct HostsAccessTests {
        /// hosts.allow / hosts.deny in a fresh directory, and the daemon options naming them.
        final class Rules {
            let dir: TempDir
            let allow: String
            let deny: String

            init(allow allowText: String, deny denyText: String) throws {
                dir = try TempDir()
                allow = try dir.write("hosts.allow", allowText)
                deny = try dir.write("hosts.deny", denyText)
            }

            var arguments: [String] { ["--hosts-allow", allow, "--hosts-deny", deny] }
        }

        static let defaults = Xinetd.defaults([
            "log_on_success = PID HOST EXIT", "log_on_failure = HOST", "cps = 1000 1",
        ])

        /// `ALL: ALL` denied, `probe: 127.0.0.1` allowed: a service whose daemon name is `probe`
        /// (argv[0] with NAMEINARGS, or `libwrap = probe`) serves 127.0.0.1 and refuses 127.0.0.2;
        /// one named otherwise (the server's basename) refuses both; NOLIBWRAP bypasses the rules.
        @Test func denyAllAllowOneDaemonForOneAddress() throws {
            let rules = try Rules(allow: "probe: 127.0.0.1\n", deny: "ALL: ALL\n")
            let named = Ports.free()
            let attribute = Ports.free()
            let other = Ports.free()
            let bypass = Ports.free()
            let daemon = try Daemon(
                config: Self.defaults
                    + Xinetd.service(
                        "named",
                        [
                            "type = UNLISTED", "flags = NAMEINARGS", "socket_type = stream", "wait = no",
                            "user = root", "bind = 127.0.0.1", "port = \(named)", "server = PROBE",
                            "server_args = probe report",
                        ])
                    + Xinetd.probe("attribute", port: attribute, ["libwrap = probe"])
                    + Xinetd.probe("other", port: other)
                    + Xinetd.probe("bypass", port: bypass, ["flags = NOLIBWRAP"]),
                arguments: rules.arguments)
            defer { daemon.stop() }
            #expect(daemon.log.contains("ready: 4 services"), "\(daemon.log)")

            let expectations: [(String, UInt16, Set<String>)] = [
                ("named", named, ["127.0.0.1"]),
                ("attribute", attribute, ["127.0.0.1"]),
                ("other", other, []),
                ("bypass", bypass, ["127.0.0.1", "127.0.0.2"]),
            ]
            var refusals = 0
            for (name, port, allowed) in expectations {
                for source in ["127.0.0.1", "127.0.0.2"] {
                    let outcome = Outcome.probe("127.0.0.1", port, from: source)
                    if allowed.contains(source) {
                        #expect(outcome == .served, "\(name) from \(source): \(outcome)\n\(daemon.log)")
                    } else {
                        #expect(outcome == .closed(bytes: []), "\(name) from \(source): \(outcome)")
                        refusals += 1
                        #expect(daemon.waitForLog("FAIL: \(name) libwrap from=\(source)", timeout: 2), "\(daemon.log)")
                    }
                }
            }
            #expect(daemon.count("FAIL: ") == refusals, "\(daemon.log)")
            #expect(daemon.waitForLog("START: ", count: 4, timeout: 2))
            #expect(daemon.settledCount("START: ", expected: 4) == 4, "a refused client got a child:\n\(daemon.log)")
        }

        /// inetd.conf services ignore the rules unless the daemon runs with `-l`; then the daemon
        /// name is argv[0]'s basename.
        @Test func inetdConfServicesUseTheRulesOnlyWithDashL() throws {
            let rules = try Rules(allow: "probe: 127.0.0.1\n", deny: "ALL: ALL\n")
            let probe = Ports.free()
            let other = Ports.free()
            let config = """
                127.0.0.1:\(probe) stream tcp nowait root PROBE /usr/sbin/probe report
                127.0.0.1:\(other) stream tcp nowait root PROBE in.other report

                """
            let plain = try Daemon(config: config, arguments: rules.arguments)
            for source in ["127.0.0.1", "127.0.0.2"] {
                #expect(Outcome.probe("127.0.0.1", probe, from: source) == .served, "without -l, from \(source)")
                #expect(Outcome.probe("127.0.0.1", other, from: source) == .served, "without -l, from \(source)")
            }
            #expect(plain.count("FAIL: ") == 0, "\(plain.log)")
            plain.stop()

            let wrapped = try Daemon(config: config, arguments: rules.arguments + ["-l"])
            defer { wrapped.stop() }
            #expect(Outcome.probe("127.0.0.1", probe, from: "127.0.0.1") == .served, "\(wrapped.log)")
            #expect(Outcome.probe("127.0.0.1", probe, from: "127.0.0.2") == .closed(bytes: []))
            #expect(Outcome.probe("127.0.0.1", other, from: "127.0.0.1") == .closed(bytes: []))
            #expect(wrapped.waitForLog("libwrap from=127.0.0.2", timeout: 2), "\(wrapped.log)")
            #expect(wrapped.waitForLog("FAIL: ", count: 2, timeout: 2), "\(wrapped.log)")
        }

        /// The rules apply to datagram services too (xinetd checks libwrap for UDP): with
        /// `ALL: ALL` denied, neither a UDP builtin nor a `wait` datagram server answers.
        @Test func datagramServicesAreSubjectToTheRules() throws {
            let rules = try Rules(allow: "", deny: "ALL: ALL\n")
            let daytime = Ports.free()
            let probe = Ports.free()
            let daemon = try Daemon(
                config: Self.defaults
                    + Xinetd.service(
                        "daytime",
                        [
                            "id = daytime-dgram", "type = INTERNAL UNLISTED", "socket_type = dgram", "wait = yes",
                            "port = \(daytime)", "bind = 127.0.0.1",
                        ])
                    + Xinetd.service(
                        "udprobe",
                        [
                            "type = UNLISTED", "socket_type = dgram", "wait = yes", "user = root",
                            "port = \(probe)", "bind = 127.0.0.1", "server = PROBE", "server_args = dgram",
                        ]),
                arguments: rules.arguments)
            defer { daemon.stop() }
            let client = try UDPSocket(bind: "127.0.0.1")
            let builtinAnswer = try client.exchange([10], to: "127.0.0.1", daytime, timeout: 1)
            #expect(builtinAnswer == nil, "a UDP builtin answered despite hosts.deny ALL: ALL: \(String(decoding: builtinAnswer ?? [], as: UTF8.self).debugDescription)")
            let serverAnswer = try client.exchange([10], to: "127.0.0.1", probe, timeout: 1)
            #expect(serverAnswer == nil, "a datagram server was started despite hosts.deny ALL: ALL")
            _ = Clock.poll(timeout: 2) { daemon.children().isEmpty }
            #expect(daemon.count("START: udprobe") == 0, "\(daemon.log)")
        }

        /// SIGHUP re-reads the rule files; a missing file counts as empty (tcpd).
        @Test func reloadRereadsTheRulesAndMissingFilesAllow() throws {
            let rules = try Rules(allow: "probe: 127.0.0.1\n", deny: "ALL: ALL\n")
            let port = Ports.free()
            let config = Self.defaults + Xinetd.probe("svc", port: port, ["libwrap = probe"])
            let daemon = try Daemon(config: config, arguments: rules.arguments)
            defer { daemon.stop() }
            #expect(Outcome.probe("127.0.0.1", port, from: "127.0.0.2") == .closed(bytes: []))

            try Files.write(rules.allow, Array("probe: 127.0.0.1, 127.0.0.2\n".utf8))
            #expect(daemon.hangUp()?.contains("reloaded") == true, "\(daemon.log)")
            #expect(Outcome.probe("127.0.0.1", port, from: "127.0.0.2") == .served, "\(daemon.log)")
            #expect(Outcome.probe("127.0.0.1", port, from: "127.0.0.3") == .closed(bytes: []))

            unlink(rules.allow)
            unlink(rules.deny)
            #expect(daemon.hangUp()?.contains("reloaded") == true, "\(daemon.log)")
            #expect(Outcome.probe("127.0.0.1", port, from: "127.0.0.3") == .served, "\(daemon.log)")
        }

        /// Patterns that need the client's name or ident user: `localhost` (127.0.0.1 is localhost
        /// in /etc/hosts, forward-confirmed) and `alice@ADDRESS` (answered by a fake identd).
        @Test(.enabled(if: getuid() == 0, "skipped: the fake identd binds port 113, which needs root"))
        func namesAndIdentUsersInRules() throws {
            let alice = try FakeIdentd(reply: FakeIdentd.answer("alice"))
            defer { alice.stop() }
            let mallory = try FakeIdentd(reply: FakeIdentd.answer("mallory"))
            defer { mallory.stop() }
            let rules = try Rules(
                allow: "byname: localhost\nbyuser: alice@\(alice.address) alice@\(mallory.address)\n",
                deny: "ALL: ALL\n")
            let byName = Ports.free()
            let byUser = Ports.free()
            let daemon = try Daemon(
                config: Self.defaults
                    + Xinetd.probe("byname", port: byName, ["libwrap = byname"])
                    + Xinetd.probe("byuser", port: byUser, ["libwrap = byuser"]),
                arguments: rules.arguments + ["--lookup-timeout", "2"])
            defer { daemon.stop() }

            let localhostResolves = (try? Processes.run(["/usr/bin/getent", "hosts", "localhost"]))?.stdout.contains("127.0.0.1") == true
            if localhostResolves {
                #expect(Outcome.probe("127.0.0.1", byName, from: "127.0.0.1") == .served, "\(daemon.log)")
            }
            #expect(Outcome.probe("127.0.0.1", byName, from: "127.0.0.2") == .closed(bytes: []))
            #expect(Outcome.probe("127.0.0.1", byUser, from: alice.address) == .served, "\(daemon.log)")
            #expect(Outcome.probe("127.0.0.1", byUser, from: mallory.address) == .closed(bytes: []))
            #expect(alice.requests.count == 1 && mallory.requests.count == 1, "\(alice.requests) \(mallory.requests)")
            #expect(daemon.waitForLog("FAIL: byuser libwrap from=\(mallory.address)", timeout: 2), "\(daemon.log)")
        }

        /// `spawn` and `twist` in a rule are never run (swinetd does not execute shell commands from
        /// these files): `spawn` is ignored and the client served, `twist` denies.
        @Test func spawnAndTwistCommandsAreNeverRun() throws {
            let marker = try TempDir()
            let spawned = marker.path + "/spawned"
            let twisted = marker.path + "/twisted"
            let rules = try Rules(
                allow: "probe: 127.0.0.1 : spawn /usr/bin/touch \(spawned)\nprobe: 127.0.0.2 : twist /usr/bin/touch \(twisted)\n",
                deny: "")
            let port = Ports.free()
            let daemon = try Daemon(
                config: Self.defaults + Xinetd.probe("svc", port: port, ["libwrap = probe"]), arguments: rules.arguments)
            defer { daemon.stop() }
            #expect(Outcome.probe("127.0.0.1", port, from: "127.0.0.1") == .served, "\(daemon.log)")
            #expect(Outcome.probe("127.0.0.1", port, from: "127.0.0.2") == .closed(bytes: []), "\(daemon.log)")
            #expect(daemon.waitForLog("FAIL: svc libwrap from=127.0.0.2", timeout: 2), "\(daemon.log)")
            usleep(200_000)
            #expect(!FileManager.default.fileExists(atPath: spawned), "a spawn command ran")
            #expect(!FileManager.default.fileExists(atPath: twisted), "a twist command ran")
        }
    }
}
