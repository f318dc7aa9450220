#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Linux capability names and numbers (<linux/capability.h>, capabilities(7)).
public enum Capabilities {
    /// Index = capability number.
    static let names = [
        "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
        "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
        "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE",
        "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT",
        "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
        "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG",
        "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
    ]

    static let sysAdmin = 21

    /// `CAP_NET_BIND_SERVICE`, `cap_net_bind_service` or `NET_BIND_SERVICE`; nil when unknown.
    public static func number(named text: String) -> Int? {
        var name = text.uppercased()
        if !name.hasPrefix("CAP_") { name = "CAP_" + name }
        return names.firstIndex(of: name)
    }

    public static func name(of number: Int) -> String? {
        names.indices.contains(number) ? names[number] : nil
    }

    /// The highest capability this kernel knows (/proc/sys/kernel/cap_last_cap); the bounding set is
    /// dropped up to it. Falls back to the highest one in the table.
    static let lastCapability: Int = {
        let text = ProcText.contents(of: "/proc/sys/kernel/cap_last_cap")
        return text.flatMap { Int($0.split(separator: "\n").first ?? "") } ?? names.count - 1
    }()

    /// swinetd's own bounding set (/proc/self/status CapBnd): a child cannot keep what the daemon lacks.
    static var daemonBoundingSet: UInt64? {
        guard let status = ProcText.contents(of: "/proc/self/status") else { return nil }
        for line in status.split(separator: "\n") where line.hasPrefix("CapBnd:") {
            return UInt64(line.dropFirst("CapBnd:".count).trimmedOfBlanks, radix: 16)
        }
        return nil
    }
}

/// Small files under /proc and /sys, read whole.
enum ProcText {
    static func contents(of path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { break }
            bytes += buffer[0..<count]
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

extension Substring {
    var trimmedOfBlanks: Substring {
        var text = self
        while let first = text.first, first == " " || first == "\t" { text = text.dropFirst() }
        while let last = text.last, last == " " || last == "\t" || last == "\n" { text = text.dropLast() }
        return text
    }
}
