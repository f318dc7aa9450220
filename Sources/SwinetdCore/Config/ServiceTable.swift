/// The effective service table that `swinetd check` prints: one row per service, aligned.
public enum ServiceTable {
    public static func render(_ services: [Service], color: Bool = false) -> String {
        let header = ["SERVICE", "TYPE", "PROTO", "MODE", "USER", "PROGRAM", "LISTENS ON", "DEFINED AT"]
        var rows: [[String]] = [header]
        // A sandboxed service gets a second, indented line with its effective sandbox (the preset
        // expanded), so `swinetd check` shows what the child will get.
        var notes: [String?] = [nil]
        for service in services {
            var lines = service.sandbox.isEmpty ? [] : ["    sandbox: " + service.sandbox.summary]
            if let proxy = service.proxyProtocol {
                lines.append("    proxy_protocol from " + proxy.trusted.map { "\($0)" }.joined(separator: " "))
            }
            if service.listenFDs { lines.append("    listen_fds: \(service.listeners.count) socket(s) as fd 3 and up") }
            if let tls = service.tls { lines.append("    tls: " + tls.summary) }
            notes.append(lines.isEmpty ? nil : lines.joined(separator: "\n"))
            let mode = modeText(service)
            let program: String
            switch service.program {
            case _ where service.redirect != nil: program = "redirect \(service.redirect!)"
            case _ where service.flags.sensor: program = "sensor"
            case .builtin(let builtin): program = "internal \(builtin.rawValue)"
            case .external(let path, let arguments):
                // argv[0] is shown only when it is not simply the program's name (tcpd wrappers).
                let base = path.split(separator: "/").last.map(String.init) ?? path
                let rest = Array(arguments.dropFirst())
                let shown = arguments.first.map { $0 == base ? rest : ["argv0=\($0)"] + rest } ?? []
                program = ([path] + shown).joined(separator: " ")
            }
            let listens: String
            if case .target(let name, let plus) = service.tcpmux {
                listens = "tcpmux " + (plus ? "+" : "") + name
            } else {
                listens = service.listeners.map { "\($0.address)" }.joined(separator: ", ")
            }
            let user = service.credentials.changeIdentity
                ? "\(service.credentials.user)(\(service.credentials.uid):\(service.credentials.gid))"
                : "\(service.credentials.user)(self)"
            rows.append([
                service.name, service.socketType.rawValue, service.protocolName, mode, user, program, listens,
                "\(service.location)",
            ])
        }
        var widths = [Int](repeating: 0, count: header.count)
        for row in rows {
            for (i, cell) in row.enumerated() where i < header.count - 1 { widths[i] = max(widths[i], cell.count) }
        }
        var out = ""
        for (index, row) in rows.enumerated() {
            var line = ""
            for (i, cell) in row.enumerated() {
                let padded = i < header.count - 1 ? cell + String(repeating: " ", count: widths[i] - cell.count + 2) : cell
                line += padded
            }
            if color && index == 0 { line = "\u{1B}[1m" + line + "\u{1B}[0m" }
            out += line + "\n"
            if let note = notes[index] { out += note + "\n" }
        }
        return out
    }

    private static func modeText(_ service: Service) -> String {
        var text = service.wait ? "wait" : "nowait"
        var parts: [String] = []
        if let max = service.limits.maxSpawnsPerMinute { parts.append("max=\(max)/min") }
        if let cap = service.limits.maxChildren { parts.append("children=\(cap)") }
        if let cap = service.limits.maxConnectionsPerIPPerMinute { parts.append("perip/min=\(cap)") }
        if let cap = service.limits.maxChildrenPerIP { parts.append("perip=\(cap)") }
        if let cps = service.limits.connectionRate { parts.append("cps=\(cps.rate)/\(cps.pauseSeconds)s") }
        if !parts.isEmpty { text += "(" + parts.joined(separator: ",") + ")" }
        return text
    }
}
