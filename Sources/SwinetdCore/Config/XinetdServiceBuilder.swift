import Glibc

/// Combines one xinetd service's attribute values (defaults included) into a `Service`, checking what
/// xinetd checks once a whole entry is read (confparse.c): required attributes, the port against
/// /etc/services, redirect and tcpmux constraints.
struct XinetdServiceBuilder {
    let name: String
    let location: ConfigLocation
    let spec: XinetdSpec
    let options: LoadOptions
    let servicesDatabase: ServicesDatabase
    private(set) var diagnostics: [Diagnostic] = []

    init(
        name: String, location: ConfigLocation, spec: XinetdSpec, options: LoadOptions,
        servicesDatabase: ServicesDatabase
    ) {
        self.name = name
        self.location = location
        self.spec = spec
        self.options = options
        self.servicesDatabase = servicesDatabase
    }

    /// xinetd's default `cps` when neither the service nor the defaults set one: 50 connections in a
    /// second pause the service for 10 seconds.
    static let defaultConnectionRate = ConnectionRate(rate: 50, pauseSeconds: 10)

    var hasErrors: Bool { diagnostics.contains { $0.severity == .error } }

    /// Problems with the entry as a whole point at its `service` line; problems with one attribute
    /// point at the line that set it (which may be in the defaults).
    private func where_(_ attribute: String?) -> ConfigLocation {
        attribute.flatMap { spec.locations[$0] } ?? location
    }

    /// A message about an inherited value points at the defaults, so it also names the service.
    private func text(_ message: String, _ attribute: String?) -> String {
        guard let attribute, spec.locations[attribute] != nil, !spec.ownAttributes.contains(attribute) else {
            return message
        }
        return message + " (inherited by service \(name) at \(location))"
    }

    private mutating func error(_ message: String, at attribute: String? = nil) {
        diagnostics.append(Diagnostic(.error, where_(attribute), text(message, attribute)))
    }

    private mutating func warning(_ message: String, at attribute: String? = nil) {
        diagnostics.append(Diagnostic(.warning, where_(attribute), text(message, attribute)))
    }

    private var isSensor: Bool { spec.flags.contains("SENSOR") }
    private var isInternal: Bool { spec.types.contains("INTERNAL") || isSensor }
    private var nameInArgs: Bool { spec.flags.contains("NAMEINARGS") }
    /// nil: not a tcpmux target; else whether swinetd sends the `+Go` (TCPMUXPLUS).
    private var tcpmuxSendsPlus: Bool? {
        spec.types.contains("TCPMUXPLUS") ? true : spec.types.contains("TCPMUX") ? false : nil
    }

    mutating func build() -> Service? {
        let (socketType, protocolName) = socketTypeAndProtocol()
        if spec.wait == nil { error("service \(name): missing wait") }
        checkCombinations(socketType: socketType)
        let program = buildProgram(socketType: socketType)
        let credentials = buildCredentials()
        var listeners: [ListenerSpec]?
        if let socketType, let protocolName {
            listeners = buildListeners(socketType: socketType, protocolName: protocolName)
        }
        guard let socketType, let protocolName, var wait = spec.wait, let program, let credentials, let listeners,
            !hasErrors
        else { return nil }

        if socketType == .dgram, !wait, case .external = program, spec.redirect == nil {
            warning("dgram wait = no runs as wait = yes (one child at a time owns the socket)", at: "wait")
            wait = true
        }
        if socketType == .dgram, spec.flags.contains("NODELAY") || spec.flags.contains("KEEPALIVE") {
            warning("flags NODELAY and KEEPALIVE have no effect on dgram sockets", at: "flags")
        }
        if isSensor, spec.locations["deny_time"] == nil {
            warning("SENSOR without deny_time only logs the client, as in xinetd; set deny_time to ban it", at: "flags")
        }

        var limits = ServiceLimits(maxChildren: spec.instances?.value, maxChildrenPerIP: spec.perSource?.value)
        limits.connectionRate = spec.locations["cps"] != nil ? spec.cps : Self.defaultConnectionRate
        limits.maxLoad = spec.maxLoad

        var tcpmuxRole: TCPMuxRole?
        var serviceName = name
        if let sendsPlus = tcpmuxSendsPlus {
            tcpmuxRole = .target(name: name, sendsPlus: sendsPlus)
            // Shown as inetd.conf writes it, so `swinetd check` looks the same for both formats.
            serviceName = "tcpmux/" + (sendsPlus ? "+" : "") + name
        }
        var service = Service(
            name: serviceName, location: location, socketType: socketType, protocolName: protocolName,
            listeners: listeners, wait: wait, limits: limits, credentials: credentials, program: program,
            tcpmux: tcpmuxRole)
        service.id = spec.id ?? name
        service.redirect = spec.redirect
        service.access = AccessPolicy(
            onlyFrom: spec.onlyFrom, noAccess: spec.noAccess, accessTimes: spec.accessTimes,
            libwrapName: libwrapName(program: program, id: service.id))
        service.setup = buildSetup()
        service.logging.destination = spec.logDestination
        service.logging.onSuccess = spec.logOnSuccess
        service.logging.onFailure = spec.logOnFailure
        service.flags.sensor = isSensor
        service.flags.identOnly = spec.flags.contains("IDONLY")
        service.flags.noRetry = spec.flags.contains("NORETRY")
        if let denyTime = spec.denyTime {
            service.flags.denyTimeSeconds = denyTime
        } else if isSensor {
            service.flags.denyTimeSeconds = 0
        }
        guard let sandbox = buildSandbox(program: program, credentials: credentials) else { return nil }
        service.sandbox = sandbox
        applyHandoff(to: &service)
        let (tls, tlsProblems) = spec.tls.resolve(
            socketType: socketType, isUnix: false, wait: wait, program: program, isTCPMuxTarget: tcpmuxRole != nil,
            isRedirect: spec.redirect != nil,
            hasBanner: spec.banner != nil || spec.bannerSuccess != nil || spec.bannerFail != nil)
        for problem in tlsProblems {
            if problem.isError { error(problem.message, at: problem.attribute) } else { warning(problem.message, at: problem.attribute) }
        }
        guard !hasErrors else { return nil }
        service.tls = tls
        return service
    }

    /// `proxy_protocol` + `proxy_trusted`, `listen_fds`; errors refuse the service.
    private mutating func applyHandoff(to service: inout Service) {
        if spec.proxyProtocol == true {
            if let trusted = spec.proxyTrusted {
                service.proxyProtocol = ProxyProtocolPolicy(trusted: trusted)
            } else {
                error("proxy_protocol needs proxy_trusted: the load balancers allowed to send the header", at: "proxy_protocol")
            }
        } else if spec.proxyTrusted != nil {
            error("proxy_trusted without proxy_protocol = yes", at: "proxy_trusted")
        }
        service.listenFDs = spec.listenFDs ?? false
        for problem in SocketHandoffOptions.problems(service) {
            error(problem, at: problem.hasPrefix("listen_fds") ? "listen_fds" : "proxy_protocol")
        }
    }

    /// The sandbox with the preset applied and the host checked; nil (errors reported) when the
    /// service cannot have what it asks for: it is then refused, never started without it.
    private mutating func buildSandbox(program: ServerProgram, credentials: Credentials) -> Sandbox? {
        guard !spec.sandbox.isEmpty else { return Sandbox() }
        let own = SandboxSpec.attributeNames.filter { spec.ownAttributes.contains($0) }
        guard case .external = program, spec.redirect == nil else {
            if let first = own.first {
                warning("\(own.joined(separator: ", ")) ignored: the service runs inside swinetd, no program is started", at: first)
            }
            return Sandbox()
        }
        // The credentials are swinetd's own when it cannot switch user.
        let runsAsRoot = credentials.uid == 0
        let sandbox = spec.sandbox.resolve(runsAsRoot: runsAsRoot)
        for problem in SandboxCheck.problems(sandbox, credentials: credentials, options: options) {
            // A value the preset chose is blamed on the `hardened` line.
            let attribute = spec.locations[problem.attribute] != nil ? problem.attribute : "hardened"
            if problem.isError { error(problem.message, at: attribute) } else { warning(problem.message, at: attribute) }
        }
        return hasErrors ? nil : sandbox
    }

    // MARK: Parts

    /// Either attribute implies the other (stream is tcp, dgram is udp), as in xinetd.
    private mutating func socketTypeAndProtocol() -> (SocketType?, String?) {
        var socketType = spec.socketType
        var protocolName = spec.protocolName
        if socketType == nil, let protocolName { socketType = protocolName == "tcp" ? .stream : .dgram }
        if protocolName == nil, let socketType { protocolName = socketType == .stream ? "tcp" : "udp" }
        guard let socketType, let protocolName else {
            error("service \(name): missing socket_type")
            return (nil, nil)
        }
        let fits = (socketType == .stream) == (protocolName == "tcp")
        if !fits {
            error("socket_type \(socketType.rawValue) does not work with protocol \(protocolName)", at: "protocol")
            return (nil, nil)
        }
        return (socketType, protocolName)
    }

    private mutating func checkCombinations(socketType: SocketType?) {
        if tcpmuxSendsPlus != nil {
            if isInternal { error("service \(name): a TCPMUX service cannot be INTERNAL", at: "type") }
            if socketType != nil && socketType != .stream || spec.wait == true {
                error("service \(name): TCPMUX services must be socket_type stream, protocol tcp and wait = no")
            }
            if spec.locations["port"] != nil {
                warning("port ignored: TCPMUX services are reached through tcpmux", at: "port")
            }
            if spec.bind != nil { warning("bind ignored: TCPMUX services are reached through tcpmux", at: "bind") }
        }
        if spec.redirect != nil {
            if socketType != nil && socketType != .stream { error("redirect needs socket_type stream", at: "redirect") }
            if spec.wait == true { error("a redirect service must be wait = no", at: "redirect") }
            if nameInArgs { error("a redirect service cannot have flags NAMEINARGS", at: "flags") }
            if isInternal || tcpmuxSendsPlus != nil {
                error("redirect cannot be combined with INTERNAL, SENSOR or TCPMUX", at: "redirect")
            }
        } else if spec.logOnSuccess.contains(.traffic) {
            error("log_on_success TRAFFIC is only available for redirect services", at: "log_on_success")
        }
        if nameInArgs, isInternal { error("an INTERNAL service cannot have flags NAMEINARGS", at: "flags") }
        if isSensor, socketType == .stream, spec.wait == true {
            error("a stream SENSOR must be wait = no", at: "wait")
        }
    }

    private mutating func buildProgram(socketType: SocketType?) -> ServerProgram? {
        if isInternal || spec.redirect != nil {
            if spec.server != nil {
                let why = spec.redirect != nil ? "redirect relays connections itself" : "the service is INTERNAL"
                warning("server ignored: \(why)", at: "server")
            }
            // A sensor behaves like discard once it has noted the client; a redirect runs no program at all
            // (`Service.redirect` takes precedence), so discard is only a placeholder there.
            if isSensor || spec.redirect != nil { return .builtin(.discard) }
            guard let builtin = builtinForInternal() else {
                let known = Builtin.allCases.map(\.rawValue).joined(separator: ", ")
                error("service \(name): INTERNAL needs a builtin service name or id (builtins: \(known))", at: "type")
                return nil
            }
            if builtin == .tcpmux, let socketType, socketType != .stream {
                error("builtin tcpmux needs socket_type stream", at: "socket_type")
            }
            return .builtin(builtin)
        }
        guard let server = spec.server else {
            error("service \(name): missing server")
            return nil
        }
        // With chroot the child looks the program up inside it.
        let chroot = spec.sandbox.chroot
        let chrootUsable = chroot.map { SandboxCheck.directoryProblem($0) == nil } ?? true
        if options.checkPrograms, chrootUsable,
            let problem = Self.executableProblem(InetdEntryParser.inside(chroot, server))
        {
            error("server \(server) \(problem)" + (chroot.map { " (inside chroot \($0))" } ?? ""), at: "server")
        }
        if nameInArgs {
            guard let arguments = spec.serverArgs, !arguments.isEmpty else {
                error("flags NAMEINARGS needs server_args starting with argv[0]", at: "flags")
                return nil
            }
            return .external(path: server, arguments: arguments)
        }
        return .external(path: server, arguments: [Self.basename(server)] + (spec.serverArgs ?? []))
    }

    /// xinetd finds a builtin by service name; swinetd also takes an /etc/services alias of a builtin's
    /// name (`sink`) and the id's prefix (`echo-stream`, `daytime-udp`), so files that rename services still work.
    private func builtinForInternal() -> Builtin? {
        let protocolName = spec.socketType == .dgram || spec.protocolName == "udp" ? "udp" : "tcp"
        var candidates = [name]
        if let canonical = servicesDatabase.entry(named: name, protocolName: protocolName)?.name {
            candidates.append(canonical)
        }
        if let id = spec.id {
            candidates.append(id)
            candidates.append(String(id.prefix { $0 != "-" && $0 != "_" }))
        }
        return candidates.lazy.compactMap(Builtin.init(rawValue:)).first
    }

    private mutating func buildCredentials() -> Credentials? {
        guard let userText = spec.user else {
            if isInternal {
                if spec.group != nil { warning("group ignored without user", at: "group") }
                return options.daemonCredentials
            }
            error("service \(name): missing user")
            return nil
        }
        let user = UserDatabase.user(userText)
        if user == nil { error("unknown user \(userText)", at: "user") }
        var groupID: UInt32?
        if let groupText = spec.group {
            groupID = UserDatabase.groupID(groupText)
            if groupID == nil { error("unknown group \(groupText)", at: "group") }
        }
        guard let user, spec.group == nil || groupID != nil else { return nil }
        guard let gid = groupID ?? user.primaryGID else {
            error("uid \(user.uid) has no passwd entry, so it has no primary group: set group", at: "user")
            return nil
        }
        if options.daemonUID != 0 {
            let daemon = options.daemonCredentials
            if user.uid != daemon.uid || (groupID != nil && gid != daemon.gid) {
                warning("runs as \(daemon.user) because swinetd is not root (configured: user \(userText))", at: "user")
            }
            return daemon
        }
        // xinetd's default is no supplementary groups; `groups = yes` gives initgroups' list.
        let groups =
            spec.groups == true && user.primaryGID != nil ? UserDatabase.groupList(user: user.name, gid: gid) : [gid]
        return Credentials(user: user.name, uid: user.uid, gid: gid, groups: groups, changeIdentity: true)
    }

    private mutating func buildListeners(socketType: SocketType, protocolName: String) -> [ListenerSpec]? {
        if tcpmuxSendsPlus != nil { return [] }
        guard let port = resolvePort(protocolName: protocolName), let address = bindAddress() else { return nil }
        let v6Only = address.isIPv6 && (spec.v6only ?? false)
        return [
            ListenerSpec(
                address: .inet(address, port: port, v6Only: v6Only), socketType: socketType,
                backlog: options.defaultBacklog)
        ]
    }

    /// `port`, else /etc/services; a listed service must keep its /etc/services port (type UNLISTED frees it).
    private mutating func resolvePort(protocolName: String) -> UInt16? {
        if spec.types.contains("UNLISTED") {
            guard let port = spec.port else {
                error("service \(name): type UNLISTED needs port")
                return nil
            }
            return port
        }
        if let port = spec.port {
            if let listed = servicesDatabase.entry(named: name, protocolName: protocolName), listed.port != port {
                error(
                    "service \(name) is port \(listed.port)/\(protocolName) in \(options.servicesFile), not \(port) "
                        + "(add type = UNLISTED to use another port)", at: "port")
                return nil
            }
            return port
        }
        guard let port = servicesDatabase.port(named: name, protocolName: protocolName) else {
            error(
                "service \(name): \(name)/\(protocolName) is not in \(options.servicesFile); set port "
                    + "(and type = UNLISTED)")
            return nil
        }
        return port
    }

    /// The one address to bind: `bind`/`interface`, else the wildcard of the family the flags ask for
    /// (IPv4 unless `flags = IPv6`). A `bind` that does not give exactly one usable address refuses the
    /// service: never fall back to listening everywhere.
    private mutating func bindAddress() -> IPAddress? {
        let wantsIPv6: Bool? = spec.flags.contains("IPv6") ? true : spec.flags.contains("IPv4") ? false : nil
        guard let bind = spec.bind else { return wantsIPv6 == true ? .anyV6 : .anyV4 }
        // getaddrinfo reads `10.1` as 10.0.0.1; an incomplete dotted address is a typo, not a host.
        let looksNumeric = bind.allSatisfy { ("0"..."9").contains($0) || $0 == "." }
        let resolved =
            looksNumeric
            ? SocketAddressFormatting.parseNumeric(bind).map { [$0] } ?? []
            : SocketAddressFormatting.resolve(bind)
        guard !resolved.isEmpty else {
            error(
                "cannot use bind address \(bind): not an address or a resolvable host; the service is not started",
                at: "bind")
            return nil
        }
        if let wantsIPv6 {
            guard let address = resolved.first(where: { $0.isIPv6 == wantsIPv6 }) else {
                let family = wantsIPv6 ? "IPv6" : "IPv4"
                error("bind address \(bind) has no \(family) address (flags = \(family))", at: "bind")
                return nil
            }
            return address
        }
        return resolved.first { !$0.isIPv6 } ?? resolved[0]
    }

    private func buildSetup() -> ChildSetup {
        var setup = ChildSetup()
        setup.nice = spec.nice
        if let umask = spec.umask { setup.umask = umask }
        setup.rlimits = ResourceLimit.Kind.allCases.compactMap { spec.rlimits[$0] }
        setup.environment = spec.environment
        setup.passEnvironment = spec.passEnvironment
        setup.banner = spec.banner
        setup.bannerSuccess = spec.bannerSuccess
        setup.bannerFail = spec.bannerFail
        setup.tcpNoDelay = spec.flags.contains("NODELAY")
        setup.keepAlive = spec.flags.contains("KEEPALIVE")
        return setup
    }

    /// The tcpd daemon name, as xinetd picks it: `libwrap`, else the id for internal services, the
    /// service name for redirects, and the program's name (argv[0] with NAMEINARGS) otherwise.
    private func libwrapName(program: ServerProgram, id: String) -> String? {
        if spec.flags.contains("NOLIBWRAP") { return nil }
        if let libwrap = spec.libwrap { return libwrap }
        if spec.redirect != nil { return name }
        switch program {
        case .builtin: return id
        case .external(let path, let arguments):
            return Self.basename(nameInArgs ? arguments.first ?? path : path)
        }
    }

    static func basename(_ path: String) -> String {
        String(path.split(separator: "/").last ?? Substring(path))
    }

    /// Why `path` cannot be run, or nil when it can.
    static func executableProblem(_ path: String) -> String? {
        var status = stat()
        guard stat(path, &status) == 0 else { return "cannot be used: " + errnoDescription(errno) }
        guard status.st_mode & S_IFMT == S_IFREG else { return "is not a regular file" }
        guard access(path, X_OK) == 0 else { return "is not executable" }
        return nil
    }
}
