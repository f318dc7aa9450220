import Glibc

/// Parses one classic inetd.conf file (OpenBSD, FreeBSD, GNU inetutils, Debian and busybox dialects)
/// into services and diagnostics. Checks that span files live in `ConfigLoader`.
struct InetdConfParser {
    let file: String
    let options: LoadOptions
    let servicesDatabase: ServicesDatabase

    func parse(_ bytes: [UInt8]) -> (services: [Service], diagnostics: [Diagnostic]) {
        var services: [Service] = []
        var diagnostics: [Diagnostic] = []
        // Each file starts listening everywhere; a `host:` line changes that for the entries after it.
        var defaultHosts = ["*"]
        for entry in InetdConfEntry.entries(in: bytes) {
            let location = ConfigLocation(file: file, line: entry.line)
            guard entry.byteErrors.isEmpty else {
                diagnostics += entry.byteErrors.map { Diagnostic(.error, location, $0) }
                continue
            }
            if entry.fields.count == 1, entry.fields[0].hasSuffix(":") {
                let hostText = String(entry.fields[0].dropLast())
                if let hosts = Self.hostList(hostText) {
                    defaultHosts = hosts
                } else {
                    diagnostics.append(
                        Diagnostic(.error, location, "empty host name in default host list \(hostText):"))
                }
                continue
            }
            var parser = InetdEntryParser(
                fields: entry.fields, location: location, defaultHosts: defaultHosts,
                options: options, servicesDatabase: servicesDatabase)
            let service = parser.parse()
            diagnostics += parser.diagnostics
            if let service, !parser.hasErrors { services.append(service) }
        }
        return (services, diagnostics)
    }

    /// `host[,host...]`; nil when an item is empty.
    static func hostList(_ text: String) -> [String]? {
        let hosts = text.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        return hosts.contains(where: \.isEmpty) ? nil : hosts
    }
}

// MARK: - Lines and fields

/// Byte-level splitting shared by the configuration readers. Work stays on bytes so that NUL and
/// invalid UTF-8 can be reported instead of being silently repaired.
enum ConfigText {
    struct Line {
        var number: Int
        /// Without the LF and without a CR before it.
        var content: ArraySlice<UInt8>
    }

    /// Splits at LF, dropping one CR before it; a last line without a newline still counts.
    static func lines(_ bytes: [UInt8]) -> [Line] {
        var lines: [Line] = []
        var start = bytes.startIndex
        while start < bytes.endIndex {
            let end = bytes[start...].firstIndex(of: UInt8(ascii: "\n")) ?? bytes.endIndex
            var content = bytes[start..<end]
            if content.last == UInt8(ascii: "\r") { content = content.dropLast() }
            lines.append(Line(number: lines.count + 1, content: content))
            start = end + 1
        }
        return lines
    }

    static func isBlank(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t")
    }

    /// Fields separated by runs of spaces and tabs.
    static func fields(_ line: ArraySlice<UInt8>) -> [ArraySlice<UInt8>] {
        line.split(whereSeparator: isBlank)
    }

    static func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }

    /// Plain decimal digits only: no sign, no spaces. nil also on overflow.
    static func decimal(_ text: Substring) -> Int? {
        guard !text.isEmpty, text.utf8.allSatisfy(isDigit) else { return nil }
        return Int(text)
    }
}

/// One inetd.conf entry: its fields gathered across continuation lines, and the problems in its bytes.
struct InetdConfEntry {
    /// The line the entry starts on; every diagnostic about the entry points here.
    var line: Int
    var fields: [String] = []
    var byteErrors: [String] = []

    /// Groups lines into entries. Blank lines end an entry; a line starting with a space or tab continues
    /// the current one (OpenBSD). Comment lines are skipped without ending the entry, so an argument can
    /// be commented out of a continued entry.
    static func entries(in bytes: [UInt8]) -> [InetdConfEntry] {
        var entries: [InetdConfEntry] = []
        var current: InetdConfEntry?
        for line in ConfigText.lines(bytes) {
            guard let firstVisible = line.content.first(where: { !ConfigText.isBlank($0) }) else {
                if let finished = current { entries.append(finished) }
                current = nil
                continue
            }
            if firstVisible == UInt8(ascii: "#") { continue }
            let isContinuation = ConfigText.isBlank(line.content[line.content.startIndex]) && current != nil
            if !isContinuation {
                if let finished = current { entries.append(finished) }
                current = InetdConfEntry(line: line.number)
            }
            current?.add(line)
        }
        if let finished = current { entries.append(finished) }
        return entries
    }

    private mutating func add(_ line: ConfigText.Line) {
        if line.content.contains(0) { byteErrors.append("NUL byte on line \(line.number)") }
        var isValidUTF8 = true
        for field in ConfigText.fields(line.content) {
            if let text = String(validating: field, as: UTF8.self) {
                fields.append(text)
            } else {
                isValidUTF8 = false
                fields.append(String(decoding: field, as: UTF8.self))
            }
        }
        if !isValidUTF8 { byteErrors.append("line \(line.number) is not valid UTF-8") }
    }
}

// MARK: - Protocol field

/// Which IP versions an inet protocol listens on.
///
/// `tcp6`/`udp6` (and GNU's `tcp6only`/`udp6only`) have the BSD meaning, IPv6 only. GNU inetutils
/// reads `tcp6` as one dual-stack socket; that is spelled `tcp46` here, as on FreeBSD.
enum AddressFamilies: Sendable {
    /// `tcp`, `udp`: separate IPv4 and IPv6 sockets (Debian openbsd-inetd), so neither depends on
    /// the `bindv6only` sysctl.
    case ipv4AndIPv6
    /// `tcp4`, `udp4`.
    case ipv4Only
    /// `tcp6`, `udp6`, `tcp6only`, `udp6only`.
    case ipv6Only
    /// `tcp46`, `udp46`: one IPv6 socket that also accepts IPv4.
    case dualStack

    /// The addresses `*` stands for.
    var wildcard: [IPAddress] {
        switch self {
        case .ipv4AndIPv6: [.anyV4, .anyV6]
        case .ipv4Only: [.anyV4]
        case .ipv6Only, .dualStack: [.anyV6]
        }
    }

    func accepts(_ address: IPAddress) -> Bool {
        switch self {
        case .ipv4AndIPv6: true
        case .ipv4Only: !address.isIPv6
        case .ipv6Only, .dualStack: address.isIPv6
        }
    }

    /// IPV6_V6ONLY for an IPv6 listener: only the dual-stack form lets IPv4 in.
    var v6Only: Bool { self != .dualStack }
}

/// The protocol field: transport, IP versions, and the socket options after commas (`tcp,rcvbuf=64k`).
struct ProtocolSpec: Sendable {
    enum Transport: String, Sendable {
        case tcp, udp, unix
    }

    var transport: Transport
    /// nil for unix.
    var families: AddressFamilies?
    var backlog: Int32
    var receiveBuffer: Int32?
    var sendBuffer: Int32?
    /// Sandbox options (`tcp,private_tmp,protect_system=full`); docs/SANDBOX.md.
    var sandbox = SandboxSpec()
    /// `proxy_protocol`, `proxy_trusted=CIDR;CIDR`, `listen_fds` (docs/PROXY.md, docs/SYSTEMD.md).
    var proxyProtocol = false
    var proxyTrusted: [AddressPattern]?
    var listenFDs = false
    /// TLS options (`tcp,tls_certificate=PATH,tls_key=PATH`); docs/TLS.md.
    var tls = TLSSpec()

    /// The transport and IP versions a protocol name stands for; nil for names swinetd does not know.
    static func transport(named name: String) -> (Transport, AddressFamilies?)? {
        switch name {
        case "tcp": (.tcp, .ipv4AndIPv6)
        case "udp": (.udp, .ipv4AndIPv6)
        case "tcp4": (.tcp, .ipv4Only)
        case "udp4": (.udp, .ipv4Only)
        case "tcp6", "tcp6only": (.tcp, .ipv6Only)
        case "udp6", "udp6only": (.udp, .ipv6Only)
        case "tcp46": (.tcp, .dualStack)
        case "udp46": (.udp, .dualStack)
        case "unix": (.unix, nil)
        default: nil
        }
    }

    func listener(_ address: ListenAddress, socketType: SocketType) -> ListenerSpec {
        ListenerSpec(
            address: address, socketType: socketType, backlog: backlog,
            receiveBuffer: receiveBuffer, sendBuffer: sendBuffer)
    }

    /// One listener per address; IPv6 ones get IPV6_V6ONLY unless the protocol is dual-stack.
    func inetListeners(addresses: [IPAddress], port: UInt16, socketType: SocketType) -> [ListenerSpec] {
        let v6Only = families?.v6Only ?? true
        return addresses.map { address in
            listener(.inet(address, port: port, v6Only: address.isIPv6 && v6Only), socketType: socketType)
        }
    }
}

// MARK: - Entries

/// Where the service listens, from the service field.
enum ServiceTarget {
    case inet(addresses: [IPAddress], port: UInt16)
    case unix(path: String, owner: UInt32?, group: UInt32?, mode: UInt32)
    /// `tcpmux/name` or `tcpmux/+name`: no socket of its own.
    case tcpmux(name: String, sendsPlus: Bool)
}

/// Parses the fields of one entry, reporting every problem found rather than stopping at the first.
struct InetdEntryParser {
    let fields: [String]
    let location: ConfigLocation
    let defaultHosts: [String]
    let options: LoadOptions
    let servicesDatabase: ServicesDatabase
    private(set) var diagnostics: [Diagnostic] = []

    init(
        fields: [String], location: ConfigLocation, defaultHosts: [String],
        options: LoadOptions, servicesDatabase: ServicesDatabase
    ) {
        self.fields = fields
        self.location = location
        self.defaultHosts = defaultHosts
        self.options = options
        self.servicesDatabase = servicesDatabase
    }

    var hasErrors: Bool { diagnostics.contains { $0.severity == .error } }

    private static let minimumFieldCount = 6
    private static let defaultUnixMode: UInt32 = 0o600
    /// sun_path holds 108 bytes including the terminating NUL.
    private static let maximumUnixPathLength = MemoryLayout.size(ofValue: sockaddr_un().sun_path) - 1

    private mutating func error(_ message: String) {
        diagnostics.append(Diagnostic(.error, location, message))
    }

    private mutating func warning(_ message: String) {
        diagnostics.append(Diagnostic(.warning, location, message))
    }

    /// The service, or nil when the entry has errors (all of them are in `diagnostics`).
    mutating func parse() -> Service? {
        guard fields.count >= Self.minimumFieldCount else {
            error(
                "incomplete entry: expected service, socket type, protocol, wait, user and program, "
                    + "found \(fields.count) field\(fields.count == 1 ? "" : "s")")
            return nil
        }
        let serviceField = fields[0]
        let protocolField = fields[2]
        let protocolName = String(protocolField.prefix { $0 != "," })
        if protocolName.hasPrefix("rpc/") {
            error("RPC services are not supported (\(serviceField) \(protocolName))")
            return nil
        }

        let socketType = parseSocketType(fields[1])
        let proto = parseProtocol(protocolField, name: protocolName)
        if let socketType, let proto { checkSocketType(socketType, with: proto, protocolName: protocolName) }
        let target = proto.flatMap { parseServiceField(serviceField, proto: $0, protocolName: protocolName) }
        let waitMode = parseWait(fields[3])
        let credentials = parseUser(fields[4])
        let program = parseProgram(
            fields[5...], serviceField: serviceField, socketType: socketType, target: target,
            chroot: proto?.sandbox.chroot)

        guard let socketType, let proto, let target, var waitMode, let credentials, let program else { return nil }
        if case .tcpmux = target, !(socketType == .stream && proto.transport == .tcp && !waitMode.wait) {
            error("tcpmux target \(serviceField) must be stream, tcp and nowait")
        }
        guard !hasErrors else { return nil }
        if socketType == .dgram, !waitMode.wait, case .external = program {
            warning("dgram nowait runs as wait (one child at a time owns the socket)")
            waitMode.wait = true
        }

        let name: String
        let listeners: [ListenerSpec]
        let tcpmuxRole: TCPMuxRole?
        switch target {
        case .inet(let addresses, let port):
            name = Self.splitHostPrefix(serviceField).service
            listeners = proto.inetListeners(addresses: addresses, port: port, socketType: socketType)
            tcpmuxRole = nil
        case .unix(let path, let owner, let group, let mode):
            name = path
            listeners = [
                proto.listener(.unix(path: path, owner: owner, group: group, mode: mode), socketType: socketType)
            ]
            tcpmuxRole = nil
        case .tcpmux(let targetName, let sendsPlus):
            name = Self.splitHostPrefix(serviceField).service
            listeners = []
            tcpmuxRole = .target(name: targetName, sendsPlus: sendsPlus)
        }
        guard let sandbox = resolveSandbox(proto.sandbox, program: program, credentials: credentials) else {
            return nil
        }
        var service = Service(
            name: name, location: location, socketType: socketType, protocolName: protocolName,
            listeners: withoutRepeats(listeners), wait: waitMode.wait, limits: waitMode.limits,
            credentials: credentials, program: program, tcpmux: tcpmuxRole)
        service.sandbox = sandbox
        if proto.proxyProtocol {
            if let trusted = proto.proxyTrusted {
                service.proxyProtocol = ProxyProtocolPolicy(trusted: trusted)
            } else {
                error("proxy_protocol needs proxy_trusted=CIDR[;CIDR...]: the load balancers allowed to send the header")
            }
        } else if proto.proxyTrusted != nil {
            error("proxy_trusted without proxy_protocol")
        }
        service.listenFDs = proto.listenFDs
        for problem in SocketHandoffOptions.problems(service) { error(problem) }
        let (tls, tlsProblems) = proto.tls.resolve(
            socketType: socketType, isUnix: proto.transport == .unix, wait: waitMode.wait, program: program,
            isTCPMuxTarget: tcpmuxRole != nil, isRedirect: false, hasBanner: false)
        for problem in tlsProblems {
            if problem.isError { error(problem.message) } else { warning(problem.message) }
        }
        guard !hasErrors else { return nil }
        service.tls = tls
        if options.libwrapClassic {
            // Debian's `inetd -l` / FreeBSD's `-w`: the daemon name is argv[0]'s basename, as tcpd
            // sees it; a builtin's is its service name.
            switch program {
            case .external(let path, let arguments):
                let argv0 = arguments.first ?? path
                service.access.libwrapName = String(argv0.split(separator: "/").last ?? Substring(argv0))
            case .builtin(let builtin):
                service.access.libwrapName = builtin.rawValue
            }
        }
        return service
    }

    // MARK: Socket type and protocol

    private mutating func parseSocketType(_ field: String) -> SocketType? {
        if let socketType = SocketType(rawValue: field) { return socketType }
        if field == "raw" || field == "rdm" {
            error("socket type \(field) is not supported")
        } else {
            error("unknown socket type \(field) (expected stream, dgram or seqpacket)")
        }
        return nil
    }

    private mutating func parseProtocol(_ field: String, name: String) -> ProtocolSpec? {
        var spec: ProtocolSpec?
        if let (transport, families) = ProtocolSpec.transport(named: name) {
            spec = ProtocolSpec(transport: transport, families: families, backlog: options.defaultBacklog)
        } else {
            error("unknown protocol \(name)")
        }
        for option in field.split(separator: ",", omittingEmptySubsequences: false).dropFirst() {
            let key = String(option.prefix { $0 != "=" })
            let value = option.firstIndex(of: "=").map { String(option[option.index(after: $0)...]) }
            // One case per option; each parses its value or reports it.
            switch key {
            case "rcvbuf": spec?.receiveBuffer = parseProtocolOption(key, value, allowsSizeSuffix: true)
            case "sndbuf": spec?.sendBuffer = parseProtocolOption(key, value, allowsSizeSuffix: true)
            case "backlog":
                spec?.backlog = parseProtocolOption(key, value, allowsSizeSuffix: false) ?? options.defaultBacklog
            case _ where SandboxSpec.attributeNames.contains(key):
                parseSandboxOption(key, value, into: &spec)
            case "proxy_protocol", "listen_fds", "proxy_trusted":
                parseHandoffOption(key, value, into: &spec)
            case _ where ServiceTLS.attributeNames.contains(key):
                if let value, !value.isEmpty {
                    spec?.tls.set(key, value)
                } else {
                    error("protocol option \(key) needs a path (\(key)=PATH)")
                }
            default: error(key.isEmpty ? "empty protocol option in \(field)" : "unknown protocol option \(key)")
            }
        }
        return spec
    }

    /// `proxy_protocol[=yes|no]`, `listen_fds[=yes|no]`, `proxy_trusted=CIDR[;CIDR...]`.
    private mutating func parseHandoffOption(_ key: String, _ value: String?, into spec: inout ProtocolSpec?) {
        if key == "proxy_trusted" {
            guard let value else { return error("proxy_trusted needs a value (proxy_trusted=CIDR[;CIDR...])") }
            let items = value.split(separator: ";", omittingEmptySubsequences: false).map(String.init)
            if items.contains(where: \.isEmpty) {
                return error("proxy_trusted=\(value) has an empty item (networks are separated by ;)")
            }
            do throws(XinetdValueError) {
                spec?.proxyTrusted = try SocketHandoffOptions.trustedNetworks(items)
            } catch {
                self.error(error.message)
            }
            return
        }
        let on: Bool
        switch value {
        case nil, "yes": on = true
        case "no": on = false
        default: return error("protocol option \(key) must be yes or no, found \(value!)")
        }
        if key == "proxy_protocol" { spec?.proxyProtocol = on } else { spec?.listenFDs = on }
    }

    /// A sandbox option: `name=value`, lists separated by `:` (`capabilities=CAP_A:CAP_B`,
    /// `system_call_filter=@system-service:~@mount`); a yes/no option alone means yes (`private_tmp`).
    private mutating func parseSandboxOption(_ key: String, _ value: String?, into spec: inout ProtocolSpec?) {
        let values: [String]
        if let value {
            values = value.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
            if values.contains(where: \.isEmpty) {
                return error("sandbox option \(key)=\(value) has an empty item (lists are separated by :)")
            }
        } else if SandboxSpec.booleanAttributes.contains(key) {
            values = ["yes"]
        } else {
            return error("sandbox option \(key) needs a value (\(key)=VALUE)")
        }
        do throws(XinetdValueError) {
            try spec?.sandbox.apply(key, values)
        } catch {
            self.error("sandbox option \(key): \(error.message)")
        }
    }

    /// The sandbox of an entry, with the preset applied and the host checked; nil (errors reported)
    /// when the service cannot have it.
    private mutating func resolveSandbox(_ spec: SandboxSpec, program: ServerProgram, credentials: Credentials)
        -> Sandbox?
    {
        guard !spec.isEmpty else { return Sandbox() }
        guard case .external = program else {
            warning("sandbox options ignored: internal services run inside swinetd, no program is started")
            return Sandbox()
        }
        // The credentials are swinetd's own when it cannot switch user.
        let runsAsRoot = credentials.uid == 0
        let sandbox = spec.resolve(runsAsRoot: runsAsRoot)
        var failed = false
        for problem in SandboxCheck.problems(sandbox, credentials: credentials, options: options) {
            if problem.isError {
                error(problem.message)
                failed = true
            } else {
                warning(problem.message)
            }
        }
        return failed ? nil : sandbox
    }

    /// A positive number, with `k` (×1024) or `m` (×1048576) for buffer sizes.
    private mutating func parseProtocolOption(_ key: String, _ value: String?, allowsSizeSuffix: Bool) -> Int32? {
        guard let value else {
            error("protocol option \(key) needs a value (\(key)=N)")
            return nil
        }
        var digits = Substring(value)
        var multiplier = 1
        if allowsSizeSuffix, let suffix = value.last {
            switch suffix {
            case "k", "K": multiplier = 1024
            case "m", "M": multiplier = 1_048_576
            default: break
            }
            if multiplier != 1 { digits = digits.dropLast() }
        }
        guard let number = ConfigText.decimal(digits), number > 0,
            case (let product, let overflow) = number.multipliedReportingOverflow(by: multiplier), !overflow,
            let result = Int32(exactly: product)
        else {
            error("bad value for protocol option \(key): \(value)")
            return nil
        }
        return result
    }

    private mutating func checkSocketType(_ socketType: SocketType, with proto: ProtocolSpec, protocolName: String) {
        let fits =
            switch proto.transport {
            case .tcp: socketType == .stream
            case .udp: socketType == .dgram
            case .unix: true
            }
        if !fits {
            let hint = socketType == .seqpacket ? " (seqpacket needs unix)" : ""
            error("socket type \(socketType.rawValue) does not work with protocol \(protocolName)\(hint)")
        }
    }

    // MARK: Service field

    /// Splits `host[,host...]:service` at the last colon, so that bare IPv6 literals work as hosts.
    static func splitHostPrefix(_ field: String) -> (hosts: String?, service: String) {
        guard let colon = field.lastIndex(of: ":") else { return (nil, field) }
        return (String(field[..<colon]), String(field[field.index(after: colon)...]))
    }

    private mutating func parseServiceField(_ field: String, proto: ProtocolSpec, protocolName: String)
        -> ServiceTarget?
    {
        guard let families = proto.families else { return parseUnixService(field) }
        let (hostText, service) = Self.splitHostPrefix(field)
        var hosts = defaultHosts
        if let hostText {
            guard let list = InetdConfParser.hostList(hostText) else {
                error("empty host name in \(field)")
                return nil
            }
            hosts = list
        }
        guard !service.isEmpty else {
            error("missing service name after host \(hostText ?? ""):")
            return nil
        }
        if service.hasPrefix("tcpmux/") {
            if hostText != nil {
                warning("host prefix on \(field) ignored: tcpmux targets are reached through the tcpmux service")
            }
            var targetName = service.dropFirst("tcpmux/".count)
            let sendsPlus = targetName.first == "+"
            if sendsPlus { targetName = targetName.dropFirst() }
            guard !targetName.isEmpty else {
                error("tcpmux target \(field) has no name")
                return nil
            }
            return .tcpmux(name: String(targetName), sendsPlus: sendsPlus)
        }
        let port = parsePort(service, transport: proto.transport)
        let addresses = resolve(hosts, families: families, protocolName: protocolName)
        guard let port, let addresses else { return nil }
        return .inet(addresses: addresses, port: port)
    }

    private mutating func parsePort(_ service: String, transport: ProtocolSpec.Transport) -> UInt16? {
        if service.utf8.allSatisfy(ConfigText.isDigit) {
            guard let number = ConfigText.decimal(Substring(service)), (1...65535).contains(number) else {
                error("bad port \(service) (expected 1-65535)")
                return nil
            }
            return UInt16(number)
        }
        guard let port = servicesDatabase.port(named: service, protocolName: transport.rawValue) else {
            error("unknown service \(service)/\(transport.rawValue) (not in \(options.servicesFile))")
            return nil
        }
        return port
    }

    /// The addresses of every host the protocol can use; nil after reporting a host that gave none.
    private mutating func resolve(_ hosts: [String], families: AddressFamilies, protocolName: String)
        -> [IPAddress]?
    {
        var addresses: [IPAddress] = []
        var failed = false
        for host in hosts {
            if host == "*" {
                addresses += families.wildcard
                continue
            }
            let resolved = SocketAddressFormatting.resolve(host)
            let usable = resolved.filter(families.accepts)
            if resolved.isEmpty {
                error("cannot resolve host \(host)")
                failed = true
            } else if usable.isEmpty {
                let wanted = families == .ipv4Only ? "IPv4" : "IPv6"
                error("host \(host) has no \(wanted) address, which protocol \(protocolName) needs")
                failed = true
            }
            addresses += usable
        }
        return failed ? nil : addresses
    }

    /// `/path` or FreeBSD's `:user:group:mode:/path` (empty parts keep the defaults).
    private mutating func parseUnixService(_ field: String) -> ServiceTarget? {
        var path = field
        var owner: UInt32?
        var group: UInt32?
        var mode = Self.defaultUnixMode
        let errorCount = diagnostics.count
        if field.hasPrefix(":") {
            let parts = field.split(separator: ":", maxSplits: 4, omittingEmptySubsequences: false).map(String.init)
            guard parts.count == 5 else {
                error("bad unix socket \(field) (expected /path or :user:group:mode:/path)")
                return nil
            }
            if !parts[1].isEmpty {
                owner = UserDatabase.user(parts[1])?.uid
                if owner == nil { error("unknown user \(parts[1]) for unix socket \(parts[4])") }
            }
            if !parts[2].isEmpty {
                group = UserDatabase.groupID(parts[2])
                if group == nil { error("unknown group \(parts[2]) for unix socket \(parts[4])") }
            }
            if !parts[3].isEmpty {
                if let octal = Self.octal(parts[3]), octal <= 0o7777 {
                    mode = octal
                } else {
                    error("bad mode \(parts[3]) for unix socket \(parts[4]) (expected octal, e.g. 660)")
                }
            }
            path = parts[4]
        }
        if !path.hasPrefix("/") {
            error("unix socket path \(path) must be absolute")
        } else if path.utf8.count > Self.maximumUnixPathLength {
            error("unix socket path \(path) is longer than \(Self.maximumUnixPathLength) bytes")
        }
        return diagnostics.count > errorCount ? nil : .unix(path: path, owner: owner, group: group, mode: mode)
    }

    // MARK: Wait, user, program

    private mutating func parseWait(_ field: String) -> (wait: Bool, limits: ServiceLimits)? {
        let modeEnd = field.firstIndex { $0 == "." || $0 == "/" } ?? field.endIndex
        let wait: Bool
        switch field[..<modeEnd] {
        case "wait": wait = true
        case "nowait": wait = false
        default:
            error("expected wait or nowait, found \(field)")
            return nil
        }
        guard modeEnd < field.endIndex else { return (wait, ServiceLimits()) }
        let numbers = field[field.index(after: modeEnd)...].split(separator: "/", omittingEmptySubsequences: false)
        let maxCount = field[modeEnd] == "." ? 1 : 3
        let limits = numbers.compactMap(ConfigText.decimal)
        guard numbers.count <= maxCount, limits.count == numbers.count else {
            error("bad limits in \(field) (expected \(field[..<modeEnd]).N or \(field[..<modeEnd])/N[/N[/N]])")
            return nil
        }
        // 0 means no limit.
        let values = limits.map { $0 == 0 ? nil : $0 } + [nil, nil, nil]
        if field[modeEnd] == "." { return (wait, ServiceLimits(maxSpawnsPerMinute: values[0])) }
        return (
            wait,
            ServiceLimits(maxChildren: values[0], maxConnectionsPerIPPerMinute: values[1], maxChildrenPerIP: values[2])
        )
    }

    /// `user`, `user:group`, `user.group`, each optionally followed by a FreeBSD `/class`.
    private mutating func parseUser(_ field: String) -> Credentials? {
        var spec = Substring(field)
        if let slash = spec.firstIndex(of: "/") {
            warning("login class \(spec[spec.index(after: slash)...]) ignored")
            spec = spec[..<slash]
        }
        var userText = String(spec)
        var groupText: String?
        if let colon = spec.firstIndex(of: ":") {
            userText = String(spec[..<colon])
            groupText = String(spec[spec.index(after: colon)...])
        } else if UserDatabase.user(named: userText) == nil, let dot = spec.lastIndex(of: ".") {
            // `user.group` is ambiguous with user names containing dots; an existing user wins.
            userText = String(spec[..<dot])
            groupText = String(spec[spec.index(after: dot)...])
        }
        guard !userText.isEmpty else {
            error("no user in \(field)")
            return nil
        }
        let user = UserDatabase.user(userText)
        if user == nil { error("unknown user \(userText)") }
        var groupID: UInt32?
        if let groupText {
            groupID = UserDatabase.groupID(groupText)
            if groupID == nil {
                error(groupText.isEmpty ? "no group after \(userText):" : "unknown group \(groupText)")
            }
        }
        guard let user, groupText == nil || groupID != nil else { return nil }
        guard let gid = groupID ?? user.primaryGID else {
            error("uid \(user.uid) has no passwd entry, so it has no primary group: write \(user.uid):group")
            return nil
        }
        if options.daemonUID != 0 {
            let daemon = options.daemonCredentials
            if user.uid != daemon.uid || (groupID != nil && gid != daemon.gid) {
                warning("runs as \(daemon.user) because swinetd is not root (configured: \(field))")
            }
            return daemon
        }
        let groups = user.primaryGID == nil ? [gid] : UserDatabase.groupList(user: user.name, gid: gid)
        return Credentials(user: user.name, uid: user.uid, gid: gid, groups: groups, changeIdentity: true)
    }

    /// With a `chroot` option the program is looked up inside the chroot, as the child will.
    private mutating func parseProgram(
        _ fields: ArraySlice<String>, serviceField: String, socketType: SocketType?, target: ServiceTarget?,
        chroot: String? = nil
    ) -> ServerProgram? {
        let path = fields[fields.startIndex]
        let arguments = Array(fields.dropFirst())
        if path == "internal" {
            guard
                let builtin = parseBuiltin(
                    arguments, serviceField: serviceField, socketType: socketType, target: target)
            else { return nil }
            if socketType == .seqpacket {
                error("builtin \(builtin.rawValue) does not support seqpacket sockets")
            }
            if builtin == .tcpmux {
                if let socketType, socketType != .stream { error("builtin tcpmux needs a stream socket") }
                if case .tcpmux = target { error("the tcpmux builtin cannot be a tcpmux target") }
            }
            return .builtin(builtin)
        }
        guard path.hasPrefix("/") else {
            error("program \(path) must be an absolute path or internal")
            return nil
        }
        // A chroot that does not exist is reported on its own; the program cannot be looked up then.
        let chrootUsable = chroot.map { SandboxCheck.directoryProblem($0) == nil } ?? true
        if options.checkPrograms, chrootUsable, let problem = Self.executableProblem(Self.inside(chroot, path)) {
            error("program \(path) \(problem)" + (chroot.map { " (inside chroot \($0))" } ?? ""))
        }
        guard !arguments.isEmpty else {
            let argv0 = String(path.split(separator: "/").last ?? Substring(path))
            warning("no argv[0] after \(path); using \(argv0)")
            return .external(path: path, arguments: [argv0])
        }
        return .external(path: path, arguments: arguments)
    }

    /// The builtin named after `internal`, else the one the service name (or unix socket file name) stands
    /// for, directly or as an /etc/services alias of the builtin's name (`sink` → discard).
    private mutating func parseBuiltin(
        _ arguments: [String], serviceField: String, socketType: SocketType?, target: ServiceTarget?
    ) -> Builtin? {
        if let named = arguments.first {
            if arguments.count > 1 { warning("arguments after internal \(named) ignored") }
            guard let builtin = Builtin(rawValue: named) else {
                let known = Builtin.allCases.map(\.rawValue).joined(separator: ", ")
                error("unknown builtin \(named) (builtins: \(known))")
                return nil
            }
            return builtin
        }
        // Without a parsed service field there is nothing to go on, and its error is already reported.
        guard let target else { return nil }
        let candidate: String
        switch target {
        case .inet: candidate = Self.splitHostPrefix(serviceField).service
        case .unix(let path, _, _, _): candidate = String(path.split(separator: "/").last ?? "")
        case .tcpmux: candidate = ""
        }
        let protocolName = socketType == .dgram ? "udp" : "tcp"
        let canonical = servicesDatabase.entry(named: candidate, protocolName: protocolName)?.name
        guard let builtin = Builtin(rawValue: candidate) ?? canonical.flatMap(Builtin.init(rawValue:)) else {
            error("internal service \(serviceField): name the builtin after `internal`")
            return nil
        }
        return builtin
    }

    /// `path` as the host sees it when the child runs in `chroot`.
    static func inside(_ chroot: String?, _ path: String) -> String {
        guard let chroot, chroot != "/" else { return path }
        return (chroot.hasSuffix("/") ? String(chroot.dropLast()) : chroot) + path
    }

    /// Why `path` cannot be run, or nil when it can.
    private static func executableProblem(_ path: String) -> String? {
        var status = stat()
        guard stat(path, &status) == 0 else { return "cannot be used: " + errnoDescription(errno) }
        guard status.st_mode & S_IFMT == S_IFREG else { return "is not a regular file" }
        guard access(path, X_OK) == 0 else { return "is not executable" }
        return nil
    }

    /// Drops listeners that repeat one already listed (`localhost,127.0.0.1:echo`).
    private mutating func withoutRepeats(_ listeners: [ListenerSpec]) -> [ListenerSpec] {
        var seen = Set<ListenerSpec.Key>()
        var unique: [ListenerSpec] = []
        for listener in listeners {
            if seen.insert(listener.key).inserted {
                unique.append(listener)
            } else {
                warning("\(listener) listed twice")
            }
        }
        return unique
    }

    private static func octal(_ text: String) -> UInt32? {
        guard !text.isEmpty, text.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "7") }) else {
            return nil
        }
        return UInt32(text, radix: 8)
    }
}
