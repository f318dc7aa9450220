import CSwinetd

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The C arrays a spawn needs, built once per configuration load so the accept → spawn path only
/// adds the per-connection environment.
final class SpawnPlan {
    private let path: UnsafeMutablePointer<CChar>
    private let argv: [UnsafeMutablePointer<CChar>?]
    private let baseEnvironment: [UnsafeMutablePointer<CChar>]
    private let groups: [gid_t]
    private let credentials: Credentials
    /// Signals not at their default disposition in the daemon; the child resets these.
    private let signalsToReset: UInt64
    private let setup: ChildSetup
    private let rlimits: [sw_rlimit]
    /// chroot and working directory (sandbox attributes), as C strings; nil: none and `/`.
    private let chrootDirectory: UnsafeMutablePointer<CChar>?
    private let workingDirectory: UnsafeMutablePointer<CChar>?
    /// nil: no sandbox steps at all (the plain spawn path).
    let sandbox: SandboxPlan?
    /// The nice the child gives its new session's autogroup (Autogroup); nil: none written.
    private let sessionNice: Int32?

    /// Whether the child's steps before `execve` are only the quick ones (no sandbox, chroot or
    /// working directory, which touch file systems and namespaces): the reactor may then start it
    /// itself when idle (ServiceRuntime.spawnConnection).
    var startsQuickly: Bool { sandbox == nil && chrootDirectory == nil && workingDirectory == nil }

    /// Variables the dynamic loader and libc act on (glibc's list for set-uid programs): never
    /// passed on from swinetd's own environment with `-E`, since the child may run as another
    /// user. `env`/`passenv` lines can still set them on purpose.
    static let loaderVariables: Set<String> = [
        "GCONV_PATH", "GETCONF_DIR", "HOSTALIASES", "LOCALDOMAIN", "LOCPATH", "MALLOC_TRACE", "NIS_PATH",
        "NLSPATH", "RESOLV_HOST_CONF", "RES_OPTIONS", "TMPDIR", "TZDIR", "IFS", "ENV", "BASH_ENV",
    ]

    static func isSafeToKeep(_ entry: String) -> Bool {
        let name = String(entry.prefix { $0 != "=" })
        return !name.hasPrefix("LD_") && !name.hasPrefix("MALLOC_") && !loaderVariables.contains(name)
    }

    /// The PATH a child gets when the daemon's environment is not kept.
    static let standardPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

    /// - Parameters:
    ///   - baseEnvironment: the daemon-wide part (clean PATH, or the daemon's own with `-E`).
    ///   - daemonEnvironment: swinetd's own environment, the source of `passenv` names.
    ///   - sandbox: the service's sandbox; `serviceID` names its cgroup, under `cgroupRoot` when given.
    ///   - sessionNice: the nice of the child's session group (Autogroup.sessionNice).
    init(
        path: String, arguments: [String], credentials: Credentials, setup: ChildSetup,
        baseEnvironment: [String], daemonEnvironment: [String: String], signalsToReset: UInt64,
        sandbox: Sandbox = Sandbox(), serviceID: String = "", cgroupRoot: String? = nil, sessionNice: Int32? = nil
    ) {
        self.signalsToReset = signalsToReset
        self.sessionNice = sessionNice
        self.path = strdup(path)
        self.argv = arguments.map { strdup($0) } + [nil]
        self.baseEnvironment = Self.environment(base: baseEnvironment, setup: setup, daemon: daemonEnvironment)
            .map { strdup($0) }
        self.groups = credentials.groups.map { gid_t($0) }
        self.credentials = credentials
        self.setup = setup
        self.rlimits = setup.rlimits.map { limit in
            sw_rlimit(resource: Self.resourceNumber(limit.kind), soft: limit.soft, hard: limit.hard)
        }
        self.chrootDirectory = sandbox.chroot.map { strdup($0) }
        self.workingDirectory = sandbox.workingDirectory.map { strdup($0) }
        let needsShimSteps = sandbox.needsMountNamespace || sandbox.privateNetwork || sandbox.capabilities != nil
            || sandbox.noNewPrivileges || sandbox.usesSeccomp || sandbox.needsCgroup
        self.sandbox =
            needsShimSteps
            ? SandboxPlan(sandbox: sandbox, credentials: credentials, serviceID: serviceID, cgroupRoot: cgroupRoot)
            : nil
    }

    /// base, then passenv names from the daemon, then `env` entries; a later entry of the same
    /// name replaces an earlier one.
    static func environment(base: [String], setup: ChildSetup, daemon: [String: String]) -> [String] {
        var entries = base
        func put(_ entry: String) {
            let name = entry.prefix { $0 != "=" }
            entries.removeAll { $0.prefix { $0 != "=" } == name }
            entries.append(entry)
        }
        for name in setup.passEnvironment {
            if let value = daemon[name] { put("\(name)=\(value)") }
        }
        for entry in setup.environment { put(entry) }
        return entries
    }

    private static func resourceNumber(_ kind: ResourceLimit.Kind) -> Int32 {
        switch kind {
        case .addressSpace: Int32(RLIMIT_AS.rawValue)
        case .cpu: Int32(RLIMIT_CPU.rawValue)
        case .data: Int32(RLIMIT_DATA.rawValue)
        case .rss: 5  // RLIMIT_RSS: Glibc exports it under __RLIMIT_RSS only
        case .stack: Int32(RLIMIT_STACK.rawValue)
        case .files: Int32(RLIMIT_NOFILE.rawValue)
        }
    }

    deinit {
        free(chrootDirectory)
        free(workingDirectory)
        free(path)
        for pointer in argv { free(pointer) }
        for pointer in baseEnvironment { free(pointer) }
    }

    /// Why a spawn failed: the errno and the step of the child setup that failed.
    struct Failure: Error, CustomStringConvertible {
        var errno: Int32
        var step: String
        /// A child exists (and must be reaped) when it failed after clone.
        var child: SpawnedChild?

        /// errno 0: `step` is the whole explanation (a sandbox that could not be set up at load).
        var description: String { errno == 0 ? step : "\(step): \(errnoDescription(errno))" }
    }

    /// Starts the program with `fd` as fds 0, 1 and 2 (and `extraFDs` from 3 on), adding `environment`.
    /// `childPIDVariable` (LISTEN_PID) is added with the child's own pid as its value, written by
    /// the child itself just before execve.
    func spawn(fd: Int32, extraFDs: [Int32] = [], environment: ChildEnvironment, childPIDVariable: String? = nil)
        -> Result<SpawnedChild, Failure>
    {
        // Never run a sandboxed service without its sandbox.
        if let problem = sandbox?.setupProblem { return .failure(Failure(errno: 0, step: problem, child: nil)) }
        var pidEntry: UnsafeMutablePointer<CChar>? = nil
        var pidValue: UnsafeMutablePointer<CChar>? = nil
        if let name = childPIDVariable {
            // Room for 20 digits and the NUL, filled by the child.
            pidEntry = strdup(name + "=" + String(repeating: "0", count: 20))!
            pidValue = pidEntry! + name.utf8.count + 1
        }
        defer { free(pidEntry) }
        return environment.withEntryPointers { connectionEnvironment in
            let total = baseEnvironment.count + connectionEnvironment.count + 2
            return withUnsafeTemporaryAllocation(of: UnsafeMutablePointer<CChar>?.self, capacity: total) { envp in
                var index = 0
                for entry in baseEnvironment {
                    envp[index] = entry
                    index += 1
                }
                for entry in connectionEnvironment {
                    envp[index] = entry
                    index += 1
                }
                if let pidEntry {
                    envp[index] = pidEntry
                    index += 1
                }
                envp[index] = nil
                return spawn(fd: fd, extraFDs: extraFDs, envp: UnsafeBufferPointer(envp), pidValue: pidValue)
            }
        }
    }

    private func spawn(
        fd: Int32, extraFDs: [Int32], envp: UnsafeBufferPointer<UnsafeMutablePointer<CChar>?>,
        pidValue: UnsafeMutablePointer<CChar>?
    ) -> Result<SpawnedChild, Failure> {
        var pid: pid_t = 0
        var pidfd: Int32 = -1
        var step: UnsafePointer<CChar>? = nil
        let result: Int32 = argv.withUnsafeBufferPointer { argvBuffer in
            groups.withUnsafeBufferPointer { groupBuffer in
                extraFDs.withUnsafeBufferPointer { extraBuffer in
                    rlimits.withUnsafeBufferPointer { limitBuffer in
                        var attr = sw_spawn_attr()
                        attr.path = UnsafePointer(path)
                        attr.argv = argvBuffer.baseAddress
                        attr.envp = UnsafePointer(envp.baseAddress)
                        attr.fd0 = fd
                        attr.fd1 = fd
                        attr.fd2 = fd
                        attr.extra_fds = extraBuffer.baseAddress
                        attr.n_extra_fds = Int32(extraFDs.count)
                        attr.set_ids = credentials.changeIdentity ? 1 : 0
                        attr.uid = uid_t(credentials.uid)
                        attr.gid = gid_t(credentials.gid)
                        attr.groups = groupBuffer.baseAddress
                        attr.n_groups = Int32(groupBuffer.count)
                        attr.umask = setup.umask
                        attr.set_nice = setup.nice == nil ? 0 : 1
                        attr.nice = setup.nice ?? 0
                        attr.rlimits = limitBuffer.baseAddress
                        attr.n_rlimits = Int32(limitBuffer.count)
                        attr.new_session = 1
                        if let sessionNice {
                            attr.set_autogroup_nice = 1
                            attr.autogroup_nice = sessionNice
                        }
                        attr.reset_signals = signalsToReset
                        attr.chroot_dir = UnsafePointer(chrootDirectory)
                        attr.cwd = UnsafePointer(workingDirectory)
                        attr.sandbox = UnsafePointer(sandbox?.pointer)
                        attr.pid_env_value = pidValue
                        return sw_spawn(&attr, &pid, &pidfd, &step)
                    }
                }
            }
        }
        if result == 0 { return .success(SpawnedChild(pid: pid, pidfd: pidfd)) }
        let stepName = step.map { String(cString: $0) } ?? "spawn"
        return .failure(Failure(errno: result, step: stepName, child: pid > 0 ? SpawnedChild(pid: pid, pidfd: pidfd) : nil))
    }
}

/// A process the spawn shim started: its pid and, on kernels that give one, its pidfd, through
/// which the reactor reaps exactly this child (`-1`: reaped by waitpid on SIGCHLD instead).
struct SpawnedChild: Sendable {
    var pid: pid_t
    var pidfd: Int32
}

/// One spawn handed to a worker thread. The plan is immutable after init and the fd and the
/// environment belong to the job, so crossing threads is safe.
struct SpawnJob: @unchecked Sendable {
    let plan: SpawnPlan
    let fd: Int32
    let environment: ChildEnvironment
}
