import Foundation
import SwinetdCore
import Testing

// Compares HostsAccessRules with the real tcp_wrappers oracle, `tcpdmatch -d` (Debian package
// `tcpd`), over a table of rule sets x requests. Needs no DNS: clients are numeric, plus
// `localhost` (from /etc/hosts) and tcpdmatch's `paranoid` pseudo-client.

/// Where tcpdmatch is, if installed.
enum TcpdmatchOracle {
    static let path: String? = {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        let directories =
            ["/usr/sbin", "/sbin", "/usr/bin", "/bin", "/usr/local/sbin"] + path.split(separator: ":").map(String.init)
        return directories.map { $0 + "/tcpdmatch" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }()

    static let missing =
        "tcpdmatch not found: install the Debian package tcpd (apt-get install tcpd) to run the comparison"

    /// One `tcpdmatch daemon[@server] [user@]client` request.
    struct Query: Sendable, CustomStringConvertible {
        var daemon: String
        var server: String?
        var user: String?
        var client: String

        var arguments: [String] {
            [server.map { "\(daemon)@\($0)" } ?? daemon, user.map { "\($0)@\(client)" } ?? client]
        }

        var description: String { arguments.joined(separator: " ") }
    }

    /// What tcpdmatch predicted for one client address.
    struct Prediction {
        var query: Query
        var address: String?
        var hostName: String?
        var serverAddress: String?
        var access: String
    }

    /// Runs every query with `allow` / `deny` (nil: no file) as hosts.allow / hosts.deny in a
    /// scratch directory; `@DIR@` in any file stands for that directory.
    /// Whether this process may run tcpdmatch with its own /etc/hosts (`unshare -m` and a bind
    /// mount: root), so that host names resolve without DNS.
    static let canMountHosts: Bool = {
        guard path != nil, FileManager.default.isExecutableFile(atPath: "/usr/bin/unshare"),
            FileManager.default.fileExists(atPath: "/etc/hosts")
        else { return false }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/unshare")
        process.arguments = ["-m", "/bin/sh", "-c", "mount --bind /etc/hosts /etc/hosts"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return false }
        process.waitUntilExit()
        return process.terminationStatus == 0
    }()

    /// `hosts`: an /etc/hosts for tcpdmatch to resolve client names from (needs `canMountHosts`).
    static func predict(
        allow: String?, deny: String?, files: [String: String], hosts: String? = nil, queries: [Query],
        directory: String
    ) throws -> [Prediction] {
        guard let tcpdmatch = path else { return [] }
        func expand(_ text: String) -> String { text.replacingOccurrences(of: "@DIR@", with: directory) }
        for (name, text) in files {
            try Data(expand(text).utf8).write(to: URL(fileURLWithPath: directory + "/" + name))
        }
        if let allow { try Data(expand(allow).utf8).write(to: URL(fileURLWithPath: directory + "/hosts.allow")) }
        if let deny { try Data(expand(deny).utf8).write(to: URL(fileURLWithPath: directory + "/hosts.deny")) }

        let marker = "@@swinetd-query-end@@"
        var script = ""
        for query in queries {
            let quoted = query.arguments.map { argument -> String in
                precondition(!argument.contains("'"))
                return "'\(argument)'"
            }
            script += "'\(tcpdmatch)' -d \(quoted.joined(separator: " ")) 2>&1; echo '\(marker)'\n"
        }
        let scriptPath = directory + "/queries.sh"
        try Data(script.utf8).write(to: URL(fileURLWithPath: scriptPath))

        let process = Process()
        if let hosts {
            let hostsPath = directory + "/etc-hosts"
            try Data(hosts.utf8).write(to: URL(fileURLWithPath: hostsPath))
            // A private mount namespace: the bind mount is invisible outside this one process tree.
            process.executableURL = URL(fileURLWithPath: "/usr/bin/unshare")
            process.arguments = [
                "-m", "/bin/sh", "-c", "mount --bind \"$1\" /etc/hosts && exec /bin/sh \"$2\"", "sh", hostsPath,
                scriptPath,
            ]
        } else {
            process.executableURL = URL(fileURLWithPath: "/bin/sh")
            process.arguments = [scriptPath]
        }
        process.currentDirectoryURL = URL(fileURLWithPath: directory)
        // The queries need no DNS; should a lookup happen anyway, keep it short.
        var environment = ProcessInfo.processInfo.environment
        environment["RES_OPTIONS"] = "timeout:1 attempts:1"
        process.environment = environment
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()

        var predictions: [Prediction] = []
        var index = 0
        var address: String?
        var hostName: String?
        var serverAddress: String?
        var sawAccess = false
        for line in output.split(separator: "\n", omittingEmptySubsequences: false) {
            let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
            if line == marker {
                precondition(sawAccess, "no access line for \(queries[index]): \(output)")
                index += 1
                address = nil
                hostName = nil
                serverAddress = nil
                sawAccess = false
            } else if words.count == 3, words[0] == "client:", words[1] == "address" {
                address = words[2]
            } else if words.count == 3, words[0] == "client:", words[1] == "hostname" {
                hostName = words[2]
            } else if words.count == 3, words[0] == "server:", words[1] == "address" {
                serverAddress = words[2]
            } else if words.count == 2, words[0] == "access:" {
                predictions.append(
                    Prediction(
                        query: queries[index], address: address, hostName: hostName, serverAddress: serverAddress,
                        access: words[1]))
                sawAccess = true
            }
        }
        precondition(index == queries.count, "tcpdmatch output ended early: \(output)")
        return predictions
    }

    /// The same request through swinetd's engine. A client without an address (tcpdmatch's
    /// `paranoid`) gets 203.0.113.77, which no pattern in the tables below names.
    static func swinetdAllows(_ rules: HostsAccessRules, _ prediction: Prediction) -> Bool {
        let query = prediction.query
        let address =
            prediction.address.flatMap(SocketAddressFormatting.parseNumeric) ?? SocketAddressFormatting.parseNumeric(
                "203.0.113.77")!
        let paranoid = prediction.hostName == "paranoid"
        let client = AccessClient(
            address: address, hostName: paranoid ? nil : prediction.hostName, nameMismatch: paranoid, user: query.user)
        let server = prediction.serverAddress.flatMap(SocketAddressFormatting.parseNumeric)
        return rules.check(daemon: query.daemon, serverAddress: server, client: client).allowed
    }

    /// tcpdmatch's word for the verdict: `delegated` is `twist`, which swinetd refuses.
    static func tcpdAllows(_ access: String) -> Bool {
        switch access {
        case "granted": return true
        case "denied", "delegated": return false
        default: preconditionFailure("unexpected tcpdmatch verdict \(access)")
        }
    }
}

/// One pair of hosts files for the comparison.
struct TcpdRuleSet: Sendable, CustomTestStringConvertible {
    var name: String
    var allow: String?
    var deny: String?
    var files: [String: String] = [:]
    var clients: [(user: String?, client: String)] = TcpdRuleSet.numericClients
    /// An /etc/hosts for tcpdmatch (named clients); nil: the machine's.
    var hosts: String?

    var testDescription: String { name }

    static let numericClients: [(user: String?, client: String)] = [
        (nil, "127.0.0.1"), (nil, "127.0.0.2"), (nil, "192.168.1.5"), (nil, "192.168.1.200"), (nil, "192.168.2.5"),
        (nil, "10.0.0.1"), (nil, "10.1.2.3"), (nil, "172.16.5.4"), (nil, "203.0.113.9"), (nil, "::1"),
        (nil, "2001:db8::5"), (nil, "2001:db8:1::7"), (nil, "fe80::1"), (nil, "::ffff:192.168.1.5"),
        (nil, "::ffff:10.0.0.1"), ("bob", "192.168.1.5"), ("alice", "10.0.0.1"), ("root", "::1"),
        (nil, "localhost"), ("bob", "localhost"),
    ]

    static let paranoidClients: [(user: String?, client: String)] = [
        (nil, "paranoid"), ("bob", "paranoid"), (nil, "localhost"), (nil, "127.0.0.1"),
    ]

    /// Servers are given so that tcpdmatch finds them in /etc/hosts: for a numeric server it
    /// looks the name up, and DNS may be slow or absent.
    static let daemons: [(daemon: String, server: String?)] = [
        ("in.fingerd", nil), ("sshd", nil), ("sshd", "localhost"), ("in.fingerd", "::ffff:127.0.0.1"),
    ]

    var queries: [TcpdmatchOracle.Query] {
        Self.daemons.flatMap { daemon in
            clients.map {
                TcpdmatchOracle.Query(daemon: daemon.daemon, server: daemon.server, user: $0.user, client: $0.client)
            }
        }
    }

    /// Runs the table through tcpdmatch and swinetd; returns (agreeing, differing) predictions.
    func compare() throws -> (
        same: [TcpdmatchOracle.Prediction], different: [(TcpdmatchOracle.Prediction, swinetd: Bool)]
    ) {
        let directory = FileManager.default.temporaryDirectory.path + "/swinetd-tcpdmatch-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let predictions = try TcpdmatchOracle.predict(
            allow: allow, deny: deny, files: files, hosts: hosts, queries: queries, directory: directory)
        let (rules, _) = HostsAccessRules.load(
            allowPath: directory + "/hosts.allow", denyPath: directory + "/hosts.deny")
        var same: [TcpdmatchOracle.Prediction] = []
        var different: [(TcpdmatchOracle.Prediction, swinetd: Bool)] = []
        for prediction in predictions {
            let ours = TcpdmatchOracle.swinetdAllows(rules, prediction)
            if ours == TcpdmatchOracle.tcpdAllows(prediction.access) {
                same.append(prediction)
            } else {
                different.append((prediction, ours))
            }
        }
        return (same, different)
    }
}

private let patternList = ["list": "192.168.1.0/24\n[::1]\n10.1.\n"]
private let longLine = "sshd: 10.0.0.1" + String(repeating: " ", count: 2100) + "\nALL: ALL\n"
private let longestLine = "sshd: 10.0.0.1" + String(repeating: " ", count: 2046 - 14) + "\n"

/// Rule sets where swinetd must give exactly tcpdmatch's verdict.
let tcpdmatchTable: [TcpdRuleSet] = [
    TcpdRuleSet(name: "fingerd from 127.0.0.1", allow: "in.fingerd: 127.0.0.1\n", deny: "ALL: ALL\n"),
    TcpdRuleSet(name: "fingerd from 127.0.0.2", allow: "in.fingerd: 127.0.0.2\n", deny: "ALL: ALL\n"),
    TcpdRuleSet(name: "[::1]", allow: "ALL: [::1]\n", deny: "ALL: ALL\n"),
    TcpdRuleSet(name: "[::1]/128 and net/mask", allow: "ALL: [::1]/128, 127.0.0.0/255.0.0.0\n", deny: "ALL: ALL\n"),
    TcpdRuleSet(name: "EXCEPT in daemon list", allow: nil, deny: "ALL EXCEPT in.fingerd: 192.168.1.0/24\n"),
    TcpdRuleSet(
        name: "netmask EXCEPT host", allow: "sshd: 192.168.1.0/255.255.255.0 EXCEPT 192.168.1.200\n",
        deny: "sshd: ALL\n"),
    TcpdRuleSet(name: "nested EXCEPT", allow: "ALL: ALL EXCEPT 10.0.0.0/8 EXCEPT 10.1.0.0/16\n", deny: "ALL: ALL\n"),
    TcpdRuleSet(name: "address prefixes", allow: "", deny: "ALL: 10. 172.16.\n"),
    TcpdRuleSet(name: "address wildcards", allow: "sshd: 192.168.1.*, 10.?.?.?\n", deny: "ALL: ALL\n"),
    TcpdRuleSet(name: "IPv6 networks", allow: "ALL: [2001:db8::]/32 EXCEPT [2001:db8:1::]/48\n", deny: "ALL: ALL\n"),
    TcpdRuleSet(name: "UNKNOWN", allow: "ALL: UNKNOWN\n", deny: "ALL: ALL\n"),
    TcpdRuleSet(name: "KNOWN", allow: "ALL: KNOWN\n", deny: "ALL: ALL\n"),
    TcpdRuleSet(name: "LOCAL", allow: "ALL: LOCAL\n", deny: "ALL: ALL\n"),
    TcpdRuleSet(name: "ALL EXCEPT LOCAL denied", allow: nil, deny: "ALL: ALL EXCEPT LOCAL\n"),
    TcpdRuleSet(name: "PARANOID denied", allow: "", deny: "ALL: PARANOID\n"),
    TcpdRuleSet(name: "user@host", allow: "sshd: bob@192.168.1.0/24, KNOWN@[::1]\n", deny: "sshd: ALL\n"),
    TcpdRuleSet(name: "UNKNOWN@ALL", allow: "ALL: UNKNOWN@ALL\n", deny: "ALL: ALL\n"),
    TcpdRuleSet(name: "user wildcards", allow: "ALL: b*@ALL, r??t@[::1]\n", deny: "ALL: ALL\n"),
    TcpdRuleSet(name: "ALL EXCEPT KNOWN@ALL", allow: "ALL: ALL EXCEPT KNOWN@ALL\n", deny: "ALL: ALL\n"),
    TcpdRuleSet(name: "server endpoints", allow: "sshd@127.0.0.1: ALL\nin.fingerd@[::1]: ALL\n", deny: "ALL: ALL\n"),
    TcpdRuleSet(
        name: "server networks", allow: "ALL@127.0.0.0/8: 10.0.0.0/8\nALL@[::1]/128: 172.16.\n", deny: "ALL: ALL\n"),
    TcpdRuleSet(
        name: "server prefix and wildcard", allow: "in.fingerd@127.: 192.168.1.5\nsshd@127.0.0.?: 10.1.2.3\n",
        deny: "ALL: ALL\n"),
    TcpdRuleSet(
        name: "allow and deny options", allow: "",
        deny: "ALL: 10.0.0.0/8: allow\nALL: ALL: spawn /bin/echo %a %h: deny\n"),
    TcpdRuleSet(
        name: "options before allow",
        allow: "sshd: ALL: severity auth.info: deny\nALL: 192.168.: severity notice: allow\n", deny: "ALL: ALL\n"),
    TcpdRuleSet(
        name: "deny option then allow", allow: "ALL: 192.168.1.200: deny\nALL: 192.168.: allow\n", deny: "ALL: ALL\n"),
    TcpdRuleSet(name: "twist", allow: "in.fingerd: 127.0.0.1: twist /bin/echo go away\n", deny: ""),
    TcpdRuleSet(name: "bad option", allow: "ALL: ALL: bogus\n", deny: ""),
    TcpdRuleSet(name: "allow not last", allow: "ALL: 10.0.0.1: allow: severity info\n", deny: ""),
    TcpdRuleSet(name: "continuation", allow: "sshd: 10.0.0.1 \\\n  192.168.1.5 \\\n  [::1]\n", deny: "ALL: ALL\n"),
    TcpdRuleSet(
        name: "comments", allow: "# comment \\\nsshd: ALL\n#sshd: 10.0.0.1\n  # in.fingerd: 127.0.0.1\n",
        deny: "ALL: ALL\n"),
    TcpdRuleSet(name: "# inside a rule", allow: "sshd: 10.0.0.1 # office\n", deny: "ALL: ALL\n"),
    TcpdRuleSet(name: "hosts.deny without final newline", allow: "", deny: "sshd: 10.0.0.1"),
    TcpdRuleSet(name: "hosts.allow without final newline", allow: "ALL: 10.0.0.1\nsshd: ALL", deny: "ALL: ALL\n"),
    TcpdRuleSet(name: "long line", allow: longLine, deny: "ALL: ALL\n"),
    TcpdRuleSet(name: "longest line", allow: longestLine, deny: "ALL: ALL\n"),
    TcpdRuleSet(name: "missing colon in hosts.allow", allow: "garbage line\nsshd: 10.0.0.1\n", deny: "ALL: ALL\n"),
    TcpdRuleSet(name: "/file", allow: "ALL: @DIR@/list\n", deny: "ALL: ALL\n", files: patternList),
    TcpdRuleSet(name: "EXCEPT /file", allow: nil, deny: "ALL: ALL EXCEPT @DIR@/list\n", files: patternList),
    TcpdRuleSet(name: "missing /file", allow: "ALL: @DIR@/absent 10.0.0.1\n", deny: "ALL: ALL\n"),
    TcpdRuleSet(name: "case", allow: "sshd: all except 10.0.0.1\nIN.FINGERD: LOCALHOST\n", deny: "all: all\n"),
    TcpdRuleSet(name: "CRLF", allow: "sshd: 10.0.0.1\r\n", deny: "ALL: ALL\r\n"),
    TcpdRuleSet(name: "deny except daemons", allow: nil, deny: "ALL EXCEPT sshd: ALL\n"),
    TcpdRuleSet(name: "CIDR", allow: "ALL: 10.1.2.0/24, 172.16.0.0/12, 192.168.0.0/16\n", deny: "ALL: ALL\n"),
    TcpdRuleSet(name: "names", allow: "ALL: .example.com, localhost\n", deny: "ALL: ALL\n"),
    TcpdRuleSet(name: "no files", allow: nil, deny: nil),
    TcpdRuleSet(name: "v4-mapped", allow: nil, deny: "ALL: 192.168.1.5, [::ffff:10.0.0.1]\n"),
    TcpdRuleSet(
        name: "paranoid: PARANOID", allow: "ALL: PARANOID\n", deny: "ALL: ALL\n", clients: TcpdRuleSet.paranoidClients),
    TcpdRuleSet(
        name: "paranoid: ALL EXCEPT PARANOID", allow: "ALL: ALL EXCEPT PARANOID\n", deny: "ALL: ALL\n",
        clients: TcpdRuleSet.paranoidClients),
    TcpdRuleSet(
        name: "paranoid: KNOWN", allow: "ALL: KNOWN\n", deny: "ALL: ALL\n", clients: TcpdRuleSet.paranoidClients),
    TcpdRuleSet(
        name: "paranoid: LOCAL", allow: "ALL: LOCAL\n", deny: "ALL: ALL\n", clients: TcpdRuleSet.paranoidClients),
    TcpdRuleSet(
        name: "paranoid: para*", allow: "ALL: para*\n", deny: "ALL: ALL\n", clients: TcpdRuleSet.paranoidClients),
    TcpdRuleSet(
        name: "paranoid: literal name", allow: "", deny: "ALL: paranoid\n", clients: TcpdRuleSet.paranoidClients),
]

/// An /etc/hosts for named clients: tcpdmatch takes a client's name from it (the official name, so
/// mixed case stays), and swinetd gets the same name. No DNS involved.
let namedHosts = """
    127.0.0.1 localhost
    10.9.8.7 build.example.com
    10.9.8.8 gateway
    10.9.8.9 BIG.Example.COM
    192.168.1.5 ws5.corp.example.net
    2001:db8::5 v6host.example.com

    """

let namedClients: [(user: String?, client: String)] = [
    (nil, "build.example.com"), (nil, "gateway"), (nil, "big.example.com"), (nil, "ws5.corp.example.net"),
    (nil, "v6host.example.com"), (nil, "localhost"), ("bob", "build.example.com"), ("root", "gateway"),
    (nil, "10.9.8.7"), (nil, "2001:db8::5"),
]

private func named(_ name: String, allow: String?, deny: String?, files: [String: String] = [:]) -> TcpdRuleSet {
    TcpdRuleSet(name: name, allow: allow, deny: deny, files: files, clients: namedClients, hosts: namedHosts)
}

/// Name patterns, compared with tcpdmatch resolving names from `namedHosts` (needs root for the
/// private mount of /etc/hosts).
let tcpdmatchNamedTable: [TcpdRuleSet] = [
    named("names: .domain", allow: "ALL: .example.com\n", deny: "ALL: ALL\n"),
    named("names: .DOMAIN EXCEPT address", allow: "ALL: .EXAMPLE.COM EXCEPT 10.9.8.7\n", deny: "ALL: ALL\n"),
    named("names: LOCAL", allow: "ALL: LOCAL\n", deny: "ALL: ALL\n"),
    named("names: KNOWN EXCEPT domain", allow: "ALL: KNOWN EXCEPT .corp.example.net\n", deny: "ALL: ALL\n"),
    named(
        "names: exact names", allow: "sshd: build.example.com, GATEWAY\nin.fingerd: big.example.com\n",
        deny: "ALL: ALL\n"),
    named("names: wildcards", allow: "ALL: *.example.* EXCEPT big.example.com\n", deny: "ALL: ALL\n"),
    named("names: ? wildcard", allow: "ALL: ws?.corp.* v6host.*\n", deny: "ALL: ALL\n"),
    named("names: name prefix", allow: "ALL: build. ws5.\n", deny: "ALL: ALL\n"),
    named("names: user@name", allow: "ALL: bob@.example.com, KNOWN@gateway\n", deny: "ALL: ALL\n"),
    named("names: ALL EXCEPT UNKNOWN", allow: nil, deny: "sshd: ALL EXCEPT KNOWN\nin.fingerd: UNKNOWN\n"),
    named(
        "names: /file", allow: "ALL: @DIR@/names\n", deny: "ALL: ALL\n", files: ["names": "gateway .corp.example.net\n"]
    ),
    named(
        "names: deny domain, allow option", allow: nil,
        deny: "ALL: .example.com EXCEPT v6host.example.com: deny\nALL: LOCAL: allow\nALL: ALL\n"),
    named("names: daemon EXCEPT", allow: "ALL EXCEPT sshd: .example.net\nsshd: .example.com\n", deny: "ALL: ALL\n"),
]

/// Rule sets where swinetd is deliberately stricter than tcpd (see HostsAccess.swift): it must
/// never allow what tcpdmatch denies, and must deny at least one request tcpdmatch allows.
let tcpdmatchStricterTable: [TcpdRuleSet] = [
    TcpdRuleSet(name: "missing colon in hosts.deny", allow: nil, deny: "sshd 10.0.0.1\n"),
    TcpdRuleSet(name: "host bits outside the mask", allow: nil, deny: "ALL: 10.0.0.5/24\n"),
    TcpdRuleSet(name: "aclexec (not run)", allow: "ALL: ALL: aclexec /bin/true\n", deny: "ALL: ALL\n"),
    TcpdRuleSet(name: "port without a known port", allow: nil, deny: "22: ALL\n"),
    TcpdRuleSet(name: "IPv6 prefix tcpd reads as /0", allow: "ALL: [::1]/ab\n", deny: "ALL: ALL\n"),
    TcpdRuleSet(name: "IPv4 /0 under EXCEPT", allow: "ALL: ALL EXCEPT 0.0.0.0/0\n", deny: "ALL: ALL\n"),
    TcpdRuleSet(name: "prefix length with junk", allow: nil, deny: "ALL: 10.0.0.0/8x\n"),
]

/// Random rule sets from valid patterns only (seeded, so a failure reproduces): a second,
/// broader net under the hand-written table.
enum RandomTcpdRules {
    struct SplitMix: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9e37_79b9_7f4a_7c15
            var z = state
            z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
            z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
            return z ^ (z >> 31)
        }
    }

    static let daemonTokens = [
        "ALL", "sshd", "in.fingerd", "in.*", "s?hd", "SSHD", "sshd@127.0.0.1", "ALL@[::1]", "ALL@127.",
        "in.fingerd@127.0.0.0/8",
        "EXCEPT", "ftpd",
    ]
    static let clientTokens = [
        "ALL", "LOCAL", "KNOWN", "UNKNOWN", "PARANOID", "10.", "192.168.", "192.168.1.5", "10.0.0.0/8", "10.1.0.0/16",
        "192.168.1.0/255.255.255.0", "172.16.0.0/255.240.0.0", "[::1]", "[2001:db8::]/32", "[2001:db8:1::]/48",
        "[fe80::]/10",
        "*.example.com", "192.168.1.*", "10.?.?.?", "*", "localhost", ".example.com", "bob@ALL", "KNOWN@10.0.0.0/8",
        "UNKNOWN@ALL", "b?b@192.168.", "root@[::1]", "EXCEPT", "EXCEPT", "127.0.0.1", "127.0.0.0/8",
    ]
    static let optionTails = [
        "", "", "", ": allow", ": deny", ": severity info", ": spawn /bin/true %a", ": twist /bin/true",
        ": nice 5: allow",
    ]

    /// Patterns and lines tcpd misreads, or that swinetd cannot evaluate: swinetd is stricter there.
    static let badClientTokens = [
        "10.0.0.5/24", "0.0.0.0/0", "[::1]/ab", "10.0.0.0/8x", "010.0.0.0/8", "[10.0.0.1]", "1.2.3.*/24",
    ]
    static let badDaemonTokens = ["22", "sshd@10.0.0.0/33", "ALL@KNOWN", "sshd@localhost", "ALL@UNKNOWN", "ALL@LOCAL"]
    static let badOptionTails = [": aclexec /bin/true", ": aclexec /bin/true: allow", ": bogus", ": allow: deny"]

    /// Name patterns for the clients of `namedHosts`.
    static let nameTokens = [
        ".example.com", "build.example.com", "GATEWAY", "*.example.*", "ws?.corp.*", "build.", "bob@.example.com",
        "KNOWN@gateway", "big.example.com", ".EXAMPLE.COM", "v6host.*", ".net", "EXCEPT",
    ]

    static func ruleSet(seed: UInt64, withBadPatterns: Bool = false, named: Bool = false) -> TcpdRuleSet {
        var random = SplitMix(state: seed)
        let daemonPool = withBadPatterns ? daemonTokens + badDaemonTokens : daemonTokens
        var clientPool = withBadPatterns ? clientTokens + badClientTokens + badClientTokens : clientTokens
        if named { clientPool += nameTokens + nameTokens }
        let optionPool = withBadPatterns ? optionTails + badOptionTails : optionTails
        func line() -> String {
            if withBadPatterns, Int.random(in: 0..<12, using: &random) == 0 { return "sshd 10.0.0.1\n" }
            let daemons = (0..<Int.random(in: 1...3, using: &random)).map { _ in
                daemonPool.randomElement(using: &random)!
            }
            let clients = (0..<Int.random(in: 1...4, using: &random)).map { _ in
                clientPool.randomElement(using: &random)!
            }
            let separator = Bool.random(using: &random) ? ", " : " "
            return daemons.joined(separator: separator) + ": " + clients.joined(separator: separator)
                + optionPool.randomElement(using: &random)! + "\n"
        }
        let allow = (0..<Int.random(in: 0...4, using: &random)).map { _ in line() }.joined()
        let deny = (0..<Int.random(in: 0...3, using: &random)).map { _ in line() }.joined()
        if named {
            return TcpdRuleSet(
                name: "random named seed \(seed)", allow: allow, deny: deny, clients: namedClients, hosts: namedHosts)
        }
        return TcpdRuleSet(name: "random seed \(seed)", allow: allow, deny: deny)
    }
}

@Suite(
    .enabled(
        if: TcpdmatchOracle.path != nil,
        "tcpdmatch not found: install the Debian package tcpd (apt-get install tcpd) to run the comparison"))
struct TcpdmatchComparisonTests {
    @Test(arguments: tcpdmatchTable)
    func sameVerdictAsTcpdmatch(_ ruleSet: TcpdRuleSet) throws {
        let (same, different) = try ruleSet.compare()
        #expect(same.count >= ruleSet.queries.count)
        for (prediction, ours) in different {
            Issue.record(
                "\(ruleSet.name): tcpdmatch \(prediction.query) (address \(prediction.address ?? "-"), name \(prediction.hostName ?? "-")) → \(prediction.access), swinetd → \(ours ? "granted" : "denied")"
            )
        }
    }

    @Test(
        .enabled(if: TcpdmatchOracle.canMountHosts, "needs root and unshare to give tcpdmatch its own /etc/hosts"),
        arguments: tcpdmatchNamedTable)
    func sameVerdictForNamedClients(_ ruleSet: TcpdRuleSet) throws {
        let (same, different) = try ruleSet.compare()
        #expect(same.count >= ruleSet.queries.count)
        for (prediction, ours) in different {
            Issue.record(
                "\(ruleSet.name): tcpdmatch \(prediction.query) (address \(prediction.address ?? "-"), name \(prediction.hostName ?? "-")) → \(prediction.access), swinetd → \(ours ? "granted" : "denied")"
            )
        }
    }

    @Test(arguments: tcpdmatchStricterTable)
    func neverMorePermissiveThanTcpdmatch(_ ruleSet: TcpdRuleSet) throws {
        let (same, different) = try ruleSet.compare()
        #expect(same.count + different.count >= ruleSet.queries.count)
        #expect(!different.isEmpty, "expected swinetd to be stricter than tcpdmatch somewhere")
        for (prediction, ours) in different where ours {
            Issue.record("\(ruleSet.name): swinetd allows \(prediction.query), tcpdmatch says \(prediction.access)")
        }
    }

    @Test(arguments: 1...40)
    func randomRuleSetsAgree(_ seed: Int) throws {
        let ruleSet = RandomTcpdRules.ruleSet(seed: UInt64(seed))
        let (same, different) = try ruleSet.compare()
        #expect(same.count >= ruleSet.queries.count)
        for (prediction, ours) in different {
            Issue.record(
                "seed \(seed)\nhosts.allow:\n\(ruleSet.allow ?? "")hosts.deny:\n\(ruleSet.deny ?? "")tcpdmatch \(prediction.query) (address \(prediction.address ?? "-"), name \(prediction.hostName ?? "-")) → \(prediction.access), swinetd → \(ours ? "granted" : "denied")"
            )
        }
    }

    @Test(
        .enabled(if: TcpdmatchOracle.canMountHosts, "needs root and unshare to give tcpdmatch its own /etc/hosts"),
        arguments: 1...40)
    func randomNamedRuleSetsAgree(_ seed: Int) throws {
        let ruleSet = RandomTcpdRules.ruleSet(seed: UInt64(seed), named: true)
        let (same, different) = try ruleSet.compare()
        #expect(same.count >= ruleSet.queries.count)
        for (prediction, ours) in different {
            Issue.record(
                "seed \(seed)\nhosts.allow:\n\(ruleSet.allow ?? "")hosts.deny:\n\(ruleSet.deny ?? "")tcpdmatch \(prediction.query) (address \(prediction.address ?? "-"), name \(prediction.hostName ?? "-")) → \(prediction.access), swinetd → \(ours ? "granted" : "denied")"
            )
        }
    }

    @Test(arguments: 1...40)
    func randomRuleSetsWithBadPatternsAreNeverMorePermissive(_ seed: Int) throws {
        let ruleSet = RandomTcpdRules.ruleSet(seed: UInt64(seed), withBadPatterns: true)
        let (same, different) = try ruleSet.compare()
        #expect(same.count + different.count >= ruleSet.queries.count)
        for (prediction, ours) in different where ours {
            Issue.record(
                "seed \(seed)\nhosts.allow:\n\(ruleSet.allow ?? "")hosts.deny:\n\(ruleSet.deny ?? "")swinetd allows \(prediction.query) (address \(prediction.address ?? "-")), tcpdmatch says \(prediction.access)"
            )
        }
    }

    @Test func tableSize() {
        let queries = tcpdmatchTable.reduce(0) { $0 + $1.queries.count }
        #expect(tcpdmatchTable.count >= 30)
        #expect(queries >= 600)
    }
}
