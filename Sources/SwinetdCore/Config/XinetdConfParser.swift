import Glibc

/// Parses an xinetd configuration tree (xinetd 2.3.15 syntax, xinetd.conf(5)) into services.
///
/// Two passes: `XinetdConfReader` reads the blocks of every file in include order, then the one
/// `defaults` block is applied to every service, wherever it appears (xinetd applies part of it only
/// to services read after it; swinetd does not make the result depend on file order). Every attribute
/// is read regardless of the order it is written in (xinetd needs `flags = NAMEINARGS` before
/// `server_args`).
struct XinetdConfParser {
    let options: LoadOptions
    let servicesDatabase: ServicesDatabase

    func parse(_ bytes: [UInt8], file: String) -> (services: [Service], diagnostics: [Diagnostic], files: [String]) {
        var reader = XinetdConfReader()
        reader.read(bytes, file: file)
        var diagnostics = reader.diagnostics

        var defaults = XinetdSpec()
        var defaultsSection: XinetdSection?
        var defaultsBroken = false
        for section in reader.sections where section.kind == .defaults {
            if let first = defaultsSection {
                diagnostics.append(
                    Diagnostic(
                        .error, section.location,
                        "only one defaults section is allowed; this one is ignored (the first is at \(first.location))")
                )
                continue
            }
            defaultsSection = section
            var builder = XinetdSpecBuilder(
                section: section, isDefaults: true, start: XinetdSpec(), servicesDatabase: servicesDatabase)
            builder.applyAll()
            diagnostics += builder.diagnostics
            defaults = builder.spec
            defaultsBroken = section.isBroken || builder.hasErrors
        }

        var services: [Service] = []
        var ids: [String: ConfigLocation] = [:]
        for section in reader.sections where !section.isBroken {
            guard case .service(let name) = section.kind else { continue }
            if isDisabled(section, name: name, defaults: defaults) { continue }
            if defaultsBroken, let defaultsSection {
                // xinetd exits on a bad defaults section; refusing its services keeps a broken
                // only_from or bind in the defaults from widening access.
                diagnostics.append(
                    Diagnostic(
                        .error, section.location,
                        "service \(name) refused: the defaults section at \(defaultsSection.location) has errors"))
                continue
            }
            var specBuilder = XinetdSpecBuilder(
                section: section, isDefaults: false, start: defaults, servicesDatabase: servicesDatabase)
            specBuilder.applyAll()
            diagnostics += specBuilder.diagnostics
            guard !specBuilder.hasErrors else { continue }
            var serviceBuilder = XinetdServiceBuilder(
                name: name, location: section.location, spec: specBuilder.spec, options: options,
                servicesDatabase: servicesDatabase)
            let service = serviceBuilder.build()
            diagnostics += serviceBuilder.diagnostics
            guard let service else { continue }
            if let earlier = ids[service.id] {
                diagnostics.append(
                    Diagnostic(
                        .error, section.location,
                        "service \(name): id \(service.id) is already used at \(earlier) (ids must be unique; set `id`)"
                    ))
                continue
            }
            ids[service.id] = section.location
            services.append(service)
        }
        return (services, diagnostics, reader.files)
    }

    /// `disable = yes`, or excluded by the defaults' `enabled` / `disabled` lists. Disabled services are
    /// not checked further: distributions ship disabled entries for programs that are not installed.
    private func isDisabled(_ section: XinetdSection, name: String, defaults: XinetdSpec) -> Bool {
        if section.attributes.first(where: { $0.name == "disable" })?.values == ["yes"] { return true }
        let id = section.attributes.first(where: { $0.name == "id" })?.values.first ?? name
        if defaults.disabledIDs.contains(id) { return true }
        if let enabled = defaults.enabledIDs, !enabled.contains(id) { return true }
        return false
    }
}

// MARK: - Attribute values

/// The attribute values of one block, parsed but not yet combined into a service. A service's spec
/// starts as a copy of the defaults' spec, so inherited values and `+=` / `-=` fall out naturally.
struct XinetdSpec {
    enum Limit: Equatable {
        case unlimited
        case count(Int)

        var value: Int? {
            if case .count(let count) = self { return count }
            return nil
        }
    }

    var id: String?
    var types: Set<String> = []
    var flags: Set<String> = []
    /// Checked for a valid yes/no here; whether the service loads is decided before it is built.
    var disable = false
    var socketType: SocketType?
    var protocolName: String?
    var wait: Bool?
    var user: String?
    var group: String?
    var groups: Bool?
    var server: String?
    var serverArgs: [String]?
    var instances: Limit?
    var perSource: Limit?
    /// nil with `locations["cps"]` set: `cps = 0 ...`, no rate limit.
    var cps: ConnectionRate?
    var maxLoad: Double?
    var nice: Int32?
    var umask: UInt32?
    var port: UInt16?
    var redirect: RedirectTarget?
    var bind: String?
    var banner: String?
    var bannerSuccess: String?
    var bannerFail: String?
    var environment: [String] = []
    var passEnvironment: [String] = []
    var onlyFrom: [AddressPattern]?
    var noAccess: [AddressPattern] = []
    var accessTimes: [TimeWindow] = []
    var logDestination: LogSettings.Destination?
    var logOnSuccess: Set<LogSettings.SuccessField> = []
    var logOnFailure: Set<LogSettings.FailureField> = []
    var rlimits: [ResourceLimit.Kind: ResourceLimit] = [:]
    var v6only: Bool?
    /// `deny_time` in seconds; nil inside: FOREVER.
    var denyTime: Int??
    var libwrap: String?
    /// The sandbox attributes (docs/SANDBOX.md), combined with the preset once the user is known.
    var sandbox = SandboxSpec()
    /// `proxy_protocol`, `proxy_trusted`, `listen_fds` (docs/PROXY.md, docs/SYSTEMD.md).
    var proxyProtocol: Bool?
    var proxyTrusted: [AddressPattern]?
    var listenFDs: Bool?
    /// `tls_certificate`, `tls_key`, `tls_client_ca` (docs/TLS.md).
    var tls = TLSSpec()
    /// defaults only.
    var enabledIDs: Set<String>?
    var disabledIDs: Set<String> = []
    /// Where each attribute got its value (in this block or in the defaults), by canonical name.
    var locations: [String: ConfigLocation] = [:]
    /// The attributes set in the block itself rather than inherited from the defaults.
    var ownAttributes: Set<String> = []
}

/// Applies the attribute lines of one block to a spec, reporting every bad line.
struct XinetdSpecBuilder {
    let section: XinetdSection
    let isDefaults: Bool
    let servicesDatabase: ServicesDatabase
    private(set) var spec: XinetdSpec
    private(set) var diagnostics: [Diagnostic] = []
    /// Attributes already set in this block, for "set twice" errors.
    private var seen: [String: ConfigLocation] = [:]

    init(section: XinetdSection, isDefaults: Bool, start: XinetdSpec, servicesDatabase: ServicesDatabase) {
        self.section = section
        self.isDefaults = isDefaults
        self.servicesDatabase = servicesDatabase
        self.spec = start
        self.spec.ownAttributes = []
    }

    var hasErrors: Bool { diagnostics.contains { $0.severity == .error } }

    /// Attributes whose value is a set: the only ones that take `+=` and `-=`.
    static let setValued: Set<String> = [
        "only_from", "no_access", "log_on_success", "log_on_failure", "passenv", "env", "enabled", "disabled",
    ]

    /// What a `defaults` block may set (xinetd's parse.c table).
    static let allowedInDefaults: Set<String> = [
        "log_type", "log_on_success", "log_on_failure", "only_from", "no_access", "passenv", "disabled", "enabled",
        "instances", "bind", "interface", "per_source", "umask", "banner", "banner_success", "banner_fail",
        "groups", "cps", "max_load", "v6only",
        // swinetd's sandbox attributes: a hardened default for every service is one line.
        "chroot", "working_directory", "no_new_privileges", "capabilities", "private_tmp", "protect_system",
        "read_write_paths", "private_network", "system_call_filter", "system_call_architectures", "memory_max",
        "tasks_max", "hardened",
    ]

    static let serviceAttributes: Set<String> = [
        "id", "type", "flags", "disable", "socket_type", "protocol", "wait", "user", "group", "groups", "server",
        "server_args", "instances", "per_source", "cps", "max_load", "nice", "umask", "port", "redirect", "bind",
        "interface", "banner", "banner_success", "banner_fail", "env", "passenv", "only_from", "no_access",
        "access_times", "log_type", "log_on_success", "log_on_failure", "rlimit_as", "rlimit_cpu", "rlimit_data",
        "rlimit_rss", "rlimit_stack", "rlimit_files", "v6only", "deny_time", "libwrap",
        "chroot", "working_directory", "no_new_privileges", "capabilities", "private_tmp", "protect_system",
        "read_write_paths", "private_network", "system_call_filter", "system_call_architectures", "memory_max",
        "tasks_max", "hardened",
        // PROXY protocol and systemd-style socket hand-off.
        "proxy_protocol", "proxy_trusted", "listen_fds",
        "tls_certificate", "tls_key", "tls_client_ca",
    ]

    static let knownFlags: Set<String> = [
        "INTERCEPT", "NORETRY", "IDONLY", "NAMEINARGS", "NODELAY", "KEEPALIVE", "NOLIBWRAP", "SENSOR", "IPv4", "IPv6",
        "LABELED", "REUSE",
    ]

    static let knownTypes: Set<String> = ["INTERNAL", "UNLISTED", "TCPMUX", "TCPMUXPLUS", "RPC"]

    private mutating func error(_ attribute: XinetdAttribute, _ message: String) {
        diagnostics.append(Diagnostic(.error, attribute.location, message))
    }

    private mutating func warning(_ attribute: XinetdAttribute, _ message: String) {
        diagnostics.append(Diagnostic(.warning, attribute.location, message))
    }

    mutating func applyAll() {
        for attribute in section.attributes { apply(attribute) }
    }

    /// A keyword matched exactly (as xinetd does), with a hint when only the case differs.
    private func unknownKeyword(_ word: String, in known: some Sequence<String>, kind: String) -> String {
        if let match = known.first(where: { $0.lowercased() == word.lowercased() }) {
            return "unknown \(kind) \(word) (did you mean \(match)?)"
        }
        return "unknown \(kind) \(word)"
    }

    private mutating func apply(_ attribute: XinetdAttribute) {
        let name = attribute.name
        switch name {
        case "mdns", "rpc_version", "rpc_number":
            return error(attribute, "\(name) is not supported")
        default: break
        }
        guard Self.serviceAttributes.contains(name) || ["enabled", "disabled"].contains(name) else {
            return error(attribute, unknownKeyword(name, in: Self.serviceAttributes, kind: "attribute"))
        }
        if isDefaults, !Self.allowedInDefaults.contains(name) {
            return error(attribute, "\(name) is not allowed in defaults")
        }
        if !isDefaults, name == "enabled" || name == "disabled" {
            return error(attribute, "\(name) is only allowed in defaults")
        }
        var op = attribute.op
        if Self.setValued.contains(name) {
            // In defaults, `=` adds to what is there, as in xinetd.
            if isDefaults, op == .set { op = .add }
        } else {
            guard op == .set else {
                return error(attribute, "\(name) does not take \(op.rawValue) (only set-valued attributes do)")
            }
            let key = name == "interface" ? "bind" : name
            if let earlier = seen[key] {
                return error(attribute, "\(name) is already set at line \(earlier.line)")
            }
            seen[key] = attribute.location
        }
        let before = diagnostics.count
        applyValue(attribute, op: op)
        if diagnostics[before...].allSatisfy({ $0.severity != .error }) {
            let key = name == "interface" ? "bind" : name
            spec.locations[key] = attribute.location
            spec.ownAttributes.insert(key)
        }
    }

    /// Exactly one value, or an error.
    private mutating func single(_ attribute: XinetdAttribute) -> String? {
        guard attribute.values.count == 1 else {
            error(
                attribute,
                "\(attribute.name) takes exactly one value, found \(attribute.values.count)"
                    + (attribute.values.isEmpty ? "" : ": \(attribute.values.joined(separator: " "))"))
            return nil
        }
        return attribute.values[0]
    }

    private mutating func atLeastOne(_ attribute: XinetdAttribute) -> [String]? {
        guard !attribute.values.isEmpty else {
            error(attribute, "\(attribute.name) needs at least one value")
            return nil
        }
        return attribute.values
    }

    private mutating func yesNo(_ attribute: XinetdAttribute) -> Bool? {
        guard let value = single(attribute) else { return nil }
        switch value {
        case "yes": return true
        case "no": return false
        default:
            error(attribute, "\(attribute.name) must be yes or no, found \(value)")
            return nil
        }
    }

    private mutating func limit(_ attribute: XinetdAttribute) -> XinetdSpec.Limit? {
        guard let value = single(attribute) else { return nil }
        if value == "UNLIMITED" { return .unlimited }
        // 0 would refuse every connection; xinetd's way to switch a service off is `disable = yes`.
        guard let number = ConfigText.decimal(Substring(value)), number >= 1 else {
            error(attribute, "\(attribute.name) must be a number of at least 1 or UNLIMITED, found \(value)")
            return nil
        }
        return .count(number)
    }

    /// Applies `op` to a set-valued list, keeping the written order and no repeats.
    private static func combine<Element: Equatable>(
        _ current: [Element], _ new: [Element], _ op: XinetdAttribute.Operator
    )
        -> [Element]
    {
        switch op {
        case .set: return new.reduce(into: []) { if !$0.contains($1) { $0.append($1) } }
        case .add: return new.reduce(into: current) { if !$0.contains($1) { $0.append($1) } }
        case .remove: return current.filter { !new.contains($0) }
        }
    }

    private mutating func applyValue(_ attribute: XinetdAttribute, op: XinetdAttribute.Operator) {
        let values = attribute.values
        switch attribute.name {
        case "id":
            spec.id = single(attribute)
        case "type":
            guard let words = atLeastOne(attribute) else { return }
            for word in words {
                if word == "RPC" { return error(attribute, "RPC services are not supported") }
                guard Self.knownTypes.contains(word) else {
                    return error(attribute, unknownKeyword(word, in: Self.knownTypes, kind: "type"))
                }
                spec.types.insert(word)
            }
            if spec.types.isSuperset(of: ["TCPMUX", "TCPMUXPLUS"]) {
                error(attribute, "type TCPMUX and TCPMUXPLUS exclude each other")
            }
        case "flags":
            guard let words = atLeastOne(attribute) else { return }
            for word in words {
                guard Self.knownFlags.contains(word) else {
                    return error(attribute, unknownKeyword(word, in: Self.knownFlags, kind: "flag"))
                }
                if word == "INTERCEPT" || word == "LABELED" {
                    return error(attribute, "flag \(word) is not supported")
                }
                spec.flags.insert(word)
            }
        case "disable":
            spec.disable = yesNo(attribute) ?? false
        case "socket_type":
            guard let value = single(attribute) else { return }
            switch value {
            case "stream": spec.socketType = .stream
            case "dgram": spec.socketType = .dgram
            case "seqpacket":
                error(attribute, "socket_type seqpacket needs SCTP, which swinetd does not support")
            case "raw", "rdm": error(attribute, "socket_type \(value) is not supported")
            default: error(attribute, "unknown socket_type \(value) (expected stream or dgram)")
            }
        case "protocol":
            guard let value = single(attribute) else { return }
            guard value == "tcp" || value == "udp" else {
                return error(attribute, "protocol \(value) is not supported (expected tcp or udp)")
            }
            spec.protocolName = value
        case "wait":
            spec.wait = yesNo(attribute)
        case "user":
            spec.user = single(attribute)
        case "group":
            spec.group = single(attribute)
        case "groups":
            spec.groups = yesNo(attribute)
        case "server":
            guard let value = single(attribute) else { return }
            guard value.hasPrefix("/") else { return error(attribute, "server \(value) must be an absolute path") }
            spec.server = value
        case "server_args":
            spec.serverArgs = atLeastOne(attribute)
        case "instances":
            spec.instances = limit(attribute)
        case "per_source":
            spec.perSource = limit(attribute)
        case "cps":
            guard values.count == 2, let rate = ConfigText.decimal(Substring(values[0])),
                let seconds = ConfigText.decimal(Substring(values[1]))
            else {
                return error(attribute, "cps takes two numbers: connections per second and seconds to pause")
            }
            if rate > 0, seconds == 0 { return error(attribute, "cps pause must be at least 1 second") }
            // `cps = 0 N` switches the limit off (xinetd checks the rate only when it is not 0).
            spec.cps = rate == 0 ? nil : ConnectionRate(rate: rate, pauseSeconds: seconds)
        case "max_load":
            guard let value = single(attribute) else { return }
            guard let load = Double(value), load.isFinite, load > 0 else {
                return error(attribute, "max_load must be a load average above 0, found \(value)")
            }
            spec.maxLoad = load
        case "nice":
            guard let value = single(attribute) else { return }
            let magnitude = value.hasPrefix("-") ? Substring(value.dropFirst()) : Substring(value)
            guard let number = ConfigText.decimal(magnitude), case let nice = value.hasPrefix("-") ? -number : number,
                (-20...19).contains(nice)
            else { return error(attribute, "nice must be between -20 and 19, found \(value)") }
            spec.nice = Int32(nice)
        case "umask":
            guard let value = single(attribute) else { return }
            guard !value.isEmpty, value.allSatisfy({ ("0"..."7").contains($0) }), let mask = UInt32(value, radix: 8),
                mask <= 0o777
            else { return error(attribute, "umask must be octal, 000 to 777, found \(value)") }
            spec.umask = mask
        case "port":
            guard let value = single(attribute) else { return }
            guard let port = ConfigText.decimal(Substring(value)), (1...65535).contains(port) else {
                return error(attribute, "bad port \(value) (expected 1-65535)")
            }
            spec.port = UInt16(port)
        case "redirect":
            applyRedirect(attribute)
        case "bind", "interface":
            // Exactly one address; anything else is refused rather than widened to every address
            // (openSUSE/xinetd#20). Resolved once the service's IPv4/IPv6 flags are known.
            spec.bind = single(attribute)
        case "banner", "banner_success", "banner_fail":
            guard let value = single(attribute) else { return }
            guard value.hasPrefix("/") else {
                return error(attribute, "\(attribute.name) \(value) must be an absolute path")
            }
            switch attribute.name {
            case "banner": spec.banner = value
            case "banner_success": spec.bannerSuccess = value
            default: spec.bannerFail = value
            }
        case "env":
            if op == .remove { return error(attribute, "env does not take -=") }
            for value in values {
                guard let equals = value.firstIndex(of: "="), equals != value.startIndex else {
                    return error(attribute, "env value \(value) is not NAME=value")
                }
            }
            spec.environment = Self.combine(spec.environment, values, op)
        case "passenv":
            if let bad = values.first(where: { $0.contains("=") }) {
                return error(attribute, "passenv takes variable names, found \(bad)")
            }
            spec.passEnvironment = Self.combine(spec.passEnvironment, values, op)
        case "only_from", "no_access":
            var patterns: [AddressPattern] = []
            for value in values {
                do throws(XinetdValueError) {
                    patterns += try AddressPatternParser.parse(value)
                } catch {
                    return self.error(attribute, "\(attribute.name): \(error.message)")
                }
            }
            if attribute.name == "only_from" {
                if op == .remove, spec.onlyFrom == nil {
                    warning(attribute, "only_from -= on an unset list leaves an empty list, which denies everyone")
                }
                spec.onlyFrom = Self.combine(spec.onlyFrom ?? [], patterns, op)
            } else {
                spec.noAccess = Self.combine(spec.noAccess, patterns, op)
            }
        case "access_times":
            guard let words = atLeastOne(attribute) else { return }
            var windows: [TimeWindow] = []
            for word in words {
                do throws(XinetdValueError) {
                    windows.append(try XinetdValues.timeWindow(word))
                } catch {
                    return self.error(attribute, error.message)
                }
            }
            spec.accessTimes = windows
        case "log_type":
            applyLogType(attribute)
        case "log_on_success":
            var fields: [LogSettings.SuccessField] = []
            for word in values {
                guard let field = LogSettings.SuccessField(rawValue: word) else {
                    let known = LogSettings.SuccessField.allCases.map(\.rawValue)
                    return error(attribute, unknownKeyword(word, in: known, kind: "log_on_success value"))
                }
                fields.append(field)
            }
            spec.logOnSuccess = Set(Self.combine(Array(spec.logOnSuccess), fields, op))
        case "log_on_failure":
            var fields: [LogSettings.FailureField] = []
            for word in values {
                guard let field = LogSettings.FailureField(rawValue: word) else {
                    let known = LogSettings.FailureField.allCases.map(\.rawValue)
                    return error(attribute, unknownKeyword(word, in: known, kind: "log_on_failure value"))
                }
                fields.append(field)
            }
            spec.logOnFailure = Set(Self.combine(Array(spec.logOnFailure), fields, op))
        case "rlimit_as", "rlimit_cpu", "rlimit_data", "rlimit_rss", "rlimit_stack", "rlimit_files":
            guard let value = single(attribute) else { return }
            let kind = ResourceLimit.Kind(rawValue: String(attribute.name.dropFirst("rlimit_".count)))!
            let amount: UInt64?
            if value == "UNLIMITED" {
                amount = ResourceLimit.unlimited
            } else if kind == .cpu {
                amount = ConfigText.decimal(Substring(value)).map(UInt64.init)
            } else {
                amount = XinetdValues.size(value)
            }
            guard let amount else {
                let form = kind == .cpu ? "seconds" : "a number with an optional K, M or G suffix"
                return error(attribute, "\(attribute.name) must be \(form) or UNLIMITED, found \(value)")
            }
            spec.rlimits[kind] = ResourceLimit(kind: kind, soft: amount, hard: amount)
        case "v6only":
            spec.v6only = yesNo(attribute)
        case "deny_time":
            guard let value = single(attribute) else { return }
            switch value {
            case "FOREVER": spec.denyTime = .some(nil)
            case "NEVER": spec.denyTime = 0
            default:
                guard let minutes = ConfigText.decimal(Substring(value)), minutes <= Int(Int32.max) else {
                    return error(attribute, "deny_time must be minutes, FOREVER or NEVER, found \(value)")
                }
                spec.denyTime = minutes * 60
            }
        case "libwrap":
            spec.libwrap = single(attribute)
        case "proxy_protocol":
            spec.proxyProtocol = yesNo(attribute)
        case "listen_fds":
            spec.listenFDs = yesNo(attribute)
        case "proxy_trusted":
            do throws(XinetdValueError) {
                spec.proxyTrusted = try SocketHandoffOptions.trustedNetworks(values)
            } catch {
                self.error(attribute, error.message)
            }
        case _ where SandboxSpec.attributeNames.contains(attribute.name):
            do throws(XinetdValueError) {
                try spec.sandbox.apply(attribute.name, values)
            } catch {
                self.error(attribute, error.message)
            }
        case _ where ServiceTLS.attributeNames.contains(attribute.name):
            if let path = single(attribute) { spec.tls.set(attribute.name, path) }
        case "enabled":
            spec.enabledIDs = Set(Self.combine(Array(spec.enabledIDs ?? []), values, op))
        case "disabled":
            spec.disabledIDs = Set(Self.combine(Array(spec.disabledIDs), values, op))
        default:
            error(attribute, "unknown attribute \(attribute.name)")
        }
    }

    /// `redirect = host port`: resolved now, once, as xinetd does.
    private mutating func applyRedirect(_ attribute: XinetdAttribute) {
        guard attribute.values.count == 2 else {
            return error(attribute, "redirect takes a host and a port")
        }
        let host = attribute.values[0]
        let portText = attribute.values[1]
        let port: UInt16
        if let number = ConfigText.decimal(Substring(portText)) {
            guard (1...65535).contains(number) else { return error(attribute, "bad redirect port \(portText)") }
            port = UInt16(number)
        } else if let entry = servicesDatabase.entry(named: portText, protocolName: "tcp") {
            port = entry.port
        } else {
            return error(attribute, "bad redirect port \(portText) (not a number or a tcp service)")
        }
        let addresses = SocketAddressFormatting.resolve(host)
        // A name without a colon means IPv4, as in xinetd; an IPv6 literal means IPv6.
        let wantsIPv6 = host.contains(":")
        guard let address = addresses.first(where: { $0.isIPv6 == wantsIPv6 }) ?? addresses.first else {
            return error(attribute, "cannot resolve redirect host \(host)")
        }
        spec.redirect = RedirectTarget(host: host, address: address, port: port)
    }

    /// `SYSLOG facility [level]` or `FILE path [soft [hard]]`.
    private mutating func applyLogType(_ attribute: XinetdAttribute) {
        let values = attribute.values
        switch values.first {
        case "SYSLOG":
            guard (2...3).contains(values.count) else {
                return error(attribute, "log_type SYSLOG takes a facility and an optional level")
            }
            guard let facility = XinetdValues.syslogFacilities[values[1]] else {
                return error(
                    attribute,
                    unknownKeyword(values[1], in: XinetdValues.syslogFacilities.keys.sorted(), kind: "syslog facility"))
            }
            var level = XinetdValues.defaultSyslogLevel
            if values.count == 3 {
                guard let named = XinetdValues.syslogLevels[values[2]] else {
                    return error(
                        attribute,
                        unknownKeyword(values[2], in: XinetdValues.syslogLevels.keys.sorted(), kind: "syslog level"))
                }
                level = named
            }
            spec.logDestination = .syslog(facility: facility, level: level)
        case "FILE":
            guard (2...4).contains(values.count) else {
                return error(attribute, "log_type FILE takes a path and optional soft and hard size limits")
            }
            guard values[1].hasPrefix("/") else {
                return error(attribute, "log file \(values[1]) must be an absolute path")
            }
            var soft: UInt64?
            var hard: UInt64?
            if values.count >= 3 {
                guard let size = XinetdValues.size(values[2]) else {
                    return error(attribute, "bad soft limit \(values[2]) (a size with an optional K, M or G suffix)")
                }
                soft = size
                hard = XinetdValues.defaultHardLimit(soft: size)
            }
            if values.count == 4, let soft {
                guard let size = XinetdValues.size(values[3]) else {
                    return error(attribute, "bad hard limit \(values[3]) (a size with an optional K, M or G suffix)")
                }
                guard size >= soft else {
                    return error(attribute, "hard limit \(values[3]) is below the soft limit \(values[2])")
                }
                hard = size
            }
            spec.logDestination = .file(path: values[1], softLimit: soft, hardLimit: hard)
        default:
            error(attribute, "log_type must be SYSLOG facility [level] or FILE path [soft [hard]]")
        }
    }
}
