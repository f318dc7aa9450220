/// Renders loaded services as inetd.conf or xinetd.conf text (`swinetd convert`).
///
/// The output reloads to the same services wherever the target format can say it; everything it
/// cannot say is listed in `notes`, one line per service, so nothing is dropped silently.
public enum ConfigConverter {
    public struct Output: Sendable {
        /// The configuration text.
        public var text: String
        /// What could not be carried over, one line per affected service (`file:line name: ...`).
        public var notes: [String]
    }

    public static func render(
        _ services: [Service], as format: ConfigFormat, servicesDatabase: ServicesDatabase,
        sources: [String] = [], defaultBacklog: Int32 = LoadOptions().defaultBacklog
    ) -> Output {
        var renderer = Renderer(servicesDatabase: servicesDatabase, defaultBacklog: defaultBacklog)
        let header =
            "# Converted by swinetd convert"
            + (sources.isEmpty ? "" : " from " + sources.joined(separator: ", ")) + "\n"
        switch format {
        case .inetd: renderer.renderInetd(services)
        case .xinetd: renderer.renderXinetd(services)
        }
        return Output(text: header + renderer.text, notes: renderer.notes)
    }

    private struct Renderer {
        let servicesDatabase: ServicesDatabase
        let defaultBacklog: Int32
        var text = ""
        var notes: [String] = []

        private mutating func note(_ service: Service, _ lost: [String]) {
            guard !lost.isEmpty else { return }
            notes.append("\(service.location) \(service.name): not carried over: " + lost.joined(separator: "; "))
        }

        // MARK: inetd.conf

        mutating func renderInetd(_ services: [Service]) {
            for service in services {
                if service.redirect != nil {
                    note(service, ["redirect \(service.redirect!) (inetd.conf has no redirect; service skipped)"])
                    continue
                }
                if service.flags.sensor {
                    note(service, ["SENSOR (inetd.conf has no sensor; service skipped)"])
                    continue
                }
                var lost = policyLosses(service)
                let lines = inetdLines(service, lost: &lost)
                text +=
                    "\n# \(service.id == service.name ? service.name : "\(service.name) (id \(service.id))")"
                    + " from \(service.location)\n"
                for line in lines { text += line + "\n" }
                note(service, lost)
            }
        }

        private func inetdLines(_ service: Service, lost: inout [String]) -> [String] {
            let wait = inetdWait(service, lost: &lost)
            let user = inetdUser(service.credentials)
            let program: String
            switch service.program {
            case .builtin(let builtin): program = "internal \(builtin.rawValue)"
            case .external(let path, let arguments):
                program = ([path] + (arguments.isEmpty ? [XinetdServiceBuilder.basename(path)] : arguments))
                    .joined(separator: " ")
            }
            func line(_ serviceField: String, _ proto: String) -> String {
                [serviceField, service.socketType.rawValue, proto, wait, user, program].joined(separator: "\t")
            }
            let transport = service.socketType == .dgram ? "udp" : "tcp"
            let sandboxOptions = inetdSandboxOptions(service, lost: &lost) + Self.inetdHandoffOptions(service)
                + (service.tls?.inetdOptions(lost: &lost) ?? "")
            if case .target(let name, let sendsPlus) = service.tcpmux {
                return [line("tcpmux/" + (sendsPlus ? "+" : "") + name, "tcp" + sandboxOptions)]
            }
            let options: (ListenerSpec) -> String = { listener in
                var text = ""
                if let size = listener.receiveBuffer { text += ",rcvbuf=\(size)" }
                if let size = listener.sendBuffer { text += ",sndbuf=\(size)" }
                if listener.backlog != defaultBacklog { text += ",backlog=\(listener.backlog)" }
                return text + sandboxOptions
            }
            // `*` with plain tcp/udp is exactly one 0.0.0.0 and one v6-only [::] listener.
            let wildcardPair: Set<ListenAddress> = [
                .inet(.anyV4, port: 0, v6Only: false), .inet(.anyV6, port: 0, v6Only: true),
            ]
            if service.listeners.count == 2,
                Set(service.listeners.map { Self.withoutPort($0.address) }) == wildcardPair,
                case .inet(_, let port, _) = service.listeners[0].address,
                case .inet(_, let otherPort, _) = service.listeners[1].address, port == otherPort,
                options(service.listeners[0]) == options(service.listeners[1])
            {
                return [
                    line(
                        inetdServiceField(service, port: port, transport: transport),
                        transport + options(service.listeners[0]))
                ]
            }
            return service.listeners.map { listener in
                switch listener.address {
                case .inet(let address, let port, let v6Only):
                    let field = inetdServiceField(service, port: port, transport: transport)
                    let proto = transport + (address.isIPv6 ? (v6Only ? "6" : "46") : "4") + options(listener)
                    let isWildcard = address == .anyV4 || address == .anyV6
                    let host = address.isIPv6 ? "[\(address)]" : "\(address)"
                    return line(isWildcard ? field : "\(host):\(field)", proto)
                case .unix(let path, let owner, let group, let mode):
                    var field = path
                    if owner != nil || group != nil || mode != 0o600 {
                        field =
                            ":\(owner.map(String.init) ?? ""):\(group.map(String.init) ?? ""):"
                            + String(mode, radix: 8) + ":" + path
                    }
                    return line(field, "unix" + options(listener))
                }
            }
        }

        /// The sandbox as protocol options (`,private_tmp,protect_system=full`). A value that cannot
        /// be written in the protocol field (a `,`, `:` or blank in a path) is reported as lost.
        private func inetdSandboxOptions(_ service: Service, lost: inout [String]) -> String {
            var text = ""
            for (name, values) in service.sandbox.attributes(runsAsRoot: Self.runsAsRoot(service)) {
                if values.contains(where: { $0.contains(where: { ",: \t".contains($0) }) }) {
                    lost.append("\(name) \(values.joined(separator: " ")) (a , : or blank cannot be written in inetd.conf)")
                    continue
                }
                text += values == ["yes"] ? ",\(name)" : ",\(name)=" + values.joined(separator: ":")
            }
            return text
        }

        /// Whether the child runs as root (the credentials are swinetd's own when it cannot switch).
        static func runsAsRoot(_ service: Service) -> Bool { service.credentials.uid == 0 }

        /// `,proxy_protocol,proxy_trusted=A;B,listen_fds`.
        static func inetdHandoffOptions(_ service: Service) -> String {
            var text = ""
            if let proxy = service.proxyProtocol {
                text += ",proxy_protocol,proxy_trusted=" + proxy.trusted.map { "\($0)" }.joined(separator: ";")
            }
            if service.listenFDs { text += ",listen_fds" }
            return text
        }

        private static func withoutPort(_ address: ListenAddress) -> ListenAddress {
            if case .inet(let ip, _, let v6Only) = address { return .inet(ip, port: 0, v6Only: v6Only) }
            return address
        }

        /// The name when /etc/services gives it this port, else the number.
        private func inetdServiceField(_ service: Service, port: UInt16, transport: String) -> String {
            servicesDatabase.port(named: service.name, protocolName: transport) == port ? service.name : String(port)
        }

        private func inetdWait(_ service: Service, lost: inout [String]) -> String {
            let limits = service.limits
            var text = service.wait ? "wait" : "nowait"
            let slashed = [limits.maxChildren, limits.maxConnectionsPerIPPerMinute, limits.maxChildrenPerIP]
            if let last = slashed.lastIndex(where: { $0 != nil }) {
                text += slashed[...last].map { "/\($0 ?? 0)" }.joined()
                if let spawns = limits.maxSpawnsPerMinute {
                    lost.append("spawn limit \(spawns)/min (cannot be combined with /max-child in one entry)")
                }
            } else if let spawns = limits.maxSpawnsPerMinute {
                text += ".\(spawns)"
            }
            return text
        }

        private func inetdUser(_ credentials: Credentials) -> String {
            let primary = UserDatabase.user(named: credentials.user)?.primaryGID
            guard primary != credentials.gid else { return credentials.user }
            return credentials.user + ":" + (UserDatabase.groupName(id: credentials.gid) ?? String(credentials.gid))
        }

        /// Everything xinetd-only that a service uses.
        private func policyLosses(_ service: Service) -> [String] {
            var lost: [String] = []
            let access = service.access
            if let onlyFrom = access.onlyFrom { lost.append("only_from " + Self.patterns(onlyFrom)) }
            if !access.noAccess.isEmpty { lost.append("no_access " + Self.patterns(access.noAccess)) }
            if !access.accessTimes.isEmpty {
                lost.append("access_times " + access.accessTimes.map(\.description).joined(separator: " "))
            }
            if let name = access.libwrapName { lost.append("libwrap \(name) (use --libwrap or tcpd)") }
            if let rate = service.limits.connectionRate { lost.append("cps \(rate.rate) \(rate.pauseSeconds)") }
            if let load = service.limits.maxLoad { lost.append("max_load \(load)") }
            let setup = service.setup
            if let nice = setup.nice { lost.append("nice \(nice)") }
            if setup.umask != ChildSetup().umask { lost.append("umask " + Self.octal3(setup.umask)) }
            for limit in setup.rlimits { lost.append("rlimit_\(limit.kind.rawValue)") }
            if !setup.environment.isEmpty { lost.append("env " + setup.environment.joined(separator: " ")) }
            if !setup.passEnvironment.isEmpty { lost.append("passenv " + setup.passEnvironment.joined(separator: " ")) }
            if let banner = setup.banner { lost.append("banner \(banner)") }
            if let banner = setup.bannerSuccess { lost.append("banner_success \(banner)") }
            if let banner = setup.bannerFail { lost.append("banner_fail \(banner)") }
            if setup.tcpNoDelay { lost.append("flags NODELAY") }
            if setup.keepAlive { lost.append("flags KEEPALIVE") }
            if service.flags.identOnly { lost.append("flags IDONLY") }
            if service.flags.noRetry { lost.append("flags NORETRY") }
            let defaults = LogSettings()
            if service.logging.destination != nil { lost.append("log_type") }
            if service.logging.onSuccess != defaults.onSuccess {
                lost.append("log_on_success " + Self.words(service.logging.onSuccess))
            }
            if service.logging.onFailure != defaults.onFailure {
                lost.append("log_on_failure " + Self.words(service.logging.onFailure))
            }
            let credentials = service.credentials
            if credentials.changeIdentity, UserDatabase.user(named: credentials.user)?.primaryGID != nil,
                credentials.groups != UserDatabase.groupList(user: credentials.user, gid: credentials.gid)
            {
                lost.append("groups (inetd.conf always gives the user's supplementary groups)")
            }
            return lost
        }

        // MARK: xinetd.conf

        mutating func renderXinetd(_ services: [Service]) {
            var counts: [String: Int] = [:]
            for service in services { counts[service.id, default: 0] += 1 }
            var used = Set<String>()
            func claim(_ wanted: String) -> String {
                var candidate = wanted
                var number = 2
                while used.contains(candidate) {
                    candidate = "\(wanted)-\(number)"
                    number += 1
                }
                used.insert(candidate)
                return candidate
            }
            for service in services {
                if let unix = service.listeners.first(where: { if case .unix = $0.address { true } else { false } }) {
                    note(service, ["Unix-domain socket \(unix.address) (xinetd has none; service skipped)"])
                    continue
                }
                // `echo stream` and `echo dgram` share an id in inetd.conf; xinetd ids must differ.
                var base =
                    counts[service.id, default: 0] > 1 ? "\(service.id)-\(service.socketType.rawValue)" : service.id
                // inetd.conf's id for a tcpmux target is `tcpmux/+NAME`; xinetd's is the name.
                if case .target(let name, _) = service.tcpmux, service.id == service.name { base = name }
                var lost = xinetdLosses(service)
                if service.tcpmux != nil {
                    text += xinetdBlock(service, listener: nil, id: claim(base))
                } else {
                    if service.listeners.count > 1 {
                        lost.append("one socket per xinetd service: written as \(service.listeners.count) services")
                    }
                    for (index, listener) in service.listeners.enumerated() {
                        var wanted = base
                        if index > 0, case .inet(let address, _, _) = listener.address {
                            wanted += address.isIPv6 ? "-ipv6" : "-ipv4"
                        }
                        text += xinetdBlock(service, listener: listener, id: claim(wanted))
                    }
                }
                note(service, lost)
            }
        }

        private func xinetdLosses(_ service: Service) -> [String] {
            var lost: [String] = []
            if let spawns = service.limits.maxSpawnsPerMinute { lost.append("spawn limit \(spawns)/min") }
            if let perIP = service.limits.maxConnectionsPerIPPerMinute {
                lost.append("\(perIP) connections per client per minute")
            }
            for listener in service.listeners {
                if listener.receiveBuffer != nil || listener.sendBuffer != nil { lost.append("rcvbuf/sndbuf") }
                if listener.backlog != defaultBacklog { lost.append("backlog \(listener.backlog)") }
            }
            for limit in service.setup.rlimits where limit.soft != limit.hard {
                lost.append("rlimit_\(limit.kind.rawValue) soft limit (xinetd sets soft = hard)")
            }
            if case .file(_, nil, .some) = service.logging.destination {
                lost.append("log file hard limit without soft")
            }
            if service.flags.sensor, let seconds = service.flags.denyTimeSeconds, seconds % 60 != 0 {
                lost.append("deny_time seconds (rounded up to minutes)")
            }
            return lost
        }

        /// The xinetd name and whether it must be UNLISTED: xinetd finds builtins by service name and
        /// ports through /etc/services, so an internal service on a numbered port is renamed after its builtin.
        private func xinetdName(_ service: Service, transport: String, port: UInt16?) -> (name: String, unlisted: Bool)
        {
            if case .target(let name, _) = service.tcpmux { return (name, true) }
            var name = service.name
            if case .builtin(let builtin) = service.program, !service.flags.sensor, service.redirect == nil {
                let canonical = servicesDatabase.entry(named: name, protocolName: transport)?.name
                if Builtin(rawValue: name) != builtin && canonical.flatMap(Builtin.init(rawValue:)) != builtin {
                    name = builtin.rawValue
                }
            }
            return (name, servicesDatabase.port(named: name, protocolName: transport) != port)
        }

        private func xinetdBlock(_ service: Service, listener: ListenerSpec?, id: String) -> String {
            let transport = service.socketType == .dgram ? "udp" : "tcp"
            var port: UInt16?
            var address: IPAddress?
            var v6Only = false
            if let listener, case .inet(let ip, let listenPort, let onlyV6) = listener.address {
                port = listenPort
                address = ip
                v6Only = onlyV6
            }
            let (name, unlisted) = xinetdName(service, transport: transport, port: port)
            var lines: [(String, String)] = []
            func add(_ attribute: String, _ value: String) { lines.append((attribute, value)) }

            add("id", id)
            var types: [String] = []
            let isBuiltin = service.builtin != nil && !service.flags.sensor && service.redirect == nil
            if isBuiltin { types.append("INTERNAL") }
            if unlisted { types.append("UNLISTED") }
            if case .target(_, let sendsPlus) = service.tcpmux { types.append(sendsPlus ? "TCPMUXPLUS" : "TCPMUX") }
            if !types.isEmpty { add("type", types.joined(separator: " ")) }

            var flags: [String] = []
            var arguments: [String] = []
            var server: String?
            if service.redirect == nil, case .external(let path, let argv) = service.program {
                server = path
                if let first = argv.first, first != XinetdServiceBuilder.basename(path) {
                    flags.append("NAMEINARGS")
                    arguments = argv
                } else {
                    arguments = Array(argv.dropFirst())
                }
            }
            if let address { flags.append(address.isIPv6 ? "IPv6" : "IPv4") }
            if service.setup.tcpNoDelay { flags.append("NODELAY") }
            if service.setup.keepAlive { flags.append("KEEPALIVE") }
            if service.access.libwrapName == nil { flags.append("NOLIBWRAP") }
            if service.flags.sensor { flags.append("SENSOR") }
            if service.flags.identOnly { flags.append("IDONLY") }
            if service.flags.noRetry { flags.append("NORETRY") }
            if !flags.isEmpty { add("flags", flags.joined(separator: " ")) }

            add("socket_type", service.socketType.rawValue)
            add("protocol", transport)
            add("wait", service.wait ? "yes" : "no")
            let credentials = service.credentials
            if credentials.changeIdentity || server != nil || service.redirect != nil {
                add("user", credentials.user)
                if UserDatabase.user(named: credentials.user)?.primaryGID != credentials.gid {
                    add("group", UserDatabase.groupName(id: credentials.gid) ?? String(credentials.gid))
                }
                if credentials.groups != [credentials.gid] { add("groups", "yes") }
            }
            if let server { add("server", server) }
            if !arguments.isEmpty { add("server_args", arguments.joined(separator: " ")) }
            if let port { add("port", String(port)) }
            if let address, address != .anyV4, address != .anyV6 { add("bind", "\(address)") }
            if let address, address.isIPv6 { add("v6only", v6Only ? "yes" : "no") }
            if let redirect = service.redirect { add("redirect", "\(redirect.host) \(redirect.port)") }

            let limits = service.limits
            if let cap = limits.maxChildren { add("instances", String(cap)) }
            if let cap = limits.maxChildrenPerIP { add("per_source", String(cap)) }
            // Without a cps line xinetd (and swinetd) would apply 50 10.
            add("cps", limits.connectionRate.map { "\($0.rate) \($0.pauseSeconds)" } ?? "0 0")
            if let load = limits.maxLoad { add("max_load", "\(load)") }

            let setup = service.setup
            if let nice = setup.nice { add("nice", String(nice)) }
            if setup.umask != ChildSetup().umask { add("umask", Self.octal3(setup.umask)) }
            for limit in setup.rlimits {
                add(
                    "rlimit_\(limit.kind.rawValue)",
                    limit.hard == ResourceLimit.unlimited ? "UNLIMITED" : String(limit.hard))
            }
            if !setup.environment.isEmpty { add("env", setup.environment.joined(separator: " ")) }
            if !setup.passEnvironment.isEmpty { add("passenv", setup.passEnvironment.joined(separator: " ")) }
            if let banner = setup.banner { add("banner", banner) }
            if let banner = setup.bannerSuccess { add("banner_success", banner) }
            if let banner = setup.bannerFail { add("banner_fail", banner) }

            let access = service.access
            if let onlyFrom = access.onlyFrom { add("only_from", Self.patterns(onlyFrom)) }
            if !access.noAccess.isEmpty { add("no_access", Self.patterns(access.noAccess)) }
            if !access.accessTimes.isEmpty {
                add("access_times", access.accessTimes.map(\.description).joined(separator: " "))
            }
            if let libwrap = access.libwrapName {
                let implied: String
                if service.redirect != nil {
                    implied = name
                } else if let server {
                    implied = XinetdServiceBuilder.basename(flags.contains("NAMEINARGS") ? arguments[0] : server)
                } else {
                    implied = id
                }
                if libwrap != implied { add("libwrap", libwrap) }
            }

            let logging = service.logging
            switch logging.destination {
            case .syslog(let facility, let level):
                let facilityName = XinetdValues.syslogFacilities.first { $0.value == facility }?.key ?? "daemon"
                let levelName = XinetdValues.syslogLevels.first { $0.value == level }?.key ?? "info"
                add("log_type", "SYSLOG \(facilityName) \(levelName)")
            case .file(let path, let soft, let hard):
                var value = "FILE \(path)"
                if let soft {
                    value += " \(soft)"
                    if let hard { value += " \(hard)" }
                }
                add("log_type", value)
            case nil: break
            }
            if !logging.onSuccess.isEmpty { add("log_on_success", Self.words(logging.onSuccess)) }
            if !logging.onFailure.isEmpty { add("log_on_failure", Self.words(logging.onFailure)) }
            for (attribute, values) in service.sandbox.attributes(runsAsRoot: Self.runsAsRoot(service)) {
                add(attribute, values.joined(separator: " "))
            }
            if let proxy = service.proxyProtocol {
                add("proxy_protocol", "yes")
                add("proxy_trusted", proxy.trusted.map { "\($0)" }.joined(separator: " "))
            }
            if service.listenFDs { add("listen_fds", "yes") }
            for (attribute, value) in service.tls?.attributes ?? [] { add(attribute, value) }
            if service.flags.sensor {
                switch service.flags.denyTimeSeconds {
                case nil: add("deny_time", "FOREVER")
                case 0: add("deny_time", "NEVER")
                case let seconds?: add("deny_time", String((seconds + 59) / 60))
                }
            }

            var block = "\n# \(service.name) from \(service.location)\nservice \(name)\n{\n"
            for (attribute, value) in lines {
                let padded = attribute + String(repeating: " ", count: max(1, 16 - attribute.count))
                block += "\t\(padded)= \(value)\n"
            }
            return block + "}\n"
        }

        // MARK: Values

        /// Written so the xinetd parser reads back the same pattern: a /32 ending in .0 keeps its prefix,
        /// because `a.b.c.0` alone means a.b.c.0/24.
        static func patterns(_ patterns: [AddressPattern]) -> String {
            patterns.map { pattern in
                switch pattern {
                case .network(let address, let prefix):
                    let full = address.isIPv6 ? 128 : 32
                    if prefix == full, !(address.description.hasSuffix(".0") && !address.isIPv6) {
                        return address.description
                    }
                    return "\(address)/\(prefix)"
                case .hostname(let name): return name
                case .domain(let suffix): return suffix.hasPrefix(".") ? suffix : "." + suffix
                }
            }.joined(separator: " ")
        }

        static func words<Field: RawRepresentable & CaseIterable & Hashable>(_ fields: Set<Field>) -> String
        where Field.RawValue == String {
            Field.allCases.filter(fields.contains).map(\.rawValue).joined(separator: " ")
        }

        static func octal3(_ value: UInt32) -> String {
            let digits = String(value, radix: 8)
            return String(repeating: "0", count: max(0, 3 - digits.count)) + digits
        }
    }
}
