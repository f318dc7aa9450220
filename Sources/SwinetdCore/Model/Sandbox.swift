/// The per-service sandbox: what systemd.exec gives a unit, applied by the spawn shim between clone
/// and execve (docs/SANDBOX.md). Every field is opt-in; `Sandbox()` changes nothing, and a service
/// with an empty sandbox spawns exactly as before.
public struct Sandbox: Hashable, Sendable {
    /// `protect_system`: which parts of the tree the child sees read-only.
    public enum ProtectSystem: String, Hashable, Sendable, CaseIterable {
        case no
        /// /usr, /boot and /efi.
        case yes
        /// As `yes`, plus /etc.
        case full
        /// The whole tree except /dev, /proc and /sys (and `read_write_paths`).
        case strict

        /// The paths made read-only, in the order they are mounted. `strict` is the root itself.
        public var readOnlyPaths: [String] {
            switch self {
            case .no: []
            case .yes: ["/usr", "/boot", "/efi"]
            case .full: ["/usr", "/boot", "/efi", "/etc"]
            case .strict: ["/"]
            }
        }
    }

    /// `system_call_filter`: an allow list and/or a deny list of names and `@sets`, as written.
    public struct SystemCallFilter: Hashable, Sendable {
        /// nil: every call not denied is allowed. Otherwise only these (plus `@default`) are.
        public var allowed: [String]?
        /// Denied even when an allowed set contains them.
        public var denied: [String]

        public init(allowed: [String]? = nil, denied: [String] = []) {
            self.allowed = allowed
            self.denied = denied
        }
    }

    /// Capabilities by number (bit n: capability n), for the bounding and ambient sets.
    public struct CapabilitySet: Hashable, Sendable, CustomStringConvertible {
        public var bits: UInt64

        public init(bits: UInt64) { self.bits = bits }

        public static let none = CapabilitySet(bits: 0)

        public func contains(_ capability: Int) -> Bool { bits & (1 << UInt64(capability)) != 0 }

        public var numbers: [Int] { (0..<64).filter(contains) }

        /// `CAP_NET_BIND_SERVICE CAP_SETUID`, or `none`.
        public var description: String {
            bits == 0 ? "none" : numbers.map { Capabilities.name(of: $0) ?? "cap_\($0)" }.joined(separator: " ")
        }
    }

    /// Change root to this directory before running the program (`chroot`).
    public var chroot: String?
    /// The working directory, inside the chroot when there is one (`working_directory`). nil: `/`.
    public var workingDirectory: String?
    /// PR_SET_NO_NEW_PRIVS: setuid binaries and file capabilities no longer raise privileges.
    public var noNewPrivileges = false
    /// The bounding and ambient set of the child; nil: left as it is (root keeps everything).
    public var capabilities: CapabilitySet?
    /// A fresh, empty tmpfs on /tmp and /var/tmp for each child.
    public var privateTmp = false
    public var protectSystem = ProtectSystem.no
    /// Paths that stay writable under `protect_system`. A leading `-` means: skip when missing.
    public var readWritePaths: [String] = []
    /// A new network namespace with only loopback, brought up.
    public var privateNetwork = false
    public var systemCallFilter: SystemCallFilter?
    /// `system_call_architectures = native`: calls of any other ABI (i386, x32) kill the process.
    public var nativeArchitectureOnly = false
    /// cgroup v2 `memory.max` and `pids.max` of the service's cgroup, in bytes and tasks.
    public var memoryMax: UInt64?
    public var tasksMax: UInt64?
    /// Whether the `hardened` preset was asked for (its settings are already in the fields above).
    public var hardened = false

    public init() {}

    /// True when the sandbox changes nothing about the spawn.
    public var isEmpty: Bool {
        var plain = self
        plain.hardened = false
        return plain == Sandbox()
    }

    /// Whether the child needs its own mount namespace.
    public var needsMountNamespace: Bool { privateTmp || protectSystem != .no }

    /// Whether the service needs a cgroup of its own.
    public var needsCgroup: Bool { memoryMax != nil || tasksMax != nil }

    /// Whether seccomp is involved (a filter, or only the architecture check).
    public var usesSeccomp: Bool { systemCallFilter != nil || nativeArchitectureOnly }

    /// The `hardened` preset, exactly (docs/SANDBOX.md): no_new_privileges, private_tmp,
    /// protect_system = full, system_call_architectures = native, a deny list of the calls no
    /// network service needs, and — for a service that does not run as root — an empty capability
    /// bounding set. Attributes written next to `hardened` replace the preset's value for that
    /// attribute.
    public static func hardenedPreset(runsAsRoot: Bool) -> Sandbox {
        var sandbox = Sandbox()
        sandbox.hardened = true
        sandbox.noNewPrivileges = true
        sandbox.privateTmp = true
        sandbox.protectSystem = .full
        sandbox.nativeArchitectureOnly = true
        sandbox.systemCallFilter = SystemCallFilter(allowed: nil, denied: hardenedDenyList)
        if !runsAsRoot { sandbox.capabilities = CapabilitySet.none }
        return sandbox
    }

    /// The deny list of the `hardened` preset.
    public static let hardenedDenyList = [
        "@mount", "@reboot", "@swap", "@module", "@raw-io", "@clock", "@debug", "@obsolete", "@cpu-emulation",
    ]

    /// One line for logs and `swinetd check`: the settings that are on.
    public var summary: String {
        var parts: [String] = []
        if hardened { parts.append("hardened") }
        if let chroot { parts.append("chroot=\(chroot)") }
        if let workingDirectory { parts.append("working_directory=\(workingDirectory)") }
        if noNewPrivileges { parts.append("no_new_privileges") }
        if let capabilities { parts.append("capabilities=\(capabilities)") }
        if privateTmp { parts.append("private_tmp") }
        if protectSystem != .no { parts.append("protect_system=\(protectSystem.rawValue)") }
        if !readWritePaths.isEmpty { parts.append("read_write_paths=\(readWritePaths.joined(separator: ":"))") }
        if privateNetwork { parts.append("private_network") }
        if let filter = systemCallFilter {
            let words = (filter.allowed ?? []) + filter.denied.map { "~" + $0 }
            parts.append("system_call_filter=\(words.joined(separator: ":"))")
        }
        if nativeArchitectureOnly { parts.append("system_call_architectures=native") }
        if let memoryMax { parts.append("memory_max=\(memoryMax)") }
        if let tasksMax { parts.append("tasks_max=\(tasksMax)") }
        return parts.joined(separator: " ")
    }
}
