import Glibc

/// Settings that shape how configuration is read.
public struct LoadOptions: Sendable {
    public var defaultBacklog: Int32 = 128
    public var servicesFile: String = "/etc/services"
    /// Who swinetd runs as; when not root, every service runs as this user.
    public var daemonUID: UInt32 = geteuid()
    public var daemonGID: UInt32 = getegid()
    /// Refuse entries whose external program is missing or not executable.
    public var checkPrograms: Bool = true
    /// Apply /etc/hosts.allow and /etc/hosts.deny to classic inetd.conf services too (`--libwrap`).
    public var libwrapClassic: Bool = false
    /// The cgroup v2 directory that `memory_max` / `tasks_max` use; nil: the cgroup2 mount found in
    /// /proc/self/mountinfo. Set by tests.
    public var cgroupRoot: String?

    public init() {}

    /// The daemon's own identity, for services that cannot or need not switch user.
    var daemonCredentials: Credentials {
        let name = UserDatabase.user(id: daemonUID)?.name ?? String(daemonUID)
        return Credentials(user: name, uid: daemonUID, gid: daemonGID, groups: [], changeIdentity: false)
    }
}

/// Loads inetd.conf and xinetd.conf files and directories into one configuration.
public enum ConfigLoader {
    /// Default when no -f is given: /etc/inetd.conf, every file in /etc/inetd.d, then /etc/xinetd.conf
    /// (which usually includes /etc/xinetd.d). Any of them may be missing, but not all.
    public static let defaultPaths = ["/etc/inetd.conf", "/etc/inetd.d", "/etc/xinetd.conf"]

    /// Paths that may be missing without complaint: many systems have no /etc/inetd.d at all.
    private static let optionalPaths: Set<String> = ["/etc/inetd.d"]

    /// File names in a directory that are editor or package-manager leftovers, not configuration.
    private static let leftoverSuffixes = [
        "~", ".dpkg-old", ".dpkg-new", ".dpkg-dist", ".rpmsave", ".rpmnew", ".bak", ".swp",
    ]

    /// Loads files and directories in order; a directory contributes its regular files sorted by name
    /// (bytewise), skipping names starting with "." or ending in "~", ".dpkg-old", ".dpkg-new", ".dpkg-dist",
    /// ".rpmsave", ".rpmnew", ".bak", ".swp" — each skipped file gets a warning diagnostic naming it.
    /// A missing explicitly-named file is an error; a missing default directory is silently fine.
    /// Each file is read as xinetd.conf or inetd.conf by its first line (`ConfigFormat.detect`).
    /// Given exactly `defaultPaths`, behaves as `load(defaultPaths:options:)`.
    public static func load(paths: [String], options: LoadOptions) -> LoadedConfiguration {
        if paths == defaultPaths { return load(defaultPaths: paths, options: options) }
        let loader = FileLoader(options: options)
        var configuration = LoadedConfiguration()
        for path in paths { loader.load(path: path, into: &configuration) }
        loader.checkAcrossFiles(&configuration)
        return configuration
    }

    /// Loads the default locations: each may be missing (most systems have either inetd or xinetd files),
    /// but when none is there the result is an error, so that a daemon never runs empty by accident.
    public static func load(defaultPaths paths: [String], options: LoadOptions) -> LoadedConfiguration {
        let loader = FileLoader(options: options)
        var configuration = LoadedConfiguration()
        for path in paths {
            if case .failure(let failure) = ConfigFile.kind(of: path), failure.errno == ENOENT { continue }
            loader.load(path: path, into: &configuration)
        }
        if configuration.files.isEmpty && !configuration.hasErrors {
            configuration.diagnostics.append(
                Diagnostic(
                    .error, ConfigLocation(file: paths.first ?? "", line: 0),
                    "no configuration found (looked for \(paths.joined(separator: ", ")))"))
        }
        loader.checkAcrossFiles(&configuration)
        return configuration
    }

    /// Parses already-read bytes (used by tests and by load).
    public static func load(text: [UInt8], file: String, options: LoadOptions) -> LoadedConfiguration {
        let loader = FileLoader(options: options)
        var configuration = LoadedConfiguration()
        loader.parse(text, file: file, into: &configuration)
        loader.checkAcrossFiles(&configuration)
        return configuration
    }

    /// Reading and cross-file checking, sharing one services database per load.
    private struct FileLoader {
        let options: LoadOptions
        let servicesDatabase: ServicesDatabase
        /// xinetd ids already taken, across every xinetd file of this load (ids name services in logs and
        /// on reload, so they must be unique).
        private let xinetdIDs = IDRegistry()

        private final class IDRegistry {
            var owners: [String: ConfigLocation] = [:]
        }

        init(options: LoadOptions) {
            self.options = options
            self.servicesDatabase = ServicesDatabase.load(path: options.servicesFile)
        }

        /// Problems with a whole file are reported at line 0.
        private func fileDiagnostic(_ severity: Diagnostic.Severity, _ path: String, _ message: String) -> Diagnostic {
            Diagnostic(severity, ConfigLocation(file: path, line: 0), message)
        }

        private func cannotRead(_ path: String, _ failure: SystemError) -> Diagnostic {
            fileDiagnostic(.error, path, "cannot read \(path): \(errnoDescription(failure.errno))")
        }

        func load(path: String, into configuration: inout LoadedConfiguration) {
            switch ConfigFile.kind(of: path) {
            case .failure(let failure) where failure.errno == ENOENT && optionalPaths.contains(path):
                return
            case .failure(let failure):
                configuration.diagnostics.append(cannotRead(path, failure))
            case .success(.directory):
                loadDirectory(path, into: &configuration)
            case .success:
                loadFile(path, into: &configuration)
            }
        }

        private func loadFile(_ path: String, into configuration: inout LoadedConfiguration) {
            switch ConfigFile.read(path) {
            case .success(let bytes): parse(bytes, file: path, into: &configuration)
            case .failure(let failure):
                configuration.diagnostics.append(cannotRead(path, failure))
            }
        }

        private func loadDirectory(_ directory: String, into configuration: inout LoadedConfiguration) {
            let names: [[UInt8]]
            switch ConfigFile.names(in: directory) {
            case .success(let found): names = found.sorted { $0.lexicographicallyPrecedes($1) }
            case .failure(let failure):
                configuration.diagnostics.append(cannotRead(directory, failure))
                return
            }
            let prefix = directory.hasSuffix("/") ? directory : directory + "/"
            for nameBytes in names {
                let name = String(decoding: nameBytes, as: UTF8.self)
                let path = prefix + name
                if let reason = skipReason(name: name, bytes: nameBytes, path: path) {
                    configuration.diagnostics.append(fileDiagnostic(.warning, path, "skipped \(path): \(reason)"))
                } else {
                    loadFile(path, into: &configuration)
                }
            }
        }

        /// Why a directory entry is not read as configuration, or nil to read it.
        private func skipReason(name: String, bytes: [UInt8], path: String) -> String? {
            if name.hasPrefix(".") { return "hidden file" }
            if let suffix = leftoverSuffixes.first(where: name.hasSuffix) {
                return "name ends in \(suffix) (editor or package-manager leftover)"
            }
            if String(validating: bytes, as: UTF8.self) == nil { return "name is not valid UTF-8" }
            switch ConfigFile.kind(of: path) {
            case .success(.regular): return nil
            case .success: return "not a regular file"
            case .failure(let failure): return errnoDescription(failure.errno)
            }
        }

        func parse(_ bytes: [UInt8], file: String, into configuration: inout LoadedConfiguration) {
            if ConfigFormat.detect(bytes) == .xinetd {
                return parseXinetd(bytes, file: file, into: &configuration)
            }
            let parser = InetdConfParser(file: file, options: options, servicesDatabase: servicesDatabase)
            let (services, diagnostics) = parser.parse(bytes)
            configuration.files.append(file)
            configuration.services += services
            configuration.diagnostics += diagnostics
        }

        /// An xinetd tree: the file and everything it includes (those count as read files too).
        private func parseXinetd(_ bytes: [UInt8], file: String, into configuration: inout LoadedConfiguration) {
            let parser = XinetdConfParser(options: options, servicesDatabase: servicesDatabase)
            let result = parser.parse(bytes, file: file)
            configuration.files += result.files
            configuration.diagnostics += result.diagnostics
            for service in result.services {
                if let earlier = xinetdIDs.owners[service.id] {
                    configuration.diagnostics.append(
                        Diagnostic(
                            .error, service.location,
                            "service \(service.name): id \(service.id) is already used at \(earlier) "
                                + "(ids must be unique; set `id`)"))
                    continue
                }
                xinetdIDs.owners[service.id] = service.location
                configuration.services.append(service)
            }
        }

        /// Refuses entries that clash with an earlier one, and adds the tcpmux service that targets need.
        func checkAcrossFiles(_ configuration: inout LoadedConfiguration) {
            refuseRootServicesFromUnsafeFiles(&configuration)
            refuseClashes(in: &configuration, keys: \.tcpmuxNameKeys) { _, later, earlier in
                "tcpmux target \(later.name) has the same name as \(earlier.name) at \(earlier.location) "
                    + "(tcpmux names ignore case)"
            }
            addImplicitTCPMux(to: &configuration)
            refuseClashes(in: &configuration, keys: { $0.listeners.map(\.key) }) { key, later, earlier in
                "\(later.name): \(key.socketType.rawValue) \(key.address) is already used by \(earlier.name) "
                    + "at \(earlier.location)"
            }
            ListenerConflicts.refuseOverlaps(in: &configuration)
        }

        /// A file anyone can write decides what runs as root: warn about it, and refuse its
        /// services that would run as root (when swinetd is root; otherwise they run as swinetd).
        private func refuseRootServicesFromUnsafeFiles(_ configuration: inout LoadedConfiguration) {
            var reasons: [String: String?] = [:]
            func reason(_ file: String) -> String? {
                if let known = reasons[file] { return known }
                let found = ConfigFile.unsafeReason(file, daemonUID: options.daemonUID)
                reasons[file] = found
                if let found {
                    configuration.diagnostics.append(
                        Diagnostic(
                            .warning, ConfigLocation(file: file, line: 0),
                            "\(file) \(found): whoever can write it decides what swinetd runs; services in it that would run as root are refused"))
                }
                return found
            }
            configuration.services.removeAll { service in
                guard let why = reason(service.location.file), service.credentials.changeIdentity,
                    service.credentials.uid == 0
                else { return false }
                configuration.diagnostics.append(
                    Diagnostic(.error, service.location, "\(service.name): runs as root but its file \(why)"))
                return true
            }
        }

        /// Keeps the first service to claim each key; a later one claiming any taken key is refused.
        private func refuseClashes<Key: Hashable>(
            in configuration: inout LoadedConfiguration, keys: (Service) -> [Key],
            message: (_ key: Key, _ later: Service, _ earlier: Service) -> String
        ) {
            var owners: [Key: Service] = [:]
            var kept: [Service] = []
            for service in configuration.services {
                let serviceKeys = keys(service)
                if let taken = serviceKeys.first(where: { owners[$0] != nil }), let earlier = owners[taken] {
                    configuration.diagnostics.append(
                        Diagnostic(.error, service.location, message(taken, service, earlier)))
                    continue
                }
                for key in serviceKeys { owners[key] = service }
                kept.append(service)
            }
            configuration.services = kept
        }

        /// GNU inetd's rule: tcpmux targets imply the tcpmux service, on `*` as for `tcp`, as the daemon's user.
        private func addImplicitTCPMux(to configuration: inout LoadedConfiguration) {
            guard let firstTarget = configuration.services.first(where: { $0.tcpmux != nil }),
                !configuration.services.contains(where: { $0.builtin == .tcpmux })
            else { return }
            let port = servicesDatabase.port(named: "tcpmux", protocolName: "tcp") ?? Builtin.tcpmux.wellKnownPort
            let families = AddressFamilies.ipv4AndIPv6
            let proto = ProtocolSpec(transport: .tcp, families: families, backlog: options.defaultBacklog)
            let credentials = options.daemonCredentials
            configuration.services.append(
                Service(
                    name: "tcpmux", location: firstTarget.location, socketType: .stream, protocolName: "tcp",
                    listeners: proto.inetListeners(addresses: families.wildcard, port: port, socketType: .stream),
                    wait: false, credentials: credentials, program: .builtin(.tcpmux)))
            configuration.diagnostics.append(
                Diagnostic(
                    .warning, firstTarget.location,
                    "no tcpmux service configured for \(firstTarget.name): added "
                        + "`tcpmux stream tcp nowait \(credentials.user) internal` on port \(port)"))
        }
    }
}

extension Service {
    /// tcpmux names match case-insensitively, so they clash case-insensitively.
    fileprivate var tcpmuxNameKeys: [String] {
        guard case .target(let name, _) = tcpmux else { return [] }
        return [name.lowercased()]
    }
}

// MARK: - Files

/// File access for configuration, through plain system calls.
enum ConfigFile {
    enum Kind {
        case regular
        case directory
        case other
    }

    /// What `path` is, following symlinks.
    static func kind(of path: String) -> Result<Kind, SystemError> {
        var status = stat()
        guard stat(path, &status) == 0 else { return .failure(SystemError("stat")) }
        switch status.st_mode & S_IFMT {
        case S_IFREG: return .success(.regular)
        case S_IFDIR: return .success(.directory)
        default: return .success(.other)
        }
    }

    /// The whole file, however large. Only regular files: opening is non-blocking, so a FIFO
    /// planted as a configuration file is refused instead of hanging the daemon or `check`.
    static func read(_ path: String, maxSize: Int = .max) -> Result<[UInt8], SystemError> {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard descriptor >= 0 else { return .failure(SystemError("open")) }
        defer { close(descriptor) }
        var status = stat()
        guard fstat(descriptor, &status) == 0 else { return .failure(SystemError("fstat")) }
        guard status.st_mode & S_IFMT == S_IFREG else {
            return .failure(SystemError("open (not a regular file)", errno: EINVAL))
        }
        let tooLarge = SystemError("read (larger than \(maxSize) bytes)", errno: EFBIG)
        guard Int(status.st_size) <= maxSize else { return .failure(tooLarge) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = chunk.withUnsafeMutableBytes { Glibc.read(descriptor, $0.baseAddress, $0.count) }
            if count > 0 {
                bytes += chunk[..<count]
                if bytes.count > maxSize { return .failure(tooLarge) }
            } else if count == 0 {
                return .success(bytes)
            } else if errno != EINTR {
                return .failure(SystemError("read"))
            }
        }
    }

    /// Why a configuration file is not trustworthy, or nil: anyone may write it, or it belongs to
    /// someone other than root or swinetd's own user (xinetd warns about both).
    static func unsafeReason(_ path: String, daemonUID: UInt32) -> String? {
        var status = stat()
        guard stat(path, &status) == 0 else { return nil }
        if status.st_mode & S_IWOTH != 0 { return "is world-writable" }
        if status.st_uid != 0 && status.st_uid != daemonUID { return "is owned by uid \(status.st_uid), not root" }
        return nil
    }

    /// The name of a readdir record, read up to its NUL inside the record. Copying the `d_name`
    /// field would read 256 bytes, past the end of a short record at the end of glibc's buffer.
    static func direntName(_ entry: UnsafeMutablePointer<dirent>) -> [UInt8] {
        let offset = MemoryLayout<dirent>.offset(of: \dirent.d_name)!
        let start = (UnsafeRawPointer(entry) + offset).assumingMemoryBound(to: CChar.self)
        return Array(UnsafeRawBufferPointer(start: start, count: strlen(start)))
    }

    /// The entry names in a directory, as bytes, without `.` and `..`.
    static func names(in directory: String) -> Result<[[UInt8]], SystemError> {
        guard let stream = opendir(directory) else { return .failure(SystemError("opendir")) }
        defer { closedir(stream) }
        var names: [[UInt8]] = []
        while let entry = readdir(stream) {
            let name = direntName(entry)
            if name != [UInt8(ascii: ".")] && name != [UInt8(ascii: "."), UInt8(ascii: ".")] { names.append(name) }
        }
        return .success(names)
    }
}
