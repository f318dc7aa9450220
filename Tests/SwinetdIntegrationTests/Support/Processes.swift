import Foundation
import Glibc

/// A harness failure with a message that says what was expected and what was seen.
struct HarnessError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Where the binaries under test are: next to the test bundle (dirname of /proc/self/exe).
enum Binaries {
    static let directory: String = {
        if let override = ProcessInfo.processInfo.environment["SWINETD_BIN_DIR"] { return override }
        var buffer = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        let exe = n > 0 ? String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self) : ""
        return (exe as NSString).deletingLastPathComponent
    }()

    static var swinetd: String { directory + "/swinetd" }
    static var probe: String { outsideTemporaryDirectories.probe }

    /// Tests/helpers, found from this source file's location.
    static var helpers: String { outsideTemporaryDirectories.helpers }

    private static let sourceHelpers: String = {
        let here = #filePath  // .../Tests/SwinetdIntegrationTests/Support/Processes.swift
        let tests = ((here as NSString).deletingLastPathComponent as NSString).deletingLastPathComponent
        return ((tests as NSString).deletingLastPathComponent as NSString).appendingPathComponent("helpers")
    }()

    /// What children run must not live under /tmp or /var/tmp: a `private_tmp` sandbox mounts empty
    /// directories there, and CI may check the project out under /tmp. Then the probe and the
    /// helper scripts are copied once to /run/swinetd-tests-PID (removed at exit by nobody: /run
    /// is a tmpfs) and used from there.
    private static let outsideTemporaryDirectories: (probe: String, helpers: String) = {
        let builtProbe = directory + "/swinetd-probe"
        let underTemp = { (path: String) in path.hasPrefix("/tmp/") || path.hasPrefix("/var/tmp/") }
        guard underTemp(builtProbe) || underTemp(sourceHelpers) else { return (builtProbe, sourceHelpers) }
        let stable = "/run/swinetd-tests-\(getpid())"
        let files = FileManager.default
        try? files.removeItem(atPath: stable)
        do {
            try files.createDirectory(atPath: stable, withIntermediateDirectories: true)
            chmod(stable, 0o755)
            try files.copyItem(atPath: builtProbe, toPath: stable + "/swinetd-probe")
            try files.copyItem(atPath: sourceHelpers, toPath: stable + "/helpers")
            chmod(stable + "/helpers", 0o755)
            return (stable + "/swinetd-probe", stable + "/helpers")
        } catch {
            return (builtProbe, sourceHelpers)
        }
    }()
}

/// The decoded wait status of a process.
enum ExitStatus: Equatable, CustomStringConvertible {
    case exited(Int32)
    case signaled(Int32)

    init(raw: Int32) {
        if raw & 0x7f == 0 {
            self = .exited((raw >> 8) & 0xff)
        } else {
            self = .signaled(raw & 0x7f)
        }
    }

    var description: String {
        switch self {
        case .exited(let code): "exit \(code)"
        case .signaled(let signal): "signal \(signal)"
        }
    }
}

/// Starting and reaping processes with posix_spawn and waitpid (not Foundation.Process, which
/// reaps on its own and would race the harness's waitpid).
enum Processes {
    /// The environment a daemon gets unless a test says otherwise: TZ pinned so daytime can be
    /// compared, and a marker variable that must not leak into children.
    static let defaultEnvironment = [
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "TZ=UTC",
        "HOME=/root",
        "SWINETD_TEST_MARKER=must-not-leak",
    ] + sanitizerOptions

    /// ASAN_OPTIONS and friends of the test run, passed on to the daemons (Scripts/sanitizers.sh
    /// sets them; in an ordinary run there are none and nothing changes).
    static let sanitizerOptions: [String] = ["ASAN_OPTIONS", "TSAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"].compactMap { name in
        ProcessInfo.processInfo.environment[name].map { "\(name)=\($0)" }
    }

    private typealias AddCloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
    private static let addCloseFrom: AddCloseFrom? = dlsym(nil, "posix_spawn_file_actions_addclosefrom_np").map {
        unsafeBitCast($0, to: AddCloseFrom.self)
    }

    /// Starts `argv` with stdin on /dev/null and stdout/stderr appended to the given files.
    /// The child gets default signal dispositions and an empty mask unless `blockAllSignals`,
    /// and its own process group, so nothing the test runner does to its own group reaches it.
    static func spawn(
        _ argv: [String], environment: [String] = defaultEnvironment, stdout: String, stderr: String,
        blockAllSignals: Bool = false
    ) throws -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, stdout, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        if stderr == stdout {
            posix_spawn_file_actions_adddup2(&actions, 1, 2)
        } else {
            posix_spawn_file_actions_addopen(&actions, 2, stderr, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        }
        // Nothing else of the test runner: tests run in parallel, and a descriptor another test
        // has open without close-on-exec would otherwise land in this daemon (a pipe at fd 251
        // once pushed a daemon limited to 64 descriptors to 65 open ones).
        // (glibc 2.34's posix_spawn_file_actions_addclosefrom_np, which Swift's Glibc module does
        // not declare: looked up once.)
        if let closeFrom = Self.addCloseFrom { _ = closeFrom(&actions, 3) }

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var defaults = sigset_t()
        sigfillset(&defaults)
        sigdelset(&defaults, SIGKILL)
        sigdelset(&defaults, SIGSTOP)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        var mask = sigset_t()
        if blockAllSignals { sigfillset(&mask) } else { sigemptyset(&mask) }
        posix_spawnattr_setsigmask(&attributes, &mask)
        posix_spawnattr_setpgroup(&attributes, 0)
        let flags = POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETPGROUP
        posix_spawnattr_setflags(&attributes, Int16(flags))

        let cArgv: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
        let cEnv: [UnsafeMutablePointer<CChar>?] = environment.map { strdup($0) } + [nil]
        defer {
            for pointer in cArgv { free(pointer) }
            for pointer in cEnv { free(pointer) }
        }
        var pid: pid_t = 0
        let result = posix_spawn(&pid, argv[0], &actions, &attributes, cArgv, cEnv)
        guard result == 0 else {
            throw HarnessError("posix_spawn \(argv[0]): \(String(cString: strerror(result)))")
        }
        return pid
    }

    /// Waits for `pid` to exit, polling every 10 ms for at most `timeout` seconds.
    static func wait(_ pid: pid_t, timeout: Double) -> ExitStatus? {
        let deadline = Clock.now + timeout
        while true {
            var status: Int32 = 0
            let r = waitpid(pid, &status, WNOHANG)
            if r == pid { return ExitStatus(raw: status) }
            if r < 0 { return nil }
            if Clock.now >= deadline { return nil }
            usleep(10_000)
        }
    }

    /// Kills and reaps `pid` (SIGKILL), for cleanup paths.
    static func killAndReap(_ pid: pid_t) {
        kill(pid, SIGKILL)
        var status: Int32 = 0
        _ = waitpid(pid, &status, 0)
    }

    /// The result of a finished command.
    struct CommandResult: CustomStringConvertible {
        var status: ExitStatus
        var stdout: String
        var stderr: String
        var description: String { "\(status)\n--- stdout ---\n\(stdout)\n--- stderr ---\n\(stderr)" }
    }

    /// Runs a command to completion (killing it after `timeout` s) and captures its output.
    static func run(_ argv: [String], environment: [String] = defaultEnvironment, timeout: Double = 20) throws
        -> CommandResult
    {
        let dir = try TempDir()
        let out = dir.path + "/stdout"
        let err = dir.path + "/stderr"
        let pid = try spawn(argv, environment: environment, stdout: out, stderr: err)
        guard let status = wait(pid, timeout: timeout) else {
            killAndReap(pid)
            throw HarnessError(
                "\(argv.joined(separator: " ")) did not finish within \(timeout) s; stderr:\n\(Files.read(err))")
        }
        return CommandResult(status: status, stdout: Files.read(out), stderr: Files.read(err))
    }
}

/// Monotonic seconds.
enum Clock {
    static var now: Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    /// Polls `condition` every `interval` s until it holds or `timeout` s have passed.
    @discardableResult
    static func poll(timeout: Double, interval: Double = 0.02, _ condition: () -> Bool) -> Bool {
        let deadline = now + timeout
        while true {
            if condition() { return true }
            if now >= deadline { return false }
            usleep(useconds_t(interval * 1e6))
        }
    }
}

/// A fresh directory under /tmp, world-readable (a daemon running as nobody must read its
/// configuration), removed when released.
final class TempDir {
    let path: String

    init() throws {
        var template = Array("/tmp/swinetd-it.XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw HarnessError("mkdtemp failed") }
        path = String(cString: made)
        chmod(path, 0o755)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    /// Writes `text` to `name` inside the directory (mode 0644) and returns the full path.
    @discardableResult
    func write(_ name: String, _ text: String) throws -> String {
        let full = path + "/" + name
        try Files.write(full, Array(text.utf8))
        return full
    }
}

enum Files {
    static func read(_ path: String) -> String {
        guard let data = FileManager.default.contents(atPath: path) else { return "" }
        return String(decoding: data, as: UTF8.self)
    }

    /// Replaces the file atomically (write to a temporary name, then rename), as an admin's editor
    /// would, so a reload never reads a half-written file.
    static func write(_ path: String, _ bytes: [UInt8]) throws {
        let temporary = path + ".tmp-\(getpid())"
        guard FileManager.default.createFile(atPath: temporary, contents: Data(bytes)) else {
            throw HarnessError("cannot write \(temporary)")
        }
        chmod(temporary, 0o644)
        guard rename(temporary, path) == 0 else { throw HarnessError("rename to \(path) failed") }
    }
}

/// A value behind a pthread mutex (NSLock). Synchronization's `Mutex` is a futex that
/// ThreadSanitizer cannot see, so tests that share state across threads use this one to stay
/// free of false race reports under `Scripts/sanitizers.sh tsan`.
final class Locked<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value

    init(_ value: Value) { self.value = value }

    func withLock<Result>(_ body: (inout Value) throws -> Result) rethrows -> Result {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }
}
