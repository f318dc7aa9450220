import Foundation
import Glibc
import Synchronization

/// An RFC 1413 ident server on port 113 of a fresh loopback address (127.113.x.y), run on a thread
/// of the test process (root may bind 113). A client that connects *from* `address` is the one
/// swinetd asks about: it queries `address:113` from the address the client reached.
///
/// `reply` gets the request line (without CR LF) and returns the bytes to send back; the server
/// then closes the connection. Every request is recorded. `stop()` (or release) ends the thread
/// within about 100 ms.
final class FakeIdentd: @unchecked Sendable {
    let address: String
    private let fd: Int32
    private let stopping = Atomic<Bool>(false)
    private let done = DispatchSemaphore(value: 0)
    private let recorded = Locked<[String]>([])
    private let reply: @Sendable (String) -> [UInt8]
    private var stopped = false

    /// A standard answer: `PORTS : USERID : UNIX : user`.
    static func answer(_ user: String) -> @Sendable (String) -> [UInt8] {
        { request in Array("\(request) : USERID : UNIX : \(user)\r\n".utf8) }
    }

    init(reply: @escaping @Sendable (String) -> [UInt8]) throws {
        self.reply = reply
        var chosen: (Int32, String)?
        for _ in 0..<20 {
            let candidate = "127.113.\(Int.random(in: 1...254)).\(Int.random(in: 1...254))"
            let socketFD = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard socketFD >= 0 else { throw SocketError(call: "socket", code: errno) }
            var one: Int32 = 1
            setsockopt(socketFD, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
            if SocketAddress.bind(socketFD, candidate, 113), listen(socketFD, 16) == 0 {
                chosen = (socketFD, candidate)
                break
            }
            close(socketFD)
        }
        guard let (socketFD, candidate) = chosen else {
            throw HarnessError("fake identd: cannot bind port 113 on any 127.113.x.y address (not root?)")
        }
        fd = socketFD
        address = candidate
        let thread = Thread { [self] in
            serve()
            done.signal()
        }
        thread.stackSize = 1 << 20
        thread.start()
    }

    deinit { stop() }

    /// The request lines received so far, in order.
    var requests: [String] { recorded.withLock { $0 } }

    func stop() {
        guard !stopped else { return }
        stopped = true
        stopping.store(true, ordering: .sequentiallyConsistent)
        _ = done.wait(timeout: .now() + 3)
        close(fd)
    }

    private func serve() {
        while !stopping.load(ordering: .sequentiallyConsistent) {
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&pfd, 1, 50) > 0 else { continue }
            let client = accept(fd, nil, nil)
            guard client >= 0 else { continue }
            answer(client)
            close(client)
        }
    }

    /// Reads one request line (at most 1 KiB, at most 2 s), answers, and returns.
    private func answer(_ client: Int32) {
        var timeout = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(client, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var request: [UInt8] = []
        var byte: UInt8 = 0
        while request.count < 1024, !request.ends(with: [13, 10]) && request.last != 10 {
            guard recv(client, &byte, 1, 0) == 1 else { break }
            request.append(byte)
        }
        let line = String(decoding: request.prefix { $0 != 13 && $0 != 10 }, as: UTF8.self)
        recorded.withLock { $0.append(line) }
        let bytes = reply(line)
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes {
                send(client, $0.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL))
            }
            if n <= 0 { break }  // the daemon stopped reading (it takes at most what it needs)
            offset += n
        }
    }
}
