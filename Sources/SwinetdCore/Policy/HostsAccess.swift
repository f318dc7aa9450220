// tcp_wrappers access control: /etc/hosts.allow and /etc/hosts.deny as Debian's libwrap 7.6.q
// reads them (hosts_access(5), hosts_options(5)), checked against `tcpdmatch` in the tests.
//
// Semantics kept from tcpd:
// - First match in hosts.allow allows; else first match in hosts.deny denies; else allow. A missing
//   file is empty. Options `allow` / `deny` at the end of a rule replace the file's verdict.
// - `daemon_list : client_list [: option : option ...]`; backslash-newline joins lines; a line
//   whose first character is `#` is a comment (a `#` anywhere else is an ordinary character, as in
//   tcpd); lists are separated by blanks and commas; `EXCEPT` nests right to left.
// - Daemon patterns: names, wildcards, `ALL`, a number (the server port, Debian), `name@host`
//   (server endpoint). Client patterns: `ALL LOCAL KNOWN UNKNOWN PARANOID`, `.domain`, `net.`,
//   `n.n.n.n/m.m.m.m`, `n.n.n.n/len`, `[v6]`, `[v6]/len`, `/file`, `*` `?`, `user@host`, names and
//   addresses. IPv4-mapped IPv6 peers are matched as IPv4. Matching ignores case.
// - A bad option (unknown name, missing or extra value, `allow`/`deny`/`twist` not last, unknown
//   user, bad umask ...) makes the rule deny whatever it matches, as tcpd does.
// - A line longer than tcpd's 2046 characters, a last line without newline, or an unreadable file
//   ends the table: nothing below it in hosts.allow allows, and in hosts.deny every request that
//   reaches it is denied (Debian's tcpd does exactly this).
//
// Where swinetd differs, it is stricter (fail closed), never more permissive than tcpd:
// - A line without ':' is skipped in hosts.allow (as tcpd) but in hosts.deny it denies every
//   request that reaches it (tcpd skips it, silently dropping what was probably a deny rule).
// - Patterns tcpd would misread or never match (`10.0.0.5/24` with host bits set, `/0`, mask
//   `255.255.255.255`, `[v6]/junk`, octal or hex dotted quads, unreadable `/file`s, ...) and
//   conditions swinetd cannot evaluate (`aclexec`, a port pattern when the port is not known, a
//   server pattern that needs the server's host name: swinetd does not look up its own names) are
//   "unknown": the rule resolves them the strict way (an allowing rule does not match, a denying
//   rule does; inverted under EXCEPT). Each is reported as an error when the rules are loaded.
// - `twist` replaces the server in tcpd; swinetd denies the connection instead. `spawn`, `twist`
//   and `aclexec` commands are never run: swinetd never executes shell commands from these files,
//   it returns them in `AccessDecision.options` for the log. Other options (`severity`, `banners`,
//   `setenv`, `umask`, `user`, `group`, `nice`, `keepalive`, `linger`, `rfc931`) are validated
//   like tcpd does and otherwise ignored.
//
// Other differences:
// - A wildcard made only of digits, dots, `*` and `?` (`10.1.*`) matches addresses only; tcpd also
//   tries it on the host name, so in hosts.allow a client that names itself `10.1.evil.example`
//   would pass. (In hosts.deny such a client is then not denied by that pattern either.)
// - `@netgroup` is not supported (Debian's tcpd asks NIS): it is resolved strictly, with a warning,
//   so it never allows in hosts.allow and always denies in hosts.deny.
// - `/file` patterns are read when the rules are loaded (tcpd reads them on every request).

/// The client side of a decision, as far as swinetd knows it.
public struct AccessClient: Sendable {
    public var address: IPAddress
    /// Forward-confirmed host name, nil when unknown (lookup failed or not done). `nameMismatch`: the
    /// reverse name did not forward-confirm (PARANOID).
    public var hostName: String?
    public var nameMismatch: Bool
    /// RFC 1413 user, nil when unknown.
    public var user: String?

    public init(address: IPAddress, hostName: String? = nil, nameMismatch: Bool = false, user: String? = nil) {
        self.address = address
        self.hostName = hostName
        self.nameMismatch = nameMismatch
        self.user = user
    }
}

/// The outcome of a hosts.allow / hosts.deny check.
public struct AccessDecision: Sendable, Equatable {
    public var allowed: Bool
    /// The rule that decided; nil when nothing matched (the default: allow).
    public var rule: ConfigLocation?
    /// The option fields of that rule (after the second ':', unescaped and trimmed), for the log:
    /// raw configuration text, so pass it through `sanitizedForLog`. swinetd never executes them: a
    /// `spawn` or `twist` here was not run (`expandPercent` shows what tcpd would have run).
    public var options: [String]

    public init(allowed: Bool, rule: ConfigLocation?, options: [String]) {
        self.allowed = allowed
        self.rule = rule
        self.options = options
    }
}

/// The parsed hosts.allow and hosts.deny.
public struct HostsAccessRules: Sendable {
    var allowRules: [TCPWrappers.Rule]
    var denyRules: [TCPWrappers.Rule]
    /// Whether any rule needs the client's host name (so the caller knows to do a reverse lookup).
    public let needsHostName: Bool
    /// Whether any rule needs the client's user (ident).
    public let needsUser: Bool

    init(allowRules: [TCPWrappers.Rule], denyRules: [TCPWrappers.Rule]) {
        self.allowRules = allowRules
        self.denyRules = denyRules
        let clients = (allowRules + denyRules).flatMap { rule -> [TCPWrappers.ClientPattern] in
            guard case .rule(_, let clients) = rule.body else { return [] }
            return clients.all
        }
        needsHostName = clients.contains { $0.host.usesName }
        needsUser = clients.contains { $0.usesUser }
    }

    /// No rules in either file: every check allows.
    public var isEmpty: Bool { allowRules.isEmpty && denyRules.isEmpty }

    /// Reads and parses both files. A missing file is empty (tcpd semantics); an unreadable one is a
    /// read error that fails closed (see the type's notes). `/file` patterns are read now.
    public static func load(
        allowPath: String = "/etc/hosts.allow", denyPath: String = "/etc/hosts.deny"
    ) -> (HostsAccessRules, [Diagnostic]) {
        load(allowPath: allowPath, denyPath: denyPath, readFile: TCPWrappers.readFile)
    }

    static func load(
        allowPath: String, denyPath: String, readFile: @escaping (String) -> TCPWrappers.FileContents
    ) -> (HostsAccessRules, [Diagnostic]) {
        var parser = TCPWrappers.Parser(readFile: readFile)
        func table(_ path: String, isAllow: Bool) -> [TCPWrappers.Rule] {
            switch readFile(path) {
            case .missing:
                return []
            case .failed(let reason):
                let location = ConfigLocation(file: path, line: 0)
                let effect =
                    isAllow
                    ? "nothing in it allows (tcpd behaves the same)"
                    : "every connection not allowed by hosts.allow is denied (tcpd behaves the same)"
                parser.diagnostics.append(
                    Diagnostic(.error, location, "\(sanitizedForLog(Array(reason.utf8))); \(effect)"))
                return [
                    TCPWrappers.Rule(
                        location: location, body: .tableError, allows: false, conditional: false, options: [])
                ]
            case .bytes(let bytes):
                return parser.parseTable(bytes, name: path, isAllow: isAllow)
            }
        }
        let allow = table(allowPath, isAllow: true)
        let deny = table(denyPath, isAllow: false)
        return (HostsAccessRules(allowRules: allow, denyRules: deny), parser.diagnostics)
    }

    /// Parses both files from memory (`/file` patterns in them are still read from disk).
    public static func parse(allow: [UInt8], deny: [UInt8], allowName: String, denyName: String) -> (
        HostsAccessRules, [Diagnostic]
    ) {
        var parser = TCPWrappers.Parser(readFile: TCPWrappers.readFile)
        let allowRules = parser.parseTable(allow, name: allowName, isAllow: true)
        let denyRules = parser.parseTable(deny, name: denyName, isAllow: false)
        return (HostsAccessRules(allowRules: allowRules, denyRules: denyRules), parser.diagnostics)
    }

    /// tcpd order: first match in hosts.allow → its verdict (allow unless its options say
    /// otherwise); else first match in hosts.deny → its verdict (deny unless ...); else allow.
    /// `daemon` is the service's `access.libwrapName`. `serverPort` is needed only by rules that
    /// name ports (Debian); without it such patterns count as unknown (resolved strictly).
    public func check(
        daemon: String, serverAddress: IPAddress?, serverPort: UInt16? = nil, client: AccessClient
    ) -> AccessDecision {
        let user: [UInt8] =
            if let name = client.user, !name.isEmpty { TCPWrappers.lowered(name.utf8) } else { TCPWrappers.unknown }
        var server = TCPWrappers.Endpoint(address: serverAddress, name: nil, nameMismatch: false)
        server.nameLookedUp = false
        let request = TCPWrappers.Request(
            daemon: TCPWrappers.Subject(text: TCPWrappers.lowered(daemon.utf8), v6: nil),
            serverPort: serverPort,
            server: server,
            client: TCPWrappers.Endpoint(
                address: client.address, name: client.hostName, nameMismatch: client.nameMismatch),
            user: TCPWrappers.Subject(text: user, v6: nil))
        for rule in allowRules {
            if case .tableError = rule.body { break }
            if Self.matches(rule, request) {
                return AccessDecision(allowed: rule.allows, rule: rule.location, options: rule.options)
            }
        }
        for rule in denyRules {
            if case .tableError = rule.body { return AccessDecision(allowed: false, rule: rule.location, options: []) }
            if Self.matches(rule, request) {
                return AccessDecision(allowed: rule.allows, rule: rule.location, options: rule.options)
            }
        }
        return AccessDecision(allowed: true, rule: nil, options: [])
    }

    /// A rule matches when its daemon list and client list do (and its aclexec condition would
    /// hold). What cannot be told is taken the strict way: as a match for a denying rule, as no
    /// match for an allowing one.
    static func matches(_ rule: TCPWrappers.Rule, _ request: TCPWrappers.Request) -> Bool {
        guard case .rule(let daemons, let clients) = rule.body else { return false }
        let daemonMatch = daemons.matches { $0.matches(request) }
        var result = TCPWrappers.and(daemonMatch) { clients.matches { $0.matches(request) } }
        if rule.conditional { result = TCPWrappers.and(result) { nil } }
        return result ?? !rule.allows
    }
}
