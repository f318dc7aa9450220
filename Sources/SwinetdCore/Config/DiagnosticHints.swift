/// One line of advice for the common configuration errors, shown under them by `swinetd check`.
public enum DiagnosticHints {
    /// (what the message contains, the hint). First match wins.
    private static let table: [(String, String)] = [
        ("unknown user", "create the user (useradd --system NAME) or name an existing one; `getent passwd NAME` checks"),
        ("unknown group", "create the group or name an existing one; `getent group NAME` checks"),
        ("cannot be used: No such file", "install the program or correct the path; it must be absolute"),
        ("cannot be used: Permission denied", "make the program executable (chmod +x) and its directories searchable"),
        ("bad port", "ports are 1-65535; a name must be in /etc/services for that protocol"),
        ("unknown service", "add it to /etc/services, or write the port number instead of the name"),
        ("is already used by", "two entries bind the same address and port; remove one or give it another address"),
        ("overlaps", "a wildcard (* or tcp46) listener takes the port on every address; bind both to specific addresses or merge them"),
        ("does not work with protocol", "stream goes with tcp*, dgram with udp*, seqpacket with unix"),
        ("RPC services are not supported", "run rpcbind-based services under systemd or their own daemon"),
        ("internal service", "write the builtin's name after `internal`, e.g. `internal echo`"),
        ("cannot resolve host", "use an address literal, or make the name resolvable before swinetd starts"),
        ("bind address", "bind takes exactly one address; swinetd never falls back to 0.0.0.0"),
        ("unknown attribute", "see swinetd.conf(5) for the attributes swinetd knows"),
        ("not supported", "see swinetd.conf(5): this xinetd feature has no Linux equivalent in swinetd"),
        ("unix socket path", "socket paths are at most 107 bytes and must be absolute"),
        ("protocol option", "known options: rcvbuf=SIZE, sndbuf=SIZE (k/m suffixes), backlog=N"),
        ("expected wait or nowait", "the fourth field is wait or nowait, optionally with .max or /max-child/..."),
        ("no configuration found", "create /etc/inetd.conf or /etc/xinetd.conf, or name a file with -f"),
    ]

    public static func hint(for diagnostic: Diagnostic) -> String? {
        table.first { diagnostic.message.contains($0.0) }?.1
    }
}
