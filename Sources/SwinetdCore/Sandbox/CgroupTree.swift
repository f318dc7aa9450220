#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The cgroup v2 tree for `memory_max` and `tasks_max`: one cgroup per service, at
/// `<cgroup2 mount>/swinetd/<service id>`, a sibling of systemd's slices rather than a child of
/// swinetd's own cgroup. Under its own cgroup swinetd would have to move itself into a leaf first
/// (cgroup v2 lets only a cgroup without processes hand controllers to its children); a top-level
/// subtree needs nothing moved and works the same with or without systemd.
///
/// The limits hold for the service as a whole: every child of the service is in its cgroup.
enum CgroupTree {
    /// The directory under the cgroup2 mount that holds the service cgroups.
    static let subtree = "swinetd"

    /// The cgroup2 mount point from /proc/self/mountinfo: /sys/fs/cgroup on a unified host,
    /// /sys/fs/cgroup/unified on a hybrid one; nil when there is none.
    static func mountPoint() -> String? {
        guard let text = ProcText.contents(of: "/proc/self/mountinfo") else { return nil }
        var found: [String] = []
        for line in text.split(separator: "\n") {
            // id parent major:minor root mount-point options [optional...] - fstype source super-options
            let fields = line.split(separator: " ")
            guard let dash = fields.firstIndex(of: "-"), dash + 1 < fields.count, fields[dash + 1] == "cgroup2",
                fields.count > 4
            else { continue }
            found.append(unescapeMountinfo(String(fields[4])))
        }
        return found.first { $0 == "/sys/fs/cgroup" } ?? found.first
    }

    /// mountinfo writes space, tab, newline and backslash as \ooo.
    private static func unescapeMountinfo(_ text: String) -> String {
        var bytes: [UInt8] = []
        var utf8 = Array(text.utf8)[...]
        while let byte = utf8.first {
            if byte == UInt8(ascii: "\\"), utf8.count >= 4,
                let value = UInt8(String(decoding: utf8.dropFirst().prefix(3), as: UTF8.self), radix: 8)
            {
                bytes.append(value)
                utf8 = utf8.dropFirst(4)
            } else {
                bytes.append(byte)
                utf8 = utf8.dropFirst()
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Why the service cannot get `controllers` (memory, pids), or nil when it can. `root` replaces
    /// the detected mount (tests).
    static func problem(controllers: [String], root: String? = nil) -> String? {
        let attribute = controllers.contains("memory") ? "memory_max" : "tasks_max"
        guard let mount = root ?? mountPoint() else {
            return "\(attribute) needs a cgroup v2 tree, and no cgroup2 file system is mounted; the service is not started"
        }
        guard let available = ProcText.contents(of: mount + "/cgroup.controllers") else {
            return "\(attribute) needs a cgroup v2 tree: cannot read \(mount)/cgroup.controllers; the service is not started"
        }
        let offered = Set(available.split(whereSeparator: { $0 == " " || $0 == "\n" }).map(String.init))
        let missing = controllers.filter { !offered.contains($0) }
        if !missing.isEmpty {
            let list = offered.isEmpty ? "none" : offered.sorted().joined(separator: " ")
            return "\(attribute) needs the cgroup v2 \(missing.joined(separator: " and ")) controller, which \(mount) "
                + "does not offer (it offers: \(list); on a hybrid host the controller belongs to a cgroup v1 "
                + "hierarchy); the service is not started"
        }
        if access(mount + "/cgroup.subtree_control", W_OK) != 0 {
            return "\(attribute) needs a writable cgroup v2 tree, and \(mount) is not writable "
                + "(\(errnoDescription(errno)); under systemd: ProtectControlGroups=no); the service is not started"
        }
        return nil
    }

    /// A directory name for a service id: letters, digits, `_` and `-` as they are, every other
    /// byte as `.xx` (hex), so that `/run/foo.sock` cannot climb the tree and names stay distinct.
    static func directoryName(for id: String) -> String {
        var name = ""
        for byte in id.utf8 {
            let isPlain =
                (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
                || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "-")
            if isPlain {
                name.unicodeScalars.append(Unicode.Scalar(byte))
            } else {
                let hex = String(byte, radix: 16)
                name += "." + (hex.count == 1 ? "0" + hex : hex)
            }
        }
        return name.isEmpty ? ".empty" : name
    }

    struct SetupError: Error, CustomStringConvertible {
        var description: String
    }

    /// Creates (or updates) the service's cgroup with its limits and opens its cgroup.procs for
    /// writing; the child joins by writing "0" to that descriptor. Returns the descriptor (O_CLOEXEC).
    static func prepare(serviceID: String, memoryMax: UInt64?, tasksMax: UInt64?, root: String?) throws(SetupError)
        -> Int32
    {
        var controllers: [String] = []
        if memoryMax != nil { controllers.append("memory") }
        if tasksMax != nil { controllers.append("pids") }
        if let problem = problem(controllers: controllers, root: root) { throw SetupError(description: problem) }
        let mount = root ?? mountPoint() ?? "/sys/fs/cgroup"
        let enable = controllers.map { "+" + $0 }.joined(separator: " ")
        let base = mount + "/" + subtree
        let directory = base + "/" + directoryName(for: serviceID)
        try enableControllers(enable, in: mount, wanted: controllers)
        try makeDirectory(base)
        try enableControllers(enable, in: base, wanted: controllers)
        try makeDirectory(directory)
        if memoryMax != nil || FileManagerLite.exists(directory + "/memory.max") {
            try write(limit(memoryMax), to: directory + "/memory.max")
        }
        if tasksMax != nil || FileManagerLite.exists(directory + "/pids.max") {
            try write(limit(tasksMax), to: directory + "/pids.max")
        }
        let fd = open(directory + "/cgroup.procs", O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw SetupError(description: "cannot open \(directory)/cgroup.procs: \(errnoDescription(errno))")
        }
        return fd
    }

    private static func limit(_ value: UInt64?) -> String {
        guard let value, value != UInt64.max else { return "max" }
        return String(value)
    }

    private static func enableControllers(_ enable: String, in directory: String, wanted: [String])
        throws(SetupError)
    {
        let current = ProcText.contents(of: directory + "/cgroup.subtree_control") ?? ""
        let enabled = Set(current.split(whereSeparator: { $0 == " " || $0 == "\n" }).map(String.init))
        guard !wanted.allSatisfy(enabled.contains) else { return }
        try write(enable, to: directory + "/cgroup.subtree_control")
    }

    private static func makeDirectory(_ path: String) throws(SetupError) {
        guard mkdir(path, 0o755) == 0 || errno == EEXIST else {
            throw SetupError(description: "cannot create cgroup \(path): \(errnoDescription(errno))")
        }
    }

    private static func write(_ text: String, to path: String) throws(SetupError) {
        let fd = open(path, O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { throw SetupError(description: "cannot open \(path): \(errnoDescription(errno))") }
        defer { close(fd) }
        let bytes = Array(text.utf8)
        let written = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        guard written == bytes.count else {
            throw SetupError(description: "cannot write \(text) to \(path): \(errnoDescription(errno))")
        }
    }
}

/// `stat` without Foundation.
enum FileManagerLite {
    static func exists(_ path: String) -> Bool {
        var status = stat()
        return stat(path, &status) == 0
    }
}
