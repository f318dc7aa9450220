import Foundation
import Glibc
import Testing

/// The fast paths of the builtins (BENCHMARKS.md, "Builtin throughput"): TCP echo spliced through
/// a pipe on echo pump threads (and its recv/send fallback), UDP builtins answered in
/// recvmmsg/sendmmsg batches, runs of equal replies to one sender as one UDP GSO send.
/// Each must behave exactly like the plain path.
extension Integration {
    @Suite struct BuiltinThroughputTests {
        /// Pipes open in `pid` (readlink of /proc/PID/fd/N is `pipe:[inode]`).
        static func pipeCount(_ pid: pid_t) -> Int {
            let dir = "/proc/\(pid)/fd"
            let names = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
            return names.filter { ((try? FileManager.default.destinationOfSymbolicLink(atPath: "\(dir)/\($0)")) ?? "").hasPrefix("pipe:") }
                .count
        }

        static func waitForPipes(_ pid: pid_t, _ count: Int, timeout: Double = 3) -> Int {
            let deadline = Clock.now + timeout
            var now = pipeCount(pid)
            while now != count && Clock.now < deadline {
                usleep(20_000)
                now = pipeCount(pid)
            }
            return now
        }

        /// Byte-exact echo with half-close through the splice path; each open echo connection that
        /// carried bytes holds one pipe (two descriptors), released when the connection ends.
        @Test func tcpEchoSplicesByteExactAndReleasesItsPipes() throws {
            let port = Ports.free()
            let daemon = try Daemon(config: "127.0.0.1:\(port) stream tcp nowait root internal echo\n")
            defer { daemon.stop() }
            let baseline = Self.pipeCount(daemon.pid)

            var open: [Connection] = []
            for i in 0..<8 {
                let c = try Connection.tcp("127.0.0.1", port)
                try c.send("hello \(i)\n")
                #expect(c.read(count: 8, timeout: 3) == Array("hello \(i)\n".utf8))
                open.append(c)
            }
            #expect(Self.waitForPipes(daemon.pid, baseline + 16) == baseline + 16, "8 echo connections, pipe fds \(Self.pipeCount(daemon.pid) - baseline)")

            let payload = Expected.binary(size: 3 << 20)
            let result = try Connection.tcp("127.0.0.1", port).duplex(payload, timeout: 15)
            #expect(result.bytes.count == payload.count)
            #expect(result.bytes == payload)
            #expect(result.eof && result.error == nil, "echo must end with FIN after the client's half-close")

            for c in open { c.close() }
            #expect(Self.waitForPipes(daemon.pid, baseline) == baseline, "pipes left after the connections closed")
        }

        /// SWINETD_ECHO_SPLICE=0 turns splicing off: the recv/send path, same bytes, same FIN, no pipes.
        @Test func tcpEchoWithoutSpliceCopiesByteExact() throws {
            let port = Ports.free()
            let daemon = try Daemon(
                config: "127.0.0.1:\(port) stream tcp nowait root internal echo\n",
                environment: Processes.defaultEnvironment + ["SWINETD_ECHO_SPLICE=0"])
            defer { daemon.stop() }
            let baseline = Self.pipeCount(daemon.pid)

            let c = try Connection.tcp("127.0.0.1", port)
            try c.send("copy\n")
            #expect(c.read(count: 5, timeout: 3) == Array("copy\n".utf8))
            #expect(Self.pipeCount(daemon.pid) == baseline, "a pipe with splicing off")

            let payload = Expected.binary(size: 2 << 20)
            let result = try Connection.tcp("127.0.0.1", port).duplex(payload, timeout: 15)
            #expect(result.bytes == payload)
            #expect(result.eof && result.error == nil)
            c.close()
        }

        /// A client that resets mid-stream, with bytes waiting in the pipe: the connection ends and
        /// its pipe is closed; the service keeps working.
        @Test func tcpEchoResetMidStreamReleasesThePipe() throws {
            let port = Ports.free()
            let daemon = try Daemon(config: "127.0.0.1:\(port) stream tcp nowait root internal echo\n")
            defer { daemon.stop() }
            let baseline = Self.pipeCount(daemon.pid)
            for _ in 0..<5 {
                let c = try Connection.tcp("127.0.0.1", port)
                c.setNonBlocking(true)
                // Fill both directions without reading, so the daemon holds bytes in its pipe.
                let chunk = [UInt8](repeating: 0x5a, count: 65536)
                for _ in 0..<64 {
                    let n = chunk.withUnsafeBytes { Glibc.send(c.fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                    if n < 0 { break }
                }
                var lg = linger(l_onoff: 1, l_linger: 0)
                setsockopt(c.fd, SOL_SOCKET, SO_LINGER, &lg, socklen_t(MemoryLayout<linger>.size))
                c.close()
            }
            #expect(Self.waitForPipes(daemon.pid, baseline) == baseline, "pipes left after resets")
            let result = try TCP.exchange("127.0.0.1", port, send: Array("still here".utf8))
            #expect(result.bytes == Array("still here".utf8))
        }

        /// An echo connection on a pump (it carried bytes) that then goes idle is closed after
        /// --builtin-timeout, by its pump.
        @Test func tcpEchoOnAPumpMeetsTheIdleTimeout() throws {
            let port = Ports.free()
            let daemon = try Daemon(
                config: "127.0.0.1:\(port) stream tcp nowait root internal echo\n", arguments: ["--builtin-timeout", "1"])
            defer { daemon.stop() }
            let c = try Connection.tcp("127.0.0.1", port)
            let started = Clock.now  // before the last activity the daemon's timer counts from
            try c.send("x\n")
            #expect(c.read(count: 2, timeout: 3) == Array("x\n".utf8))
            let result = c.readToEOF(timeout: 5)
            let elapsed = Clock.now - started
            #expect(result.eof || result.error != nil, "idle echo connection on a pump still open after 5 s")
            #expect(elapsed >= 0.8 && elapsed < 3.5, "closed after \(elapsed) s with a 1 s timeout")
        }

        /// The per-service limit (`nowait/2`) counts echo connections on pumps, and a slot is free
        /// again once a pump ends its connection.
        @Test func tcpEchoOnPumpsCountsTowardsTheServiceLimit() throws {
            let port = Ports.free()
            let daemon = try Daemon(config: "127.0.0.1:\(port) stream tcp nowait/2 root internal echo\n")
            defer { daemon.stop() }
            let first = try Connection.tcp("127.0.0.1", port)
            let second = try Connection.tcp("127.0.0.1", port)
            for (i, c) in [first, second].enumerated() {
                try c.send("held \(i)\n")
                #expect(c.read(count: 7, timeout: 3) == Array("held \(i)\n".utf8))
            }
            let third = try Connection.tcp("127.0.0.1", port)
            let refused = third.readToEOF(timeout: 3)
            #expect(refused.bytes.isEmpty && (refused.eof || refused.error != nil), "a third echo connection was served")
            #expect(daemon.waitForLog("service_limit", timeout: 2), "\(daemon.log)")
            first.close()
            let served = Clock.poll(timeout: 3) {
                (try? TCP.exchange("127.0.0.1", port, send: Array("again".utf8)).bytes) == Array("again".utf8)
            }
            #expect(served, "no slot freed after a pumped echo connection closed:\n\(daemon.log)")
            second.close()
        }

        /// UDP echo and chargen on 127.0.0.1, with a reply rate no burst here reaches.
        static func udpEchoAndChargen() throws -> (daemon: Daemon, echo: UInt16, chargen: UInt16) {
            let echo = Ports.free()
            let chargen = Ports.free()
            let daemon = try Daemon(
                config: """
                    127.0.0.1:\(echo) dgram udp wait root internal echo
                    127.0.0.1:\(chargen) dgram udp wait root internal chargen
                    """,
                arguments: ["--udp-builtin-rate", "100000"])
            return (daemon, echo, chargen)
        }

        /// One burst mixing answerable senders with guarded ones (a reserved source port, another
        /// UDP builtin's port): batched receiving answers exactly the answerable datagrams, each to
        /// its own sender with its own bytes, large and small alike.
        @Test func udpEchoBatchAnswersExactlyTheAllowedSendersOfAMixedBurst() throws {
            let (daemon, echo, chargen) = try Self.udpEchoAndChargen()
            defer { daemon.stop() }
            let a = try UDPSocket(bind: "127.0.0.1")
            let b = try UDPSocket(bind: "127.0.0.2")
            let reserved = try UDPSocket(bind: "127.0.0.1", port: 1013, reuse: true)
            let spoof = try UDPSocket(bind: "127.0.0.2", port: chargen)
            var bigSize = 0
            for i in 0..<40 {
                try a.send(Array("a\(i)".utf8), to: "127.0.0.1", echo)
                try reserved.send(Array("r\(i)".utf8), to: "127.0.0.1", echo)
                let big = i % 10 == 3
                let bPayload = big ? [UInt8](repeating: UInt8(i), count: 20000) : Array("b\(i)".utf8)
                if big { bigSize = bPayload.count }
                try b.send(bPayload, to: "127.0.0.1", echo)
                try spoof.send(Array("s\(i)".utf8), to: "127.0.0.1", echo)
            }
            var gotA: [String] = []
            var gotB: [[UInt8]] = []
            while gotA.count < 40, let r = a.receive(timeout: 2) { gotA.append(String(decoding: r.bytes, as: UTF8.self)) }
            while gotB.count < 40, let r = b.receive(timeout: 2) { gotB.append(r.bytes) }
            #expect(gotA == (0..<40).map { "a\($0)" }, "\(gotA)")
            #expect(gotB.count == 40)
            for (i, bytes) in gotB.enumerated() {
                let want = i % 10 == 3 ? [UInt8](repeating: UInt8(i), count: bigSize) : Array("b\(i)".utf8)
                #expect(bytes == want, "reply \(i) to b: \(bytes.count) bytes")
            }
            #expect(reserved.receive(timeout: 0.3) == nil, "echo answered a reserved source port")
            #expect(spoof.receive(timeout: 0.3) == nil, "echo answered another UDP builtin's port")
            #expect(daemon.waitForLog("dropped", timeout: 2), "\(daemon.log)")
        }

        /// One batch for sure (the daemon is stopped while the burst queues): runs of equal-size
        /// replies go out as GSO sends, and each sender still gets its own datagrams, whole and in
        /// order: blocks of two senders, a shorter echo ending a run, an empty one, chargen's
        /// equal-size replies continuing the ring.
        @Test func udpRepliesOfOneBatchReachEachSenderAsTheirOwnDatagrams() throws {
            let (daemon, echo, chargen) = try Self.udpEchoAndChargen()
            defer { daemon.stop() }
            let a = try UDPSocket(bind: "127.0.0.1")
            let b = try UDPSocket(bind: "127.0.0.2")
            func payload(_ tag: String, _ i: Int, _ size: Int) -> [UInt8] {
                Array(Array("\(tag)\(i):".utf8).prefix(size)) + [UInt8](repeating: UInt8(65 + i % 26), count: max(0, size - "\(tag)\(i):".utf8.count))
            }
            var wantA: [[UInt8]] = []
            var wantB: [[UInt8]] = []
            kill(daemon.pid, SIGSTOP)
            var resumed = false
            defer { if !resumed { kill(daemon.pid, SIGCONT) } }
            for block in 0..<3 {
                for i in 0..<6 {
                    let p = payload("a", block * 10 + i, i == 5 && block == 1 ? 40 : 120)
                    try a.send(p, to: "127.0.0.1", echo)
                    wantA.append(p)
                }
                if block == 2 {
                    try a.send([], to: "127.0.0.1", echo)
                    wantA.append([])
                }
                for i in 0..<5 {
                    let p = payload("b", block * 10 + i, 120)
                    try b.send(p, to: "127.0.0.1", echo)
                    wantB.append(p)
                }
            }
            for _ in 0..<8 { try a.send([0], to: "127.0.0.1", chargen) }
            usleep(50_000)
            kill(daemon.pid, SIGCONT)
            resumed = true

            var gotA: [[UInt8]] = []
            var lines: [[UInt8]] = []
            var gotB: [[UInt8]] = []
            while gotA.count + lines.count < wantA.count + 8, let r = a.receive(timeout: 2) {
                if r.port == chargen { lines.append(r.bytes) } else { gotA.append(r.bytes) }
            }
            while gotB.count < wantB.count, let r = b.receive(timeout: 2) { gotB.append(r.bytes) }
            #expect(gotA == wantA, "a: sizes \(gotA.map(\.count))\n\(daemon.log)")
            #expect(gotB == wantB, "b: sizes \(gotB.map(\.count))")
            #expect(lines.count == 8)
            for (k, reply) in lines.enumerated() {
                let want = (0..<6).flatMap { Expected.chargenLine((6 * k + $0) % 95) }
                #expect(reply == want, "chargen reply \(k): \(reply.count) bytes")
            }
        }

        /// In a private network namespace, whose UDP counters only this daemon and its client
        /// touch (Tests/helpers/udp_gso_client.py): a run of equal echoes to one sender leaves as
        /// one GSO send, runs split where sizes or senders change and at 65,507 bytes, and when
        /// the segment is over the path MTU the kernel's refusal falls back to one send per reply.
        @Test(.enabled(if: NamespaceTests.unshareWorks, "skipped: `unshare -n true` fails here"))
        func udpEchoRunsLeaveAsGSOSendsAndFallBackOverTheMTU() throws {
            let (result, log) = try NamespaceTests.runInNamespace(
                config: """
                    127.0.0.1:7007 dgram udp wait root internal echo
                    [::1]:7007 dgram udp6 wait root internal echo
                    """,
                client: ["udp_gso_client.py", "7007"])
            #expect(result.status == .exited(0), "\(result)\n--- swinetd log ---\n\(log)")
            #expect(result.stdout.contains("ALL OK"), "\(result)")
            #expect(result.stdout.contains("SWINETD_EXIT=0"), "\(result)")
        }

        /// The largest UDP datagram (65,507 bytes over IPv4) fills a whole batch slot and comes back whole.
        @Test func udpEchoLargestDatagramIsByteExact() throws {
            let port = Ports.free()
            let daemon = try Daemon(config: "127.0.0.1:\(port) dgram udp wait root internal echo\n")
            defer { daemon.stop() }
            let client = try UDPSocket(bind: "127.0.0.1")
            let payload = Expected.binary(size: 65507)
            #expect(try client.exchange(payload, to: "127.0.0.1", port) == payload)
        }

        /// With a datagram policy (no_access), a burst from an allowed and a denied address gets
        /// exactly the allowed one's replies; chargen batches continue the RFC 864 ring in order.
        @Test func udpBatchAppliesPolicyPerDatagramAndChargenRingContinues() throws {
            let echo = Ports.free()
            let chargen = Ports.free()
            let daemon = try Daemon(
                config: Xinetd.loggingDefaults
                    + Xinetd.service(
                        "guarded",
                        [
                            "id = echo-guarded", "type = INTERNAL UNLISTED", "socket_type = dgram", "wait = yes",
                            "port = \(echo)", "bind = 127.0.0.1", "no_access = 127.0.0.2",
                        ])
                    + Xinetd.service(
                        "ring",
                        [
                            "id = chargen-dgram", "type = INTERNAL UNLISTED", "socket_type = dgram", "wait = yes",
                            "port = \(chargen)", "bind = 127.0.0.1",
                        ]),
                arguments: ["--udp-builtin-rate", "100000"])
            defer { daemon.stop() }
            let allowed = try UDPSocket(bind: "127.0.0.1")
            let denied = try UDPSocket(bind: "127.0.0.2")
            for i in 0..<30 {
                try denied.send(Array("d\(i)".utf8), to: "127.0.0.1", echo)
                try allowed.send(Array("a\(i)".utf8), to: "127.0.0.1", echo)
            }
            var got: [String] = []
            while got.count < 30, let r = allowed.receive(timeout: 2) { got.append(String(decoding: r.bytes, as: UTF8.self)) }
            #expect(got == (0..<30).map { "a\($0)" }, "\(got)\n\(daemon.log)")
            #expect(denied.receive(timeout: 0.3) == nil, "echo answered an address in no_access")

            for _ in 0..<20 { try allowed.send([0], to: "127.0.0.1", chargen) }
            var lines: [[UInt8]] = []
            for _ in 0..<20 {
                guard let r = allowed.receive(timeout: 2) else { break }
                lines.append(r.bytes)
            }
            #expect(lines.count == 20)
            // Reply k holds lines 6k..6k+5 of the ring (mod 95).
            for (k, reply) in lines.enumerated() {
                let want = (0..<6).flatMap { Expected.chargenLine((6 * k + $0) % 95) }
                #expect(reply == want, "chargen reply \(k)")
            }
        }
    }
}
