import CSwinetd

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Forward-confirmed reverse lookups off the reactor thread. getnameinfo/getaddrinfo block (for
/// seconds when DNS is down), so one worker thread does them and wakes the reactor through an
/// eventfd. The thread exists only once a configuration needs host names.
final class HostNameResolver: EventHandler {
    /// What a lookup found. `name` is set only when the reverse name resolves back to the address.
    struct Answer {
        var name: String?
        var mismatch: Bool
    }

    private let queue = LookupQueue()
    private var waiting: [UInt64: (Answer) -> Void] = [:]
    private var nextID: UInt64 = 1
    private var token: ReactorToken?
    private unowned let reactor: Reactor

    init(reactor: Reactor) throws(SystemError) {
        self.reactor = reactor
        guard queue.wakeFD >= 0 else { throw SystemError("eventfd") }
        token = try reactor.register(fd: queue.wakeFD, events: Readiness.input, handler: self)
        try queue.startThread()
    }

    /// Looks `address` up; `completion` runs on the reactor thread. Returns the lookup's id, or nil
    /// when too many lookups are already waiting (the caller then treats the name as unknown).
    func lookup(_ address: IPAddress, completion: @escaping (Answer) -> Void) -> UInt64? {
        guard waiting.count < 256 else { return nil }
        let id = nextID
        nextID += 1
        waiting[id] = completion
        queue.submit(id: id, address: address)
        return id
    }

    /// Forgets a lookup whose requester gave up (timeout); its answer will be dropped.
    func cancel(_ id: UInt64) { waiting.removeValue(forKey: id) }

    func handle(events: UInt32) {
        var counter: UInt64 = 0
        _ = read(queue.wakeFD, &counter, 8)
        for (id, answer) in queue.takeResults() {
            waiting.removeValue(forKey: id)?(answer)
        }
    }

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

/// The queue between the reactor and the lookup thread, guarded by a mutex.
private final class LookupQueue: @unchecked Sendable {
    let wakeFD = sw_eventfd()
    private var mutex = pthread_mutex_t()
    private var condition = pthread_cond_t()
    private var jobs: [(UInt64, IPAddress)] = []
    private var results: [(UInt64, HostNameResolver.Answer)] = []

    init() {
        pthread_mutex_init(&mutex, nil)
        pthread_cond_init(&condition, nil)
    }

    func startThread() throws(SystemError) {
        var thread = pthread_t()
        let context = Unmanaged.passRetained(self).toOpaque()
        let status = pthread_create(&thread, nil, { raw in
            let queue = Unmanaged<LookupQueue>.fromOpaque(raw!).takeRetainedValue()
            queue.work()
            return nil
        }, context)
        guard status == 0 else {
            Unmanaged<LookupQueue>.fromOpaque(context).release()
            throw SystemError("pthread_create", errno: status)
        }
        pthread_detach(thread)
    }

    func submit(id: UInt64, address: IPAddress) {
        pthread_mutex_lock(&mutex)
        jobs.append((id, address))
        pthread_cond_signal(&condition)
        pthread_mutex_unlock(&mutex)
    }

    func takeResults() -> [(UInt64, HostNameResolver.Answer)] {
        pthread_mutex_lock(&mutex)
        let taken = results
        results.removeAll()
        pthread_mutex_unlock(&mutex)
        return taken
    }

    private func work() {
        while true {
            pthread_mutex_lock(&mutex)
            while jobs.isEmpty { pthread_cond_wait(&condition, &mutex) }
            let (id, address) = jobs.removeFirst()
            pthread_mutex_unlock(&mutex)
            let answer = HostNameResolver.resolve(address)
            pthread_mutex_lock(&mutex)
            results.append((id, answer))
            pthread_mutex_unlock(&mutex)
            var one: UInt64 = 1
            _ = write(wakeFD, &one, 8)
        }
    }
}
