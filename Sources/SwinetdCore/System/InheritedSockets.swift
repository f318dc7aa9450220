import CSwinetd
import Logging

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Listening sockets handed to swinetd by systemd (socket activation, sd_listen_fds(3)) or any
/// launcher speaking the same protocol: fds 3 .. 3+LISTEN_FDS-1, valid when LISTEN_PID is our pid,
/// optionally named by LISTEN_FDNAMES. docs/SYSTEMD.md has the rules:
/// - A configured listener adopts the inherited socket with the same address, port (or Unix path),
///   socket type and, for IPv6, the same IPV6_V6ONLY setting, instead of binding one.
/// - A socket whose name is the id of a configured service is adopted only by that service.
/// - A listener that finds no such socket is bound as usual; an inherited socket that no listener
///   takes is logged and kept open (a later reload may configure it).
/// - A listener that is closed (service removed on reload, paused by its rate limit, shutdown)
///   hands its adopted socket back here instead of closing it, so a reload keeps it.
/// The LISTEN_* variables are removed from swinetd's environment, so children never see them.
public final class InheritedSockets {
    /// What an inherited socket is bound to.
    struct Identity: Hashable, CustomStringConvertible {
        enum Address: Hashable {
            case inet(IPAddress, port: UInt16, v6Only: Bool)
            case unix(String)
        }
        var address: Address
        var socketType: SocketType

        var description: String {
            switch address {
            case .inet(let ip, let port, let v6Only):
                let text = ip.isIPv6 ? "[\(ip)]:\(port)" + (v6Only ? "" : " (v4+v6)") : "\(ip):\(port)"
                return "\(socketType.rawValue) \(text)"
            case .unix(let path): return "\(socketType.rawValue) \(path)"
            }
        }
    }

    struct Entry {
        var fd: Int32
        var name: String?
        var identity: Identity?
    }

    /// Sockets not currently used by a listener.
    private(set) var available: [Entry] = []
    /// Every inherited fd, adopted or not (to tell a returned socket from any other).
    private var all: [Int32: Entry] = [:]

    /// Why LISTEN_* were set but nothing was adopted, for the log.
    public private(set) var problem: String?

    public init() {}

    /// Inherited sockets not taken by any listener.
    public var unusedCount: Int { available.count }

    /// Reads LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES, removes them from the environment, and
    /// takes fds 3.. when LISTEN_PID is this process. Call before anything reads the environment
    /// and before a fork changes the pid (`--foreground` is what systemd runs anyway).
    public static func takeFromEnvironment() -> InheritedSockets {
        let pidText = getenv("LISTEN_PID").map { String(cString: $0) }
        let countText = getenv("LISTEN_FDS").map { String(cString: $0) }
        let namesText = getenv("LISTEN_FDNAMES").map { String(cString: $0) }
        unsetenv("LISTEN_PID")
        unsetenv("LISTEN_FDS")
        unsetenv("LISTEN_FDNAMES")
        let sockets = InheritedSockets()
        guard let countText else { return sockets }
        guard let pidText, let pid = Int32(pidText), pid == getpid() else {
            sockets.problem = "LISTEN_FDS is set but LISTEN_PID (\(pidText ?? "unset")) is not swinetd's pid; no sockets adopted"
            return sockets
        }
        guard let count = Int(countText), count >= 0, count <= 4096 else {
            sockets.problem = "LISTEN_FDS=\(countText) is not a count; no sockets adopted"
            return sockets
        }
        let names = namesText.map { $0.split(separator: ":", omittingEmptySubsequences: false).map(String.init) } ?? []
        for index in 0..<count {
            let fd = Int32(3 + index)
            guard sw_set_cloexec(fd, 1) == 0 else { continue }  // not open
            let name = index < names.count && !names[index].isEmpty ? names[index] : nil
            let entry = Entry(fd: fd, name: name, identity: identify(fd))
            sockets.available.append(entry)
            sockets.all[fd] = entry
        }
        return sockets
    }

    /// The address and type of a socket; nil when it is not a socket swinetd can serve.
    static func identify(_ fd: Int32) -> Identity? {
        var type: Int32 = 0
        var size = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &size) == 0 else { return nil }
        let socketType: SocketType
        switch type {
        case Int32(SOCK_STREAM.rawValue): socketType = .stream
        case Int32(SOCK_DGRAM.rawValue): socketType = .dgram
        case Int32(SOCK_SEQPACKET.rawValue): socketType = .seqpacket
        default: return nil
        }
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let named = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) == 0 }
        }
        guard named else { return nil }
        switch Int32(storage.ss_family) {
        case AF_INET, AF_INET6:
            let (ip, port) = withUnsafePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    (SocketAddressFormatting.ipAddress(from: $0), SocketAddressFormatting.port(from: $0))
                }
            }
            guard let ip else { return nil }
            var v6Only: Int32 = 0
            if ip.isIPv6 {
                var optionSize = socklen_t(MemoryLayout<Int32>.size)
                getsockopt(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, &v6Only, &optionSize)
            }
            return Identity(address: .inet(ip, port: port, v6Only: effectiveV6Only(ip, v6Only != 0)), socketType: socketType)
        case AF_UNIX:
            let path = withUnsafePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr_un.self, capacity: 1) { sun in
                    withUnsafeBytes(of: sun.pointee.sun_path) { bytes in
                        String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
                    }
                }
            }
            guard !path.isEmpty else { return nil }  // abstract or unnamed: no configured path
            return Identity(address: .unix(path), socketType: socketType)
        default:
            return nil
        }
    }

    /// IPV6_V6ONLY as it acts: it matters only for the IPv6 wildcard (Linux reports 1 for a socket
    /// bound to any other IPv6 address, and a v4-mapped address needs 0).
    static func effectiveV6Only(_ ip: IPAddress, _ v6Only: Bool) -> Bool {
        guard case .v6(let bytes, _) = ip else { return false }
        if ip == .anyV6 { return v6Only }
        return SocketAddressFormatting.unmapped(bytes) == nil
    }

    /// The identity a configured listener would have.
    static func identity(of spec: ListenerSpec) -> Identity {
        switch spec.address {
        case .inet(let ip, let port, let v6Only):
            return Identity(address: .inet(ip, port: port, v6Only: effectiveV6Only(ip, v6Only)), socketType: spec.socketType)
        case .unix(let path, _, _, _):
            return Identity(address: .unix(path), socketType: spec.socketType)
        }
    }

    /// Takes the inherited socket for `spec` of service `serviceID`, if there is one.
    /// `configuredIDs` gives the ids of every configured service (for the naming rule).
    func take(for spec: ListenerSpec, serviceID: String, configuredIDs: () -> Set<String>) -> Int32? {
        guard !available.isEmpty else { return nil }
        let wanted = Self.identity(of: spec)
        let candidates = available.indices.filter { available[$0].identity == wanted }
        guard !candidates.isEmpty else { return nil }
        let ids = configuredIDs()
        // A socket named after this service first, then one whose name is no service's id.
        let chosen =
            candidates.first { available[$0].name == serviceID }
            ?? candidates.first { available[$0].name.map { !ids.contains($0) } ?? true }
        guard let chosen else { return nil }
        return available.remove(at: chosen).fd
    }

    /// A listener gives back an adopted socket (it stays open: it is systemd's as well).
    func giveBack(_ fd: Int32) {
        guard let entry = all[fd], !available.contains(where: { $0.fd == fd }) else { return }
        available.append(entry)
    }

    /// Logs every inherited socket no listener took.
    public func logUnused(_ logger: Logger) {
        for entry in available {
            let what = entry.identity.map { "\($0)" } ?? "not a usable socket"
            logger.warning(
                "inherited fd \(entry.fd)\(entry.name.map { " (\($0))" } ?? ""): \(what) matches no configured listener; kept open")
        }
    }
}
