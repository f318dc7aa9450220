import Glibc
import SwinetdCore
import Testing

/// Inputs from the libFuzzer runs (Fuzz/, docs/RELIABILITY.md) and hand-made edge cases in the same
/// spirit, kept inline so they run on every `swift test`: each must load without a crash, give
/// the same result twice, and report problems at lines that exist. The tcpmux reader's fuzz
/// finding needs a running daemon and lives in SecurityNetworkTests
/// (`plusTargetServedByABuiltinGetsGoFirst`).
@Suite struct FuzzRegressionTests {
    static var options: LoadOptions {
        var options = LoadOptions()
        options.checkPrograms = false
        return options
    }

    static func rendered(_ configuration: LoadedConfiguration) -> [String] {
        configuration.diagnostics.map { "\($0)" } + configuration.services.map { "\($0.name) \($0.location)" }
    }

    /// Loads `bytes` twice as `fuzz.conf`; checks determinism and that every diagnostic names a line
    /// of the input (or line 0, the whole file).
    static func check(_ bytes: [UInt8], _ label: String) {
        let first = ConfigLoader.load(text: bytes, file: "fuzz.conf", options: options)
        let second = ConfigLoader.load(text: bytes, file: "fuzz.conf", options: options)
        #expect(rendered(first) == rendered(second), "\(label): not deterministic")
        // Lines as the reader counts them: LF ends a line (CR LF too); the last may lack one.
        let lines = bytes.split(separator: 10, omittingEmptySubsequences: false).count
        for diagnostic in first.diagnostics where diagnostic.location?.file == "fuzz.conf" {
            let line = diagnostic.location?.line ?? 0
            #expect(line >= 0 && line <= lines, "\(label): diagnostic at line \(line) of \(lines): \(diagnostic)")
        }
    }

    // MARK: - inetd.conf

    static let inetdInputs: [(String, [UInt8])] = [
        ("empty", []),
        ("only a backslash", Array("\\".utf8)),
        ("continuation at end of file", Array("echo stream tcp nowait root internal \\\n".utf8)),
        ("continuation of nothing", Array("   stream tcp nowait root internal\n".utf8)),
        ("host list of commas", Array(",,,:echo stream tcp nowait root internal\n".utf8)),
        ("empty brackets", Array("[]:echo stream tcp nowait root internal\n".utf8)),
        ("unclosed bracket", Array("[::1:echo stream tcp nowait root internal\n".utf8)),
        ("bare host line then EOF", Array("127.0.0.1:".utf8)),
        ("wait with huge max", Array("echo stream tcp nowait.99999999999999999999999 root internal\n".utf8)),
        ("slashes without numbers", Array("echo stream tcp nowait//// root internal\n".utf8)),
        ("negative numbers", Array("echo stream tcp nowait/-1/-1/-1 root internal\n".utf8)),
        ("rcvbuf overflow", Array("8000 stream tcp,rcvbuf=99999999999999999999k nowait root internal echo\n".utf8)),
        ("rcvbuf empty", Array("8000 stream tcp,rcvbuf=,sndbuf= nowait root internal echo\n".utf8)),
        ("unix path of NULs", Array("/".utf8) + [UInt8](repeating: 0, count: 40) + Array(" stream unix nowait root internal echo\n".utf8)),
        ("unix mode overflow", Array("/run/x.sock stream unix nowait root:root:77777777777777777777 internal echo\n".utf8)),
        ("tcpmux with empty name", Array("tcpmux/ stream tcp nowait root /bin/true true\n".utf8)),
        ("tcpmux plus only", Array("tcpmux/+ stream tcp nowait root /bin/true true\n".utf8)),
        ("user with trailing separators", Array("echo stream tcp nowait root:.: internal\n".utf8)),
        ("CR only line endings", Array("echo stream tcp nowait root internal\rdiscard stream tcp nowait root internal\r".utf8)),
        ("invalid UTF-8 everywhere", [0xff, 0xfe, 0x20, 0xc3, 0x28, 0x0a, 0xed, 0xa0, 0x80, 0x0a]),
        ("port 0 and 65536", Array("0 stream tcp nowait root internal echo\n65536 stream tcp nowait root internal echo\n".utf8)),
        // From the inetd fuzz corpus (coverage-increasing inputs): a continuation line that
        // carries NULs into the argument list, and a host prefix glued to a later entry.
        (
            "fuzz: NULs in a continued argument list",
            Array("8007 stream tcp6 nowait.10 nobody:nogroup /bin/cat ".utf8) + [UInt8](repeating: 0, count: 77)
                + Array("nued \"quoted arg\" \\\n127 -u\n".utf8)
        ),
        ("fuzz: host prefix glued to a field", Array("127.0.%\n*:\ntime dgram udp4 wait root internal\n127.0.0.2:\n".utf8)),
    ]

    @Test(arguments: inetdInputs.indices)
    func inetdInputLoads(_ index: Int) {
        let (label, bytes) = Self.inetdInputs[index]
        Self.check(bytes, label)
    }

    // MARK: - xinetd.conf

    static let xinetdInputs: [(String, [UInt8])] = [
        ("defaults without a block", Array("defaults\n".utf8)),
        ("unclosed block", Array("service echo\n{\n    type = INTERNAL\n".utf8)),
        ("close without open", Array("defaults\n}\n}\n".utf8)),
        ("nested blocks", Array("service a\n{\n{\n{\n}\n}\n}\n".utf8)),
        ("operator without name", Array("defaults\n{\n= x\n+= y\n-=\n}\n".utf8)),
        ("include of nothing", Array("defaults\n{\n}\ninclude\nincludedir\n".utf8)),
        ("include of a directory and a device", Array("defaults\n{\n}\ninclude /\ninclude /dev/null\nincludedir /dev/null\n".utf8)),
        ("relative include", Array("defaults\n{\n}\ninclude ../../../../../etc/passwd\n".utf8)),
        ("huge numbers", Array("defaults\n{\n    instances = 99999999999999999999999\n    cps = 999999999999999999999 -1\n    per_source = -5\n}\n".utf8)),
        ("access_times garbage", Array("defaults\n{\n    access_times = 25:61-99:99 :- - 1:2:3\n}\n".utf8)),
        ("only_from garbage", Array("defaults\n{\n    only_from = 300.1.1.1/99 ::::/129 [::1 ] .\n}\n".utf8)),
        ("env without =", Array("service x\n{\n    env = A B=C =D\n    passenv = \n}\n".utf8)),
        ("rlimits overflow", Array("service x\n{\n    rlimit_as = 99999999999999999999999M\n    rlimit_cpu = -1\n}\n".utf8)),
        ("service name of NULs", Array("service ".utf8) + [0, 0, 0] + Array("\n{\n}\n".utf8)),
        ("brace glued to the name", Array("service echo{\n}\n".utf8)),
        ("CR everywhere", Array("defaults\r\n{\r\n}\r\nservice echo\r\n{\r\n type = INTERNAL\r\n}\r".utf8)),
    ]

    @Test(arguments: xinetdInputs.indices)
    func xinetdInputLoads(_ index: Int) {
        let (label, bytes) = Self.xinetdInputs[index]
        #expect(ConfigFormat.detect(bytes) == .xinetd || bytes.isEmpty, "\(label) is not read as xinetd.conf")
        Self.check(bytes, label)
    }

    // MARK: - hosts.allow / hosts.deny

    static let hostsInputs: [(String, allow: String, deny: String)] = [
        ("empty", "", ""),
        ("colons only", ":::::\n", "::\n"),
        ("EXCEPT chains", "ALL EXCEPT EXCEPT EXCEPT: ALL EXCEPT\n", "EXCEPT: EXCEPT\n"),
        ("backslash at end of file", "sshd: 10.0.0.1 \\", "ALL: ALL \\"),
        ("bracket soup", "sshd: [ [::1] []/ [::1]/129 [1:2:3:4:5:6:7:8:9]\n", ""),
        ("masks", "sshd: 10.0.0.0/255.255.255.256 10.0.0.0/33 10.0.0.0/ /\n", ""),
        ("user patterns", "sshd: @ @@ a@ @b a@b@c\n", "ALL: @\n"),
        ("options without rules", ": : : : allow : deny : spawn\n", ""),
        ("percent escapes", "ALL: ALL : spawn %%%a%h%u%z% : twist %\n", ""),
        ("file patterns", "sshd: /nonexistent /dev/null /\n", "ALL: /etc/hosts.allow\n"),
        ("NUL and non-UTF-8", "sshd: 10.0.0.1\u{0}\n\u{7f}: \u{1b}\n", "ALL:\u{fffd}\n"),
        ("long line", "sshd: " + String(repeating: "10.0.0.1 ", count: 20_000) + "\n", ""),
    ]

    @Test(arguments: hostsInputs.indices)
    func hostsInputParses(_ index: Int) {
        let (label, allow, deny) = Self.hostsInputs[index]
        let parse = {
            HostsAccessRules.parse(allow: Array(allow.utf8), deny: Array(deny.utf8), allowName: "hosts.allow", denyName: "hosts.deny")
        }
        let (rules, diagnostics) = parse()
        let (again, _) = parse()
        _ = diagnostics.map { "\($0)" }
        let clients = ["127.0.0.1", "10.0.0.1", "::1", "::ffff:10.0.0.1"].map {
            AccessClient(address: hostsIP($0), hostName: "h.example.com", user: "alice")
        }
        for daemon in ["sshd", "ALL", "in.fingerd", ""] {
            for client in clients {
                let a = rules.check(daemon: daemon, serverAddress: hostsIP("127.0.0.1"), serverPort: 22, client: client)
                let b = again.check(daemon: daemon, serverAddress: hostsIP("127.0.0.1"), serverPort: 22, client: client)
                #expect(a == b, "\(label): \(daemon) \(client.address) not deterministic")
            }
        }
    }
}
