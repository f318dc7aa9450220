import CSwinetd

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Something the reactor delivers readiness to.
protocol EventHandler: AnyObject {
    func handle(events: UInt32)
}

/// Readiness bits, as epoll reports them.
enum Readiness {
    static let input = UInt32(EPOLLIN.rawValue)
    static let output = UInt32(EPOLLOUT.rawValue)
    static let error = UInt32(EPOLLERR.rawValue)
    static let hangup = UInt32(EPOLLHUP.rawValue)
}

/// A registration in the reactor. The generation guards against a stale event reaching a handler
/// that took over a freed slot within the same epoll batch.
struct ReactorToken: Equatable {
    fileprivate(set) var slot: Int
    fileprivate var generation: UInt32
    fileprivate var packed: UInt64 { UInt64(generation) << 32 | UInt64(slot) }
}

/// A scheduled callback. Cancel it to make it a no-op.
final class ReactorTimer {
    fileprivate let deadline: Int64
    fileprivate let action: () -> Void
    fileprivate(set) var isCancelled = false

    fileprivate init(deadline: Int64, action: @escaping () -> Void) {
        self.deadline = deadline
        self.action = action
    }

    func cancel() { isCancelled = true }

    /// When it fires (monotonic ns).
    var deadlineNanoseconds: Int64 { deadline }
}

/// Monotonic clock in nanoseconds.
func monotonicNanoseconds() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
}

/// The single-threaded epoll loop at the centre of the daemon. It owns every socket swinetd
/// watches, the signalfd and all timers, so the service table needs no locks and SIGCHLD and
/// accept readiness arrive in one ordered stream.
final class Reactor {
    private let epollFD: Int32
    private var slots: [(handler: (any EventHandler)?, generation: UInt32)] = []
    private var freeSlots: [Int] = []
    /// The generation a newly appended slot starts at: above that of every slot dropped by
    /// releaseSpareCapacity, so a stale token never matches a slot re-created at its index.
    private var generationFloor: UInt32 = 0
    private var timers = TimerHeap()
    private var stopRequested = false

    init() throws(SystemError) {
        let fd = sw_epoll_create()
        guard fd >= 0 else { throw SystemError("epoll_create1") }
        epollFD = fd
    }

    deinit { close(epollFD) }

    /// Starts watching `fd` for `events`.
    func register(fd: Int32, events: UInt32, handler: any EventHandler) throws(SystemError) -> ReactorToken {
        let slot: Int
        if let reused = freeSlots.popLast() {
            slot = reused
            slots[slot].handler = handler
            slots[slot].generation &+= 1
        } else {
            slot = slots.count
            slots.append((handler, generationFloor))
        }
        let token = ReactorToken(slot: slot, generation: slots[slot].generation)
        if sw_epoll_ctl(epollFD, EPOLL_CTL_ADD, fd, events, token.packed) != 0 {
            let error = SystemError("epoll_ctl(ADD)")
            release(token)
            throw error
        }
        return token
    }

    /// Changes the events watched for `fd`.
    func modify(fd: Int32, token: ReactorToken, events: UInt32) {
        _ = sw_epoll_ctl(epollFD, EPOLL_CTL_MOD, fd, events, token.packed)
    }

    /// Stops watching `fd`. Call before closing it.
    func unregister(fd: Int32, token: ReactorToken) {
        _ = sw_epoll_ctl(epollFD, EPOLL_CTL_DEL, fd, 0, 0)
        release(token)
    }

    private func release(_ token: ReactorToken) {
        guard token.slot < slots.count, slots[token.slot].generation == token.generation else { return }
        slots[token.slot].handler = nil
        freeSlots.append(token.slot)
    }

    /// Drops the free slots at the end of the table once it is mostly empty: an array keeps the
    /// capacity of its largest size, and a burst of children (a pidfd each) grows the table to
    /// hundreds of KB. Called when the daemon has been quiet (Supervisor's trim).
    func releaseSpareCapacity() {
        var end = slots.count
        while end > 0, slots[end - 1].handler == nil { end -= 1 }
        guard slots.capacity > 256, end < slots.capacity / 4 else { return }
        for dropped in slots[end...] { generationFloor = max(generationFloor, dropped.generation &+ 1) }
        slots = Array(slots[..<end])
        freeSlots = freeSlots.filter { $0 < end }
    }

    /// Slots the table has room for (tests).
    var slotCapacity: Int { slots.capacity }

    /// Runs `action` once after `seconds`.
    @discardableResult
    func schedule(after seconds: Double, _ action: @escaping () -> Void) -> ReactorTimer {
        let timer = ReactorTimer(deadline: monotonicNanoseconds() + Int64(seconds * 1e9), action: action)
        timers.push(timer)
        return timer
    }

    func stop() { stopRequested = true }

    /// Events of the current `epoll_wait` batch still to be dispatched after the one running now;
    /// 0: the reactor has nothing else to do at this moment.
    private(set) var eventsLeftInBatch = 0

    /// Dispatches events and timers until `stop()`.
    func run() {
        var events = [UInt32](repeating: 0, count: 128)
        var datas = [UInt64](repeating: 0, count: 128)
        while !stopRequested {
            let timeout = runDueTimers()
            if stopRequested { break }
            let count = sw_epoll_wait(epollFD, &events, &datas, 128, timeout)
            if count < 0 {
                if errno == EINTR { continue }
                break
            }
            for i in 0..<Int(count) {
                let slot = Int(datas[i] & 0xffff_ffff)
                let generation = UInt32(truncatingIfNeeded: datas[i] >> 32)
                guard slot < slots.count, slots[slot].generation == generation,
                    let handler = slots[slot].handler
                else { continue }
                eventsLeftInBatch = Int(count) - 1 - i
                handler.handle(events: events[i])
            }
        }
    }

    /// Fires due timers; returns the epoll timeout in ms until the next one (-1: none).
    private func runDueTimers() -> Int32 {
        while let next = timers.peek() {
            if next.isCancelled {
                _ = timers.pop()
                continue
            }
            let now = monotonicNanoseconds()
            if next.deadline > now {
                let ms = (next.deadline - now + 999_999) / 1_000_000
                return Int32(min(ms, 60_000))
            }
            _ = timers.pop()
            next.action()
            if stopRequested { return 0 }
        }
        return -1
    }
}

/// A binary min-heap of timers by deadline.
private struct TimerHeap {
    private var items: [ReactorTimer] = []

    func peek() -> ReactorTimer? { items.first }

    mutating func push(_ timer: ReactorTimer) {
        items.append(timer)
        var child = items.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard items[child].deadline < items[parent].deadline else { break }
            items.swapAt(child, parent)
            child = parent
        }
    }

    mutating func pop() -> ReactorTimer? {
        guard !items.isEmpty else { return nil }
        items.swapAt(0, items.count - 1)
        let top = items.removeLast()
        var parent = 0
        while true {
            let left = 2 * parent + 1
            let right = left + 1
            var smallest = parent
            if left < items.count, items[left].deadline < items[smallest].deadline { smallest = left }
            if right < items.count, items[right].deadline < items[smallest].deadline { smallest = right }
            if smallest == parent { break }
            items.swapAt(parent, smallest)
            parent = smallest
        }
        return top
    }
}
