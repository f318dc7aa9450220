import CSwinetd

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Forward-confirmed reverse lookups off the reactor thread: getnameinfo/getaddrinfo block (for
/// seconds when DNS is down), so one worker thread does them. The thread exists only once a
/// configuration needs host names.
final class HostNameResolver {
    /// What a lookup found. `name` is set only when the reverse name resolves back to the address.
    struct Answer {
        var name: String?
        var mismatch: Bool
    }

    private let pool: WorkerPool<IPAddress, Answer>

    init(reactor: Reactor) throws(SystemError) {
        pool = try WorkerPool(reactor: reactor, threads: 1, work: HostNameResolver.resolve)
    }

    /// Looks `address` up; `completion` runs on the reactor thread. Returns the lookup's id, or nil
    /// when too many lookups are already waiting (the caller then treats the name as unknown).
    func lookup(_ address: IPAddress, completion: @escaping (Answer) -> Void) -> UInt64? {
        guard pool.inFlight < 256 else { return nil }
        return pool.submit(address, completion: completion)
    }

    /// Forgets a lookup whose requester gave up (timeout); its answer will be dropped.
    func cancel(_ id: UInt64) { pool.cancel(id) }

    /// The blocking part, run on the worker thread.
    static func resolve(_ address: IPAddress) -> Answer {
        var storage = sockaddr_storage()
        let length = SocketAddressFormatting.fill(&storage, address: address, port: 0)
        var host = [CChar](repeating: 0, count: Int(NI_MAXHOST))
        let status = withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                getnameinfo($0, length, &host, socklen_t(host.count), nil, 0, NI_NAMEREQD)
            }
        }
        guard status == 0 else { return Answer(name: nil, mismatch: false) }
        let name = String(decoding: host.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        // Forward-confirm: the name must resolve back to the address, or it is attacker-chosen text.
        let forward = SocketAddressFormatting.resolve(name)
        let unmapped: IPAddress
        if case .v6(let bytes, _) = address, let v4 = SocketAddressFormatting.unmapped(bytes) {
            unmapped = v4
        } else {
            unmapped = address
        }
        let confirmed = forward.contains { candidate in
            switch (candidate, unmapped) {
            case (.v4(let a), .v4(let b)): a == b
            case (.v6(let a, _), .v6(let b, _)): a == b
            default: false
            }
        }
        return confirmed ? Answer(name: name, mismatch: false) : Answer(name: nil, mismatch: true)
    }
}
