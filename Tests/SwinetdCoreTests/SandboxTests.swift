import CSwinetd
import Glibc
import Testing

@testable import SwinetdCore

/// Sandbox attributes: parsing in both formats, the `hardened` preset, errors with file:line, the
/// seccomp BPF program (run through a BPF interpreter), the syscall sets, the mount plan and the
/// cgroup checks. The child side is covered by Tests/SwinetdIntegrationTests/SandboxTests.swift.
@Suite struct SandboxParsingTests {
    /// A fixture whose cgroup root is a fake directory offering `controllers`.
    static func fixture(cgroupControllers: String? = "memory pids") throws -> Fixture {
        var fixture = try Fixture.xinetd()
        let root = try fixture.directory.makeDirectory("cgroup")
        if let cgroupControllers {
            try fixture.directory.write("cgroup/cgroup.controllers", cgroupControllers + "\n")
            try fixture.directory.write("cgroup/cgroup.subtree_control", "")
        }
        fixture.options.cgroupRoot = root
        return fixture
    }

    @Test func inetdProtocolOptionsFillTheSandbox() throws {
        let fixture = try Self.fixture()
        let loaded = fixture.load(
            "127.0.0.1:4000 stream tcp,chroot=/,working_directory=/tmp,no_new_privileges,"
                + "capabilities=CAP_NET_BIND_SERVICE:cap_setuid,private_tmp,protect_system=full,"
                + "read_write_paths=/var/tmp:-/nonexistent-swinetd,private_network,"
                + "system_call_filter=@system-service:~@mount:~reboot,memory_max=64M,tasks_max=16 "
                + "nowait nobody /bin/cat cat\n")
        #expect(loaded.errors.isEmpty, "\(loaded.messages)")
        let sandbox = try #require(loaded.services.first?.sandbox)
        #expect(sandbox.chroot == "/")
        #expect(sandbox.workingDirectory == "/tmp")
        #expect(sandbox.noNewPrivileges)
        #expect(sandbox.capabilities == Sandbox.CapabilitySet(bits: 1 << 10 | 1 << 7))
        #expect(sandbox.privateTmp)
        #expect(sandbox.protectSystem == .full)
        #expect(sandbox.readWritePaths == ["/var/tmp", "-/nonexistent-swinetd"])
        #expect(sandbox.privateNetwork)
        #expect(sandbox.systemCallFilter == Sandbox.SystemCallFilter(allowed: ["@system-service"], denied: ["@mount", "reboot"]))
        #expect(sandbox.nativeArchitectureOnly, "a filter implies native")
        #expect(sandbox.memoryMax == 64 << 20)
        #expect(sandbox.tasksMax == 16)
        #expect(!sandbox.hardened)
    }

    @Test func xinetdAttributesFillTheSandbox() throws {
        let fixture = try Self.fixture()
        let loaded = fixture.load(
            """
            service sandboxed
            {
                type               = UNLISTED
                port               = 4000
                socket_type        = stream
                wait               = no
                user               = nobody
                server             = /bin/cat
                no_new_privileges  = yes
                capabilities       = CAP_NET_BIND_SERVICE
                private_tmp        = yes
                protect_system     = strict
                read_write_paths   = /var/tmp /tmp
                private_network    = yes
                system_call_filter = ~@mount ~@swap
                system_call_architectures = native
                memory_max         = 1G
                tasks_max          = infinity
            }
            """)
        #expect(loaded.errors.isEmpty, "\(loaded.messages)")
        let sandbox = try #require(loaded.service(id: "sandboxed")?.sandbox)
        #expect(sandbox.noNewPrivileges)
        #expect(sandbox.capabilities?.description == "CAP_NET_BIND_SERVICE")
        #expect(sandbox.protectSystem == .strict)
        #expect(sandbox.readWritePaths == ["/var/tmp", "/tmp"])
        #expect(sandbox.systemCallFilter == Sandbox.SystemCallFilter(allowed: nil, denied: ["@mount", "@swap"]))
        #expect(sandbox.nativeArchitectureOnly)
        #expect(sandbox.memoryMax == 1 << 30)
        #expect(sandbox.tasksMax == UInt64.max)
    }

    @Test func hardenedPresetForANonRootUser() throws {
        let fixture = try Self.fixture()
        let loaded = fixture.load("127.0.0.1:4000 stream tcp,hardened nowait nobody /bin/cat cat\n")
        #expect(loaded.errors.isEmpty, "\(loaded.messages)")
        let sandbox = try #require(loaded.services.first?.sandbox)
        #expect(sandbox == Sandbox.hardenedPreset(runsAsRoot: false))
        #expect(sandbox.hardened && sandbox.noNewPrivileges && sandbox.privateTmp)
        #expect(sandbox.protectSystem == .full)
        #expect(sandbox.nativeArchitectureOnly)
        #expect(sandbox.capabilities == Sandbox.CapabilitySet.none, "non-root: empty bounding set")
        #expect(
            sandbox.systemCallFilter?.denied
                == ["@mount", "@reboot", "@swap", "@module", "@raw-io", "@clock", "@debug", "@obsolete", "@cpu-emulation"])
        #expect(sandbox.systemCallFilter?.allowed == nil)
        #expect(!sandbox.privateNetwork && sandbox.memoryMax == nil && sandbox.chroot == nil)
    }

    @Test func hardenedPresetForRootKeepsCapabilities() throws {
        let fixture = try Self.fixture()
        let loaded = fixture.load("127.0.0.1:4000 stream tcp,hardened nowait root /bin/cat cat\n")
        let sandbox = try #require(loaded.services.first?.sandbox)
        #expect(sandbox.capabilities == nil)
        #expect(sandbox.noNewPrivileges)
    }

    /// Written attributes replace the preset's value, in any order.
    @Test func attributesWrittenNextToHardenedReplaceItsValues() throws {
        let fixture = try Self.fixture()
        let loaded = fixture.load(
            """
            service web
            {
                type           = UNLISTED
                port           = 4000
                socket_type    = stream
                wait           = no
                user           = nobody
                server         = /bin/cat
                protect_system = strict
                hardened       = yes
                private_tmp    = no
                capabilities   = CAP_NET_BIND_SERVICE
            }
            """)
        #expect(loaded.errors.isEmpty, "\(loaded.messages)")
        let sandbox = try #require(loaded.service(id: "web")?.sandbox)
        #expect(sandbox.hardened)
        #expect(sandbox.protectSystem == .strict)
        #expect(!sandbox.privateTmp)
        #expect(sandbox.capabilities?.description == "CAP_NET_BIND_SERVICE")
        #expect(sandbox.noNewPrivileges, "untouched preset values stay")
    }

    @Test func hardenedInTheDefaultsReachesEveryService() throws {
        let fixture = try Self.fixture()
        let loaded = fixture.load(
            """
            defaults
            {
                hardened = yes
            }
            service web
            {
                type        = UNLISTED
                port        = 4000
                socket_type = stream
                wait        = no
                user        = nobody
                server      = /bin/cat
            }
            service echo
            {
                type        = INTERNAL
                socket_type = stream
                wait        = no
            }
            """)
        #expect(loaded.errors.isEmpty, "\(loaded.messages)")
        #expect(loaded.warnings.isEmpty, "an inherited preset on a builtin is not worth a warning: \(loaded.messages)")
        #expect(loaded.service(id: "web")?.sandbox.hardened == true)
        #expect(loaded.service(id: "echo")?.sandbox.isEmpty == true)
    }

    @Test func sandboxAttributesOnABuiltinAreIgnoredWithAWarning() throws {
        let fixture = try Self.fixture()
        let loaded = fixture.load("127.0.0.1:4000 stream tcp,private_tmp nowait root internal echo\n")
        #expect(loaded.errors.isEmpty)
        #expect(loaded.warnings.contains { $0.hasPrefix("test.conf:1: warning:") && $0.contains("inside swinetd") }, "\(loaded.messages)")
    }

    /// Every bad value names the file and line, and the service is refused, never run without it.
    @Test(arguments: [
        ("capabilities=CAP_FLY", "unknown capability CAP_FLY"),
        ("system_call_filter=@nonsense", "unknown system call set @nonsense"),
        ("system_call_filter=fly", "unknown system call fly"),
        ("system_call_filter=~@mount:read", "read follows a ~ name"),
        ("system_call_filter=~execve", "cannot deny execve"),
        ("chroot=/nonexistent-swinetd-root", "chroot /nonexistent-swinetd-root does not exist"),
        ("chroot=relative", "must be an absolute path"),
        ("working_directory=/nonexistent-swinetd-dir", "working_directory /nonexistent-swinetd-dir does not exist"),
        ("read_write_paths=/nonexistent-swinetd-rw,protect_system=yes", "/nonexistent-swinetd-rw does not exist"),
        ("protect_system=partly", "protect_system must be no, yes, full or strict"),
        ("memory_max=lots", "memory_max must be a size"),
        ("tasks_max=0", "tasks_max must be a number of at least 1"),
        ("system_call_architectures=x86", "supports only native"),
        ("private_tmp=maybe", "private_tmp must be yes or no"),
        ("capabilities", "needs a value"),
        ("read_write_paths=/a::/b", "empty item"),
    ])
    func badValuesAreErrorsWithFileAndLine(option: String, message: String) throws {
        let fixture = try Self.fixture()
        let loaded = fixture.load(
            "# comment\n127.0.0.1:4000 stream tcp,\(option) nowait nobody /bin/cat cat\n"
                + "127.0.0.1:4001 stream tcp nowait nobody /bin/cat cat\n")
        #expect(loaded.errors.count == 1, "\(loaded.messages)")
        #expect(loaded.errors.first?.hasPrefix("test.conf:2: error:") == true, "\(loaded.messages)")
        #expect(loaded.errors.first?.contains(message) == true, "\(loaded.messages)")
        #expect(loaded.services.map(\.name) == ["4001"], "the bad entry must not load")
    }

    @Test func xinetdBadValuesPointAtTheAttributeLine() throws {
        let fixture = try Self.fixture()
        let loaded = fixture.load(
            """
            service web
            {
                type               = UNLISTED
                port               = 4000
                socket_type        = stream
                wait               = no
                user               = nobody
                server             = /bin/cat
                system_call_filter = @system-service @nonsense
                chroot             = /nonexistent-swinetd-root
            }
            """)
        #expect(loaded.errors.contains { $0.hasPrefix("test.conf:9: error: unknown system call set @nonsense") }, "\(loaded.messages)")
        #expect(loaded.services.isEmpty)
        let second = fixture.load(
            """
            service web
            {
                type        = UNLISTED
                port        = 4000
                socket_type = stream
                wait        = no
                user        = nobody
                server      = /bin/cat
                chroot      = /nonexistent-swinetd-root
            }
            """)
        #expect(second.errors == ["test.conf:9: error: chroot /nonexistent-swinetd-root does not exist"], "\(second.messages)")
        #expect(second.services.isEmpty)
    }

    /// memory_max and tasks_max need a cgroup v2 tree with the controller; without one the service
    /// is refused with the reason.
    @Test func cgroupLimitsWithoutAControllerAreRefused() throws {
        let fixture = try Self.fixture(cgroupControllers: "cpu io")
        let loaded = fixture.load(
            "127.0.0.1:4000 stream tcp,memory_max=64M nowait nobody /bin/cat cat\n"
                + "127.0.0.1:4001 stream tcp,tasks_max=8 nowait nobody /bin/cat cat\n")
        #expect(loaded.errors.count == 2, "\(loaded.messages)")
        #expect(loaded.errors[0].contains("test.conf:1: error: memory_max needs the cgroup v2 memory controller"), "\(loaded.messages)")
        #expect(loaded.errors[1].contains("test.conf:2: error: tasks_max needs the cgroup v2 pids controller"), "\(loaded.messages)")
        #expect(loaded.errors.allSatisfy { $0.contains("the service is not started") })
        #expect(loaded.services.isEmpty)
    }

    @Test func cgroupLimitsWithoutACgroupTreeAreRefused() throws {
        let fixture = try Self.fixture(cgroupControllers: nil)
        let loaded = fixture.load("127.0.0.1:4000 stream tcp,memory_max=64M nowait nobody /bin/cat cat\n")
        #expect(loaded.errors.first?.contains("memory_max needs a cgroup v2 tree") == true, "\(loaded.messages)")
        #expect(loaded.services.isEmpty)
    }

    @Test func sandboxNeedsARootDaemon() throws {
        var fixture = try Self.fixture()
        fixture.options.daemonUID = 1000
        fixture.options.daemonGID = 1000
        let loaded = fixture.load(
            "127.0.0.1:4000 stream tcp,private_network nowait nobody /bin/cat cat\n"
                + "127.0.0.1:4001 stream tcp,no_new_privileges,system_call_filter=~@mount nowait nobody /bin/cat cat\n")
        #expect(loaded.errors.count == 1, "\(loaded.messages)")
        #expect(loaded.errors.first?.contains("test.conf:1: error: private_network needs swinetd to run as root") == true)
        #expect(loaded.services.map(\.name) == ["4001"], "no_new_privileges and seccomp work unprivileged")
    }

    @Test func readWritePathsWithoutProtectSystemWarns() throws {
        let fixture = try Self.fixture()
        let loaded = fixture.load("127.0.0.1:4000 stream tcp,read_write_paths=/tmp nowait nobody /bin/cat cat\n")
        #expect(loaded.errors.isEmpty)
        #expect(loaded.warnings.contains { $0.contains("read_write_paths has no effect without protect_system") })
    }

    @Test func capabilityNames() {
        #expect(Capabilities.number(named: "CAP_NET_BIND_SERVICE") == 10)
        #expect(Capabilities.number(named: "net_raw") == 13)
        #expect(Capabilities.number(named: "CAP_SETFCAP") == 31)
        #expect(Capabilities.number(named: "CAP_CHECKPOINT_RESTORE") == 40)
        #expect(Capabilities.number(named: "CAP_FLY") == nil)
        #expect(Capabilities.name(of: 21) == "CAP_SYS_ADMIN")
    }

    @Test func convertCarriesTheSandboxBothWays() throws {
        let fixture = try Self.fixture()
        var options = fixture.options
        options.checkPrograms = true
        let input = try fixture.directory.write(
            "input",
            "127.0.0.1:4000 stream tcp,hardened,private_tmp=no,protect_system=strict,read_write_paths=/tmp,"
                + "system_call_filter=@system-service:~@privileged nowait nobody /bin/cat cat\n"
                + "127.0.0.1:4001 stream tcp,no_new_privileges,capabilities=none,private_network nowait root /bin/cat cat\n")
        let original = ConfigLoader.load(paths: [input], options: options)
        #expect(original.errors.isEmpty, "\(original.messages)")
        for format in [ConfigFormat.xinetd, .inetd] {
            let output = ConfigConverter.render(
                original.services, as: format, servicesDatabase: ServicesDatabase.load(path: options.servicesFile))
            #expect(output.notes.isEmpty, "\(output.notes)")
            let converted = try fixture.directory.write("converted-\(format)", output.text)
            let reloaded = ConfigLoader.load(paths: [converted], options: options)
            #expect(reloaded.errors.isEmpty, "\(format): \(reloaded.messages)\n\(output.text)")
            #expect(reloaded.services.map(\.sandbox) == original.services.map(\.sandbox), "\(format):\n\(output.text)")
        }
    }
}

@Suite struct SandboxSeccompFilterTests {
    typealias Architecture = SyscallNumbers.Architecture

    static func number(_ name: String, _ architecture: Architecture) throws -> Int32 {
        try #require(SyscallNumbers.number(name, on: architecture), "\(name) on \(architecture)")
    }

    static func filter(_ words: [String], _ architecture: Architecture) throws -> SeccompFilter {
        let parsed = try SandboxValues.systemCallFilter(words)
        return SeccompFilter(mode: SeccompFilter.mode(for: parsed, on: architecture), architecture: architecture)
    }

    @Test(arguments: Architecture.allCases)
    func denyListDeniesItsCallsAndAllowsTheRest(architecture: Architecture) throws {
        let filter = try Self.filter(["~@mount", "~@reboot", "~ptrace"], architecture)
        let arch = architecture.auditArch
        for name in ["mount", "umount2", "pivot_root", "chroot", "reboot", "kexec_load", "ptrace"] {
            #expect(filter.evaluate(arch: arch, nr: try Self.number(name, architecture)) == SeccompFilter.errno(1), "\(name)")
        }
        for name in ["read", "write", "openat", "execve", "clone", "socket", "exit_group"] {
            #expect(filter.evaluate(arch: arch, nr: try Self.number(name, architecture)) == SeccompFilter.allow, "\(name)")
        }
        #expect(filter.evaluate(arch: arch, nr: 5000) == SeccompFilter.allow)
        #expect(filter.evaluate(arch: arch, nr: -1) == SeccompFilter.allow, "syscall(-1) is not x32")
    }

    @Test(arguments: Architecture.allCases)
    func allowListAllowsOnlyItsCallsAndTheDefaults(architecture: Architecture) throws {
        let filter = try Self.filter(["@basic-io", "@network-io"], architecture)
        let arch = architecture.auditArch
        for name in ["read", "write", "close", "socket", "connect", "execve", "exit_group", "rt_sigreturn"] {
            #expect(filter.evaluate(arch: arch, nr: try Self.number(name, architecture)) == SeccompFilter.allow, "\(name)")
        }
        for name in ["openat", "mount", "clone", "kill", "mmap"] {
            #expect(filter.evaluate(arch: arch, nr: try Self.number(name, architecture)) == SeccompFilter.errno(1), "\(name)")
        }
        // Newer than this build: ENOSYS, so libc falls back to the call it replaces.
        let newer = SyscallNumbers.highest(on: architecture) + 1
        #expect(filter.evaluate(arch: arch, nr: newer) == SeccompFilter.errno(38))
    }

    @Test func denyWinsOverAllowAndExecveStaysAllowed() throws {
        let filter = try Self.filter(["@system-service", "~@process", "~@setuid"], .x86_64)
        let arch = Architecture.x86_64.auditArch
        #expect(filter.evaluate(arch: arch, nr: 56) == SeccompFilter.errno(1), "clone denied")
        #expect(filter.evaluate(arch: arch, nr: 105) == SeccompFilter.errno(1), "setuid denied")
        #expect(filter.evaluate(arch: arch, nr: 59) == SeccompFilter.allow, "execve always allowed")
        #expect(filter.evaluate(arch: arch, nr: 0) == SeccompFilter.allow, "read")
        let denyOnly = try Self.filter(["~@process"], .x86_64)
        #expect(denyOnly.evaluate(arch: arch, nr: 59) == SeccompFilter.allow)
        #expect(denyOnly.evaluate(arch: arch, nr: 60) == SeccompFilter.allow, "exit")
    }

    @Test func otherAbisAreKilled() throws {
        let x86 = try Self.filter(["~@mount"], .x86_64)
        #expect(x86.evaluate(arch: 0x4000_0003, nr: 21) == SeccompFilter.killProcess, "i386 mount is 21")
        #expect(x86.evaluate(arch: Architecture.x86_64.auditArch, nr: 0x4000_0000 | 165) == SeccompFilter.killProcess, "x32 mount")
        #expect(x86.evaluate(arch: Architecture.aarch64.auditArch, nr: 40) == SeccompFilter.killProcess)
        let arm = try Self.filter(["~@mount"], .aarch64)
        #expect(arm.evaluate(arch: 0x4000_0028, nr: 21) == SeccompFilter.killProcess, "arm32")
        #expect(arm.evaluate(arch: Architecture.aarch64.auditArch, nr: 0x4000_0000) == SeccompFilter.allow, "no x32 on aarch64")
        let nativeOnly = SeccompFilter(mode: .architectureOnly, architecture: .x86_64)
        #expect(nativeOnly.evaluate(arch: Architecture.x86_64.auditArch, nr: 165) == SeccompFilter.allow)
        #expect(nativeOnly.evaluate(arch: 0x4000_0003, nr: 1) == SeccompFilter.killProcess)
    }

    /// Every number in the table, against set membership: the run compression and the blocks (jt/jf
    /// offsets are 8 bits) must not change a single answer, for a long allow list and a deny list.
    @Test(arguments: Architecture.allCases)
    func everyNumberGetsTheRightAnswer(architecture: Architecture) throws {
        let arch = architecture.auditArch
        for words in [["@system-service", "~@privileged"], ["~@system-service"], ["@basic-io"]] {
            let parsed = try SandboxValues.systemCallFilter(words)
            let mode = SeccompFilter.mode(for: parsed, on: architecture)
            let filter = SeccompFilter(mode: mode, architecture: architecture)
            #expect(filter.instructions.count < 4096, "BPF_MAXINSNS")
            for instruction in filter.instructions where instruction.code != SeccompFilter.jumpAlways {
                #expect(instruction.jt != 0xFF && instruction.jf != 0xFF, "an unresolved jump")
            }
            let highest = SyscallNumbers.highest(on: architecture)
            for nr in Int32(0)...(highest + 3) {
                let expected: UInt32
                switch mode {
                case .allowOnly(let allowed):
                    expected = allowed.contains(nr) ? SeccompFilter.allow : nr > highest ? SeccompFilter.errno(38) : SeccompFilter.errno(1)
                case .deny(let denied):
                    expected = denied.contains(nr) ? SeccompFilter.errno(1) : SeccompFilter.allow
                case .architectureOnly:
                    expected = SeccompFilter.allow
                }
                #expect(filter.evaluate(arch: arch, nr: nr) == expected, "\(words) nr \(nr)")
            }
        }
    }

    @Test func setsExpandToKnownCallsOnly() throws {
        for (name, members) in SyscallSets.sets {
            #expect(name.hasPrefix("@"))
            for member in members {
                if member.hasPrefix("@") {
                    #expect(SyscallSets.sets[member] != nil, "\(name): \(member)")
                } else {
                    #expect(SyscallNumbers.isKnown(member), "\(name): \(member) is in neither table")
                }
            }
        }
        let systemService = try #require(SyscallSets.expand("@system-service"))
        #expect(systemService.isSuperset(of: ["read", "openat", "socket", "execve", "clone", "mmap"]))
        #expect(!systemService.contains("mount") && !systemService.contains("reboot") && !systemService.contains("ptrace"))
        for set in Sandbox.hardenedDenyList { #expect(SyscallSets.sets[set] != nil, "\(set)") }
        // The table agrees with the kernel headers on a few well-known numbers.
        #expect(SyscallNumbers.number("read", on: .x86_64) == 0)
        #expect(SyscallNumbers.number("execve", on: .x86_64) == 59)
        #expect(SyscallNumbers.number("execve", on: .aarch64) == 221)
        #expect(SyscallNumbers.number("open", on: .aarch64) == nil)
        #expect(SyscallNumbers.number("openat", on: .aarch64) == 56)
    }

    /// The plan hands the shim the program and no_new_privs (the kernel loading it, and what the
    /// child then sees, is covered by the integration tests).
    @Test func thePlanCarriesTheProgram() throws {
        let parsed = try SandboxValues.systemCallFilter(["@system-service", "~@mount"])
        let plan = SandboxPlan(
            sandbox: {
                var sandbox = Sandbox()
                sandbox.systemCallFilter = parsed
                sandbox.nativeArchitectureOnly = true
                sandbox.noNewPrivileges = true
                return sandbox
            }(), credentials: nobodyCredentials, serviceID: "test", cgroupRoot: nil)
        #expect(plan.pointer.pointee.filter_length > 10)
        #expect(plan.pointer.pointee.no_new_privileges == 1)
        #expect(plan.mountSteps.isEmpty)
    }
}

@Suite struct SandboxPlanTests {
    typealias Step = SandboxPlan.MountStep

    @Test func protectSystemFullWithExceptionsAndPrivateTmp() {
        var sandbox = Sandbox()
        sandbox.protectSystem = .full
        sandbox.readWritePaths = ["/etc/app", "-/var/missing"]
        sandbox.privateTmp = true
        #expect(
            SandboxPlan.mountPlan(for: sandbox) == [
                Step(operation: .bindSelf, path: "/usr", optional: true),
                Step(operation: .readOnly, path: "/usr", optional: true),
                Step(operation: .bindSelf, path: "/boot", optional: true),
                Step(operation: .readOnly, path: "/boot", optional: true),
                Step(operation: .bindSelf, path: "/efi", optional: true),
                Step(operation: .readOnly, path: "/efi", optional: true),
                Step(operation: .bindSelf, path: "/etc", optional: true),
                Step(operation: .readOnly, path: "/etc", optional: true),
                Step(operation: .bindSelf, path: "/etc/app", optional: false),
                Step(operation: .writable, path: "/etc/app", optional: false),
                Step(operation: .bindSelf, path: "/var/missing", optional: true),
                Step(operation: .writable, path: "/var/missing", optional: true),
                Step(operation: .tmpfs, path: "/tmp", optional: false),
                Step(operation: .tmpfs, path: "/var/tmp", optional: true),
            ])
    }

    @Test func strictInsideAChroot() {
        var sandbox = Sandbox()
        sandbox.chroot = "/srv/jail/"
        sandbox.protectSystem = .strict
        #expect(
            SandboxPlan.mountPlan(for: sandbox) == [
                Step(operation: .bindSelf, path: "/srv/jail", optional: false),
                Step(operation: .readOnly, path: "/srv/jail", optional: false),
                Step(operation: .bindSelf, path: "/srv/jail/dev", optional: true),
                Step(operation: .writable, path: "/srv/jail/dev", optional: true),
                Step(operation: .bindSelf, path: "/srv/jail/proc", optional: true),
                Step(operation: .writable, path: "/srv/jail/proc", optional: true),
                Step(operation: .bindSelf, path: "/srv/jail/sys", optional: true),
                Step(operation: .writable, path: "/srv/jail/sys", optional: true),
            ])
        var plain = Sandbox()
        plain.protectSystem = .strict
        #expect(SandboxPlan.mountPlan(for: plain).first == Step(operation: .readOnly, path: "/", optional: false))
    }

    @Test func noNewPrivilegesIsImpliedWhereSeccompNeedsIt() {
        var sandbox = Sandbox()
        sandbox.systemCallFilter = Sandbox.SystemCallFilter(denied: ["@mount"])
        let root = Credentials(user: "root", uid: 0, gid: 0, groups: [0], changeIdentity: true)
        #expect(SandboxPlan.needsNoNewPrivileges(sandbox, credentials: nobodyCredentials))
        #expect(!SandboxPlan.needsNoNewPrivileges(sandbox, credentials: root), "root keeps CAP_SYS_ADMIN")
        sandbox.capabilities = Sandbox.CapabilitySet(bits: 1 << 10)
        #expect(SandboxPlan.needsNoNewPrivileges(sandbox, credentials: root), "root without CAP_SYS_ADMIN")
        #expect(!SandboxPlan.needsNoNewPrivileges(Sandbox(), credentials: nobodyCredentials))
    }

    @Test func cgroupDirectoryNamesCannotClimbTheTree() {
        #expect(CgroupTree.directoryName(for: "ftp") == "ftp")
        #expect(CgroupTree.directoryName(for: "echo-stream_2") == "echo-stream_2")
        #expect(CgroupTree.directoryName(for: "/run/foo.sock") == ".2frun.2ffoo.2esock")
        #expect(CgroupTree.directoryName(for: "..") == ".2e.2e")
        #expect(CgroupTree.directoryName(for: "") == ".empty")
    }

    /// With a fake cgroup tree, prepare makes the directories, enables the controllers and writes
    /// the limits (a real tree is exercised by the integration tests where the host has one).
    @Test func cgroupPrepareWritesTheLimits() throws {
        let directory = try TemporaryDirectory()
        try directory.write("cgroup.controllers", "cpu memory pids\n")
        try directory.write("cgroup.subtree_control", "")
        // A real cgroup directory comes with its files; the fake one gets them made in advance.
        try directory.makeDirectory("swinetd")
        try directory.write("swinetd/cgroup.subtree_control", "")
        try directory.makeDirectory("swinetd/web.2fapi")
        for file in ["memory.max", "pids.max", "cgroup.procs"] { try directory.write("swinetd/web.2fapi/" + file, "") }
        let fd = try CgroupTree.prepare(serviceID: "web/api", memoryMax: 64 << 20, tasksMax: 16, root: directory.path)
        defer { close(fd) }
        #expect(fd >= 0)
        #expect(ProcText.contents(of: directory.path + "/cgroup.subtree_control") == "+memory +pids")
        #expect(ProcText.contents(of: directory.path + "/swinetd/cgroup.subtree_control") == "+memory +pids")
        #expect(ProcText.contents(of: directory.path + "/swinetd/web.2fapi/memory.max") == "67108864")
        #expect(ProcText.contents(of: directory.path + "/swinetd/web.2fapi/pids.max") == "16")
    }
}
