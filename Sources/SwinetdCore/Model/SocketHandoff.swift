/// The PROXY protocol and systemd-style socket hand-off parts of the service model (docs/PROXY.md,
/// docs/SYSTEMD.md). Both configuration formats fill these.

/// HAProxy's PROXY protocol (v1 text or v2 binary) in front of a service: the header is read before
/// anything else, and only from a TCP peer inside `trusted`; the address it names then stands for
/// the client everywhere (ACLs, limits, logs, the child's environment).
public struct ProxyProtocolPolicy: Hashable, Sendable {
    /// Numeric networks only (`proxy_trusted`); never host names. Never empty.
    public var trusted: [AddressPattern]

    public init(trusted: [AddressPattern]) {
        self.trusted = trusted
    }

    /// Whether the load balancer at `address` may send a header.
    public func trusts(_ address: IPAddress) -> Bool {
        trusted.contains { pattern in
            if case .network(let network, let prefix) = pattern {
                return AddressAccess.matches(address, network: network, prefixLength: prefix)
            }
            return false
        }
    }
}

/// Parsing and checking of the hand-off options, shared by both formats.
enum SocketHandoffOptions {
    /// `proxy_trusted` values: addresses or CIDR networks (v4 or v6). Host names and domains are
    /// errors: trust must not depend on DNS.
    static func trustedNetworks(_ values: [String]) throws(XinetdValueError) -> [AddressPattern] {
        guard !values.isEmpty else { throw XinetdValueError("proxy_trusted needs at least one address or network") }
        var patterns: [AddressPattern] = []
        for value in values {
            for pattern in try AddressPatternParser.parse(value) {
                guard case .network = pattern else {
                    throw XinetdValueError("proxy_trusted takes addresses or networks (CIDR), not host names: \(value)")
                }
                patterns.append(pattern)
            }
        }
        return patterns
    }

    /// What is wrong with the hand-off options of a built service (empty: nothing). The service is
    /// refused when anything is.
    static func problems(_ service: Service) -> [String] {
        var problems: [String] = []
        if service.proxyProtocol != nil {
            let inetOnly = !service.listeners.isEmpty && service.listeners.allSatisfy {
                if case .inet = $0.address { return true }
                return false
            }
            if service.socketType != .stream || !inetOnly {
                problems.append("proxy_protocol needs a TCP stream service")
            } else if service.wait && service.builtin == nil {
                problems.append("proxy_protocol needs a nowait service (a wait service's program accepts itself)")
            }
            if service.tcpmux != nil {
                problems.append("proxy_protocol cannot be set on a tcpmux target; set it on the tcpmux service")
            }
        }
        if service.listenFDs {
            if !service.wait || service.builtin != nil {
                problems.append("listen_fds needs a wait service that runs a program")
            }
            if service.redirect != nil || service.tcpmux != nil {
                problems.append("listen_fds cannot be used with redirect or tcpmux")
            }
        }
        return problems
    }
}
