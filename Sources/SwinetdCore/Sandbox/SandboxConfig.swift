#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

import CSwinetd

/// The sandbox attributes of one service as written, in either format. Values are parsed here;
/// the `hardened` preset and the service's user are applied in `resolve`, and the host is checked
/// in `SandboxCheck`.
struct SandboxSpec: Equatable {
    var chroot: String?
    var workingDirectory: String?
    var noNewPrivileges: Bool?
    var capabilities: Sandbox.CapabilitySet?
    var privateTmp: Bool?
    var protectSystem: Sandbox.ProtectSystem?
    var readWritePaths: [String]?
    var privateNetwork: Bool?
    var systemCallFilter: Sandbox.SystemCallFilter?
    var nativeArchitectureOnly: Bool?
    var memoryMax: UInt64?
    var tasksMax: UInt64?
    var hardened: Bool?

    /// The attribute names, in both formats (xinetd attribute = inetd.conf protocol option).
    static let attributeNames = [
        "chroot", "working_directory", "no_new_privileges", "capabilities", "private_tmp", "protect_system",
        "read_write_paths", "private_network", "system_call_filter", "system_call_architectures", "memory_max",
        "tasks_max", "hardened",
    ]

    /// The attributes that take a yes/no value (a bare inetd.conf option means yes).
    static let booleanAttributes: Set<String> = [
        "no_new_privileges", "private_tmp", "private_network", "hardened",
    ]

    var isEmpty: Bool { self == SandboxSpec() }

    /// Parses one attribute's values (xinetd: the words after `=`; inetd.conf: the option value
    /// split at `:`) into the spec.
    mutating func apply(_ name: String, _ values: [String]) throws(XinetdValueError) {
        func single() throws(XinetdValueError) -> String {
            guard values.count == 1 else {
                throw XinetdValueError("\(name) takes exactly one value, found \(values.count)")
            }
            return values[0]
        }
        func yesNo() throws(XinetdValueError) -> Bool {
            switch try single() {
            case "yes": return true
            case "no": return false
            case let value: throw XinetdValueError("\(name) must be yes or no, found \(value)")
            }
        }
        switch name {
        case "chroot": chroot = try SandboxValues.absolutePath(try single(), attribute: name)
        case "working_directory": workingDirectory = try SandboxValues.absolutePath(try single(), attribute: name)
        case "no_new_privileges": noNewPrivileges = try yesNo()
        case "capabilities": capabilities = try SandboxValues.capabilities(values)
        case "private_tmp": privateTmp = try yesNo()
        case "protect_system":
            let value = try single()
            guard let level = Sandbox.ProtectSystem(rawValue: value) else {
                throw XinetdValueError("protect_system must be no, yes, full or strict, found \(value)")
            }
            protectSystem = level
        case "read_write_paths":
            guard !values.isEmpty else { throw XinetdValueError("read_write_paths needs at least one path") }
            readWritePaths = try values.map { value throws(XinetdValueError) in
                let path = value.hasPrefix("-") ? String(value.dropFirst()) : value
                _ = try SandboxValues.absolutePath(path, attribute: name)
                return value
            }
        case "private_network": privateNetwork = try yesNo()
        case "system_call_filter": systemCallFilter = try SandboxValues.systemCallFilter(values)
        case "system_call_architectures":
            let value = try single()
            guard value == "native" else {
                throw XinetdValueError("system_call_architectures supports only native, found \(value)")
            }
            nativeArchitectureOnly = true
        case "memory_max": memoryMax = try SandboxValues.size(try single(), attribute: name)
        case "tasks_max": tasksMax = try SandboxValues.count(try single(), attribute: name)
        case "hardened": hardened = try yesNo()
        default: throw XinetdValueError("unknown sandbox attribute \(name)")
        }
    }

    /// The sandbox: the preset first (when asked for), then every attribute written, each replacing
    /// the preset's value for that attribute.
    func resolve(runsAsRoot: Bool) -> Sandbox {
        var sandbox = hardened == true ? Sandbox.hardenedPreset(runsAsRoot: runsAsRoot) : Sandbox()
        if let chroot { sandbox.chroot = chroot }
        if let workingDirectory { sandbox.workingDirectory = workingDirectory }
        if let noNewPrivileges { sandbox.noNewPrivileges = noNewPrivileges }
        if let capabilities { sandbox.capabilities = capabilities }
        if let privateTmp { sandbox.privateTmp = privateTmp }
        if let protectSystem { sandbox.protectSystem = protectSystem }
        if let readWritePaths { sandbox.readWritePaths = readWritePaths }
        if let privateNetwork { sandbox.privateNetwork = privateNetwork }
        if let systemCallFilter { sandbox.systemCallFilter = systemCallFilter }
        if let nativeArchitectureOnly { sandbox.nativeArchitectureOnly = nativeArchitectureOnly }
        if let memoryMax { sandbox.memoryMax = memoryMax }
        if let tasksMax { sandbox.tasksMax = tasksMax }
        // A filter is compiled for the native ABI only, so other ABIs are refused with it.
        if sandbox.systemCallFilter != nil { sandbox.nativeArchitectureOnly = true }
        return sandbox
    }
}

/// Parsers for the values of sandbox attributes.
enum SandboxValues {
    static func absolutePath(_ value: String, attribute: String) throws(XinetdValueError) -> String {
        guard value.hasPrefix("/") else { throw XinetdValueError("\(attribute) \(value) must be an absolute path") }
        guard !value.split(separator: "/").contains("..") else {
            throw XinetdValueError("\(attribute) \(value) must not contain ..")
        }
        return value
    }

    /// Capability names (`CAP_NET_BIND_SERVICE`, case-insensitive, `CAP_` optional), or `none`.
    static func capabilities(_ words: [String]) throws(XinetdValueError) -> Sandbox.CapabilitySet {
        guard !words.isEmpty else { throw XinetdValueError("capabilities needs capability names or none") }
        if words == ["none"] { return .none }
        var bits: UInt64 = 0
        for word in words {
            guard let number = Capabilities.number(named: word) else {
                throw XinetdValueError("unknown capability \(word) (see capabilities(7); write none for no capabilities)")
            }
            bits |= 1 << UInt64(number)
        }
        return Sandbox.CapabilitySet(bits: bits)
    }

    /// Names and `@sets`; a `~` before a word denies it. Allowed words come first: a `~` applies to
    /// its own word only, so `~@mount @reboot` (systemd's way to deny both) is refused rather than
    /// read as "allow only @reboot".
    static func systemCallFilter(_ words: [String]) throws(XinetdValueError) -> Sandbox.SystemCallFilter {
        guard !words.isEmpty else { throw XinetdValueError("system_call_filter needs system calls or @sets") }
        var allowed: [String] = []
        var denied: [String] = []
        for word in words {
            let isDenied = word.hasPrefix("~")
            let name = isDenied ? String(word.dropFirst()) : word
            guard !name.isEmpty else { throw XinetdValueError("system_call_filter: ~ needs a name after it") }
            guard SyscallSets.expand(name) != nil else {
                if name.hasPrefix("@") {
                    throw XinetdValueError(
                        "unknown system call set \(name) (known: \(SyscallSets.names.joined(separator: " ")))")
                }
                throw XinetdValueError("unknown system call \(name) (not a system call on x86_64 or aarch64)")
            }
            if isDenied {
                if SeccompFilter.requiredAfterLoad.contains(name) {
                    throw XinetdValueError(
                        "system_call_filter cannot deny \(name): swinetd loads the filter before it executes the program")
                }
                denied.append(name)
            } else {
                guard denied.isEmpty else {
                    throw XinetdValueError(
                        "system_call_filter: \(name) follows a ~ name; write ~ before each name to deny "
                            + "(~\(name)) and put the names to allow first")
                }
                allowed.append(name)
            }
        }
        return Sandbox.SystemCallFilter(allowed: allowed.isEmpty ? nil : allowed, denied: denied)
    }

    /// Bytes with an optional K, M, G or T suffix (powers of 1024), or `infinity`.
    static func size(_ value: String, attribute: String) throws(XinetdValueError) -> UInt64 {
        if value == "infinity" { return UInt64.max }
        var digits = Substring(value)
        var shift: UInt64 = 0
        switch value.last {
        case "k", "K": shift = 10
        case "m", "M": shift = 20
        case "g", "G": shift = 30
        case "t", "T": shift = 40
        default: break
        }
        if shift != 0 { digits = digits.dropLast() }
        guard let number = ConfigText.decimal(digits), number > 0,
            case let (product, overflow) = UInt64(number).multipliedReportingOverflow(by: 1 << shift), !overflow
        else {
            throw XinetdValueError("\(attribute) must be a size above 0 with an optional K, M, G or T suffix, or infinity, found \(value)")
        }
        return product
    }

    /// A count of at least 1, or `infinity`.
    static func count(_ value: String, attribute: String) throws(XinetdValueError) -> UInt64 {
        if value == "infinity" { return UInt64.max }
        guard let number = ConfigText.decimal(Substring(value)), number > 0 else {
            throw XinetdValueError("\(attribute) must be a number of at least 1 or infinity, found \(value)")
        }
        return UInt64(number)
    }
}

/// What the host must offer for a sandbox, checked when the configuration is loaded (so that
/// `swinetd check` reports it with file:line, and the daemon refuses the service rather than run it
/// with less than was asked for).
enum SandboxCheck {
    struct Problem: Equatable {
        /// The attribute to blame (its line, in xinetd files).
        var attribute: String
        var message: String
        var isError = true
    }

    static func problems(_ sandbox: Sandbox, credentials: Credentials, options: LoadOptions) -> [Problem] {
        var problems: [Problem] = []
        func error(_ attribute: String, _ message: String) {
            problems.append(Problem(attribute: attribute, message: message))
        }
        let root = sandbox.chroot ?? ""
        if let chroot = sandbox.chroot, let problem = directoryProblem(chroot) {
            error("chroot", "chroot \(chroot) \(problem)")
        }
        if let directory = sandbox.workingDirectory, sandbox.chroot == nil || directoryProblem(root) == nil,
            let problem = directoryProblem(root + directory)
        {
            let shown = sandbox.chroot == nil ? directory : "\(directory) (\(root + directory) outside the chroot)"
            error("working_directory", "working_directory \(shown) \(problem)")
        }
        for written in sandbox.readWritePaths where !written.hasPrefix("-") {
            if let problem = pathProblem(root + written) {
                error("read_write_paths", "read_write_paths: \(root + written) \(problem) (write -\(written) to skip it when missing)")
            }
        }
        if !sandbox.readWritePaths.isEmpty, sandbox.protectSystem == .no {
            problems.append(
                Problem(
                    attribute: "read_write_paths",
                    message: "read_write_paths has no effect without protect_system", isError: false))
        }
        if sandbox.privateTmp, let problem = directoryProblem(root + "/tmp") {
            error("private_tmp", "private_tmp: \(root)/tmp \(problem)")
        }
        if sandbox.protectSystem != .no, !mountSetattrAvailable {
            error("protect_system", "protect_system needs mount_setattr(2), Linux 5.12 or later")
        }
        if options.daemonUID != 0 {
            let needsRoot: [(String, Bool)] = [
                ("chroot", sandbox.chroot != nil),
                ("private_tmp", sandbox.privateTmp),
                ("protect_system", sandbox.protectSystem != .no),
                ("private_network", sandbox.privateNetwork),
                ("capabilities", sandbox.capabilities != nil),
                ("memory_max", sandbox.memoryMax != nil),
                ("tasks_max", sandbox.tasksMax != nil),
            ]
            for (attribute, used) in needsRoot where used {
                let preset = sandbox.hardened ? " (set by hardened)" : ""
                error(attribute, "\(attribute)\(preset) needs swinetd to run as root")
            }
        }
        if let capabilities = sandbox.capabilities, let daemonSet = Capabilities.daemonBoundingSet {
            let missing = capabilities.bits & ~daemonSet
            if missing != 0 {
                error(
                    "capabilities",
                    "capabilities: \(Sandbox.CapabilitySet(bits: missing)) not in swinetd's own bounding set, "
                        + "so no child can have it")
            }
        }
        if sandbox.needsCgroup {
            var controllers: [String] = []
            if sandbox.memoryMax != nil { controllers.append("memory") }
            if sandbox.tasksMax != nil { controllers.append("pids") }
            if let problem = CgroupTree.problem(controllers: controllers, root: options.cgroupRoot) {
                error(sandbox.memoryMax != nil ? "memory_max" : "tasks_max", problem)
            }
        }
        return problems
    }

    /// nil when `path` is a directory, else why not.
    static func directoryProblem(_ path: String) -> String? {
        var status = stat()
        guard stat(path, &status) == 0 else { return statProblem(errno) }
        return status.st_mode & S_IFMT == S_IFDIR ? nil : "is not a directory"
    }

    static func pathProblem(_ path: String) -> String? {
        var status = stat()
        return stat(path, &status) == 0 ? nil : statProblem(errno)
    }

    private static func statProblem(_ code: Int32) -> String {
        code == ENOENT ? "does not exist" : "cannot be used: " + errnoDescription(code)
    }

    static let mountSetattrAvailable = sw_mount_setattr_available() != 0
}

extension Sandbox {
    /// The attributes that reproduce this sandbox when read back: `hardened` (when it was used) and
    /// every attribute whose value differs from what the preset, or no sandbox at all, gives. Values
    /// are words (xinetd joins them with spaces, inetd.conf with `:`); a yes/no attribute has
    /// `yes` or `no`. Used by `swinetd convert`.
    func attributes(runsAsRoot: Bool) -> [(name: String, values: [String])] {
        let base = hardened ? Sandbox.hardenedPreset(runsAsRoot: runsAsRoot) : Sandbox()
        var result: [(name: String, values: [String])] = []
        func yesNo(_ value: Bool) -> [String] { [value ? "yes" : "no"] }
        func amount(_ value: UInt64) -> String { value == UInt64.max ? "infinity" : String(value) }
        if hardened { result.append(("hardened", ["yes"])) }
        if let chroot { result.append(("chroot", [chroot])) }
        if let workingDirectory { result.append(("working_directory", [workingDirectory])) }
        if noNewPrivileges != base.noNewPrivileges { result.append(("no_new_privileges", yesNo(noNewPrivileges))) }
        if capabilities != base.capabilities {
            // nil after a preset's `none` cannot be written back; the preset only sets it for non-root.
            if let capabilities {
                result.append(("capabilities", capabilities.bits == 0 ? ["none"] : capabilities.numbers.map {
                    Capabilities.name(of: $0) ?? String($0)
                }))
            }
        }
        if privateTmp != base.privateTmp { result.append(("private_tmp", yesNo(privateTmp))) }
        if protectSystem != base.protectSystem { result.append(("protect_system", [protectSystem.rawValue])) }
        if !readWritePaths.isEmpty { result.append(("read_write_paths", readWritePaths)) }
        if privateNetwork != base.privateNetwork { result.append(("private_network", yesNo(privateNetwork))) }
        if systemCallFilter != base.systemCallFilter, let filter = systemCallFilter {
            result.append(("system_call_filter", (filter.allowed ?? []) + filter.denied.map { "~" + $0 }))
        }
        if nativeArchitectureOnly, !base.nativeArchitectureOnly, systemCallFilter == nil {
            result.append(("system_call_architectures", ["native"]))
        }
        if let memoryMax { result.append(("memory_max", [amount(memoryMax)])) }
        if let tasksMax { result.append(("tasks_max", [amount(tasksMax)])) }
        return result
    }
}
