import Logging

/// tcpd's hosts.allow / hosts.deny, applied per service by its daemon name (`access.libwrapName`).
/// Read at start-up and on every reload; only when some service uses them.
extension Supervisor {
    // These take the service's daemon name, not the `Service`: passing a runtime's stored
    // `Service` by value copied it, every field retained, once per connection (callgrind).

    /// Whether the rules that apply to `daemon` (a service's `access.libwrapName`) need the
    /// client's host name.
    func hostsRulesNeedName(daemon: String?) -> Bool {
        guard daemon != nil, let rules = policyState.hostsRules else { return false }
        return rules.needsHostName
    }

    func hostsRulesNeedUser(daemon: String?) -> Bool {
        guard daemon != nil, let rules = policyState.hostsRules else { return false }
        return rules.needsUser
    }

    /// "libwrap" when the tcpd rules deny this client of `daemon`, else nil.
    func hostsRulesRefusal(daemon: String?, serviceName: @autoclosure () -> String, peer: PeerInfo, facts: ClientFacts)
        -> String?
    {
        guard let daemon, let rules = policyState.hostsRules, let address = peer.address else { return nil }
        let client = AccessClient(
            address: address, hostName: facts.hostName, nameMismatch: facts.nameMismatch, user: facts.user)
        let decision = rules.check(daemon: daemon, serverAddress: peer.local?.0, serverPort: peer.local?.1, client: client)
        if !decision.options.isEmpty {
            logger.info("\(serviceName()): hosts rule \(decision.rule.map { "\($0)" } ?? "") options not run: \(decision.options.joined(separator: " : "))")
        }
        return decision.allowed ? nil : "libwrap"
    }

    /// Reads /etc/hosts.allow and /etc/hosts.deny when some service uses them.
    func loadHostsRules(for services: [Service]) {
        guard services.contains(where: { $0.access.libwrapName != nil }) else {
            policyState.hostsRules = nil
            return
        }
        let (rules, diagnostics) = HostsAccessRules.load(
            allowPath: options.hostsAllowPath, denyPath: options.hostsDenyPath)
        for diagnostic in diagnostics { logger.warning("\(diagnostic)") }
        policyState.hostsRules = rules
    }
}
