import Foundation
import Glibc
import Testing

/// Expected bytes of the builtins, computed here from the RFCs (not from swinetd's code).
enum Expected {
    /// RFC 864: line N is 72 characters of the printable ring (32...126) starting at N mod 95, then CRLF.
    static func chargenLine(_ n: Int) -> [UInt8] {
        (0..<72).map { UInt8(32 + (n + $0) % 95) } + [13, 10]
    }

    static func chargenLines(_ count: Int) -> [UInt8] {
        (0..<count).flatMap { chargenLine($0) }
    }

    /// Which ring offset a chargen line starts at, or nil when it is not a valid chargen line.
    static func chargenLineStart(_ line: ArraySlice<UInt8>) -> Int? {
        guard line.count == 74, let first = line.first, first >= 32, first < 127 else { return nil }
        let start = Int(first) - 32
        return Array(line) == chargenLine(start) ? start : nil
    }

    /// RFC 867 in the ctime(3) form, UTC: `Sun Nov 22 04:02:57 2026\r\n`.
    static func daytime(unixSeconds: Int) -> String {
        let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        var seconds = time_t(unixSeconds)
        var t = tm()
        gmtime_r(&seconds, &t)
        let day = t.tm_mday < 10 ? " \(t.tm_mday)" : "\(t.tm_mday)"
        func two(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
        return "\(days[Int(t.tm_wday)]) \(months[Int(t.tm_mon)]) \(day) \(two(t.tm_hour)):\(two(t.tm_min)):\(two(t.tm_sec)) \(t.tm_year + 1900)\r\n"
    }

    static func daytimeMatchesNow(_ text: String) -> Bool {
        let now = Int(time(nil))
        return (now - 2...now + 2).contains { daytime(unixSeconds: $0) == text }
    }

    /// RFC 868: seconds since 1900 as a 32-bit big-endian number; true when within ±2 s of now.
    static func timeMatchesNow(_ bytes: [UInt8]) -> Bool {
        guard bytes.count == 4 else { return false }
        let value = bytes.reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        let now = UInt32(truncatingIfNeeded: Int64(time(nil)) + 2_208_988_800)
        let difference = Int64(Int32(bitPattern: value &- now))
        return abs(difference) <= 2
    }

    /// Every byte value, several times, in a pattern that changes with `size`.
    static func binary(size: Int) -> [UInt8] {
        var state: UInt32 = 0x1234_5678
        return (0..<size).map { i in
            if i % 256 < 2 { return i % 2 == 0 ? 0x00 : 0xff }
            state = state &* 1_664_525 &+ 1_013_904_223
            return UInt8(truncatingIfNeeded: state >> 24)
        }
    }
}

extension Integration {
    @Suite struct BuiltinTests {
        // MARK: TCP

        @Test func tcpEchoIsByteExactAndHalfCloseFlushesThenFIN() throws {
            let port = Ports.free()
            let daemon = try Daemon(config: "127.0.0.1:\(port) stream tcp nowait root internal echo\n")
            defer { daemon.stop() }

            let all = (0...255).map { UInt8($0) } + [0, 0, 0xff, 0xff, 13, 10, 0]
            let small = try TCP.exchange("127.0.0.1", port, send: all)
            #expect(small.bytes == all)
            #expect(small.eof && small.error == nil, "echo must end with FIN after the client's half-close")

            let payload = Expected.binary(size: 300_000)
            let connection = try Connection.tcp("127.0.0.1", port)
            let result = connection.duplex(payload)
            #expect(result.bytes.count == payload.count)
            #expect(result.bytes == payload)
            #expect(result.eof && result.error == nil)
        }

        /// 4 MB through echo while reading concurrently (a client that writes without reading
        /// would deadlock, which is the client's problem; this one reads).
        @Test func tcpEchoCarriesFourMegabytes() throws {
            let port = Ports.free()
            let daemon = try Daemon(config: "127.0.0.1:\(port) stream tcp nowait root internal echo\n")
            defer { daemon.stop() }

            let payload = Expected.binary(size: 4 << 20)
            let connection = try Connection.tcp("127.0.0.1", port)
            let started = Clock.now
            let result = connection.duplex(payload, timeout: 15)
            #expect(result.bytes.count == payload.count, "echoed \(result.bytes.count) of \(payload.count) bytes")
            #expect(result.bytes == payload)
            #expect(result.eof)
            #expect(Clock.now - started < 10)
        }

        @Test func tcpDiscardSendsNothing() throws {
            let port = Ports.free()
            let daemon = try Daemon(config: "127.0.0.1:\(port) stream tcp nowait root internal discard\n")
            defer { daemon.stop() }
            let result = try TCP.exchange("127.0.0.1", port, send: Expected.binary(size: 200_000))
            #expect(result.bytes.isEmpty, "discard sent \(result.bytes.count) bytes")
            #expect(result.eof, "discard must close after the client's EOF")
        }

        @Test func tcpChargenFirstTwoHundredLinesAreExact() throws {
            let port = Ports.free()
            let daemon = try Daemon(config: "127.0.0.1:\(port) stream tcp nowait root internal chargen\n")
            defer { daemon.stop() }
            let connection = try Connection.tcp("127.0.0.1", port)
            let expected = Expected.chargenLines(200)
            let received = connection.read(count: expected.count)
            #expect(received.count == expected.count)
            if received != expected {
                let index = zip(received, expected).enumerated().first { $0.element.0 != $0.element.1 }?.offset ?? min(received.count, expected.count)
                Issue.record("chargen differs at byte \(index) (line \(index / 74), column \(index % 74))")
            }
        }

        @Test func tcpDaytimeIsCtimeFormNow() throws {
            let port = Ports.free()
            let daemon = try Daemon(config: "127.0.0.1:\(port) stream tcp nowait root internal daytime\n")
            defer { daemon.stop() }
            let result = try TCP.exchange("127.0.0.1", port, shutdownWrite: false)
            #expect(result.bytes.count == 26, "\(result.text.debugDescription)")
            #expect(Expected.daytimeMatchesNow(result.text), "got \(result.text.debugDescription), now is \(Expected.daytime(unixSeconds: Int(time(nil))).debugDescription)")
            #expect(result.eof)
        }

        @Test func tcpTimeIsSecondsSince1900() throws {
            let port = Ports.free()
            let daemon = try Daemon(config: "127.0.0.1:\(port) stream tcp nowait root internal time\n")
            defer { daemon.stop() }
            let result = try TCP.exchange("127.0.0.1", port, shutdownWrite: false)
            #expect(result.bytes.count == 4)
            #expect(Expected.timeMatchesNow(result.bytes), "got \(result.bytes)")
            #expect(result.eof)
        }

        @Test func idleBuiltinConnectionIsClosedAfterBuiltinTimeout() throws {
            let port = Ports.free()
            let daemon = try Daemon(
                config: "127.0.0.1:\(port) stream tcp nowait root internal echo\n",
                arguments: ["--builtin-timeout", "1"])
            defer { daemon.stop() }
            let started = Clock.now  // before the daemon's timer can start, so the lower bound holds under load
            let connection = try Connection.tcp("127.0.0.1", port)
            let result = connection.readToEOF(timeout: 4)
            let elapsed = Clock.now - started
            #expect(result.eof || result.error != nil, "idle echo connection still open after 4 s")
            #expect(elapsed >= 0.8, "closed after \(elapsed) s, before the 1 s timeout")
        }

        // MARK: UDP

        @Test func udpEchoIsByteExactOnIPv4AndIPv6() throws {
            let port = Ports.free()
            let daemon = try Daemon(config: "\(port) dgram udp wait root internal echo\n")
            defer { daemon.stop() }
            let payload = (0...255).map { UInt8($0) } + [0, 0xff, 0]
            let v4 = try UDPSocket(bind: "127.0.0.1")
            #expect(try v4.exchange(payload, to: "127.0.0.1", port) == payload)
            let v6 = try UDPSocket(bind: "::1")
            #expect(try v6.exchange(payload, to: "::1", port) == payload)
        }

        @Test func udpDiscardAnswersNothingButIsThere() throws {
            let port = Ports.free()
            let daemon = try Daemon(config: "127.0.0.1:\(port) dgram udp wait root internal discard\n")
            defer { daemon.stop() }
            // A connected UDP socket reports ECONNREFUSED if nothing listens: the service must be bound.
            let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
            defer { close(fd) }
            var (storage, length, _) = SocketAddress.make("127.0.0.1", port)
            _ = withUnsafePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, length) } }
            for _ in 0..<3 { _ = send(fd, "discard me", 10, 0) }
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&pfd, 1, 400)
            var byte: UInt8 = 0
            let n = ready > 0 ? recv(fd, &byte, 1, Int32(MSG_DONTWAIT)) : 0
            let code = n < 0 ? errno : 0
            #expect(ready == 0, "discard answered or the port is closed (recv=\(n), errno=\(code))")
        }

        @Test func udpChargenReplyIsWholeLinesUpTo512Bytes() throws {
            let port = Ports.free()
            let daemon = try Daemon(config: "127.0.0.1:\(port) dgram udp wait root internal chargen\n")
            defer { daemon.stop() }
            let client = try UDPSocket()
            for attempt in 0..<3 {
                let reply = try #require(try client.exchange(Array("x".utf8), to: "127.0.0.1", port), "no reply \(attempt)")
                #expect(!reply.isEmpty && reply.count <= 512, "reply of \(reply.count) bytes")
                #expect(reply.count % 74 == 0, "reply of \(reply.count) bytes is not whole 74-byte lines")
                var previous: Int?
                for offset in stride(from: 0, to: reply.count - reply.count % 74, by: 74) {
                    let start = Expected.chargenLineStart(reply[offset..<offset + 74])
                    #expect(start != nil, "line at byte \(offset) is not a chargen line")
                    if let previous, let start { #expect(start == (previous + 1) % 95, "lines are not consecutive") }
                    previous = start
                }
            }
        }

        @Test func udpDaytimeAndTime() throws {
            let daytimePort = Ports.free()
            let timePort = Ports.free()
            let daemon = try Daemon(
                config: """
                    127.0.0.1:\(daytimePort) dgram udp wait root internal daytime
                    127.0.0.1:\(timePort) dgram udp wait root internal time
                    """)
            defer { daemon.stop() }
            let client = try UDPSocket()
            let daytime = try #require(try client.exchange([0x0a], to: "127.0.0.1", daytimePort))
            let text = String(decoding: daytime, as: UTF8.self)
            #expect(Expected.daytimeMatchesNow(text), "got \(text.debugDescription)")
            let time = try #require(try client.exchange([0x0a], to: "127.0.0.1", timePort))
            #expect(Expected.timeMatchesNow(time), "got \(time)")
        }

        /// The loop guard: no answer to a reserved source port (<1024), while an ordinary port works.
        @Test func udpBuiltinsIgnoreReservedSourcePorts() throws {
            let port = Ports.free()
            let daemon = try Daemon(config: "127.0.0.1:\(port) dgram udp wait root internal echo\n")
            defer { daemon.stop() }
            let ordinary = try UDPSocket()
            #expect(try ordinary.exchange(Array("control".utf8), to: "127.0.0.1", port) == Array("control".utf8))

            let reserved = try UDPSocket(bind: "127.0.0.1", port: 1019, reuse: true)
            try reserved.send(Array("loop?".utf8), to: "127.0.0.1", port)
            #expect(reserved.receive(timeout: 0.5) == nil, "echo answered source port 1019")
            #expect(daemon.waitForLog("reserved source port", timeout: 2), "\(daemon.log)")
        }

        /// On a dual-stack socket an IPv4 client arrives as ::ffff:127.0.0.1; the guard still applies.
        @Test func udpDualStackBuiltinIgnoresReservedSourcePortsOfMappedClients() throws {
            let port = Ports.free()
            let daemon = try Daemon(config: "*:\(port) dgram udp46 wait root internal echo\n")
            defer { daemon.stop() }
            let ordinary = try UDPSocket()
            #expect(try ordinary.exchange(Array("v4".utf8), to: "127.0.0.1", port) == Array("v4".utf8))
            let reserved = try UDPSocket(bind: "127.0.0.1", port: 1019, reuse: true)
            try reserved.send(Array("loop?".utf8), to: "127.0.0.1", port)
            #expect(reserved.receive(timeout: 0.5) == nil, "udp46 echo answered a mapped client on port 1019")
        }

        /// No answer to a datagram whose source port is another UDP builtin's port.
        @Test func udpBuiltinsIgnoreSourcePortsOfOtherUDPBuiltins() throws {
            let echo = Ports.free()
            let chargen = Ports.free()
            let daemon = try Daemon(
                config: """
                    127.0.0.1:\(echo) dgram udp wait root internal echo
                    127.0.0.1:\(chargen) dgram udp wait root internal chargen
                    """)
            defer { daemon.stop() }
            // 127.0.0.2 is loopback too; the daemon holds 127.0.0.1:chargen, so this bind is allowed.
            let control = try UDPSocket(bind: "127.0.0.2")
            #expect(try control.exchange(Array("control".utf8), to: "127.0.0.1", echo) == Array("control".utf8))

            let spoof = try UDPSocket(bind: "127.0.0.2", port: chargen)
            try spoof.send(Array("loop?".utf8), to: "127.0.0.1", echo)
            #expect(spoof.receive(timeout: 0.5) == nil, "echo answered the chargen port")
            #expect(daemon.waitForLog("source port of a UDP builtin", timeout: 2), "\(daemon.log)")
        }

        /// The classic echo/chargen loop, started with a spoofed datagram from chargen's port to
        /// echo's port on 127.0.0.1: echo must drop it, so chargen never sees a datagram and the
        /// loopback carries no storm.
        @Test func spoofedEchoChargenLoopDoesNotStart() throws {
            let echo = Ports.free()
            let chargen = Ports.free()
            let daemon = try Daemon(
                config: """
                    127.0.0.1:\(echo) dgram udp wait root internal echo
                    127.0.0.1:\(chargen) dgram udp wait root internal chargen
                    """)
            defer { daemon.stop() }
            let before = try #require(ProcFS.udpInDatagrams())
            try RawUDP.send(Array("start a loop".utf8), sourcePort: chargen, destinationPort: echo)
            #expect(daemon.waitForLog("FAIL: \(echo) dropped", timeout: 2), "echo did not drop the spoofed datagram:\n\(daemon.log)")
            usleep(1_000_000)
            let after = try #require(ProcFS.udpInDatagrams())
            #expect(!daemon.log.contains("FAIL: \(chargen) "), "chargen received a datagram from echo:\n\(daemon.log)")
            // A loop runs at the reply rate (thousands per second); background traffic is far less.
            #expect(after - before < 200, "\(after - before) UDP datagrams in 1 s: a loop is running")
        }
    }
}
