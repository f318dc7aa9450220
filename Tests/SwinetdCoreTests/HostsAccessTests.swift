import Foundation
import SwinetdCore
import Testing

// MARK: - Helpers

/// A temporary directory for hosts files and pattern files, removed on release.
final class HostsAccessScratch {
    let path: String

    init() throws {
        path = FileManager.default.temporaryDirectory.path + "/swinetd-hosts-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    @discardableResult
    func write(_ name: String, _ text: String) throws -> String {
        let file = path + "/" + name
        try Data(text.utf8).write(to: URL(fileURLWithPath: file))
        return file
    }
}

func hostsIP(_ text: String) -> IPAddress {
    guard let address = SocketAddressFormatting.parseNumeric(text) else { fatalError("bad test address \(text)") }
    return address
}

func hostsRules(allow: String = "", deny: String = "") -> (HostsAccessRules, [Diagnostic]) {
    HostsAccessRules.parse(
        allow: Array(allow.utf8), deny: Array(deny.utf8), allowName: "hosts.allow", denyName: "hosts.deny")
}

extension HostsAccessRules {
    /// Shorthand for the tests: the verdict for `daemon` from `address`.
    func allows(
        _ daemon: String, _ address: String, name: String? = nil, mismatch: Bool = false, user: String? = nil,
        server: String? = nil, port: UInt16? = nil
    ) -> Bool {
        check(
            daemon: daemon, serverAddress: server.map(hostsIP), serverPort: port,
            client: AccessClient(address: hostsIP(address), hostName: name, nameMismatch: mismatch, user: user)
        ).allowed
    }
}

/// Rules with `pattern` as the only client pattern allowed for `d`, everything else denied.
func onlyAllowed(_ pattern: String) -> HostsAccessRules {
    hostsRules(allow: "d: \(pattern)\n", deny: "ALL: ALL\n").0
}

// MARK: - Tables and order

@Suite struct HostsAccessOrderTests {
    @Test func allowThenDenyThenDefaultAllow() {
        let (rules, diagnostics) = hostsRules(allow: "in.fingerd: 127.0.0.1\n", deny: "ALL: ALL\n")
        #expect(diagnostics.isEmpty)
        #expect(rules.allows("in.fingerd", "127.0.0.1"))
        #expect(!rules.allows("in.fingerd", "127.0.0.2"))
        #expect(!rules.allows("sshd", "127.0.0.1"))

        let open = hostsRules(deny: "sshd: 10.0.0.1\n").0
        #expect(open.allows("in.fingerd", "10.0.0.1"))
        #expect(!open.allows("sshd", "10.0.0.1"))
        #expect(open.allows("sshd", "10.0.0.2"))
    }

    @Test func decisionNamesTheRuleAndItsOptions() {
        let (rules, _) = hostsRules(allow: "# c\n\nsshd: 10.0.0.1: spawn /bin/echo %a: allow\n", deny: "ALL: ALL\n")
        let client = AccessClient(address: hostsIP("10.0.0.1"))
        let decision = rules.check(daemon: "sshd", serverAddress: nil, client: client)
        #expect(
            decision
                == AccessDecision(
                    allowed: true, rule: ConfigLocation(file: "hosts.allow", line: 3),
                    options: ["spawn /bin/echo %a", "allow"]))
        let denied = rules.check(daemon: "ftpd", serverAddress: nil, client: client)
        #expect(
            denied == AccessDecision(allowed: false, rule: ConfigLocation(file: "hosts.deny", line: 1), options: []))
        let none = hostsRules().0.check(daemon: "x", serverAddress: nil, client: client)
        #expect(none == AccessDecision(allowed: true, rule: nil, options: []))
        #expect(hostsRules().0.isEmpty)
    }

    @Test func missingFilesAreEmpty() throws {
        let scratch = try HostsAccessScratch()
        let (rules, diagnostics) = HostsAccessRules.load(
            allowPath: scratch.path + "/none.allow", denyPath: scratch.path + "/none.deny")
        #expect(diagnostics.isEmpty)
        #expect(rules.isEmpty)
        #expect(rules.allows("sshd", "10.0.0.1"))

        let deny = try scratch.write("hosts.deny", "ALL: ALL\n")
        let (onlyDeny, _) = HostsAccessRules.load(allowPath: scratch.path + "/none.allow", denyPath: deny)
        #expect(!onlyDeny.allows("sshd", "10.0.0.1"))
    }

    @Test func unreadableFilesFailClosed() throws {
        let scratch = try HostsAccessScratch()
        // A directory cannot be read as a file: hosts.deny then denies everything not allowed.
        try FileManager.default.createDirectory(atPath: scratch.path + "/deny.d", withIntermediateDirectories: false)
        let allow = try scratch.write("hosts.allow", "sshd: 10.0.0.1\n")
        let (rules, diagnostics) = HostsAccessRules.load(allowPath: allow, denyPath: scratch.path + "/deny.d")
        #expect(rules.allows("sshd", "10.0.0.1"))
        #expect(!rules.allows("sshd", "10.0.0.2"))
        #expect(diagnostics.contains { $0.severity == .error && $0.location?.file == scratch.path + "/deny.d" })

        let (badAllow, _) = HostsAccessRules.load(allowPath: scratch.path + "/deny.d", denyPath: scratch.path + "/none")
        #expect(badAllow.allows("sshd", "10.0.0.2"))
    }
}

// MARK: - Line syntax

@Suite struct HostsAccessSyntaxTests {
    @Test func continuationCommentsAndSeparators() {
        let (rules, diagnostics) = hostsRules(
            allow: """
                # a comment \\
                sshd: 10.0.0.9
                sshd: 10.0.0.1 \\
                   10.0.0.2,10.0.0.3\t,, 10.0.0.4
                ftpd:\t10.0.0.5\r

                """,
            deny: "ALL: ALL\n")
        #expect(diagnostics.isEmpty)
        // The comment's continuation swallowed the next line, as in tcpd.
        #expect(!rules.allows("sshd", "10.0.0.9"))
        for host in ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"] { #expect(rules.allows("sshd", host)) }
        #expect(rules.allows("ftpd", "10.0.0.5"))
    }

    @Test func hashOnlyCommentsInColumnOne() {
        let (rules, diagnostics) = hostsRules(
            allow: "  # in.fingerd: 127.0.0.1\nsshd: 10.0.0.5 # office\n", deny: "ALL: ALL\n")
        // tcpd reads the indented line as a rule for the daemons "#" and "in.fingerd".
        #expect(rules.allows("in.fingerd", "127.0.0.1"))
        #expect(rules.allows("sshd", "10.0.0.5"))
        #expect(diagnostics.filter { $0.severity == .warning }.count == 2)
    }

    @Test func lineLengthLimitMatchesTcpd() {
        let fits = "sshd: 10.0.0.1" + String(repeating: " ", count: 2046 - 14) + "\n"
        #expect(fits.utf8.count == 2047)
        #expect(hostsRules(allow: fits, deny: "ALL: ALL\n").0.allows("sshd", "10.0.0.1"))

        let long = "sshd: 10.0.0.1" + String(repeating: " ", count: 2047 - 14) + "\nsshd: 10.0.0.2\n"
        let (rules, diagnostics) = hostsRules(allow: long, deny: "ALL: ALL\n")
        // tcpd stops reading hosts.allow at the long line: the rule below it does not allow either.
        #expect(!rules.allows("sshd", "10.0.0.1"))
        #expect(!rules.allows("sshd", "10.0.0.2"))
        #expect(
            diagnostics.contains {
                $0.severity == .error && $0.location == ConfigLocation(file: "hosts.allow", line: 1)
            })

        // In hosts.deny a long line denies everything that reaches it.
        let (deny, _) = hostsRules(allow: "sshd: 10.0.0.3\n", deny: "sshd: 10.0.0.9\n" + long)
        #expect(deny.allows("sshd", "10.0.0.3"))
        #expect(!deny.allows("sshd", "10.0.0.9"))
        #expect(!deny.allows("ftpd", "192.0.2.1"))

        // A 100 kB line of continuations is one line, still too long.
        let huge = "sshd: " + String(repeating: "10.0.0.1 \\\n", count: 10_000) + "\n"
        #expect(!hostsRules(allow: huge, deny: "ALL: ALL\n").0.allows("sshd", "10.0.0.1"))
    }

    @Test func continuationCountsTowardsTheLimit() {
        // 2045 characters + "\\\n" fill tcpd's buffer exactly; one more character after it fits,
        // two do not.
        let head = "sshd: 10.0.0.1" + String(repeating: " ", count: 2045 - 14) + "\\\n"
        #expect(hostsRules(allow: head + "x\n", deny: "ALL: ALL\n").0.allows("sshd", "10.0.0.1"))
        #expect(!hostsRules(allow: head + "xy\n", deny: "ALL: ALL\n").0.allows("sshd", "10.0.0.1"))
    }

    @Test func lastLineWithoutNewline() {
        // Debian's tcpd: the table ends in an error there.
        let (allow, diagnostics) = hostsRules(allow: "sshd: 10.0.0.1\nsshd: 10.0.0.2", deny: "ALL: ALL\n")
        #expect(allow.allows("sshd", "10.0.0.1"))
        #expect(!allow.allows("sshd", "10.0.0.2"))
        #expect(diagnostics.contains { $0.severity == .error && $0.location?.line == 2 })

        let deny = hostsRules(deny: "sshd: 10.0.0.1").0
        #expect(!deny.allows("ftpd", "192.0.2.7"))
        // Even a comment.
        #expect(!hostsRules(deny: "# just a comment").0.allows("ftpd", "192.0.2.7"))
        // A trailing empty continuation is not a line.
        #expect(hostsRules(deny: "sshd: 10.0.0.1\n\\\n").0.allows("ftpd", "192.0.2.7"))
        #expect(!hostsRules(deny: "sshd: 10.0.0.1 \\\n").0.allows("ftpd", "192.0.2.7"))
    }

    @Test func missingColon() {
        // hosts.allow: skipped, as in tcpd.
        let (allow, allowDiagnostics) = hostsRules(allow: "sshd 10.0.0.1\nsshd: 10.0.0.2\n", deny: "ALL: ALL\n")
        #expect(!allow.allows("sshd", "10.0.0.1"))
        #expect(allow.allows("sshd", "10.0.0.2"))
        #expect(allowDiagnostics.map(\.severity) == [.warning])

        // hosts.deny: fails closed (tcpd would skip it).
        let (deny, denyDiagnostics) = hostsRules(
            allow: "ftpd: 10.0.0.3\n", deny: "sshd: 10.0.0.9\nsshd 10.0.0.1\nftpd: 10.0.0.4\n")
        #expect(!deny.allows("sshd", "10.0.0.2"))
        #expect(!deny.allows("telnetd", "192.0.2.1"))
        #expect(deny.allows("ftpd", "10.0.0.3"))
        #expect(
            denyDiagnostics.contains {
                $0.severity == .error && $0.location == ConfigLocation(file: "hosts.deny", line: 2)
            })
    }

    @Test func nulByteEndsTheTable() {
        let rules = hostsRules(deny: "sshd: 10.0.0.1\0\n").0
        #expect(!rules.allows("ftpd", "192.0.2.1"))
    }

    @Test func emptyListsNeverMatch() {
        let (rules, diagnostics) = hostsRules(deny: "sshd:\n: ALL\n")
        #expect(rules.allows("sshd", "10.0.0.1"))
        #expect(diagnostics.count == 2)
    }

    @Test func unbracketedIPv6SplitsTheRule() {
        // "2001:db8::1" splits at its colons, as in tcpd: the client list is "2001" and the rest are
        // options, which are invalid, so the rule (which never matches) is reported.
        let (rules, diagnostics) = hostsRules(allow: "sshd: 2001:db8::1\n", deny: "ALL: ALL\n")
        #expect(!rules.allows("sshd", "2001:db8::1"))
        #expect(diagnostics.contains { $0.severity == .error })
        #expect(onlyAllowed("[2001:db8::1]").allows("d", "2001:db8::1"))
    }
}

// MARK: - Patterns

@Suite struct HostsAccessPatternTests {
    @Test func wildcardsForHosts() {
        let all = onlyAllowed("ALL")
        #expect(all.allows("d", "192.0.2.1"))
        #expect(all.allows("d", "::1"))
        #expect(!all.allows("e", "::1"))

        let local = onlyAllowed("LOCAL")
        #expect(local.allows("d", "10.0.0.1", name: "gateway"))
        #expect(!local.allows("d", "10.0.0.1", name: "gw.example.com"))
        #expect(!local.allows("d", "10.0.0.1"))
        #expect(!local.allows("d", "10.0.0.1", name: "gateway", mismatch: true))

        let known = onlyAllowed("KNOWN")
        #expect(known.allows("d", "10.0.0.1", name: "gw.example.com"))
        #expect(!known.allows("d", "10.0.0.1"))
        #expect(!known.allows("d", "10.0.0.1", name: "gw.example.com", mismatch: true))

        let unknown = onlyAllowed("UNKNOWN")
        #expect(unknown.allows("d", "10.0.0.1"))
        #expect(!unknown.allows("d", "10.0.0.1", name: "gw.example.com"))
        #expect(!unknown.allows("d", "10.0.0.1", mismatch: true))

        let paranoid = onlyAllowed("PARANOID")
        #expect(paranoid.allows("d", "10.0.0.1", name: "liar.example.com", mismatch: true))
        #expect(!paranoid.allows("d", "10.0.0.1", name: "gw.example.com"))
        #expect(!paranoid.allows("d", "10.0.0.1"))
    }

    @Test func domainsAndNames() {
        let domain = onlyAllowed(".Example.COM")
        #expect(domain.allows("d", "10.0.0.1", name: "www.example.com"))
        #expect(domain.allows("d", "10.0.0.1", name: "A.B.EXAMPLE.com"))
        #expect(!domain.allows("d", "10.0.0.1", name: "example.com"))
        #expect(!domain.allows("d", "10.0.0.1", name: "badexample.com"))
        #expect(!domain.allows("d", "10.0.0.1"))

        let exact = onlyAllowed("gw.example.com 192.0.2.7")
        #expect(exact.allows("d", "10.0.0.1", name: "GW.example.com"))
        #expect(!exact.allows("d", "10.0.0.1", name: "gw.example.com.evil"))
        #expect(exact.allows("d", "192.0.2.7"))
        #expect(!exact.allows("d", "192.0.2.70"))

        // A name prefix ("foo." also works on names, as in tcpd).
        let prefix = onlyAllowed("build.")
        #expect(prefix.allows("d", "10.0.0.1", name: "build.example.com"))
        #expect(!prefix.allows("d", "10.0.0.1", name: "builder.example.com"))
    }

    @Test func addressPrefixes() {
        let rules = onlyAllowed("192.168. 10.")
        #expect(rules.allows("d", "192.168.44.1"))
        #expect(rules.allows("d", "10.255.0.1"))
        #expect(!rules.allows("d", "192.169.0.1"))
        #expect(!rules.allows("d", "100.0.0.1"))
        #expect(rules.allows("d", "::ffff:10.1.2.3"))
    }

    @Test func netmasksAndPrefixLengths() {
        let mask = onlyAllowed("131.155.72.0/255.255.254.0")
        #expect(mask.allows("d", "131.155.72.0"))
        #expect(mask.allows("d", "131.155.73.255"))
        #expect(!mask.allows("d", "131.155.74.0"))
        #expect(mask.allows("d", "::ffff:131.155.73.1"))
        #expect(!mask.allows("d", "::1"))

        let cidr = onlyAllowed("10.1.0.0/16 192.0.2.7/32")
        #expect(cidr.allows("d", "10.1.200.3"))
        #expect(!cidr.allows("d", "10.2.0.1"))
        #expect(cidr.allows("d", "192.0.2.7"))
        #expect(!cidr.allows("d", "192.0.2.8"))

        // Non-contiguous masks work as in tcpd.
        let odd = onlyAllowed("1.0.3.0/255.0.255.0")
        #expect(odd.allows("d", "1.2.3.4"))
        #expect(!odd.allows("d", "1.2.4.4"))

        #expect(onlyAllowed("0.0.0.0/0.0.0.0").allows("d", "198.51.100.1"))
        #expect(onlyAllowed("0.0.0.0/1").allows("d", "127.0.0.1"))
        #expect(!onlyAllowed("0.0.0.0/1").allows("d", "128.0.0.1"))
    }

    @Test func ipv6() {
        let exact = onlyAllowed("[::1] [2001:DB8::0:5]")
        #expect(exact.allows("d", "::1"))
        #expect(exact.allows("d", "2001:db8::5"))
        #expect(!exact.allows("d", "2001:db8::6"))
        #expect(!exact.allows("d", "127.0.0.1"))

        let net = onlyAllowed("[3ffe:505:2:1::]/64")
        #expect(net.allows("d", "3ffe:505:2:1::"))
        #expect(net.allows("d", "3ffe:505:2:1:ffff:ffff:ffff:ffff"))
        #expect(!net.allows("d", "3ffe:505:2:2::"))
        // tcpd masks both sides for IPv6: host bits in the pattern do not matter.
        #expect(onlyAllowed("[2001:db8::5]/32").allows("d", "2001:db8:ffff::1"))
        #expect(onlyAllowed("[::1]/128").allows("d", "::1"))
        #expect(onlyAllowed("[::]/0").allows("d", "2001:db8::1"))
        #expect(!onlyAllowed("[::]/0").allows("d", "192.0.2.1"))
        #expect(onlyAllowed("[2001:db8::]/33").allows("d", "2001:db8:7fff::1"))
        #expect(!onlyAllowed("[2001:db8::]/33").allows("d", "2001:db8:8000::1"))
        // Scopes are ignored, as in tcpd.
        #expect(onlyAllowed("[fe80::1%1]").allows("d", "fe80::1%2"))

        // Mapped IPv4 peers are IPv4: IPv6 patterns for them do not match, IPv4 ones do.
        #expect(!onlyAllowed("[::ffff:192.0.2.1]").allows("d", "::ffff:192.0.2.1"))
        #expect(onlyAllowed("192.0.2.1").allows("d", "::ffff:192.0.2.1"))
    }

    @Test func wildcardPatterns() {
        let addresses = onlyAllowed("192.168.1.* 10.?.0.1")
        #expect(addresses.allows("d", "192.168.1.77"))
        #expect(addresses.allows("d", "10.7.0.1"))
        #expect(!addresses.allows("d", "10.17.0.1"))
        // Address-shaped wildcards never look at the name (tcpd's would).
        #expect(!addresses.allows("d", "203.0.113.5", name: "192.168.1.evil.example"))

        let names = onlyAllowed("web??.example.* *.corp")
        #expect(names.allows("d", "10.0.0.1", name: "WEB01.example.org"))
        #expect(!names.allows("d", "10.0.0.1", name: "web1.example.org"))
        #expect(names.allows("d", "10.0.0.1", name: "a.b.corp"))
        #expect(!names.allows("d", "10.0.0.1"))

        #expect(onlyAllowed("*").allows("d", "2001:db8::1"))
        // Wildcards also match the word tcpd uses for an unknown name.
        #expect(onlyAllowed("unk*").allows("d", "10.0.0.1"))

        // Hostile names cost linear-ish time, not exponential.
        let hostile = String(repeating: "a", count: 10_000) + ".example"
        let slow = onlyAllowed("*a*a*a*a*a*a*a*a*a*a*b")
        #expect(!slow.allows("d", "10.0.0.1", name: hostile))
    }

    @Test func userAtHost() {
        let rules = onlyAllowed("bob@192.0.2.0/24 KNOWN@[::1] ALL@10.0.0.1")
        #expect(rules.allows("d", "192.0.2.9", user: "BOB"))
        #expect(!rules.allows("d", "192.0.2.9", user: "alice"))
        #expect(!rules.allows("d", "192.0.2.9"))
        #expect(rules.allows("d", "::1", user: "anyone"))
        #expect(!rules.allows("d", "::1"))
        #expect(rules.allows("d", "10.0.0.1"))
        #expect(rules.needsUser)
        #expect(!onlyAllowed("ALL@10.0.0.1").needsUser)

        let unknownUser = onlyAllowed("UNKNOWN@ALL")
        #expect(unknownUser.allows("d", "10.0.0.1"))
        #expect(!unknownUser.allows("d", "10.0.0.1", user: "root"))
        #expect(onlyAllowed("r*t@ALL").allows("d", "10.0.0.1", user: "root"))
    }

    @Test func patternFiles() throws {
        let scratch = try HostsAccessScratch()
        let nested = try scratch.write("nested", "198.51.100.7\n")
        let list = try scratch.write("list", "192.0.2.0/24 [::1]\n  .example.org\t\(nested)\n10.1.\n")
        let rules = onlyAllowed("\(list) EXCEPT 192.0.2.9")
        #expect(rules.allows("d", "192.0.2.1"))
        #expect(!rules.allows("d", "192.0.2.9"))
        #expect(rules.allows("d", "::1"))
        #expect(rules.allows("d", "10.1.5.5"))
        #expect(rules.allows("d", "203.0.113.1", name: "host.example.org"))
        #expect(rules.allows("d", "198.51.100.7"))
        #expect(!rules.allows("d", "203.0.113.1"))
        #expect(rules.needsHostName)

        // A missing file matches nothing (tcpd), with a warning.
        let (missing, diagnostics) = hostsRules(allow: "d: \(scratch.path)/absent\n", deny: "ALL: ALL\n")
        #expect(!missing.allows("d", "192.0.2.1"))
        #expect(diagnostics.map(\.severity) == [.warning])

        // A file naming itself is an error, resolved strictly.
        let loop = try scratch.write("loop", "192.0.2.1 \(scratch.path)/loop\n")
        let (looped, loopDiagnostics) = hostsRules(allow: "d: \(loop)\n", deny: "d: \(loop)\n")
        #expect(looped.allows("d", "192.0.2.1"))
        #expect(!looped.allows("d", "192.0.2.2"))
        #expect(loopDiagnostics.contains { $0.severity == .error })

        // Problems inside a pattern file are reported at that file's line.
        let bad = try scratch.write("bad", "192.0.2.0/24\n10.0.0.1/8\n")
        let (_, badDiagnostics) = hostsRules(deny: "d: \(bad)\n")
        #expect(badDiagnostics.contains { $0.location == ConfigLocation(file: bad, line: 2) })

        // A big file full of mistakes reports the first hundred, then says so.
        let junk = try scratch.write("junk", String(repeating: "10.0.0.1/8\n", count: 500))
        let (junkRules, junkDiagnostics) = hostsRules(deny: "d: \(junk)\n")
        #expect(junkDiagnostics.count == 101)
        #expect(!junkRules.allows("d", "192.0.2.1"))
    }

    /// Netgroups cannot be evaluated (no NIS), so they fail closed: a netgroup never allows, and a
    /// netgroup in hosts.deny denies.
    @Test func netgroupsFailClosed() {
        let (rules, diagnostics) = hostsRules(allow: "d: @trusted\n", deny: "d: @untrusted\n")
        #expect(!rules.allows("d", "10.0.0.1", name: "a.example.com"))
        #expect(diagnostics.filter { $0.severity == .warning }.count == 2)
        #expect(!onlyAllowed("@trusted").allows("d", "10.0.0.1", name: "a.example.com"))
    }

    @Test func caseInsensitive() {
        let (rules, _) = hostsRules(allow: "SSHD: all except 10.0.0.1\n", deny: "all: all\n")
        #expect(rules.allows("sshd", "10.0.0.2"))
        #expect(!rules.allows("sshd", "10.0.0.1"))
        #expect(!rules.allows("ftpd", "10.0.0.2"))
        #expect(onlyAllowed("Known").allows("d", "10.0.0.1", name: "x.example"))
    }
}

// MARK: - EXCEPT

@Suite struct HostsAccessExceptTests {
    @Test func nestedExceptIsRightAssociative() {
        // a EXCEPT (b EXCEPT c)
        let rules = onlyAllowed("ALL EXCEPT 10.0.0.0/8 EXCEPT 10.1.0.0/16")
        #expect(rules.allows("d", "192.0.2.1"))
        #expect(!rules.allows("d", "10.2.0.1"))
        #expect(rules.allows("d", "10.1.0.1"))

        let deeper = onlyAllowed("ALL EXCEPT 10. EXCEPT 10.1. EXCEPT 10.1.1.")
        #expect(deeper.allows("d", "11.0.0.1"))
        #expect(!deeper.allows("d", "10.0.0.1"))
        #expect(deeper.allows("d", "10.1.0.1"))
        #expect(!deeper.allows("d", "10.1.1.1"))
    }

    @Test func exceptEdgeCases() {
        #expect(!onlyAllowed("EXCEPT 10.0.0.1").allows("d", "10.0.0.1"))
        #expect(onlyAllowed("ALL EXCEPT").allows("d", "10.0.0.1"))
        #expect(!onlyAllowed("10.0.0.1 EXCEPT 10.0.0.1").allows("d", "10.0.0.1"))
        #expect(!onlyAllowed("10.0.0.1 except 10.0.0.1").allows("d", "10.0.0.1"))
        // Elements after EXCEPT form one list: any of them excepts.
        let list = onlyAllowed("ALL EXCEPT 10.0.0.1, 10.0.0.2 10.0.0.3")
        #expect(!list.allows("d", "10.0.0.2"))
        #expect(!list.allows("d", "10.0.0.3"))
        #expect(list.allows("d", "10.0.0.4"))
    }

    @Test func exceptInDaemonList() {
        let (rules, _) = hostsRules(deny: "ALL EXCEPT in.fingerd sshd: 192.0.2.0/24\n")
        #expect(rules.allows("in.fingerd", "192.0.2.1"))
        #expect(rules.allows("sshd", "192.0.2.1"))
        #expect(!rules.allows("ftpd", "192.0.2.1"))
        #expect(rules.allows("ftpd", "198.51.100.1"))
    }
}

// MARK: - Daemons and server endpoints

@Suite struct HostsAccessDaemonTests {
    @Test func daemonPatterns() {
        let (rules, _) = hostsRules(allow: "in.* .d x?d: ALL\n", deny: "ALL: ALL\n")
        #expect(rules.allows("in.fingerd", "10.0.0.1"))
        #expect(rules.allows("x.d", "10.0.0.1"))
        #expect(rules.allows("xyd", "10.0.0.1"))
        #expect(!rules.allows("d", "10.0.0.1"))
        #expect(!rules.allows("sshd", "10.0.0.1"))
    }

    @Test func serverEndpoints() {
        let (rules, diagnostics) = hostsRules(
            allow: "sshd@192.0.2.1: ALL\nin.fingerd@[::1]: ALL\nftpd@10.0.0.0/8: ALL\n", deny: "ALL: ALL\n")
        #expect(diagnostics.isEmpty)
        #expect(rules.allows("sshd", "198.51.100.1", server: "192.0.2.1"))
        #expect(rules.allows("sshd", "198.51.100.1", server: "::ffff:192.0.2.1"))
        #expect(!rules.allows("sshd", "198.51.100.1", server: "192.0.2.2"))
        #expect(!rules.allows("sshd", "198.51.100.1"))
        #expect(rules.allows("in.fingerd", "198.51.100.1", server: "::1"))
        #expect(rules.allows("ftpd", "198.51.100.1", server: "10.9.9.9"))
        #expect(!rules.needsHostName)
    }

    @Test func serverNamesAreResolvedStrictly() {
        // swinetd does not look up its own names (tcpd would): such patterns cannot be told.
        let (allow, diagnostics) = hostsRules(
            allow: "ALL@UNKNOWN ALL@gw.example.com ALL@LOCAL: ALL\n", deny: "ALL: ALL\n")
        #expect(diagnostics.map(\.severity) == [.warning, .warning, .warning])
        #expect(!allow.allows("sshd", "198.51.100.1", server: "192.0.2.1"))
        // Without a server address, UNKNOWN matches it, as in tcpd.
        #expect(allow.allows("sshd", "198.51.100.1"))
        let deny = hostsRules(deny: "ALL@gw.example.com: ALL\n").0
        #expect(!deny.allows("sshd", "198.51.100.1", server: "192.0.2.1"))
        let known = hostsRules(deny: "ALL@KNOWN: ALL\n").0
        #expect(!known.allows("sshd", "198.51.100.1", server: "192.0.2.1"))
        #expect(known.allows("sshd", "198.51.100.1"))
    }

    @Test func portNumbers() {
        // Debian's libwrap: a number in the daemon list is the server port.
        let (rules, diagnostics) = hostsRules(deny: "2222 079: ALL\n")
        #expect(diagnostics.isEmpty)
        #expect(!rules.allows("sshd", "10.0.0.1", port: 2222))
        #expect(!rules.allows("fingerd", "10.0.0.1", port: 79))
        #expect(rules.allows("sshd", "10.0.0.1", port: 22))
        // The daemon name is never compared with a number.
        #expect(rules.allows("2222", "10.0.0.1", port: 22))
        // Without the port the rule cannot be evaluated: strict (a deny rule matches, an allow rule does not).
        #expect(!rules.allows("sshd", "10.0.0.1"))
        #expect(!hostsRules(allow: "2222: ALL\n", deny: "ALL: ALL\n").0.allows("sshd", "10.0.0.1"))
        #expect(hostsRules(allow: "2222: ALL\n", deny: "ALL: ALL\n").0.allows("sshd", "10.0.0.1", port: 2222))
    }
}

// MARK: - Options

@Suite struct HostsAccessOptionTests {
    @Test func allowAndDenyOverrideTheFile() {
        let (rules, diagnostics) = hostsRules(
            allow: "ALL: .bad.example: DENY\nALL: 10.0.0.0/8: allow\n",
            deny: "ALL: 192.0.2.0/24: allow\nALL: ALL: deny\n")
        #expect(diagnostics.isEmpty)
        #expect(!rules.allows("sshd", "10.0.0.1", name: "x.bad.example"))
        #expect(rules.allows("sshd", "10.0.0.1", name: "x.good.example"))
        #expect(rules.allows("sshd", "192.0.2.1"))
        #expect(!rules.allows("sshd", "198.51.100.1"))
    }

    @Test func commandsAreNeverRun() {
        let (rules, diagnostics) = hostsRules(
            allow: "in.fingerd: ALL: twist /bin/echo 421 %h\n",
            deny: "in.tftpd: ALL: spawn (/usr/sbin/safe_finger -l @%h | /usr/bin/mail -s %d-%h root) &\n")
        let client = AccessClient(address: hostsIP("192.0.2.1"))
        // twist replaces the server: swinetd denies and reports the command.
        let twist = rules.check(daemon: "in.fingerd", serverAddress: nil, client: client)
        #expect(!twist.allowed)
        #expect(twist.options == ["twist /bin/echo 421 %h"])
        let spawn = rules.check(daemon: "in.tftpd", serverAddress: nil, client: client)
        #expect(!spawn.allowed)
        #expect(spawn.options == ["spawn (/usr/sbin/safe_finger -l @%h | /usr/bin/mail -s %d-%h root) &"])
        #expect(diagnostics.filter { $0.severity == .warning }.count == 2)
    }

    @Test func escapedColonsAndKeyValueForms() {
        let (rules, diagnostics) = hostsRules(
            allow:
                "sshd: ALL: setenv PATH /bin\\:/usr/bin: severity = auth.notice: umask=027: nice: rfc931 5: keepalive: allow\n",
            deny: "ALL: ALL\n")
        #expect(diagnostics.filter { $0.severity == .error }.isEmpty)
        let decision = rules.check(
            daemon: "sshd", serverAddress: nil, client: AccessClient(address: hostsIP("192.0.2.1")))
        #expect(decision.allowed)
        #expect(
            decision.options == [
                "setenv PATH /bin:/usr/bin", "severity = auth.notice", "umask=027", "nice", "rfc931 5", "keepalive",
                "allow",
            ])
    }

    @Test(arguments: [
        "bogus", "allow: severity info", "deny yes", "keepalive 5", "user", "umask 999", "umask 08", "nice x",
        "linger", "linger -1", "rfc931 0", "severity error", "severity syslog.info", "severity local0",
        "twist x: allow",
        "user nosuchuser-swinetd", "user root.nosuchgroup-swinetd", "group nosuchgroup-swinetd", "", " : allow",
        "allow:",
    ])
    func badOptionsDeny(_ options: String) {
        // tcpd denies when a rule with a bad option matches, even in hosts.allow and before "allow".
        let (rules, diagnostics) = hostsRules(allow: "sshd: ALL: \(options)\n")
        #expect(!rules.allows("sshd", "192.0.2.1"))
        #expect(rules.allows("ftpd", "192.0.2.1"))
        #expect(diagnostics.contains { $0.severity == .error })
    }

    @Test(arguments: [
        "severity emerg", "severity LOCAL7.Debug", "user root", "user root.root", "group root", "umask 0777", "nice -5",
        "linger 0", "rfc931", "banners /nonexistent", "setenv FOO", "spawn echo a\\\\:b",
    ])
    func goodOptionsKeepTheVerdict(_ options: String) {
        let (rules, diagnostics) = hostsRules(allow: "sshd: ALL: \(options)\n", deny: "ALL: ALL\n")
        #expect(rules.allows("sshd", "192.0.2.1"))
        #expect(!diagnostics.contains { $0.severity == .error })
    }

    @Test func aclexecIsResolvedStrictly() {
        // swinetd does not run the command: an allowing rule with aclexec never matches, a denying one always does.
        let allow = hostsRules(allow: "sshd: ALL: aclexec /usr/local/bin/check %a\n", deny: "ALL: ALL\n").0
        #expect(!allow.allows("sshd", "192.0.2.1"))
        let deny = hostsRules(deny: "sshd: ALL: aclexec /usr/local/bin/check %a\n").0
        #expect(!deny.allows("sshd", "192.0.2.1"))
        #expect(deny.allows("ftpd", "192.0.2.1"))
    }
}

// MARK: - Fail closed on patterns tcpd misreads

@Suite struct HostsAccessFailClosedTests {
    @Test(arguments: [
        "10.0.0.5/24", "0.0.0.0/0", "10.0.0.1/255.255.255.255", "10.0.0.0/33", "010.0.0.0/8", "10.0.0.0/08",
        "10.0.0.0/24x",
        "10.0/8", "[::1]/ab", "[::1]/129", "[zz::1]", "[10.0.0.1]", "[::1]/", "1.2.3.*/24", "host.example/24",
    ])
    func invalidPatternsAreStrict(_ pattern: String) {
        // In an allowing rule the pattern never matches...
        let (allow, diagnostics) = hostsRules(allow: "d: \(pattern) 198.51.100.1\n", deny: "ALL: ALL\n")
        #expect(diagnostics.contains { $0.severity == .error })
        #expect(!allow.allows("d", "10.0.0.5"))
        #expect(!allow.allows("d", "::1"))
        #expect(allow.allows("d", "198.51.100.1"))
        // ... under EXCEPT it always does ...
        let except = hostsRules(allow: "d: ALL EXCEPT \(pattern)\n", deny: "ALL: ALL\n").0
        #expect(!except.allows("d", "203.0.113.1"))
        // ... and in a denying rule it always matches.
        let deny = hostsRules(deny: "d: \(pattern)\n").0
        #expect(!deny.allows("d", "203.0.113.1"))
        #expect(deny.allows("e", "203.0.113.1"))
        let denyExcept = hostsRules(deny: "d: ALL EXCEPT \(pattern)\n").0
        #expect(!denyExcept.allows("d", "203.0.113.1"))
    }
}

// MARK: - What the caller must look up

@Suite struct HostsAccessLookupTests {
    @Test func needsHostName() {
        for pattern in ["10.0.0.1", "10.", "10.0.0.0/8", "[::1]", "[::]/0", "ALL", "10.*", "@group"] {
            #expect(!onlyAllowed(pattern).needsHostName, "\(pattern)")
        }
        for pattern in [
            "LOCAL", "KNOWN", "UNKNOWN", "PARANOID", ".example.com", "host.example.com", "web*", "ALL EXCEPT LOCAL",
        ] {
            #expect(onlyAllowed(pattern).needsHostName, "\(pattern)")
        }
        #expect(!hostsRules(allow: "sshd@gw.example.com: 10.0.0.1\n").0.needsHostName)
        #expect(!onlyAllowed("bob@10.0.0.1").needsHostName)
        #expect(onlyAllowed("bob@.example.com").needsHostName)
    }

    @Test func needsUser() {
        #expect(!onlyAllowed("ALL").needsUser)
        #expect(onlyAllowed("KNOWN@ALL").needsUser)
        #expect(hostsRules(deny: "sshd: root@ALL\n").0.needsUser)
    }
}

// MARK: - % expansion

@Suite struct HostsAccessPercentTests {
    let client = AccessClient(address: hostsIP("::ffff:192.0.2.7"), hostName: "gw.example.com", user: "bob")

    @Test func expandsEveryLetter() {
        let text = expandPercent(
            "%a %A %c %d %h %H %n %N %p %s %u %r %R %% %x %", daemon: "in.fingerd", client: client,
            serverAddress: hostsIP("10.0.0.1"), pid: 4242)
        #expect(
            text
                == "192.0.2.7 10.0.0.1 bob@gw.example.com in.fingerd gw.example.com 10.0.0.1 gw.example.com unknown 4242 in.fingerd@10.0.0.1 bob 0 0 %  %"
        )
    }

    @Test func unknownNamesAndUsers() {
        let bare = AccessClient(address: hostsIP("2001:db8::1"))
        #expect(
            expandPercent("%c|%h|%n|%u|%s|%A", daemon: "d", client: bare, serverAddress: nil, pid: 1)
                == "2001:db8::1|2001:db8::1|unknown|unknown|d|unknown")
        let liar = AccessClient(address: hostsIP("192.0.2.1"), hostName: "liar.example", nameMismatch: true)
        #expect(expandPercent("%h %n", daemon: "d", client: liar, serverAddress: nil, pid: 1) == "192.0.2.1 paranoid")
    }

    @Test(arguments: ["a;rm -rf /;", "`reboot`", "$(reboot)", "x\ny", "a b\tc", "'\"\\|&<>*?[]~#", "héllo", "\0nul"])
    func hostileValuesAreNeutralised(_ hostile: String) {
        let attacker = AccessClient(address: hostsIP("192.0.2.1"), hostName: hostile, user: hostile)
        let text = expandPercent("finger @%h %u %c %n", daemon: hostile, client: attacker, serverAddress: nil, pid: 1)
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!@%-_=+:,./ ".utf8)
        #expect(text.utf8.allSatisfy { allowed.contains($0) }, "\(text)")
        #expect(!text.contains(";") && !text.contains("`") && !text.contains("$") && !text.contains("\n"))
        let daemonOnly = expandPercent("%d", daemon: hostile, client: attacker, serverAddress: nil, pid: 1)
        #expect(daemonOnly.utf8.allSatisfy { allowed.contains($0) && $0 != UInt8(ascii: " ") })
    }

    @Test func expansionsAreSanitisedExactly() {
        let attacker = AccessClient(address: hostsIP("192.0.2.1"), hostName: "a;rm -rf /;", user: "`id`$(id)")
        #expect(
            expandPercent("%h|%u", daemon: "d", client: attacker, serverAddress: nil, pid: 1) == "a_rm_-rf_/_|_id___id_"
        )
    }

    @Test func lengthIsBounded() {
        let huge = String(repeating: "x", count: 10_000)
        let attacker = AccessClient(address: hostsIP("192.0.2.1"), hostName: huge, user: huge)
        #expect(expandPercent("%h", daemon: "d", client: attacker, serverAddress: nil, pid: 1).utf8.count == 256)
        let many = expandPercent(
            String(repeating: "%h%u", count: 100), daemon: "d", client: attacker, serverAddress: nil, pid: 1)
        #expect(many.utf8.count == 4096)
        // A long template is cut too, and not inside a UTF-8 character.
        let template = String(repeating: "é", count: 3000)
        let cut = expandPercent(template, daemon: "d", client: attacker, serverAddress: nil, pid: 1)
        #expect(cut.utf8.count == 4096)
        #expect(cut == String(repeating: "é", count: 2048))
        let odd = expandPercent("a" + template, daemon: "d", client: attacker, serverAddress: nil, pid: 1)
        #expect(odd.utf8.count == 4095)
        #expect(!odd.contains("\u{FFFD}"))
    }
}
