#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

extension TCPWrappers {
    /// One rule of hosts.allow or hosts.deny, ready to match.
    struct Rule: Sendable {
        enum Body: Sendable {
            case rule(daemons: PatternList<DaemonPattern>, clients: PatternList<ClientPattern>)
            /// A line tcpd cannot read (too long, no final newline, unreadable file, or in hosts.deny
            /// a line without ':'). tcpd stops reading the table there: in hosts.allow nothing below
            /// it allows; in hosts.deny every request that gets this far is denied.
            case tableError
        }

        var location: ConfigLocation
        var body: Body
        /// The verdict when the rule matches: the file's, unless options change it.
        var allows: Bool
        /// `aclexec`: tcpd also runs a command and the rule matches only if it succeeds.
        /// swinetd runs nothing, so the condition is unknown and resolved the strict way.
        var conditional: Bool
        /// The option fields after the second ':', unescaped and trimmed.
        var options: [String]
    }

    /// What reading a file gave.
    enum FileContents {
        case missing
        case failed(String)
        case bytes([UInt8])
    }

    /// Longest logical line tcpd reads (its buffer is 2048 bytes: 2046 characters, the newline, NUL).
    static let lineBufferSize = 2048
    /// Largest hosts or pattern file swinetd reads.
    static let maxFileSize = 16 << 20
    /// How deep `/file` patterns may refer to further `/file` patterns.
    static let maxFileDepth = 8

    /// Reads a regular file whole (at most `maxFileSize` bytes). ENOENT is `.missing`.
    static func readFile(_ path: String) -> FileContents {
        switch ConfigFile.read(path, maxSize: maxFileSize) {
        case .success(let bytes): return .bytes(bytes)
        case .failure(let failure) where failure.errno == ENOENT: return .missing
        case .failure(let failure): return .failed("cannot read \(path): \(failure)")
        }
    }

    // MARK: - Parser

    struct Parser {
        var diagnostics: [Diagnostic] = []
        let readFile: (String) -> FileContents
        /// Pattern files already read during this parse, by path.
        private var fileCache: [String: [HostPattern]?] = [:]
        /// The `/file` chain being read, to stop cycles.
        private var fileStack: [String] = []

        init(readFile: @escaping (String) -> FileContents) {
            self.readFile = readFile
        }

        /// Diagnostics reported per file; a long pattern file full of mistakes reports the first ones.
        private var reportedPerFile: [String: Int] = [:]
        static let maxDiagnosticsPerFile = 100

        private mutating func report(_ severity: Diagnostic.Severity, _ location: ConfigLocation?, _ message: String) {
            let file = location?.file ?? ""
            let count = reportedPerFile[file, default: 0]
            reportedPerFile[file] = count + 1
            if count < Self.maxDiagnosticsPerFile {
                diagnostics.append(Diagnostic(severity, location, message))
            } else if count == Self.maxDiagnosticsPerFile {
                diagnostics.append(Diagnostic(.warning, location, "further problems in this file are not reported"))
            }
        }

        private mutating func warn(_ location: ConfigLocation?, _ message: String) {
            report(.warning, location, message)
        }

        private mutating func error(_ location: ConfigLocation?, _ message: String) {
            report(.error, location, message)
        }

        /// Parses one table. `isAllow`: hosts.allow (a match allows) rather than hosts.deny.
        mutating func parseTable(_ bytes: [UInt8], name: String, isAllow: Bool) -> [Rule] {
            var rules: [Rule] = []
            var reader = LineReader(bytes: bytes)
            let failClosed =
                isAllow
                ? "tcpd stops reading \(name) here: no rule below this line allows anything"
                : "tcpd stops reading \(name) here: every connection that reaches this line is denied"
            while let line = reader.next() {
                let location = ConfigLocation(file: name, line: line.firstLine)
                switch line.problem {
                case .tooLong:
                    error(location, "line longer than tcpd's \(lineBufferSize - 2)-character limit; \(failClosed)")
                    rules.append(
                        Rule(location: location, body: .tableError, allows: false, conditional: false, options: []))
                    return rules
                case .noNewline:
                    error(location, "last line has no newline; \(failClosed)")
                    rules.append(
                        Rule(location: location, body: .tableError, allows: false, conditional: false, options: []))
                    return rules
                case .nulByte:
                    let effect =
                        isAllow
                        ? "no rule below this line allows anything"
                        : "every connection that reaches this line is denied"
                    error(location, "line contains a NUL byte; swinetd stops reading \(name) here: \(effect)")
                    rules.append(
                        Rule(location: location, body: .tableError, allows: false, conditional: false, options: []))
                    return rules
                case nil:
                    break
                }
                let text = line.content
                if text.first == UInt8(ascii: "#") { continue }
                if text.allSatisfy({ TCPWrappers.isBlank($0) }) { continue }
                if let rule = parseRule(text, location: location, isAllow: isAllow, tableName: name) {
                    rules.append(rule)
                    if case .tableError = rule.body { return rules }
                }
            }
            return rules
        }

        private mutating func parseRule(_ text: [UInt8], location: ConfigLocation, isAllow: Bool, tableName: String)
            -> Rule?
        {
            let colon = UInt8(ascii: ":")
            guard let (daemonText, rest) = TCPWrappers.splitAt(text[...], colon) else {
                if isAllow {
                    warn(location, "missing ':' separator; line ignored (as tcpd does)")
                    return nil
                }
                error(
                    location,
                    "missing ':' separator; swinetd fails closed: every connection that reaches this line of \(tableName) is denied"
                )
                return Rule(location: location, body: .tableError, allows: false, conditional: false, options: [])
            }
            let clientText: ArraySlice<UInt8>
            var optionText: ArraySlice<UInt8>?
            if let (clients, options) = TCPWrappers.splitAt(rest, colon) {
                clientText = clients
                optionText = options
            } else {
                clientText = rest
            }

            if let first = text.first(where: { !TCPWrappers.isBlank($0) }), first == UInt8(ascii: "#") {
                warn(location, "'#' after leading blanks does not start a comment in tcpd; this line is a rule")
            } else if daemonText.contains(UInt8(ascii: "#")) || clientText.contains(UInt8(ascii: "#")) {
                warn(location, "'#' inside a rule is not a comment in tcpd; the words after it are patterns")
            }

            let daemonTokens = TCPWrappers.tokens(daemonText)
            let clientTokens = TCPWrappers.tokens(clientText)
            if daemonTokens.isEmpty { warn(location, "empty daemon list; the rule never matches") }
            if clientTokens.isEmpty { warn(location, "empty client list; the rule never matches") }

            let daemons = PatternList(
                levels: TCPWrappers.levels(daemonTokens).map { level in
                    level.map { parseDaemon($0, location: location) }
                })
            let clients = PatternList(
                levels: TCPWrappers.levels(clientTokens).map { level in
                    level.map { parseClient($0, location: location) }
                })

            var rule = Rule(
                location: location, body: .rule(daemons: daemons, clients: clients), allows: isAllow,
                conditional: false, options: [])
            if let optionText { parseOptions(optionText, into: &rule) }
            return rule
        }

        // MARK: Patterns

        private mutating func parseDaemon(_ token: [UInt8], location: ConfigLocation) -> DaemonPattern {
            var namePart = token[...]
            var host: HostPattern?
            if let (name, hostText) = TCPWrappers.splitAt(token.dropFirst(), UInt8(ascii: "@")) {
                namePart = token[token.startIndex..<name.endIndex]
                if hostText.isEmpty {
                    error(location, "'\(show(token))': empty host after '@'; treated as unknown (fails closed)")
                    host = .invalid
                } else {
                    let pattern = parseHost(Array(hostText), location: location, depth: 0)
                    host = pattern
                    if pattern.usesName {
                        warn(
                            location,
                            "'\(show(token))': swinetd does not look up its own host names, so this server pattern is resolved strictly (a denying rule matches, an allowing one does not); match the server address instead"
                        )
                    }
                }
            }
            if namePart.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) {
                // Debian's libwrap: a number in the daemon list is the server port.
                let port =
                    namePart.count <= 5
                    ? Int(String(decoding: namePart, as: UTF8.self)).flatMap { UInt16(exactly: $0) } : nil
                if port == nil { warn(location, "'\(show(token))': not a port number; never matches") }
                return DaemonPattern(name: .port(port), host: host)
            }
            let name = StringPattern(Array(namePart))
            if name == .badBracket {
                error(location, "'\(show(token))': not an IPv6 address in brackets; treated as unknown (fails closed)")
            }
            return DaemonPattern(name: .string(name), host: host)
        }

        private mutating func parseClient(_ token: [UInt8], location: ConfigLocation) -> ClientPattern {
            if let (user, hostText) = TCPWrappers.splitAt(token.dropFirst(), UInt8(ascii: "@")) {
                let userPart = Array(token[token.startIndex..<user.endIndex])
                let userPattern = StringPattern(userPart)
                if userPattern == .badBracket {
                    error(location, "'\(show(token))': bad user pattern; treated as unknown (fails closed)")
                }
                guard !hostText.isEmpty else {
                    error(location, "'\(show(token))': empty host after '@'; treated as unknown (fails closed)")
                    return ClientPattern(user: userPattern, host: .invalid)
                }
                return ClientPattern(user: userPattern, host: parseHost(Array(hostText), location: location, depth: 0))
            }
            return ClientPattern(user: nil, host: parseHost(token, location: location, depth: 0))
        }

        /// tcpd's `host_match` dispatch, in its order.
        mutating func parseHost(_ token: [UInt8], location: ConfigLocation, depth: Int) -> HostPattern {
            let lower = TCPWrappers.lowered(token)
            if token.first == UInt8(ascii: "@") {
                warn(location, "'\(show(token))': NIS netgroups are not supported; this pattern never allows and always denies")
                return .netgroup(String(decoding: token.dropFirst(), as: UTF8.self))
            }
            if token.first == UInt8(ascii: "/") {
                return parseFilePattern(String(decoding: token, as: UTF8.self), location: location, depth: depth)
            }
            if lower == Array("known".utf8) { return .known }
            if lower == Array("local".utf8) { return .local }
            if let (net, mask) = TCPWrappers.splitAt(lower[...], UInt8(ascii: "/")) {
                if let pattern = TCPWrappers.network(net, mask) { return pattern }
                error(
                    location,
                    "'\(show(token))': \(TCPWrappers.networkProblem(net, mask)); treated as unknown (fails closed)")
                return .invalid
            }
            let pattern = StringPattern(token)
            if pattern == .badBracket {
                error(location, "'\(show(token))': not an IPv6 address in brackets; treated as unknown (fails closed)")
                return .invalid
            }
            return .string(pattern, matchesName: TCPWrappers.matchesName(lower, pattern))
        }

        private mutating func parseFilePattern(_ path: String, location: ConfigLocation, depth: Int) -> HostPattern {
            if let cached = fileCache[path] { return .file(path: path, entries: cached) }
            if fileStack.contains(path) || depth >= maxFileDepth {
                error(
                    location,
                    "'\(sanitizedForLog(Array(path.utf8)))': pattern files nest too deeply or refer to themselves; treated as unknown (fails closed)"
                )
                return .file(path: path, entries: nil)
            }
            let entries: [HostPattern]?
            switch readFile(path) {
            case .missing:
                warn(
                    location,
                    "pattern file \(sanitizedForLog(Array(path.utf8))) does not exist; it matches nothing (as in tcpd)")
                entries = []
            case .failed(let reason):
                error(
                    location, "\(sanitizedForLog(Array(reason.utf8))); the pattern is treated as unknown (fails closed)"
                )
                entries = nil
            case .bytes(let bytes):
                fileStack.append(path)
                var list: [HostPattern] = []
                var line = 1
                var start: Int?
                for index in 0...bytes.count {
                    let byte = index < bytes.count ? bytes[index] : UInt8(ascii: " ")
                    if TCPWrappers.isSpace(byte) {
                        if let begin = start {
                            let token = Array(bytes[begin..<index])
                            let here = ConfigLocation(file: path, line: line)
                            if token.first == UInt8(ascii: "#") {
                                warn(
                                    here,
                                    "'#' does not start a comment in a pattern file; the words are patterns (as in tcpd)"
                                )
                            }
                            if token.contains(0) {
                                error(here, "pattern contains a NUL byte; treated as unknown (fails closed)")
                                list.append(.invalid)
                            } else {
                                list.append(parseHost(token, location: here, depth: depth + 1))
                            }
                            start = nil
                        }
                        if byte == UInt8(ascii: "\n") { line += 1 }
                    } else if start == nil {
                        start = index
                    }
                }
                fileStack.removeLast()
                entries = list
            }
            fileCache[path] = .some(entries)
            return .file(path: path, entries: entries)
        }

        private func show(_ token: [UInt8]) -> String { sanitizedForLog(token, limit: 80) }

        // MARK: Options (hosts_options(5))

        private struct OptionSpec {
            var needsValue = false
            var takesValue = false
            var mustBeLast = false
        }

        private static let optionTable: [String: OptionSpec] = [
            "user": OptionSpec(needsValue: true),
            "group": OptionSpec(needsValue: true),
            "umask": OptionSpec(needsValue: true),
            "linger": OptionSpec(needsValue: true),
            "keepalive": OptionSpec(),
            "spawn": OptionSpec(needsValue: true),
            "twist": OptionSpec(needsValue: true, mustBeLast: true),
            "rfc931": OptionSpec(takesValue: true),
            "setenv": OptionSpec(needsValue: true),
            "nice": OptionSpec(takesValue: true),
            "severity": OptionSpec(needsValue: true),
            "allow": OptionSpec(mustBeLast: true),
            "deny": OptionSpec(mustBeLast: true),
            "banners": OptionSpec(needsValue: true),
            "aclexec": OptionSpec(needsValue: true),
        ]

        /// tcpd's `process_options`, without running anything: validates every option the way tcpd
        /// does (a bad option makes tcpd deny the request when the rule matches) and works out the
        /// verdict.
        private mutating func parseOptions(_ text: ArraySlice<UInt8>, into rule: inout Rule) {
            let fields = TCPWrappers.optionFields(text)
            rule.options = fields.map { String(decoding: TCPWrappers.trimmed($0), as: UTF8.self) }
            var verdict: Bool?
            var ignored: [String] = []
            for (index, field) in fields.enumerated() {
                let (key, value) = TCPWrappers.optionKeyValue(TCPWrappers.trimmed(field))
                let keyText = String(decoding: TCPWrappers.lowered(key), as: UTF8.self)
                let valueText = value.map { String(decoding: $0, as: UTF8.self) }
                let problem: String?
                if key.isEmpty {
                    problem = "missing option name (an empty field, or a rule that ends in ':')"
                } else if let spec = Self.optionTable[keyText] {
                    if valueText == nil && spec.needsValue {
                        problem = "option \"\(keyText)\" requires a value"
                    } else if valueText != nil && !spec.needsValue && !spec.takesValue {
                        problem = "option \"\(keyText)\" takes no value"
                    } else if spec.mustBeLast && index != fields.count - 1 {
                        problem = "option \"\(keyText)\" must be the last option"
                    } else {
                        problem = valueText.flatMap { TCPWrappers.optionValueProblem(keyText, $0) }
                    }
                } else {
                    problem = "bad option name \"\(sanitizedForLog(key, limit: 40))\""
                }
                if let problem {
                    error(
                        rule.location, "\(problem); tcpd denies every connection this rule matches, and so does swinetd"
                    )
                    rule.allows = false
                    rule.conditional = false
                    return
                }
                switch keyText {
                case "allow": verdict = true
                case "deny": verdict = false
                case "twist":
                    warn(
                        rule.location,
                        "twist is not executed: swinetd never runs shell commands from \(rule.location.file); it denies the connection (the real server would not run under tcpd either) and logs the command"
                    )
                    verdict = false
                case "spawn":
                    warn(
                        rule.location,
                        "spawn is not executed: swinetd never runs shell commands from \(rule.location.file); it only logs the command"
                    )
                case "aclexec":
                    warn(
                        rule.location,
                        "aclexec is not executed: swinetd never runs shell commands; the rule is resolved the strict way (in an allowing rule it never matches, in a denying rule it always does)"
                    )
                    rule.conditional = true
                default:
                    if !ignored.contains(keyText) { ignored.append(keyText) }
                }
            }
            if let verdict { rule.allows = verdict }
            if !ignored.isEmpty {
                warn(
                    rule.location,
                    "option\(ignored.count == 1 ? "" : "s") \(ignored.joined(separator: ", ")) accepted but ignored by swinetd"
                )
            }
        }
    }

    // MARK: - Lines

    /// tcpd's `xgets` over a whole file: logical lines joined at backslash-newline, with tcpd's
    /// buffer limit.
    struct LineReader {
        enum Problem { case tooLong, noNewline, nulByte }

        struct Line {
            var content: [UInt8]
            var firstLine: Int
            var problem: Problem?
        }

        let bytes: [UInt8]
        var position = 0
        var lineNumber = 0

        init(bytes: [UInt8]) { self.bytes = bytes }

        mutating func next() -> Line? {
            guard position < bytes.count else { return nil }
            var content: [UInt8] = []
            let first = lineNumber + 1
            var problem: Problem?
            while position < bytes.count {
                let end = bytes[position...].firstIndex(of: UInt8(ascii: "\n"))
                let physical = bytes[position..<(end.map { $0 + 1 } ?? bytes.count)]
                position = physical.endIndex
                lineNumber += 1
                // fgets gets the rest of the buffer: the physical line, newline included, must fit.
                if physical.count > lineBufferSize - 1 - content.count, problem == nil { problem = .tooLong }
                if physical.contains(0), problem == nil { problem = .nulByte }
                guard end != nil else {
                    content += physical
                    if problem == nil { problem = .noNewline }
                    break
                }
                let body = physical.dropLast()
                if body.last == UInt8(ascii: "\\") {
                    content += body.dropLast()
                    if position == bytes.count {
                        // A continuation at end of file: tcpd sees a line without newline, unless empty.
                        if content.isEmpty && problem == nil { return nil }
                        if problem == nil { problem = .noNewline }
                        break
                    }
                    continue
                }
                content += body
                break
            }
            return Line(content: content, firstLine: first, problem: problem)
        }
    }

    // MARK: - Text helpers

    static func isBlank(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") || byte == UInt8(ascii: "\r")
            || byte == UInt8(ascii: "\n")
    }

    /// isspace(3) in the C locale (fscanf's `%s` separators).
    static func isSpace(_ byte: UInt8) -> Bool { byte == 0x20 || (byte >= 0x09 && byte <= 0x0d) }

    /// tcpd's `split_at`: the first `delimiter` outside `[...]`.
    static func splitAt(_ text: ArraySlice<UInt8>, _ delimiter: UInt8) -> (ArraySlice<UInt8>, ArraySlice<UInt8>)? {
        var depth = 0
        for index in text.indices {
            switch text[index] {
            case UInt8(ascii: "["): depth += 1
            case UInt8(ascii: "]"): depth -= 1
            case delimiter where depth == 0: return (text[..<index], text[(index + 1)...])
            default: break
            }
        }
        return nil
    }

    /// List elements: separated by blanks and/or commas (tcpd's `sep`).
    static func tokens(_ text: ArraySlice<UInt8>) -> [[UInt8]] {
        text.split { $0 == UInt8(ascii: ",") || isBlank($0) }.map(Array.init)
    }

    /// Splits a token list at `EXCEPT` (any case).
    static func levels(_ tokens: [[UInt8]]) -> [[[UInt8]]] {
        var levels: [[[UInt8]]] = [[]]
        for token in tokens {
            if lowered(token) == Array("except".utf8) {
                levels.append([])
            } else {
                levels[levels.count - 1].append(token)
            }
        }
        return levels
    }

    /// tcpd's `get_field` over the whole option text: fields split at ':', `\:` is a literal colon.
    /// A trailing ':' leaves an empty last field (tcpd sees the line's newline there, which is an
    /// empty option).
    static func optionFields(_ text: ArraySlice<UInt8>) -> [[UInt8]] {
        var fields: [[UInt8]] = []
        var current: [UInt8] = []
        var index = text.startIndex
        while index < text.endIndex {
            let byte = text[index]
            if byte == UInt8(ascii: ":") {
                fields.append(current)
                current = []
            } else if byte == UInt8(ascii: "\\"), index + 1 < text.endIndex, text[index + 1] == UInt8(ascii: ":") {
                current.append(UInt8(ascii: ":"))
                index += 1
            } else {
                current.append(byte)
            }
            index += 1
        }
        fields.append(current)
        return fields
    }

    static func trimmed(_ bytes: [UInt8]) -> [UInt8] {
        guard let first = bytes.firstIndex(where: { !isBlank($0) }) else { return [] }
        let last = bytes.lastIndex(where: { !isBlank($0) })!
        return Array(bytes[first...last])
    }

    /// `keyword`, `keyword value` or `keyword = value` (one '=' allowed, as in tcpd).
    static func optionKeyValue(_ field: [UInt8]) -> ([UInt8], [UInt8]?) {
        let equals = UInt8(ascii: "=")
        guard let split = field.firstIndex(where: { isBlank($0) || $0 == equals }) else { return (field, nil) }
        let key = Array(field[..<split])
        var rest = field[split...]
        if rest.first != equals { rest = rest.drop(while: isBlank) }
        if rest.first == equals { rest = rest.dropFirst().drop(while: isBlank) }
        return (key, rest.isEmpty ? nil : Array(rest))
    }

    private static let severityLevels: Set<String> = [
        "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug",
    ]
    private static let severityFacilities: Set<String> = [
        "kern", "user", "mail", "daemon", "auth", "lpr", "news", "uucp", "cron",
        "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7",
    ]

    /// The checks tcpd makes on option values; nil when the value is acceptable.
    static func optionValueProblem(_ key: String, _ value: String) -> String? {
        let bytes = Array(value.utf8)
        func isInteger(_ text: ArraySlice<UInt8>, signed: Bool) -> Bool {
            var digits = text
            if signed, let first = digits.first, first == UInt8(ascii: "-") || first == UInt8(ascii: "+") {
                digits = digits.dropFirst()
            }
            return !digits.isEmpty && digits.count <= 9 && digits.allSatisfy { $0 >= 0x30 && $0 <= 0x39 }
        }
        switch key {
        case "user":
            let parts = bytes.split(separator: UInt8(ascii: "."), maxSplits: 1, omittingEmptySubsequences: false)
            let user = String(decoding: parts[0], as: UTF8.self)
            if user.isEmpty || UserDatabase.user(named: user) == nil {
                return "unknown user \"\(sanitizedForLog(parts[0], limit: 40))\""
            }
            if parts.count == 2 {
                let group = String(decoding: parts[1], as: UTF8.self)
                if group.isEmpty || UserDatabase.groupID(named: group) == nil {
                    return "unknown group \"\(sanitizedForLog(parts[1], limit: 40))\""
                }
            }
            return nil
        case "group":
            return UserDatabase.groupID(named: value) == nil
                ? "unknown group \"\(sanitizedForLog(bytes, limit: 40))\"" : nil
        case "umask":
            guard !bytes.isEmpty, bytes.count <= 6, bytes.allSatisfy({ $0 >= 0x30 && $0 <= 0x37 }),
                let mask = Int(value, radix: 8), mask <= 0o777
            else { return "bad umask value \"\(sanitizedForLog(bytes, limit: 40))\"" }
            return nil
        case "linger":
            return isInteger(bytes[...], signed: false)
                ? nil : "bad linger value \"\(sanitizedForLog(bytes, limit: 40))\""
        case "nice":
            return isInteger(bytes[...], signed: true) ? nil : "bad nice value \"\(sanitizedForLog(bytes, limit: 40))\""
        case "rfc931":
            guard isInteger(bytes[...], signed: false), let seconds = Int(value), seconds > 0 else {
                return "bad rfc931 timeout \"\(sanitizedForLog(bytes, limit: 40))\""
            }
            return nil
        case "severity":
            let lower = String(decoding: lowered(bytes), as: UTF8.self)
            let parts = lower.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
            let ok =
                parts.count == 1
                ? severityLevels.contains(parts[0])
                : parts.count == 2 && severityFacilities.contains(parts[0]) && severityLevels.contains(parts[1])
            return ok ? nil : "bad syslog facility or severity \"\(sanitizedForLog(bytes, limit: 40))\""
        default:
            return nil
        }
    }

    // MARK: - Address patterns

    /// `net/mask`: `n.n.n.n/m.m.m.m`, `n.n.n.n/len` or `[v6]/len`; nil when tcpd would never match it
    /// (or would read it differently from what it says).
    static func network(_ net: ArraySlice<UInt8>, _ mask: ArraySlice<UInt8>) -> HostPattern? {
        if net.first == UInt8(ascii: "["), net.last == UInt8(ascii: "]"), net.count >= 2 {
            guard let address = parseV6(net.dropFirst().dropLast()), let length = decimal(mask, max: 128) else {
                return nil
            }
            return .network6(net: address, prefixLength: length)
        }
        guard let address = parseDottedQuad(net) else { return nil }
        let maskValue: UInt32
        if mask.contains(UInt8(ascii: ".")) {
            // tcpd refuses 255.255.255.255 (it is INADDR_NONE to inet_addr).
            guard let value = parseDottedQuad(mask), value != UInt32.max else { return nil }
            maskValue = value
        } else {
            // tcpd refuses /0.
            guard let length = decimal(mask, max: 32), length > 0 else { return nil }
            maskValue = length == 32 ? UInt32.max : ~(UInt32.max >> UInt32(length))
        }
        // tcpd compares (address & mask) with the net as written: host bits set never match.
        guard address & ~maskValue == 0 else { return nil }
        return .network4(net: address, mask: maskValue)
    }

    static func networkProblem(_ net: ArraySlice<UInt8>, _ mask: ArraySlice<UInt8>) -> String {
        if net.first == UInt8(ascii: "[") {
            if net.last != UInt8(ascii: "]") || parseV6(net.dropFirst().dropLast()) == nil {
                return "not an IPv6 address in brackets"
            }
            return "the prefix length must be a decimal number from 0 to 128"
        }
        guard let address = parseDottedQuad(net) else {
            return "the network must be a dotted quad in plain decimal (n.n.n.n)"
        }
        if mask.contains(UInt8(ascii: ".")) {
            guard let value = parseDottedQuad(mask) else { return "the mask must be a dotted quad in plain decimal" }
            if value == UInt32.max { return "tcpd does not accept the mask 255.255.255.255 (write the address alone)" }
            return "the network has bits set outside the mask, so tcpd never matches it"
        }
        guard let length = decimal(mask, max: 32) else {
            return "the prefix length must be a decimal number from 1 to 32"
        }
        if length == 0 { return "tcpd does not accept /0 for IPv4 (use ALL)" }
        _ = address
        return "the network has bits set outside the /\(length) prefix, so tcpd never matches it"
    }

    /// Whether tcpd also matches this pattern against the host name (its NOT_INADDR test: the
    /// token has a character other than digits, '.' and '/'). One deliberate difference: a wildcard
    /// made only of digits, dots, `*` and `?` (`10.1.*`) is matched against the address only, so a
    /// client cannot get in by naming itself `10.1.evil.example`.
    static func matchesName(_ lower: [UInt8], _ pattern: StringPattern) -> Bool {
        let numeric: (UInt8) -> Bool = {
            ($0 >= 0x30 && $0 <= 0x39) || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "/")
        }
        guard !lower.allSatisfy(numeric) else { return false }
        // `[v6]` never equals a host name, and ALL matches every address already.
        if pattern == .all { return false }
        if case .v6Address = pattern { return false }
        if pattern.isWildcard,
            lower.allSatisfy({ numeric($0) || $0 == UInt8(ascii: "*") || $0 == UInt8(ascii: "?") })
        {
            return false
        }
        return true
    }
}
