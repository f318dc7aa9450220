import CSwinetd

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The client side of the control socket, for `swinetd status`, `pause`, `resume` and `reload`:
/// blocking, with a 30 s timeout each way.
public enum ControlClient {
    public static let defaultPath = ControlProtocol.defaultPath

    public static func send(_ command: String, path: String) throws(SystemError) -> String {
        guard command.utf8.count < 4096, !command.contains("\n") else { throw SystemError("command too long", errno: EINVAL) }
        let sock = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Socket.cloexec, 0)
        guard sock >= 0 else { throw SystemError("socket") }
        defer { close(sock) }
        var timeout = timeval(tv_sec: 30, tv_usec: 0)
        setsockopt(sock, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(sock, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        guard var address = AdminServer.unixAddress(path) else { throw SystemError("\(path): path too long", errno: ENAMETOOLONG) }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(sock, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard connected == 0 else { throw SystemError("connect \(path) (is swinetd running with --control \(path)?)") }
        let request = Array((command + "\n").utf8)
        var offset = 0
        while offset < request.count {
            let n = request.withUnsafeBytes { Socket.send(sock, $0.baseAddress! + offset, request.count - offset) }
            if n <= 0 {
                // The daemon may have answered (a refusal) and closed already: read what it said.
                guard errno == EPIPE || errno == ECONNRESET else { throw SystemError("send \(path)") }
                break
            }
            offset += n
        }
        var reply: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buffer.withUnsafeMutableBytes { Socket.receive(sock, $0.baseAddress!, $0.count) }
            if n == 0 { break }
            guard n > 0 else { throw SystemError("read \(path)") }
            reply += buffer[0..<n]
            guard reply.count < 64 << 20 else { throw SystemError("reply too long", errno: EMSGSIZE) }
        }
        guard !reply.isEmpty else { throw SystemError("\(path): the daemon closed the connection without an answer", errno: EPROTO) }
        return String(decoding: reply, as: UTF8.self)
    }
}
