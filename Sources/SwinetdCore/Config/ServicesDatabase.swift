import Glibc

/// The contents of /etc/services, parsed by swinetd itself: `getservbyname` is not thread-safe, and
/// the file to read must be configurable for tests.
public struct ServicesDatabase: Sendable {
    /// One `name port/protocol [aliases...]` line.
    public struct Entry: Hashable, Sendable {
        public var name: String
        public var port: UInt16
        public var protocolName: String
        public var aliases: [String]

        public init(name: String, port: UInt16, protocolName: String, aliases: [String] = []) {
            self.name = name
            self.port = port
            self.protocolName = protocolName
            self.aliases = aliases
        }
    }

    private struct Key: Hashable {
        var name: String
        var protocolName: String
    }

    public private(set) var entries: [Entry] = []
    /// Name or alias → index into `entries`; the first line that mentions a name wins, as in libc.
    private var index: [Key: Int] = [:]

    public init(entries: [Entry] = []) {
        for entry in entries { add(entry) }
    }

    /// Parses the file's bytes. Lines that do not parse are skipped, as libc does.
    public init(parsing bytes: [UInt8]) {
        for line in ConfigText.lines(bytes) {
            let content = line.content.prefix { $0 != UInt8(ascii: "#") }
            let fields = ConfigText.fields(content).compactMap { String(validating: $0, as: UTF8.self) }
            guard fields.count >= 2, let slash = fields[1].firstIndex(of: "/"),
                let port = ConfigText.decimal(fields[1][..<slash]).flatMap(UInt16.init(exactly:))
            else { continue }
            let protocolName = String(fields[1][fields[1].index(after: slash)...])
            guard !protocolName.isEmpty else { continue }
            add(Entry(name: fields[0], port: port, protocolName: protocolName, aliases: Array(fields.dropFirst(2))))
        }
    }

    /// Reads `path`; a missing or unreadable file gives an empty database, leaving numeric ports and
    /// the builtin names (`Builtin.wellKnownPort`) still usable.
    public static func load(path: String) -> ServicesDatabase {
        guard case .success(let bytes) = ConfigFile.read(path) else { return ServicesDatabase() }
        return ServicesDatabase(parsing: bytes)
    }

    /// The entry whose name or alias is `name` for `protocolName` (`tcp`, `udp`).
    public func entry(named name: String, protocolName: String) -> Entry? {
        index[Key(name: name, protocolName: protocolName)].map { entries[$0] }
    }

    /// The port for a service name or alias, falling back to the builtin services' well-known ports.
    public func port(named name: String, protocolName: String) -> UInt16? {
        entry(named: name, protocolName: protocolName)?.port ?? Builtin(rawValue: name)?.wellKnownPort
    }

    private mutating func add(_ entry: Entry) {
        entries.append(entry)
        for name in [entry.name] + entry.aliases {
            let key = Key(name: name, protocolName: entry.protocolName)
            if index[key] == nil { index[key] = entries.count - 1 }
        }
    }
}
