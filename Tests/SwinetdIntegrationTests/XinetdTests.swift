import Foundation
import Glibc
import Testing

/// xinetd.conf: a realistic tree (defaults + includedir), the builtins as `type = INTERNAL UNLISTED`,
/// external services, tcpmux targets, `bind` that must never widen, `disable`, and SIGHUP.
extension Integration {
    @Suite struct XinetdTests {
        /// A distribution-style layout: /etc/xinetd.conf with defaults and `includedir`, one file per
        /// service (the builtins with their stream and dgram halves in one file, as Debian ships them),
        /// a disabled service, and two names that xinetd's includedir skips (`foo.conf`, `old~`).
        final class Tree {
            let tree: XinetdTree
            let echo = Ports.free()
            let daytime = Ports.free()
            let time = Ports.free()
            let chargen = Ports.free()
            let probe = Ports.free()
            let nameInArgs = Ports.free()
            let nobody = Ports.free()
            let mux = Ports.free()
            let disabled = Ports.free()
            let skipped = Ports.free()
            let daemon: Daemon

            static let serviceCount = 14

            static func builtinPair(_ name: String, port: UInt16) -> String {
                ["stream", "dgram"].map { type in
                    Xinetd.service(
                        name,
                        [
                            "id = \(name)-\(type)", "type = INTERNAL UNLISTED", "socket_type = \(type)",
                            "wait = \(type == "stream" ? "no" : "yes")", "port = \(port)", "bind = 127.0.0.1",
                        ])
                }.joined(separator: "\n")
            }

            init() throws {
                tree = try XinetdTree()
                try tree.write("echo", "# echo, RFC 862\n" + Self.builtinPair("echo", port: echo))
                try tree.write("daytime", Self.builtinPair("daytime", port: daytime))
                try tree.write("time", Self.builtinPair("time", port: time))
                try tree.write("chargen", Self.builtinPair("chargen", port: chargen))
                try tree.write("probe", Xinetd.probe("probe", port: probe, mode: "report extra-arg"))
                try tree.write(
                    "nameinargs",
                    Xinetd.service(
                        "nameinargs",
                        [
                            "type = UNLISTED", "flags = NAMEINARGS", "socket_type = stream", "wait = no",
                            "user = root", "bind = 127.0.0.1", "port = \(nameInArgs)", "server = PROBE",
                            "server_args = in.probed report",
                        ]))
                try tree.write(
                    "nobody", Xinetd.probe("nobody", port: nobody, user: "nobody", ["groups = yes"]))
                try tree.write(
                    "tcpmux",
                    Xinetd.service(
                        "tcpmux",
                        [
                            "type = INTERNAL UNLISTED", "socket_type = stream", "wait = no", "port = \(mux)",
                            "bind = 127.0.0.1",
                        ]))
                try tree.write(
                    "hello",
                    Xinetd.service(
                        "hello",
                        [
                            "type = TCPMUX", "socket_type = stream", "wait = no", "user = nobody",
                            "server = PROBE", "server_args = report",
                        ]))
                try tree.write(
                    "plus",
                    Xinetd.service(
                        "plus",
                        [
                            "type = TCPMUXPLUS", "socket_type = stream", "wait = no", "user = nobody",
                            "server = PROBE", "server_args = report",
                        ]))
                try tree.write("disabled", Xinetd.probe("disabled", port: disabled, ["disable = yes"]))
                // Skipped by includedir (a dot; a trailing ~), each with a warning.
                try tree.write("foo.conf", Xinetd.probe("foo", port: skipped))
                try tree.write("old~", Xinetd.probe("old", port: skipped))
                daemon = try Daemon(
                    config: """
                        # /etc/xinetd.conf
                        defaults
                        {
                            log_on_success  = PID HOST EXIT DURATION
                            log_on_failure  = HOST ATTEMPT
                            instances       = 30
                            cps             = 100 5
                        }

                        \(tree.includedirLine)
                        """)
            }

            func stop() { daemon.stop() }
        }

        @Test func realisticTreeLoadsEveryServiceAndWarnsAboutSkippedNames() throws {
            let setup = try Tree()
            defer { setup.stop() }
            let daemon = setup.daemon
            #expect(daemon.log.contains("ready: \(Tree.serviceCount) services"), "\(daemon.log)")
            let includeDir = setup.tree.includeDir
            for name in ["foo.conf", "old~"] {
                #expect(
                    daemon.logLines.contains { $0.contains("warning") && $0.contains("skipped \(includeDir)/\(name)") },
                    "no warning about the skipped \(name):\n\(daemon.log)")
            }
            #expect(!daemon.log.contains("error"), "\(daemon.log)")

            // `swinetd check` agrees: the same count, no errors, the two warnings, exit 0.
            let check = try CheckCommand.run(configPath: daemon.configPath)
            #expect(check.status == .exited(0), "\(check)")
            #expect(check.stdout.contains("\(Tree.serviceCount) services, 0 errors, 2 warnings"), "\(check)")
            #expect(check.stderr.contains("\(includeDir)/foo.conf"), "\(check)")

            // Every stream service listens on 127.0.0.1 only (bind), never on a wildcard.
            for port in [setup.echo, setup.daytime, setup.time, setup.chargen, setup.probe, setup.nameInArgs, setup.nobody, setup.mux] {
                let listeners = ProcFS.tcpListeners(port: port)
                #expect(listeners.map(\.address) == ["127.0.0.1"], "port \(port): \(listeners)")
            }
            for port in [setup.echo, setup.daytime, setup.time, setup.chargen] {
                let sockets = ProcFS.udpSockets(port: port)
                #expect(sockets.map(\.address) == ["127.0.0.1"], "udp port \(port): \(sockets)")
            }
            // Disabled and skipped services are not served at all.
            for port in [setup.disabled, setup.skipped] {
                #expect(ProcFS.tcpListeners(port: port).isEmpty, "port \(port) is listening")
                #expect(TCP.connectErrno("127.0.0.1", port) == ECONNREFUSED)
            }
        }

        @Test func internalBuiltinsServeStreamAndDatagram() throws {
            let setup = try Tree()
            defer { setup.stop() }

            let payload = Expected.binary(size: 100_000)
            let echoed = try Connection.tcp("127.0.0.1", setup.echo).duplex(payload)
            #expect(echoed.bytes == payload, "stream echo returned \(echoed.bytes.count) of \(payload.count) bytes")
            #expect(echoed.eof)

            let daytime = try TCP.exchange("127.0.0.1", setup.daytime)
            #expect(Expected.daytimeMatchesNow(daytime.text), "daytime: \(daytime.text.debugDescription)")
            let time = try TCP.exchange("127.0.0.1", setup.time)
            #expect(Expected.timeMatchesNow(time.bytes), "time: \(time.bytes)")
            let chargen = try Connection.tcp("127.0.0.1", setup.chargen).read(count: 74 * 10)
            #expect(chargen == Expected.chargenLines(10))

            let client = try UDPSocket()
            let datagram = Array("xinetd dgram echo \u{0}\u{ff}".utf8)
            #expect(try client.exchange(datagram, to: "127.0.0.1", setup.echo) == datagram)
            let udpDaytime = try client.exchange([0x0a], to: "127.0.0.1", setup.daytime)
            #expect(udpDaytime.map { Expected.daytimeMatchesNow(String(decoding: $0, as: UTF8.self)) } == true, "\(String(describing: udpDaytime))")
            let udpTime = try client.exchange([0x0a], to: "127.0.0.1", setup.time)
            #expect(udpTime.map(Expected.timeMatchesNow) == true, "\(String(describing: udpTime))")
            let udpChargen = try #require(try client.exchange([0x0a], to: "127.0.0.1", setup.chargen), "no chargen datagram")
            #expect(!udpChargen.isEmpty && udpChargen.count <= 512, "chargen datagram of \(udpChargen.count) bytes")
            #expect(udpChargen.allSatisfy { ($0 >= 32 && $0 < 127) || $0 == 13 || $0 == 10 }, "not chargen text")
        }

        @Test func externalServicesGetServerArgsNameInArgsAndTheirUser() throws {
            let setup = try Tree()
            defer { setup.stop() }

            let plain = try TCP.probe("127.0.0.1", setup.probe)
            try #require(plain.isComplete, "\(plain)")
            // Without NAMEINARGS, argv[0] is the server's basename and server_args follow.
            #expect(plain.argv == ["swinetd-probe", "report", "extra-arg"])
            #expect(plain.uids == [0, 0, 0, 0])

            let named = try TCP.probe("127.0.0.1", setup.nameInArgs)
            try #require(named.isComplete, "\(named)")
            // With NAMEINARGS, server_args is the whole argv, its first word argv[0].
            #expect(named.argv == ["in.probed", "report"])

            let nobody = try TCP.probe("127.0.0.1", setup.nobody)
            try #require(nobody.isComplete, "\(nobody)")
            #expect(nobody.uids == [65534, 65534, 65534, 65534], "Uid=\(nobody["Uid"] ?? "?")")
            #expect(nobody.gids == [65534, 65534, 65534, 65534], "Gid=\(nobody["Gid"] ?? "?")")
            let expectedGroups = Set(Self.groupList("nobody"))
            #expect(Set(nobody.groups) == expectedGroups, "Groups=\(nobody["Groups"] ?? "?") expected \(expectedGroups)")
            #expect(nobody["CapEff"] == "0000000000000000")

            // The START lines carry the id and pid of each child.
            #expect(setup.daemon.waitForLog("START: nobody pid=\(nobody.pid ?? -1) from=127.0.0.1"), "\(setup.daemon.log)")
            #expect(setup.daemon.waitForLog("EXIT: probe status=0 pid=\(plain.pid ?? -1)"), "\(setup.daemon.log)")
        }

        @Test func tcpmuxTargetsAreReachedByName() throws {
            let setup = try Tree()
            defer { setup.stop() }
            func ask(_ line: String) throws -> Connection.ReadResult {
                let connection = try Connection.tcp("127.0.0.1", setup.mux)
                try connection.send(line)
                connection.shutdownWrite()
                return connection.readToEOF()
            }
            // TCPMUX: the program answers directly.
            let hello = try ask("hello\r\n")
            #expect(hello.text.hasPrefix("argv0=swinetd-probe\n"), "\(hello.text.debugDescription)")
            let helloReport = ProbeReport(hello.bytes)
            #expect(helloReport.isComplete)
            #expect(helloReport.uids.first == 65534)
            // TCPMUXPLUS: swinetd sends +Go first.
            let plus = try ask("PLUS\r\n")
            #expect(plus.text.hasPrefix("+Go\r\n"), "\(plus.text.debugDescription)")
            #expect(ProbeReport(Array(plus.bytes.dropFirst(5))).isComplete)
            // The builtins are not tcpmux targets.
            #expect(try ask("echo\r\n").text == "-Service name not found\r\n")
            let help = try ask("HELP\r\n")
            #expect(Set(help.text.components(separatedBy: "\r\n").filter { !$0.isEmpty }) == ["hello", "plus"], "\(help.text.debugDescription)")
        }

        /// A tcpmux target's own only_from applies: a denied client gets RFC 1078's `-` reply and
        /// no program.
        @Test func tcpmuxTargetAppliesItsOnlyFrom() throws {
            let mux = Ports.free()
            let daemon = try Daemon(
                config: Xinetd.loggingDefaults
                    + Xinetd.service(
                        "tcpmux",
                        ["type = INTERNAL UNLISTED", "socket_type = stream", "wait = no", "port = \(mux)", "bind = 127.0.0.1"])
                    + Xinetd.service(
                        "guarded",
                        [
                            "type = TCPMUXPLUS", "socket_type = stream", "wait = no", "user = nobody",
                            "server = PROBE", "server_args = report", "only_from = 127.0.0.1",
                        ]))
            defer { daemon.stop() }
            func ask(from source: String) throws -> Connection.ReadResult {
                let connection = try Connection.tcp("127.0.0.1", mux, from: source)
                try connection.send("guarded\r\n")
                connection.shutdownWrite()
                return connection.readToEOF()
            }
            let allowed = try ask(from: "127.0.0.1")
            #expect(allowed.text.hasPrefix("+Go\r\n") && ProbeReport(Array(allowed.bytes.dropFirst(5))).isComplete, "\(allowed.text.prefix(60).debugDescription)")
            let denied = try ask(from: "127.0.0.2")
            #expect(denied.text.hasPrefix("-"), "\(denied.text.debugDescription)")
            #expect(!denied.text.contains("argv0="), "a denied client reached the program")
            #expect(daemon.waitForLog("FAIL: guarded address from=127.0.0.2"), "\(daemon.log)")
            #expect(daemon.settledCount("START: guarded", expected: 1) == 1)
        }

        /// `bind` with two addresses, or one that is not an address, refuses the service: `check`
        /// exits 1 naming the line, the daemon serves the rest, and nothing listens on those ports,
        /// on 127.0.0.1 or on any wildcard. A bad `bind` in the defaults refuses every service.
        @Test func badBindRefusesTheServiceAndNeverListensEverywhere() throws {
            let good = Ports.free()
            let bad = [Ports.free(), Ports.free(), Ports.free()]
            let binds = ["10.0.0.1 10.0.0.2", "10.1", "999.1.2.3"]
            var config = Xinetd.loggingDefaults + Xinetd.probe("good", port: good)
            for (index, (port, bind)) in zip(bad, binds).enumerated() {
                config += Xinetd.service(
                    "bad\(index)",
                    [
                        "type = UNLISTED", "socket_type = stream", "wait = no", "user = root", "port = \(port)",
                        "bind = \(bind)", "server = PROBE",
                    ])
            }
            let daemon = try Daemon(config: config)
            defer { daemon.stop() }

            let check = try CheckCommand.run(configPath: daemon.configPath)
            #expect(check.status == .exited(1), "\(check)")
            #expect(check.stdout.contains("1 services, 3 errors"), "\(check)")
            let errorLines = check.stderr.split(separator: "\n").filter { $0.contains("error") }
            #expect(errorLines.count == 3, "\(check)")
            for line in errorLines {
                #expect(line.hasPrefix(daemon.configPath + ":"), "diagnostic without file:line: \(line)")
                #expect(line.contains("bind"), "\(line)")
            }

            #expect(daemon.log.contains("ready: 1 services"), "\(daemon.log)")
            #expect(try TCP.probe("127.0.0.1", good).isComplete)
            for port in bad {
                #expect(ProcFS.tcpListeners(port: port).isEmpty, "port \(port): \(ProcFS.tcpListeners(port: port))")
                #expect(TCP.connectErrno("127.0.0.1", port) == ECONNREFUSED, "port \(port) accepted a connection")
            }

            // The same mistake in the defaults: every service is refused, nothing listens.
            let refusedPort = Ports.free()
            let inDefaults = try Daemon(
                config: Xinetd.defaults(["bind = 10.0.0.1 10.0.0.2", "log_on_success = PID"])
                    + Xinetd.probe("victim", port: refusedPort).replacingOccurrences(of: "    bind = 127.0.0.1\n", with: ""))
            defer { inDefaults.stop() }
            #expect(inDefaults.log.contains("ready: 0 services"), "\(inDefaults.log)")
            #expect(ProcFS.tcpListeners(port: refusedPort).isEmpty, "\(ProcFS.tcpListeners(port: refusedPort))")
            #expect(TCP.connectErrno("127.0.0.1", refusedPort) == ECONNREFUSED)
            let defaultsCheck = try CheckCommand.run(configPath: inDefaults.configPath)
            #expect(defaultsCheck.status == .exited(1), "\(defaultsCheck)")
        }

        /// SIGHUP re-reads the include directory: an edited file changes its service, a new file adds
        /// one, removing `disable = yes` enables one, adding it disables one.
        @Test func sighupAppliesEditsInTheIncludeDirectory() throws {
            let tree = try XinetdTree()
            let first = Ports.free()
            let second = Ports.free()
            let third = Ports.free()
            try tree.write("first", Xinetd.probe("first", port: first, mode: "report before"))
            try tree.write("second", Xinetd.probe("second", port: second, ["disable = yes"]))
            let daemon = try Daemon(config: Xinetd.loggingDefaults + tree.includedirLine)
            defer { daemon.stop() }
            #expect(daemon.log.contains("ready: 1 services"), "\(daemon.log)")
            #expect(try TCP.probe("127.0.0.1", first).argv == ["swinetd-probe", "report", "before"])
            #expect(TCP.connectErrno("127.0.0.1", second) == ECONNREFUSED)

            try tree.write("first", Xinetd.probe("first", port: first, mode: "report after"))
            try tree.write("second", Xinetd.probe("second", port: second))
            try tree.write("third", Xinetd.probe("third", port: third))
            let outcome = daemon.hangUp()
            #expect(outcome?.contains("reloaded 3 services") == true, "\(String(describing: outcome))\n\(daemon.log)")
            #expect(try TCP.probe("127.0.0.1", first).argv == ["swinetd-probe", "report", "after"])
            #expect(try TCP.probe("127.0.0.1", second).isComplete, "\(daemon.log)")
            #expect(try TCP.probe("127.0.0.1", third).isComplete, "\(daemon.log)")

            try tree.write("first", Xinetd.probe("first", port: first, ["disable = yes"]))
            tree.remove("third")
            let secondOutcome = daemon.hangUp()
            #expect(secondOutcome?.contains("reloaded 1 services") == true, "\(String(describing: secondOutcome))")
            #expect(TCP.connectErrno("127.0.0.1", first) == ECONNREFUSED, "a disabled service still listens")
            #expect(TCP.connectErrno("127.0.0.1", third) == ECONNREFUSED, "a removed file's service still listens")
            #expect(try TCP.probe("127.0.0.1", second).isComplete)
        }

        /// initgroups(3)'s list for `user`, from /etc/group (what `groups = yes` should give).
        static func groupList(_ user: String) -> [UInt32] {
            guard let entry = getpwnam(user) else { return [] }
            var count: Int32 = 64
            var groups = [gid_t](repeating: 0, count: 64)
            guard getgrouplist(user, entry.pointee.pw_gid, &groups, &count) >= 0 else { return [] }
            return Array(groups.prefix(Int(count)))
        }
    }
}
