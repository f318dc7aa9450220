import Foundation
import Glibc
import Testing

/// Per-service sandboxing (docs/SANDBOX.md), seen from inside the child: the probe reports what it
/// got (/proc/self/status NoNewPrivs, CapEff, CapBnd, CapAmb, Seccomp; a host /tmp marker; writes
/// under /usr; a connect to a port on the host), and Tests/helpers/sandbox_escape.sh, a shell
/// script run as the service, tries to get out and reports what stopped it.
/// Sandboxes need root (namespaces, chroot, capabilities).
enum SandboxSupport {
    static let available = geteuid() == 0 && Integration.NamespaceTests.unshareWorks
}

extension Integration {
    @Suite(.enabled(if: SandboxSupport.available, "skipped: needs root and permission to create namespaces"))
    struct SandboxTests {
        static let escapeScript = Binaries.helpers + "/sandbox_escape.sh"

        /// A scratch directory outside /tmp (so that private_tmp does not hide it from the child),
        /// next to the binaries, removed afterwards.
        final class ScratchDir {
            let path: String

            init() throws {
                // Neither under /tmp (private_tmp hides it; CI may check out under /tmp) nor under
                // /usr or /etc (protect_system): /run.
                var template = Array("/run/swinetd-sandbox-it.XXXXXX".utf8CString)
                guard let made = mkdtemp(&template) else { throw HarnessError("mkdtemp failed") }
                path = String(cString: made)
                chmod(path, 0o755)
            }

            deinit { try? FileManager.default.removeItem(atPath: path) }
        }

        /// A file in the host's /tmp that a child with private_tmp must not see.
        final class HostTmpMarker {
            let path = "/tmp/swinetd-sandbox-marker.\(getpid()).\(UInt32.random(in: 0...UInt32.max))"

            init() throws { try Files.write(path, Array("marker\n".utf8)) }

            deinit { unlink(path) }
        }

        static func lines(_ text: String) -> [String: String] {
            var values: [String: String] = [:]
            for line in text.split(separator: "\n") {
                guard let equals = line.firstIndex(of: "=") else { continue }
                values[String(line[..<equals])] = String(line[line.index(after: equals)...])
            }
            return values
        }

        /// Runs the service on `port` and returns what it wrote.
        static func output(_ port: UInt16) throws -> String {
            String(decoding: try TCP.exchange("127.0.0.1", port).bytes, as: UTF8.self)
        }

        // MARK: - Identity: no_new_privileges, capabilities

        @Test func noNewPrivilegesAndCapabilitiesAsTheChildSeesThem() throws {
            let plain = Ports.free()
            let nnp = Ports.free()
            let bind = Ports.free()
            let rootCaps = Ports.free()
            let none = Ports.free()
            let daemon = try Daemon(
                config: """
                    127.0.0.1:\(plain) stream tcp nowait nobody PROBE probe
                    127.0.0.1:\(nnp) stream tcp,no_new_privileges nowait nobody PROBE probe
                    127.0.0.1:\(bind) stream tcp,capabilities=CAP_NET_BIND_SERVICE nowait nobody PROBE probe
                    127.0.0.1:\(rootCaps) stream tcp,capabilities=CAP_NET_BIND_SERVICE:CAP_SETUID nowait root PROBE probe
                    127.0.0.1:\(none) stream tcp,capabilities=none nowait root PROBE probe

                    """)
            defer { daemon.stop() }

            let base = try TCP.probe("127.0.0.1", plain)
            try #require(base.isComplete, "\(base)\n\(daemon.log)")
            #expect(base["NoNewPrivs"] == "0")
            #expect(base["CapEff"] == "0000000000000000")
            #expect(base["CapBnd"] != "0000000000000400", "without the attribute the bounding set is the daemon's")

            let withNNP = try TCP.probe("127.0.0.1", nnp)
            #expect(withNNP["NoNewPrivs"] == "1", "\(withNNP)")
            #expect(withNNP.uids == [65534, 65534, 65534, 65534])

            // A user with one capability: bounding, permitted, effective, inheritable and ambient.
            let netBind = try TCP.probe("127.0.0.1", bind)
            try #require(netBind.isComplete, "\(netBind)\n\(daemon.log)")
            #expect(netBind.uids == [65534, 65534, 65534, 65534])
            for key in ["CapEff", "CapPrm", "CapInh", "CapBnd", "CapAmb"] {
                #expect(netBind[key] == "0000000000000400", "\(key): \(netBind)")
            }

            // Root keeping only what it needs.
            let root = try TCP.probe("127.0.0.1", rootCaps)
            #expect(root.uids == [0, 0, 0, 0])
            #expect(root["CapEff"] == "0000000000000480", "\(root)")
            #expect(root["CapBnd"] == "0000000000000480", "\(root)")

            let powerless = try TCP.probe("127.0.0.1", none)
            #expect(powerless.uids == [0, 0, 0, 0])
            #expect(powerless["CapEff"] == "0000000000000000", "\(powerless)")
            #expect(powerless["CapBnd"] == "0000000000000000", "\(powerless)")
        }

        /// A real program: python3 binds a port below 1024 as nobody only with the capability.
        @Test func capabilityLetsAnUnprivilegedProgramBindALowPort() throws {
            let low = try #require((600..<1024).reversed().first { Self.isFree(port: UInt16($0)) }.map(UInt16.init))
            let with = Ports.free()
            let without = Ports.free()
            let script = Self.escapeScript
            let daemon = try Daemon(
                config: """
                    127.0.0.1:\(with) stream tcp,capabilities=CAP_NET_BIND_SERVICE,no_new_privileges nowait nobody /bin/sh sh \(script) bind \(low)
                    127.0.0.1:\(without) stream tcp nowait nobody /bin/sh sh \(script) bind \(low)

                    """)
            defer { daemon.stop() }
            #expect(Self.lines(try Self.output(with))["bind"] == "ok", "\(daemon.log)")
            #expect(Self.lines(try Self.output(without))["bind"] == "PermissionError", "\(daemon.log)")
        }

        /// Copies the file a path leads to (following symlinks: /lib64/ld-linux-x86-64.so.2 is one)
        /// as a plain executable file, making the directories on the way.
        static func copyResolved(_ source: String, to target: String) throws {
            try FileManager.default.createDirectory(
                atPath: (target as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            let resolved = (source as NSString).resolvingSymlinksInPath
            guard let bytes = FileManager.default.contents(atPath: resolved) else {
                throw HarnessError("cannot read \(resolved)")
            }
            try Files.write(target, Array(bytes))
            chmod(target, 0o755)
        }

        static func isFree(port: UInt16) -> Bool {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            defer { close(fd) }
            return SocketAddress.bind(fd, "127.0.0.1", port)
        }

        /// A setuid-root copy of id(1) prints uid 0 when run by nobody, unless no_new_privileges (or
        /// the hardened preset, which also empties a non-root service's bounding set) stops it.
        @Test func noNewPrivilegesStopsASetuidProgram() throws {
            let scratch = try ScratchDir()
            let suid = scratch.path + "/id"
            try Files.write(suid, Array(FileManager.default.contents(atPath: "/usr/bin/id") ?? Data()))
            chown(suid, 0, 0)
            chmod(suid, 0o4755)
            let marker = try HostTmpMarker()
            let open = Ports.free()
            let nnp = Ports.free()
            let daemon = try Daemon(
                config: """
                    127.0.0.1:\(open) stream tcp nowait nobody /bin/sh sh \(Self.escapeScript) escape \(marker.path) 1 \(suid)
                    127.0.0.1:\(nnp) stream tcp,no_new_privileges nowait nobody /bin/sh sh \(Self.escapeScript) escape \(marker.path) 1 \(suid)

                    """)
            defer { daemon.stop() }
            #expect(Self.lines(try Self.output(open))["suid"] == "ESCAPED", "the control must gain root: \(daemon.log)")
            #expect(Self.lines(try Self.output(nnp))["suid"] == "blocked", "\(daemon.log)")
        }

        // MARK: - Files: private_tmp, protect_system, read_write_paths, chroot

        @Test func privateTmpAndProtectSystem() throws {
            let marker = try HostTmpMarker()
            let scratch = try ScratchDir()
            let full = Ports.free()
            let yes = Ports.free()
            let strict = Ports.free()
            let plain = Ports.free()
            let checks = "exists=\(marker.path) write=/usr write=/etc write=/tmp write=/var/tmp write=/dev/shm write=\(scratch.path)"
            let daemon = try Daemon(
                config: """
                    127.0.0.1:\(full) stream tcp,private_tmp,protect_system=full nowait root PROBE probe sandbox \(checks)
                    127.0.0.1:\(yes) stream tcp,protect_system=yes nowait root PROBE probe sandbox write=/usr
                    127.0.0.1:\(strict) stream tcp,protect_system=strict,read_write_paths=\(scratch.path) nowait root PROBE probe sandbox \(checks)
                    127.0.0.1:\(plain) stream tcp nowait nobody PROBE probe sandbox exists=\(marker.path)

                    """)
            defer { daemon.stop() }

            let control = try TCP.probe("127.0.0.1", plain)
            #expect(control["exists:\(marker.path)"] == "yes", "the marker must be visible without private_tmp: \(control)")

            let fullReport = try TCP.probe("127.0.0.1", full)
            try #require(fullReport.isComplete, "\(fullReport)\n\(daemon.log)")
            #expect(fullReport["exists:\(marker.path)"] == "no", "host /tmp leaked: \(fullReport)")
            #expect(fullReport["write:/tmp"] == "ok", "private /tmp must be writable")
            #expect(fullReport["write:/var/tmp"] == "ok")
            #expect(fullReport["write:/usr"] == "EROFS")
            #expect(fullReport["write:/etc"] == "EROFS")
            #expect(fullReport["write:\(scratch.path)"] == "ok", "full leaves the rest writable")

            let yesReport = try TCP.probe("127.0.0.1", yes)
            #expect(yesReport["write:/usr"] == "EROFS", "\(yesReport)")

            let strictReport = try TCP.probe("127.0.0.1", strict)
            try #require(strictReport.isComplete, "\(strictReport)\n\(daemon.log)")
            #expect(strictReport["exists:\(marker.path)"] == "yes", "strict alone does not hide /tmp")
            #expect(strictReport["write:/tmp"] == "EROFS")
            #expect(strictReport["write:/var/tmp"] == "EROFS")
            #expect(strictReport["write:/usr"] == "EROFS")
            #expect(strictReport["write:\(scratch.path)"] == "ok", "read_write_paths: \(strictReport)")
            #expect(strictReport["write:/dev/shm"] == "ok", "/dev stays writable under strict")

            // Nothing the children did reached the host.
            #expect(!FileManager.default.fileExists(atPath: "/usr/.swinetd-probe-\(fullReport.pid ?? 0)"))
        }

        @Test func chrootAndWorkingDirectory() throws {
            let scratch = try ScratchDir()
            let jail = scratch.path
            // The probe and the libraries it needs, inside the jail.
            let libraries = try Processes.run(["/usr/bin/ldd", Binaries.probe]).stdout
                .split(separator: "\n").compactMap { line -> String? in
                    line.split(whereSeparator: { $0 == " " || $0 == "\t" }).first { $0.hasPrefix("/") }.map(String.init)
                }
            for file in libraries + [Binaries.probe] { try Self.copyResolved(file, to: jail + file) }
            try FileManager.default.createDirectory(atPath: jail + "/srv/data", withIntermediateDirectories: true)
            let port = Ports.free()
            let daemon = try Daemon(
                config: "127.0.0.1:\(port) stream tcp,chroot=\(jail),working_directory=/srv/data nowait root "
                    + "PROBE probe sandbox exists=/etc/passwd exists=\(Binaries.probe)\n")
            defer { daemon.stop() }
            let report = try TCP.probe("127.0.0.1", port)
            try #require(report.isComplete, "\(report)\n\(daemon.log)")
            #expect(report["cwd"] == "/srv/data")
            #expect(report["exists:/etc/passwd"] == "no", "outside the chroot")
            #expect(report["exists:\(Binaries.probe)"] == "yes", "the program is found inside the chroot")
        }

        // MARK: - Network

        @Test func privateNetworkHasOnlyLoopback() throws {
            let echo = Ports.free()
            let isolated = Ports.free()
            let open = Ports.free()
            let daemon = try Daemon(
                config: """
                    127.0.0.1:\(echo) stream tcp nowait root internal echo
                    127.0.0.1:\(isolated) stream tcp,private_network nowait nobody PROBE probe sandbox connect=127.0.0.1:\(echo)
                    127.0.0.1:\(open) stream tcp nowait nobody PROBE probe sandbox connect=127.0.0.1:\(echo)

                    """)
            defer { daemon.stop() }
            let control = try TCP.probe("127.0.0.1", open)
            #expect(control["connect:127.0.0.1:\(echo)"] == "ok", "\(control)")
            // The child still talks to its client through the socket it was handed.
            let report = try TCP.probe("127.0.0.1", isolated)
            try #require(report.isComplete, "\(report)\n\(daemon.log)")
            #expect(report["netdevs"] == "lo,", "\(report)")
            #expect(report["connect:127.0.0.1:\(echo)"] == "ECONNREFUSED", "loopback is up but empty: \(report)")
        }

        // MARK: - seccomp

        @Test func systemCallFilterAsTheChildSeesIt() throws {
            let deny = Ports.free()
            let allow = Ports.free()
            let native = Ports.free()
            let daemon = try Daemon(
                config: """
                    127.0.0.1:\(deny) stream tcp,system_call_filter=~@mount:~@swap nowait root PROBE probe sandbox syscall=mount syscall=swapon syscall=chroot syscall=openat
                    127.0.0.1:\(allow) stream tcp,system_call_filter=@system-service nowait nobody PROBE probe sandbox syscall=mount syscall=openat syscall=mkdir
                    127.0.0.1:\(native) stream tcp,system_call_architectures=native nowait root PROBE probe sandbox syscall=mount

                    """)
            defer { daemon.stop() }

            let denied = try TCP.probe("127.0.0.1", deny)
            try #require(denied.isComplete, "\(denied)\n\(daemon.log)")
            #expect(denied["Seccomp"] == "2", "filter mode: \(denied)")
            #expect(denied["syscall:mount"] == "EPERM")
            #expect(denied["syscall:swapon"] == "EPERM")
            #expect(denied["syscall:chroot"] == "EPERM", "chroot is in @mount")
            #expect(denied["syscall:openat"] == "ENOENT", "allowed calls run")
            #expect(denied["NoNewPrivs"] == "0", "root with CAP_SYS_ADMIN loads a filter without it")

            let allowed = try TCP.probe("127.0.0.1", allow)
            try #require(allowed.isComplete, "\(allowed)\n\(daemon.log)")
            #expect(allowed["Seccomp"] == "2")
            #expect(allowed["syscall:mount"] == "EPERM")
            #expect(allowed["syscall:openat"] == "ENOENT")
            #expect(allowed["syscall:mkdir"] == "ENOENT")
            #expect(allowed["NoNewPrivs"] == "1", "implied for a user without CAP_SYS_ADMIN")

            let nativeOnly = try TCP.probe("127.0.0.1", native)
            #expect(nativeOnly["Seccomp"] == "2", "\(nativeOnly)")
            #expect(nativeOnly["syscall:mount"] == "ENOENT", "architecture check only")
        }

        // MARK: - The preset, and a real program trying to escape

        @Test func aHardenedShellCannotEscape() throws {
            let marker = try HostTmpMarker()
            let scratch = try ScratchDir()
            let suid = scratch.path + "/id"
            try Files.write(suid, Array(FileManager.default.contents(atPath: "/usr/bin/id") ?? Data()))
            chown(suid, 0, 0)
            chmod(suid, 0o4755)
            let target = Ports.free()
            let rootPort = Ports.free()
            let userPort = Ports.free()
            let controlPort = Ports.free()
            let script = Self.escapeScript
            let daemon = try Daemon(
                config: """
                    127.0.0.1:\(target) stream tcp nowait root internal discard
                    127.0.0.1:\(rootPort) stream tcp,hardened,private_network nowait root /bin/sh sh \(script) escape \(marker.path) \(target)
                    127.0.0.1:\(userPort) stream tcp,hardened,private_network nowait nobody /bin/sh sh \(script) escape \(marker.path) \(target) \(suid)
                    127.0.0.1:\(controlPort) stream tcp nowait nobody /bin/sh sh \(script) escape \(marker.path) \(target) \(suid)

                    """)
            defer { daemon.stop() }

            let control = Self.lines(try Self.output(controlPort))
            #expect(control["tmp"] == "ESCAPED" && control["net"] == "ESCAPED" && control["suid"] == "ESCAPED",
                    "the script must detect escapes: \(control)\n\(daemon.log)")

            let asRoot = try Self.output(rootPort)
            #expect(asRoot.hasSuffix("end\n"), "\(asRoot)\n\(daemon.log)")
            for attempt in ["usr", "tmp", "net", "mount"] {
                #expect(Self.lines(asRoot)[attempt] == "blocked", "root escaped via \(attempt):\n\(asRoot)")
            }
            let asUser = try Self.output(userPort)
            #expect(asUser.hasSuffix("end\n"), "\(asUser)\n\(daemon.log)")
            for attempt in ["usr", "tmp", "net", "mount", "suid"] {
                #expect(Self.lines(asUser)[attempt] == "blocked", "nobody escaped via \(attempt):\n\(asUser)")
            }
        }

        @Test func hardenedFromAnXinetdDefaultsSection() throws {
            let marker = try HostTmpMarker()
            let port = Ports.free()
            let config =
                Xinetd.defaults(["hardened = yes", "log_on_success = PID HOST EXIT"])
                + Xinetd.probe(
                    "sandboxed", port: port, mode: "sandbox exists=\(marker.path) write=/usr syscall=mount", user: "nobody",
                    ["flags = NOLIBWRAP"])
            let daemon = try Daemon(config: config)
            defer { daemon.stop() }
            let report = try TCP.probe("127.0.0.1", port)
            try #require(report.isComplete, "\(report)\n\(daemon.log)")
            #expect(report["NoNewPrivs"] == "1")
            #expect(report["CapBnd"] == "0000000000000000", "non-root: empty bounding set")
            #expect(report["Seccomp"] == "2")
            #expect(report["exists:\(marker.path)"] == "no")
            #expect(report["write:/usr"] == "EROFS")
            #expect(report["syscall:mount"] == "EPERM")
        }

        // MARK: - cgroups

        /// memory_max and tasks_max: where the host has a writable cgroup v2 tree with the memory and
        /// pids controllers the child lands in swinetd/<id> with the limits; elsewhere (this test's
        /// usual machine: a hybrid cgroup host) the service is refused with the reason, never started
        /// without its limits.
        @Test func cgroupLimitsOrAClearRefusal() throws {
            let port = Ports.free()
            let config = "127.0.0.1:\(port) stream tcp,memory_max=64M,tasks_max=16 nowait nobody PROBE probe\n"
            let dir = try TempDir()
            let file = try dir.write("inetd.conf", Daemon.expand(config))
            let check = try Processes.run([Binaries.swinetd, "check", "-f", file])
            if check.status == .exited(0) {
                let daemon = try Daemon(config: config)
                defer { daemon.stop() }
                let report = try TCP.probe("127.0.0.1", port)
                try #require(report.isComplete, "\(report)\n\(daemon.log)")
                #expect(report["cgroup"] == "/swinetd/\(port)", "\(report)")
                let unified = FileManager.default.fileExists(atPath: "/sys/fs/cgroup/cgroup.controllers")
                let mount = unified ? "/sys/fs/cgroup" : "/sys/fs/cgroup/unified"
                #expect(Files.read(mount + "/swinetd/\(port)/memory.max").hasPrefix("67108864"))
                #expect(Files.read(mount + "/swinetd/\(port)/pids.max").hasPrefix("16"))
            } else {
                #expect(check.status == .exited(1), "\(check)")
                #expect(check.stderr.contains("\(file):1: error: memory_max needs"), "\(check)")
                #expect(check.stderr.contains("the service is not started"), "\(check)")
                let daemon = try Daemon(config: config)
                defer { daemon.stop() }
                #expect(TCP.connectErrno("127.0.0.1", port) == ECONNREFUSED, "refused, not run unlimited")
            }
        }

        // MARK: - Refusals

        /// Bad values are `swinetd check` errors with file:line; the daemon starts the rest.
        @Test func badValuesAreCheckErrorsAndTheServiceDoesNotStart() throws {
            let good = Ports.free()
            let ports = (0..<3).map { _ in Ports.free() }
            let config = """
                # sandbox errors
                127.0.0.1:\(good) stream tcp,hardened nowait nobody PROBE probe
                127.0.0.1:\(ports[0]) stream tcp,capabilities=CAP_NET_BIND_SERVICE:CAP_TELEPORT nowait nobody PROBE probe
                127.0.0.1:\(ports[1]) stream tcp,system_call_filter=@system-service:~frobnicate nowait nobody PROBE probe
                127.0.0.1:\(ports[2]) stream tcp,chroot=/nonexistent/swinetd-jail nowait nobody PROBE probe

                """
            let dir = try TempDir()
            let file = try dir.write("inetd.conf", Daemon.expand(config))
            let check = try Processes.run([Binaries.swinetd, "check", "-f", file])
            #expect(check.status == .exited(1), "\(check)")
            #expect(check.stderr.contains("\(file):3: error: sandbox option capabilities: unknown capability CAP_TELEPORT"), "\(check)")
            #expect(check.stderr.contains("\(file):4: error: sandbox option system_call_filter: unknown system call frobnicate"), "\(check)")
            #expect(check.stderr.contains("\(file):5: error: chroot /nonexistent/swinetd-jail does not exist"), "\(check)")
            #expect(check.stdout.contains("1 services, 3 errors"), "\(check)")

            let daemon = try Daemon(config: config)
            defer { daemon.stop() }
            #expect(try TCP.probe("127.0.0.1", good).isComplete)
            for port in ports { #expect(TCP.connectErrno("127.0.0.1", port) == ECONNREFUSED, "port \(port)") }
        }

        /// A sandbox that cannot be set up at spawn time (its chroot vanished after the load) fails
        /// that spawn, logged with the step; the program never runs outside it.
        @Test func aSandboxThatFailsAtSpawnTimeStartsNothing() throws {
            let scratch = try ScratchDir()
            let jail = scratch.path + "/jail"
            try FileManager.default.createDirectory(atPath: jail + "/tmp", withIntermediateDirectories: true)
            // With chroot, the program is looked up inside the jail (it never runs here).
            try Self.copyResolved("/bin/sh", to: jail + "/bin/sh")
            let port = Ports.free()
            let daemon = try Daemon(
                config: "127.0.0.1:\(port) stream tcp,private_tmp,chroot=\(jail) nowait root /bin/sh sh -c true\n",
                arguments: [], readyTimeout: 10)
            defer { daemon.stop() }
            try FileManager.default.removeItem(atPath: jail)
            let result = try TCP.exchange("127.0.0.1", port)
            #expect(result.bytes.isEmpty)
            #expect(daemon.waitForLog("tmpfs mount \(jail)/tmp"), "\(daemon.log)")
            #expect(daemon.log.contains("FAIL: \(port) fork (tmpfs mount \(jail)/tmp: No such file or directory)"), "\(daemon.log)")
            #expect(!daemon.log.contains("START: \(port)"), "\(daemon.log)")
        }
    }
}
