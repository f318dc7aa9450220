import CSwinetd

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Blocking work off the reactor thread: jobs go to a few worker threads, and their outputs come
/// back to the reactor through an eventfd, so completions run on the reactor thread and the
/// service table still needs no locks. Used for spawning (a vfork suspends the calling thread until
/// the child execs) and for DNS lookups (which block for seconds when DNS is down).
///
/// Jobs and outputs cross threads; callers hand over values that the reactor no longer mutates.
final class WorkerPool<Job, Output>: EventHandler, @unchecked Sendable {
    private let wakeFD: Int32
    private let lock = PthreadLock()
    /// Allocated, not a stored property: a pthread object must not move (PthreadLock).
    private let condition: UnsafeMutablePointer<pthread_cond_t> = {
        let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
        condition.initialize(to: pthread_cond_t())
        pthread_cond_init(condition, nil)
        return condition
    }()
    // Shared with the worker threads and touched only with `lock` held. Swift's dynamic
    // exclusivity checks are per thread, so they could not see a race here anyway; unchecked,
    // they cost nothing per job.
    @exclusivity(unchecked) private var jobs: [(UInt64, Job)] = []
    @exclusivity(unchecked) private var jobsHead = 0
    @exclusivity(unchecked) private var outputs: [(UInt64, Output)] = []
    private let work: (Job) -> Output
    // Reactor-thread state.
    private var completions: [UInt64: (Output) -> Void] = [:]
    /// The outputs being completed, swapped with `outputs` so neither is reallocated per wake-up.
    private var drained: [(UInt64, Output)] = []
    private var nextID: UInt64 = 1
    private var token: ReactorToken?

    /// Runs first on each worker thread (spawn workers block every signal there).
    private let threadSetup: (() -> Void)?

    init(
        reactor: Reactor, threads: Int, threadSetup: (() -> Void)? = nil, work: @escaping (Job) -> Output
    ) throws(SystemError) {
        self.work = work
        self.threadSetup = threadSetup
        wakeFD = sw_eventfd()
        guard wakeFD >= 0 else { throw SystemError("eventfd") }
        token = try reactor.register(fd: wakeFD, events: Readiness.input, handler: self)
        for _ in 0..<max(1, threads) { try startThread() }
    }

    /// Runs only when start-up failed before a thread took a reference (threads live for good).
    deinit {
        pthread_cond_destroy(condition)
        condition.deallocate()
        if wakeFD >= 0 { close(wakeFD) }
    }

    /// Jobs submitted and not yet completed.
    var inFlight: Int { completions.count }

    /// Queues `job`; `completion` later runs on the reactor thread. Returns an id for `cancel`.
    @discardableResult
    func submit(_ job: Job, completion: @escaping (Output) -> Void) -> UInt64 {
        let id = nextID
        nextID += 1
        completions[id] = completion
        lock.lock()
        jobs.append((id, job))
        pthread_cond_signal(condition)
        lock.unlock()
        return id
    }

    /// Drops the completion of a job whose requester gave up; the job itself still runs.
    func cancel(_ id: UInt64) { completions.removeValue(forKey: id) }

    func handle(events: UInt32) {
        var counter: UInt64 = 0
        _ = read(wakeFD, &counter, 8)
        lock.lock()
        swap(&outputs, &drained)
        lock.unlock()
        for (id, output) in drained {
            completions.removeValue(forKey: id)?(output)
        }
        drained.removeAll(keepingCapacity: true)
    }

    /// Gives back the queue capacity a burst grew (arrays and dictionaries keep their largest
    /// size); called when the daemon has been quiet (Supervisor's trim).
    func releaseSpareCapacity() {
        completions.releaseSpareCapacity()
        if drained.capacity > 64 { drained = [] }
        lock.lock()
        if jobs.isEmpty, jobs.capacity > 64 { jobs = [] }
        if outputs.isEmpty, outputs.capacity > 64 { outputs = [] }
        lock.unlock()
    }

    private func startThread() throws(SystemError) {
        try startDetachedThread { [self] in runWorker() }
    }

    private func runWorker() {
        threadSetup?()
        while true {
            lock.lock()
            while jobsHead == jobs.count { pthread_cond_wait(condition, lock.mutex) }
            let (id, job) = jobs[jobsHead]
            jobsHead += 1
            if jobsHead == jobs.count {
                jobs.removeAll(keepingCapacity: true)
                jobsHead = 0
            }
            lock.unlock()
            let output = work(job)
            lock.lock()
            let wasEmpty = outputs.isEmpty
            outputs.append((id, output))
            lock.unlock()
            // One wake-up per batch: the reactor drains every output it finds.
            if wasEmpty {
                var one: UInt64 = 1
                _ = write(wakeFD, &one, 8)
            }
        }
    }
}

/// The closure a new thread runs, boxed to cross pthread_create's C boundary.
private final class ThreadBody {
    let run: () -> Void
    init(_ run: @escaping () -> Void) { self.run = run }
}

/// Starts a detached pthread running `body` (it inherits the caller's signal mask).
func startDetachedThread(_ body: @escaping () -> Void) throws(SystemError) {
    var thread = pthread_t()
    let context = Unmanaged.passRetained(ThreadBody(body)).toOpaque()
    let status = pthread_create(
        &thread, nil,
        { raw in
            Unmanaged<ThreadBody>.fromOpaque(raw!).takeRetainedValue().run()
            return nil
        }, context)
    guard status == 0 else {
        Unmanaged<ThreadBody>.fromOpaque(context).release()
        throw SystemError("pthread_create", errno: status)
    }
    pthread_detach(thread)
}
