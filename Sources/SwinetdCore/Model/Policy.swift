/// The policy parts of the service model: who may connect, when, how the child is set up and what
/// is logged. Both configuration formats fill these; inetd.conf entries get the defaults, which
/// reproduce classic inetd behaviour.

/// One address pattern of xinetd's `only_from` / `no_access` lists.
public enum AddressPattern: Hashable, Sendable, CustomStringConvertible {
    /// An address with a prefix length: a literal (/32, /128), CIDR, `a.b.c.0` wildcards (/24 ...),
    /// one expansion of `a.b.{c,d}`. IPv4 patterns also match v4-mapped IPv6 peers.
    case network(IPAddress, prefixLength: Int)
    /// A host name: matches a peer whose forward-confirmed reverse lookup gives this name.
    case hostname(String)
    /// `.example.com`: matches a peer whose forward-confirmed name ends with this suffix.
    case domain(String)

    public var description: String {
        switch self {
        case .network(let address, let prefix): "\(address)/\(prefix)"
        case .hostname(let name): name
        case .domain(let suffix): suffix
        }
    }
}

/// A daily time window in local time, minutes since midnight, both ends inclusive (`08:00-17:59`).
/// A window whose end is before its start spans midnight.
public struct TimeWindow: Hashable, Sendable, CustomStringConvertible {
    public var startMinute: Int
    public var endMinute: Int

    public init(startMinute: Int, endMinute: Int) {
        self.startMinute = startMinute
        self.endMinute = endMinute
    }

    public func contains(minuteOfDay minute: Int) -> Bool {
        if startMinute <= endMinute { return minute >= startMinute && minute <= endMinute }
        return minute >= startMinute || minute <= endMinute
    }

    public var description: String {
        func hhmm(_ m: Int) -> String {
            let h = m / 60, mm = m % 60
            return (h < 10 ? "0" : "") + "\(h):" + (mm < 10 ? "0" : "") + "\(mm)"
        }
        return "\(hhmm(startMinute))-\(hhmm(endMinute))"
    }
}

/// Who may use a service and when. Checked before anything is spawned; a denial never starts a
/// process.
public struct AccessPolicy: Hashable, Sendable {
    /// nil: not configured (everyone); empty: nobody (xinetd's `only_from =` with no value).
    public var onlyFrom: [AddressPattern]?
    public var noAccess: [AddressPattern] = []
    /// Empty: any time.
    public var accessTimes: [TimeWindow] = []
    /// The daemon name looked up in hosts.allow / hosts.deny; nil: tcpd rules not applied.
    public var libwrapName: String?

    public init(
        onlyFrom: [AddressPattern]? = nil, noAccess: [AddressPattern] = [], accessTimes: [TimeWindow] = [],
        libwrapName: String? = nil
    ) {
        self.onlyFrom = onlyFrom
        self.noAccess = noAccess
        self.accessTimes = accessTimes
        self.libwrapName = libwrapName
    }

    /// Whether any check needs the peer's host name (reverse lookup).
    public var needsHostName: Bool {
        (onlyFrom ?? []).contains { if case .network = $0 { false } else { true } }
            || noAccess.contains { if case .network = $0 { false } else { true } }
    }
}

/// A resource limit for the child (xinetd `rlimit_*`).
public struct ResourceLimit: Hashable, Sendable {
    public enum Kind: String, Hashable, Sendable, CaseIterable {
        case addressSpace = "as"
        case cpu
        case data
        case rss
        case stack
        case files
    }

    public static let unlimited = UInt64.max

    public var kind: Kind
    public var soft: UInt64
    public var hard: UInt64

    public init(kind: Kind, soft: UInt64, hard: UInt64) {
        self.kind = kind
        self.soft = soft
        self.hard = hard
    }
}

/// How the child process is set up beyond its identity.
public struct ChildSetup: Hashable, Sendable {
    public var nice: Int32?
    public var umask: UInt32 = 0o022
    public var rlimits: [ResourceLimit] = []
    /// `NAME=value` entries added to the child's environment (xinetd `env`).
    public var environment: [String] = []
    /// Names copied from swinetd's own environment (xinetd `passenv`).
    public var passEnvironment: [String] = []
    /// Files sent to the client: before anything else, on grant, on denial (xinetd banners).
    public var banner: String?
    public var bannerSuccess: String?
    public var bannerFail: String?
    /// TCP_NODELAY / SO_KEEPALIVE on the accepted socket (xinetd flags NODELAY, KEEPALIVE).
    public var tcpNoDelay = false
    public var keepAlive = false

    public init() {}
}

/// xinetd `cps = rate seconds`: more than `rate` connections within one second pause the service
/// for `pauseSeconds`.
public struct ConnectionRate: Hashable, Sendable {
    public var rate: Int
    public var pauseSeconds: Int

    public init(rate: Int, pauseSeconds: Int) {
        self.rate = rate
        self.pauseSeconds = pauseSeconds
    }
}

/// What is logged for a service and where (xinetd `log_type`, `log_on_success`, `log_on_failure`).
public struct LogSettings: Hashable, Sendable {
    public enum Destination: Hashable, Sendable {
        /// syslog facility and level, as <syslog.h> numbers.
        case syslog(facility: Int32, level: Int32)
        /// A file; writing stops at `hardLimit` bytes, with a warning at `softLimit`.
        case file(path: String, softLimit: UInt64?, hardLimit: UInt64?)
    }

    public enum SuccessField: String, Hashable, Sendable, CaseIterable {
        case pid = "PID", host = "HOST", userid = "USERID", exit = "EXIT", duration = "DURATION", traffic = "TRAFFIC"
    }

    public enum FailureField: String, Hashable, Sendable, CaseIterable {
        case host = "HOST", userid = "USERID", attempt = "ATTEMPT"
    }

    /// nil: the daemon's own log.
    public var destination: Destination?
    public var onSuccess: Set<SuccessField> = [.pid, .host, .exit, .duration]
    public var onFailure: Set<FailureField> = [.host]

    public init() {}
}

/// xinetd flags that change how a service behaves.
public struct ServiceFlags: Hashable, Sendable {
    /// SENSOR: a trap port; a client that touches it is denied every service for `denyTime`.
    public var sensor = false
    /// `deny_time` for SENSOR, in seconds; nil: forever.
    public var denyTimeSeconds: Int? = 120 * 60
    /// IDONLY: serve only clients whose RFC 1413 ident lookup answers.
    public var identOnly = false
    /// NORETRY: a failed fork is not retried.
    public var noRetry = false

    public init() {}
}
