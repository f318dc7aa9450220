import Foundation
import Glibc

/// What one client attempt on a probe service came to, for tests that count served versus
/// refused connections.
enum Outcome: Equatable, CustomStringConvertible {
    /// A complete probe report arrived (a child was started for this connection).
    case served
    /// The connection was accepted and then closed without a complete report; `bytes` is what
    /// arrived before the close (a banner, or nothing).
    case closed(bytes: [UInt8])
    /// connect(2) failed (e.g. ECONNREFUSED while a service is paused).
    case refused(errno: Int32)
    /// Nothing conclusive within the timeout (neither a report nor a close).
    case hung(bytes: [UInt8])

    var isServed: Bool { self == .served }

    var isDenied: Bool {
        switch self {
        case .closed, .refused: true
        default: false
        }
    }

    var description: String {
        switch self {
        case .served: "served"
        case .closed(let bytes): "closed after \(bytes.count) bytes \(String(decoding: bytes.prefix(80), as: UTF8.self).debugDescription)"
        case .refused(let code): "connect failed: \(String(cString: strerror(code)))"
        case .hung(let bytes): "no report and no close (\(bytes.count) bytes)"
        }
    }

    /// Connects to a probe service (optionally from a chosen loopback source) and classifies the
    /// result. Reads until EOF or `timeout` s.
    static func probe(_ host: String, _ port: UInt16, from source: String? = nil, timeout: Double = 4) -> Outcome {
        let connection: Connection
        do {
            connection = try Connection.tcp(host, port, from: source, timeout: timeout)
        } catch let error as SocketError {
            return .refused(errno: error.code)
        } catch {
            return .refused(errno: -1)
        }
        let result = connection.readToEOF(timeout: timeout)
        if ProbeReport(result.bytes).isComplete { return .served }
        if result.eof || result.error != nil { return .closed(bytes: result.bytes) }
        return .hung(bytes: result.bytes)
    }
}
