import CSwinetd
import Glibc
import Testing

@testable import SwinetdCore

/// The reactor's handler table after a burst (Reactor.releaseSpareCapacity): it gives back what a
/// burst of registrations grew, and a token from before never matches a slot created after.
@Suite struct ReactorTests {
    final class Counter: EventHandler {
        let fd: Int32
        let reactor: Reactor
        var calls = 0
        init(fd: Int32, reactor: Reactor) {
            self.fd = fd
            self.reactor = reactor
        }
        func handle(events: UInt32) {
            var value: UInt64 = 0
            _ = read(fd, &value, 8)
            calls += 1
        }
    }

    @Test func aBurstsSlotsAreGivenBackAndStaleTokensMatchNothingNew() throws {
        let reactor = try Reactor()
        let listener = sw_eventfd()
        defer { close(listener) }
        let kept = Counter(fd: listener, reactor: reactor)
        let keptToken = try reactor.register(fd: listener, events: UInt32(EPOLLIN.rawValue), handler: kept)

        // A burst: 2,000 registrations at once, then all gone.
        var burst: [(fd: Int32, token: ReactorToken)] = []
        for _ in 0..<2000 {
            let fd = sw_eventfd()
            try #require(fd >= 0)
            burst.append((fd, try reactor.register(fd: fd, events: UInt32(EPOLLIN.rawValue), handler: Counter(fd: fd, reactor: reactor))))
        }
        #expect(reactor.slotCapacity >= 2001)
        for (fd, token) in burst {
            reactor.unregister(fd: fd, token: token)
            close(fd)
        }
        reactor.releaseSpareCapacity()
        #expect(reactor.slotCapacity < 64, "capacity \(reactor.slotCapacity) after the burst")

        // New registrations reuse the dropped indices; the burst's tokens must not release them.
        let fresh = sw_eventfd()
        defer { close(fresh) }
        let counter = Counter(fd: fresh, reactor: reactor)
        let freshToken = try reactor.register(fd: fresh, events: UInt32(EPOLLIN.rawValue), handler: counter)
        let stale = try #require(burst.first { $0.token.slot == freshToken.slot }?.token)
        reactor.unregister(fd: -1, token: stale)  // fd -1: epoll_ctl fails; only the table is at stake
        var one: UInt64 = 1
        _ = write(fresh, &one, 8)
        _ = write(listener, &one, 8)
        reactor.schedule(after: 0.3) { reactor.stop() }
        reactor.run()
        #expect(counter.calls == 1, "a stale token released the slot of a newer registration")
        #expect(kept.calls == 1, "the registration from before the burst stopped working")
        reactor.unregister(fd: listener, token: keptToken)
    }
}
