/// The one service model. Every configuration format is parsed into `Service` values;
/// the supervisor consumes nothing else.

/// Where a configuration item came from, for error messages (`file:line`).
public struct ConfigLocation: Hashable, Sendable, CustomStringConvertible {
    public var file: String
    public var line: Int

    public init(file: String, line: Int) {
        self.file = file
        self.line = line
    }

    public var description: String { "\(file):\(line)" }
}

/// A problem found while loading configuration. Errors refuse the entry they name; warnings do not.
public struct Diagnostic: Hashable, Sendable, CustomStringConvertible {
    public enum Severity: String, Sendable {
        case error
        case warning
    }

    public var severity: Severity
    public var location: ConfigLocation?
    public var message: String

    public init(_ severity: Severity, _ location: ConfigLocation?, _ message: String) {
        self.severity = severity
        self.location = location
        self.message = message
    }

    public var description: String {
        if let location { return "\(location): \(severity.rawValue): \(message)" }
        return "\(severity.rawValue): \(message)"
    }
}

/// The socket type field (`stream`, `dgram`, `seqpacket`).
public enum SocketType: String, Hashable, Sendable, CaseIterable {
    case stream
    case dgram
    case seqpacket
}

/// An IP address in network byte order. IPv4-mapped IPv6 addresses stay IPv6 here; code that
/// shows a peer to a person or a child unmaps them.
public enum IPAddress: Hashable, Sendable, CustomStringConvertible {
    case v4(UInt32)  // network byte order, as in `in_addr.s_addr`
    case v6([UInt8], scopeID: UInt32)  // 16 bytes

    public static let anyV4 = IPAddress.v4(0)
    public static let anyV6 = IPAddress.v6([UInt8](repeating: 0, count: 16), scopeID: 0)

    public var isIPv6: Bool {
        if case .v6 = self { return true }
        return false
    }

    public var description: String { SocketAddressFormatting.string(for: self) }
}

/// What a listener binds to.
public enum ListenAddress: Hashable, Sendable, CustomStringConvertible {
    /// An IP socket. `v6Only` matters only for IPv6 addresses: `true` sets IPV6_V6ONLY.
    case inet(IPAddress, port: UInt16, v6Only: Bool)
    /// A Unix-domain socket path; swinetd unlinks a stale socket there, binds, then sets owner and mode.
    case unix(path: String, owner: UInt32?, group: UInt32?, mode: UInt32)

    public var description: String {
        switch self {
        case .inet(let address, let port, let v6Only):
            if address.isIPv6 {
                return "[\(address)]:\(port)" + (v6Only ? "" : " (v4+v6)")
            }
            return "\(address):\(port)"
        case .unix(let path, _, _, let mode):
            return "\(path) (mode \(String(mode, radix: 8)))"
        }
    }
}

/// One socket that a service listens on. Two listeners with the same key cannot coexist, and a
/// reload keeps an open socket when its key and options are unchanged.
public struct ListenerSpec: Hashable, Sendable, CustomStringConvertible {
    public var address: ListenAddress
    public var socketType: SocketType
    /// listen(2) backlog; ignored for datagram sockets.
    public var backlog: Int32
    /// SO_RCVBUF / SO_SNDBUF, when configured (Debian's `tcp,rcvbuf=64k` form).
    public var receiveBuffer: Int32?
    public var sendBuffer: Int32?

    public init(
        address: ListenAddress,
        socketType: SocketType,
        backlog: Int32 = 128,
        receiveBuffer: Int32? = nil,
        sendBuffer: Int32? = nil
    ) {
        self.address = address
        self.socketType = socketType
        self.backlog = backlog
        self.receiveBuffer = receiveBuffer
        self.sendBuffer = sendBuffer
    }

    /// Identity of the bound socket: same key means the same port on the same address.
    public struct Key: Hashable, Sendable {
        public var address: ListenAddress
        public var socketType: SocketType
    }

    public var key: Key { Key(address: address, socketType: socketType) }

    public var description: String { "\(socketType.rawValue) \(address)" }
}

/// The services swinetd serves itself, without a process per connection.
public enum Builtin: String, Hashable, Sendable, CaseIterable {
    case echo  // RFC 862
    case discard  // RFC 863
    case chargen  // RFC 864
    case daytime  // RFC 867
    case time  // RFC 868
    case tcpmux  // RFC 1078

    /// The well-known port, used when /etc/services is missing.
    public var wellKnownPort: UInt16 {
        switch self {
        case .echo: 7
        case .discard: 9
        case .chargen: 19
        case .daytime: 13
        case .time: 37
        case .tcpmux: 1
        }
    }
}

/// What runs for a connection.
public enum ServerProgram: Hashable, Sendable {
    case builtin(Builtin)
    /// `path` is executed with exactly `arguments` as argv (argv[0] included, as configured).
    case external(path: String, arguments: [String])
}

/// The identity a child runs with. Resolved when the configuration is loaded, because NSS lookups
/// (`getpwnam`, `getgrouplist`) are not allowed between fork and exec.
public struct Credentials: Hashable, Sendable {
    public var user: String
    public var uid: UInt32
    public var gid: UInt32
    /// Supplementary groups, as `initgroups` would set them (getgrouplist of user and gid).
    public var groups: [UInt32]
    /// False when swinetd is not root: the child simply keeps the daemon's identity.
    public var changeIdentity: Bool

    public init(user: String, uid: UInt32, gid: UInt32, groups: [UInt32], changeIdentity: Bool) {
        self.user = user
        self.uid = uid
        self.gid = gid
        self.groups = groups
        self.changeIdentity = changeIdentity
    }
}

/// How a service takes part in RFC 1078 tcpmux.
public enum TCPMuxRole: Hashable, Sendable {
    /// Reached through the tcpmux port by `name` (matched case-insensitively).
    /// With `sendsPlus`, swinetd sends `+Go\r\n` before starting the program (`tcpmux/+name`);
    /// without, the program answers `+` or `-` itself.
    case target(name: String, sendsPlus: Bool)
}

/// Limits that bound how often and how many children a service may run.
public struct ServiceLimits: Hashable, Sendable {
    /// Spawns allowed per 60 s before the service is paused (`wait.max`, `-R`). nil = the daemon default.
    public var maxSpawnsPerMinute: Int?
    /// Concurrent children (FreeBSD max-child, xinetd instances). nil = unlimited.
    public var maxChildren: Int?
    /// Connections per client IP per minute (FreeBSD max-connections-per-ip-per-minute). nil = unlimited.
    public var maxConnectionsPerIPPerMinute: Int?
    /// Concurrent children per client IP (FreeBSD max-child-per-ip, xinetd per_source). nil = unlimited.
    public var maxChildrenPerIP: Int?
    /// xinetd `cps`. nil = none.
    public var connectionRate: ConnectionRate?
    /// xinetd `max_load`: refuse while the one-minute load average is above this. nil = none.
    public var maxLoad: Double?

    public init(
        maxSpawnsPerMinute: Int? = nil,
        maxChildren: Int? = nil,
        maxConnectionsPerIPPerMinute: Int? = nil,
        maxChildrenPerIP: Int? = nil
    ) {
        self.maxSpawnsPerMinute = maxSpawnsPerMinute
        self.maxChildren = maxChildren
        self.maxConnectionsPerIPPerMinute = maxConnectionsPerIPPerMinute
        self.maxChildrenPerIP = maxChildrenPerIP
    }
}

/// One configured service, whatever format it came from.
public struct Service: Hashable, Sendable {
    /// The service field as written (`echo`, `17010`, `/run/foo.sock`, `tcpmux/+name`).
    public var name: String
    public var location: ConfigLocation
    public var socketType: SocketType
    /// The protocol field as written (`tcp`, `udp46`, `unix`, ...), for display.
    public var protocolName: String
    /// The sockets it listens on. Empty for tcpmux targets, which are reached through tcpmux.
    public var listeners: [ListenerSpec]
    /// `wait`: the child gets the listening/datagram socket, and swinetd stops watching it until the
    /// child exits. `nowait`: swinetd accepts and the child gets the connection.
    public var wait: Bool
    public var limits: ServiceLimits
    public var credentials: Credentials
    public var program: ServerProgram
    public var tcpmux: TCPMuxRole?
    /// The name in log lines and tcpd rules' default (xinetd `id`; inetd.conf: the service field).
    public var id: String
    public var access = AccessPolicy()
    public var setup = ChildSetup()
    public var logging = LogSettings()
    public var flags = ServiceFlags()
    public var sandbox = Sandbox()
    /// xinetd `redirect = host port`: relay connections in-process to this address; no program runs.
    public var redirect: RedirectTarget?
    /// `proxy_protocol` + `proxy_trusted`: a PROXY protocol header comes first (docs/PROXY.md).
    public var proxyProtocol: ProxyProtocolPolicy?
    /// `listen_fds`: a wait service's program gets every listening socket as fd 3.. with
    /// LISTEN_FDS, LISTEN_PID and LISTEN_FDNAMES, as systemd passes them (docs/SYSTEMD.md).
    public var listenFDs = false
    /// TLS termination (docs/TLS.md): swinetd speaks TLS with the client, the program plaintext.
    public var tls: ServiceTLS?

    public init(
        name: String,
        location: ConfigLocation,
        socketType: SocketType,
        protocolName: String,
        listeners: [ListenerSpec],
        wait: Bool,
        limits: ServiceLimits = ServiceLimits(),
        credentials: Credentials,
        program: ServerProgram,
        tcpmux: TCPMuxRole? = nil
    ) {
        self.name = name
        self.location = location
        self.socketType = socketType
        self.protocolName = protocolName
        self.listeners = listeners
        self.wait = wait
        self.limits = limits
        self.credentials = credentials
        self.program = program
        self.tcpmux = tcpmux
        self.id = name
    }

    public var builtin: Builtin? {
        if case .builtin(let builtin) = program { return builtin }
        return nil
    }

    /// The label used in log lines (`START: echo ...`).
    public var logName: String { id }
}

/// Where a redirect service relays to; the host is resolved once, at load (as xinetd does).
public struct RedirectTarget: Hashable, Sendable, CustomStringConvertible {
    public var host: String
    public var address: IPAddress
    public var port: UInt16

    public init(host: String, address: IPAddress, port: UInt16) {
        self.host = host
        self.address = address
        self.port = port
    }

    public var description: String { "\(host) \(port)" }
}

/// The result of loading configuration files: the services that are valid, and every problem found.
public struct LoadedConfiguration: Sendable {
    public var services: [Service]
    public var diagnostics: [Diagnostic]
    /// The files that were read, in order.
    public var files: [String]

    public init(services: [Service] = [], diagnostics: [Diagnostic] = [], files: [String] = []) {
        self.services = services
        self.diagnostics = diagnostics
        self.files = files
    }

    public var hasErrors: Bool { diagnostics.contains { $0.severity == .error } }
}
