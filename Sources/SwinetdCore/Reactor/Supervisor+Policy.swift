import Logging

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Daemon-wide policy state: SENSOR bans, client lookups, per-service log destinations and the
/// tcpd rules, shared by every service.
extension Supervisor {
    // MARK: - SENSOR bans

    /// Whether a SENSOR service has banned this address (xinetd's global no_access list).
    func isBanned(_ address: IPAddress) -> Bool {
        guard let until = policyState.bans[address] else { return false }
        if let until, until <= monotonicNanoseconds() {
            policyState.bans.removeValue(forKey: address)
            return false
        }
        return true
    }

    /// Bans `address` from every service for `seconds` (nil: until restart; 0: not at all).
    func ban(_ address: IPAddress, seconds: Int?, by service: Service) {
        if seconds == 0 { return }
        policyState.bans[address] = seconds.map { monotonicNanoseconds() + Int64($0) * 1_000_000_000 }
        let span = seconds.map { "for \($0 / 60) min" } ?? "until restart"
        logger.warning("\(service.logName): sensor tripped by \(address); denying it every service \(span)")
    }

    func noteRefusal() { policyState.refusals += 1 }

    // MARK: - Lookups

    /// Finds the client's host name and/or ident user without blocking the reactor; gives up after
    /// `--lookup-timeout` and reports what it has (an unknown name can only deny).
    func lookUp(
        address: IPAddress, peer: PeerInfo, name: Bool, user: Bool, completion: @escaping (ClientFacts) -> Void
    ) {
        let lookup = PendingLookup(completion: completion)
        lookup.waitingForName = name
        lookup.waitingForUser = user
        if name {
            if policyState.resolver == nil {
                do {
                    policyState.resolver = try HostNameResolver(reactor: reactor)
                } catch {
                    logger.error("cannot start the host name lookup thread: \(error)")
                }
            }
            if let resolver = policyState.resolver,
                let id = resolver.lookup(address, completion: { [weak lookup] answer in
                    guard let lookup else { return }
                    lookup.facts.hostName = answer.name
                    lookup.facts.nameMismatch = answer.mismatch
                    lookup.waitingForName = false
                    lookup.finishIfDone()
                })
            {
                lookup.cancelName = { [weak resolver] in resolver?.cancel(id) }
            } else {
                lookup.waitingForName = false
            }
        }
        if user, let local = peer.local {
            IdentQuery.start(
                peer: address, peerPort: peer.port, local: local.0, localPort: local.1,
                timeout: options.lookupTimeoutSeconds, reactor: reactor
            ) { [weak lookup] found in
                guard let lookup else { return }
                lookup.facts.user = found.map { sanitizedForLog(Array($0.utf8), limit: 64) }
                lookup.waitingForUser = false
                lookup.finishIfDone()
            }
        } else {
            lookup.waitingForUser = false
        }
        lookup.timer = reactor.schedule(after: options.lookupTimeoutSeconds + 0.5) { [lookup] in  // keeps it alive until done
            lookup.cancelName?()
            lookup.finish()
        }
        lookup.finishIfDone()
    }

    // MARK: - Log destinations

    /// The log for one service: the daemon's, syslog with the service's facility, or a file
    /// (opened once per path per configuration, so rotation works with SIGHUP).
    func serviceLog(for service: Service) -> ServiceLog {
        var file: LimitedLogFile?
        if case .file(let path, let soft, let hard) = service.logging.destination {
            if let open = policyState.logFiles[path] {
                file = open
            } else {
                let opened = LimitedLogFile(path: path, softLimit: soft, hardLimit: hard, logger: logger)
                policyState.logFiles[path] = opened
                file = opened
            }
        }
        return ServiceLog(settings: service.logging, id: service.logName, logger: logger, file: file, json: options.admin.logFormat == .json)
    }

    /// Drops the open log files so the next configuration reopens them.
    func reopenLogFiles() { policyState.logFiles.removeAll() }
}

/// Mutable policy state of the supervisor.
final class PolicyState {
    /// Banned address → end of the ban (nil: forever).
    var bans: [IPAddress: Int64?] = [:]
    var refusals = 0
    var resolver: HostNameResolver?
    var logFiles: [String: LimitedLogFile] = [:]
    /// nil when no service uses tcpd rules.
    var hostsRules: HostsAccessRules?
}

/// One client's lookups in flight; completes once, when all are done or time is up.
private final class PendingLookup {
    var facts = ClientFacts()
    var waitingForName = false
    var waitingForUser = false
    var timer: ReactorTimer?
    var cancelName: (() -> Void)?
    private var completion: ((ClientFacts) -> Void)?

    init(completion: @escaping (ClientFacts) -> Void) {
        self.completion = completion
    }

    func finishIfDone() {
        if !waitingForName && !waitingForUser { finish() }
    }

    func finish() {
        guard let completion else { return }
        self.completion = nil
        timer?.cancel()
        completion(facts)
    }
}
