/// Stream sockets that the kernel will not let listen side by side: on Linux a listening
/// `0.0.0.0:P` excludes every `a.b.c.d:P` (SO_REUSEADDR does not help a listener), a dual-stack
/// `[::]:P` also excludes IPv4 on P, and so on. Caught at load so `check` reports them with
/// file:line instead of a bind error at run time. Datagram sockets may overlap (the kernel
/// delivers to the most specific one), so only exact duplicates of those are errors.
enum ListenerConflicts {
    /// The addresses of one family a listener covers: nil address = the whole family (wildcard).
    private struct Coverage {
        var v4: [IPAddress?] = []
        var v6: [IPAddress?] = []
    }

    private static func coverage(_ address: IPAddress, v6Only: Bool) -> Coverage {
        var result = Coverage()
        switch address {
        case .v4(let raw):
            result.v4.append(raw == 0 ? nil : address)
        case .v6(let bytes, _):
            let wildcard = bytes.allSatisfy { $0 == 0 }
            if let mapped = SocketAddressFormatting.unmapped(bytes) {
                result.v4.append(mapped)
            } else {
                result.v6.append(wildcard ? nil : address)
                if wildcard && !v6Only { result.v4.append(nil) }
            }
        }
        return result
    }

    private static func overlap(_ a: [IPAddress?], _ b: [IPAddress?]) -> Bool {
        for x in a {
            for y in b where x == nil || y == nil || x == y { return true }
        }
        return false
    }

    /// Whether two listeners cannot both be bound.
    static func conflict(_ a: ListenerSpec, _ b: ListenerSpec) -> Bool {
        guard a.socketType != .dgram, b.socketType != .dgram,
            case .inet(let addressA, let portA, let v6OnlyA) = a.address,
            case .inet(let addressB, let portB, let v6OnlyB) = b.address,
            portA == portB
        else { return false }
        let x = coverage(addressA, v6Only: v6OnlyA)
        let y = coverage(addressB, v6Only: v6OnlyB)
        return overlap(x.v4, y.v4) || overlap(x.v6, y.v6)
    }

    /// Refuses each service whose stream listener overlaps one of an earlier service.
    static func refuseOverlaps(in configuration: inout LoadedConfiguration) {
        var kept: [Service] = []
        var byPort: [UInt16: [(ListenerSpec, Service)]] = [:]
        for service in configuration.services {
            var clash: (ListenerSpec, ListenerSpec, Service)?
            for spec in service.listeners {
                guard case .inet(_, let port, _) = spec.address else { continue }
                if let (earlierSpec, earlier) = byPort[port]?.first(where: { conflict($0.0, spec) }) {
                    clash = (spec, earlierSpec, earlier)
                    break
                }
            }
            if let (spec, earlierSpec, earlier) = clash {
                configuration.diagnostics.append(
                    Diagnostic(
                        .error, service.location,
                        "\(service.name): \(spec) overlaps \(earlierSpec) of \(earlier.name) at \(earlier.location) "
                            + "(the kernel refuses both listening on that port)"))
                continue
            }
            for spec in service.listeners {
                if case .inet(_, let port, _) = spec.address { byPort[port, default: []].append((spec, service)) }
            }
            kept.append(service)
        }
        configuration.services = kept
    }
}
