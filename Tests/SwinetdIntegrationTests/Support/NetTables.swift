import Foundation
import Glibc

/// The kernel's socket tables (/proc/net/tcp, tcp6, udp, udp6) of this network namespace: which
/// addresses something listens on, whoever owns the socket.
extension ProcFS {
    struct BoundSocket: CustomStringConvertible {
        var table: String
        var address: String
        var port: UInt16
        var description: String { "\(table) \(address.contains(":") ? "[\(address)]" : address):\(port)" }
    }

    /// TCP sockets in LISTEN state (0A) on `port`, IPv4 and IPv6.
    static func tcpListeners(port: UInt16) -> [BoundSocket] {
        (sockets(in: "tcp", state: "0A") + sockets(in: "tcp6", state: "0A")).filter { $0.port == port }
    }

    /// Bound UDP sockets (state 07) on `port`, IPv4 and IPv6.
    static func udpSockets(port: UInt16) -> [BoundSocket] {
        (sockets(in: "udp", state: "07") + sockets(in: "udp6", state: "07")).filter { $0.port == port }
    }

    private static func sockets(in table: String, state wanted: String) -> [BoundSocket] {
        let lines = Files.read("/proc/net/" + table).split(separator: "\n").dropFirst()
        return lines.compactMap { line in
            let fields = line.split(separator: " ")
            guard fields.count > 3, fields[3] == wanted else { return nil }
            let local = fields[1].split(separator: ":")
            guard local.count == 2, let port = UInt16(local[1], radix: 16),
                let address = decode(String(local[0]))
            else { return nil }
            return BoundSocket(table: table, address: address, port: port)
        }
    }

    /// /proc/net hex addresses: 32-bit words in host (little-endian) order.
    private static func decode(_ hex: String) -> String? {
        let chars = Array(hex)
        guard chars.count == 8 || chars.count == 32 else { return nil }
        var bytes: [UInt8] = []
        for word in stride(from: 0, to: chars.count, by: 8) {
            var wordBytes: [UInt8] = []
            for i in stride(from: word, to: word + 8, by: 2) {
                guard let byte = UInt8(String(chars[i...i + 1]), radix: 16) else { return nil }
                wordBytes.append(byte)
            }
            bytes += wordBytes.reversed()
        }
        var buffer = [CChar](repeating: 0, count: 64)
        let family = bytes.count == 4 ? AF_INET : AF_INET6
        let ok = bytes.withUnsafeBytes { inet_ntop(family, $0.baseAddress, &buffer, 64) != nil }
        return ok ? cText(buffer) : nil
    }
}
