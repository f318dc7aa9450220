import Logging

/// tcpd's hosts.allow / hosts.deny, applied per service by its daemon name (`access.libwrapName`).
/// Read at start-up and on every reload; only when some service uses them.
extension Supervisor {
    func hostsRulesNeedName(for service: Service) -> Bool {
        guard service.access.libwrapName != nil, let rules = policyState.hostsRules else { return false }
        return rules.needsHostName
    }

    func hostsRulesNeedUser(for service: Service) -> Bool {
        guard service.access.libwrapName != nil, let rules = policyState.hostsRules else { return false }
        return rules.needsUser
    }

    /// "libwrap" when the tcpd rules deny this client, else nil.
    func hostsRulesRefusal(for service: Service, peer: PeerInfo, facts: ClientFacts) -> String? {
        guard let daemon = service.access.libwrapName, let rules = policyState.hostsRules,
            let address = peer.address
        else { return nil }
        let client = AccessClient(
            address: address, hostName: facts.hostName, nameMismatch: facts.nameMismatch, user: facts.user)
        let decision = rules.check(daemon: daemon, serverAddress: peer.local?.0, serverPort: peer.local?.1, client: client)
        if !decision.options.isEmpty {
            logger.info("\(service.logName): hosts rule \(decision.rule.map { "\($0)" } ?? "") options not run: \(decision.options.joined(separator: " : "))")
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
