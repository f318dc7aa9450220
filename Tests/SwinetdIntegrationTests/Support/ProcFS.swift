import Foundation
import Glibc

/// What /proc says about processes: parents, states, command lines.
enum ProcFS {
    /// Whether this kernel has scheduler autogroups (`/proc/self/autogroup` exists).
    static let autogroupsExist = access("/proc/self/autogroup", F_OK) == 0
    /// Whether they are in use (`kernel.sched_autogroup_enabled`).
    static var autogroupsEnabled: Bool {
        (try? String(contentsOfFile: "/proc/sys/kernel/sched_autogroup_enabled", encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines) == "1"
    }
    /// The nice of the calling thread (the test's, which a daemon it starts inherits).
    static var ownNice: Int32 {
        errno = 0
        let value = getpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0)
        return errno == 0 ? value : 0
    }
    struct Stat {
        var pid: pid_t
        var state: Character
        var ppid: pid_t
        var pgrp: pid_t
        var session: pid_t
    }

    /// Parses /proc/PID/stat; the command name is in parentheses and may contain anything.
    static func stat(_ pid: pid_t) -> Stat? {
        let text = Files.read("/proc/\(pid)/stat")
        guard let close = text.lastIndex(of: ")") else { return nil }
        let rest = text[text.index(after: close)...].split(separator: " ")
        guard rest.count > 4, let state = rest[0].first, let ppid = pid_t(rest[1]), let pgrp = pid_t(rest[2]),
            let session = pid_t(rest[3])
        else { return nil }
        return Stat(pid: pid, state: state, ppid: ppid, pgrp: pgrp, session: session)
    }

    static func allPids() -> [pid_t] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return names.compactMap { pid_t($0) }
    }

    /// Children of `parent`, with their states.
    static func children(of parent: pid_t) -> [Stat] {
        allPids().compactMap { stat($0) }.filter { $0.ppid == parent }
    }

    static func zombies(of parent: pid_t) -> [Stat] {
        children(of: parent).filter { $0.state == "Z" }
    }

    /// The NUL-separated command line, joined with spaces.
    static func commandLine(_ pid: pid_t) -> String {
        guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return "" }
        return String(decoding: data.map { $0 == 0 ? 32 : $0 }, as: UTF8.self)
    }

    /// True while `pid` exists and is not a zombie.
    static func isRunning(_ pid: pid_t) -> Bool {
        guard let s = stat(pid) else { return false }
        return s.state != "Z" && s.state != "X"
    }

    /// Udp InDatagrams from /proc/net/snmp (this network namespace).
    static func udpInDatagrams() -> Int? {
        let lines = Files.read("/proc/net/snmp").split(separator: "\n").filter { $0.hasPrefix("Udp:") }
        guard lines.count >= 2 else { return nil }
        let keys = lines[0].split(separator: " ")
        let values = lines[1].split(separator: " ")
        guard let index = keys.firstIndex(of: "InDatagrams"), index < values.count else { return nil }
        return Int(values[index])
    }
}
