import Foundation
import Glibc
import Testing

/// The PROXY protocol (docs/PROXY.md) on real connections: crafted v1 and v2 headers (IPv4, IPv6,
/// LOCAL, malformed, truncated, oversized, untrusted, slow, data right after the header), the
/// proxied client driving only_from, per_source, logs and the child's environment; then a real
/// HAProxy (Debian package haproxy, installed by .ci/run) with send-proxy and send-proxy-v2.
extension Integration {
    @Suite struct ProxyProtocolTests {
        static let signature: [UInt8] = [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A]

        static func v2(command: UInt8 = 0x21, family: UInt8 = 0x11, body: [UInt8]) -> [UInt8] {
            signature + [command, family, UInt8(body.count >> 8), UInt8(body.count & 0xff)] + body
        }

        /// A script that prints what it got, then copies the connection back (so bytes sent right
        /// after the header must arrive intact).
        static let script = """
            #!/bin/sh
            echo "ip=$TCPREMOTEIP port=$TCPREMOTEPORT lip=$TCPLOCALIP lport=$TCPLOCALPORT via=$PROXY_PEER"
            exec cat

            """

        final class Setup {
            let dir: TempDir
            let env = Ports.free()
            let echo = Ports.free()
            let untrusted = Ports.free()
            let acl = Ports.free()
            let perSource = Ports.free()
            let daemon: Daemon

            init(trusted: String = "127.0.0.1 ::1") throws {
                dir = try TempDir()
                let script = try dir.write("show.sh", ProxyProtocolTests.script)
                chmod(script, 0o755)
                func service(_ name: String, _ port: UInt16, _ extra: [String]) -> String {
                    Xinetd.service(
                        name,
                        [
                            "type = UNLISTED", "socket_type = stream", "wait = no", "user = root",
                            "bind = 127.0.0.1", "port = \(port)", "server = \(script)",
                        ] + extra)
                }
                daemon = try Daemon(
                    config: Xinetd.defaults([
                        "log_on_success = PID HOST EXIT", "log_on_failure = HOST", "cps = 1000 1",
                    ])
                        + service("env", env, ["proxy_protocol = yes", "proxy_trusted = \(trusted)"])
                        + Xinetd.service(
                            "echo",
                            [
                                "type = INTERNAL UNLISTED", "socket_type = stream", "wait = no", "bind = 127.0.0.1",
                                "port = \(echo)", "proxy_protocol = yes", "proxy_trusted = 127.0.0.0/8",
                            ])
                        + service("untrusted", untrusted, ["proxy_protocol = yes", "proxy_trusted = 192.0.2.0/24"])
                        + service(
                            "acl", acl,
                            ["proxy_protocol = yes", "proxy_trusted = \(trusted)", "only_from = 203.0.113.0/24 127.0.0.2"])
                        + service(
                            "persource", perSource,
                            ["proxy_protocol = yes", "proxy_trusted = \(trusted)", "per_source = 1"]))
            }
        }

        /// Connects, sends `bytes` (header and maybe data), half-closes, reads to EOF.
        static func exchange(_ port: UInt16, _ bytes: [UInt8], shutdown: Bool = true) throws -> Connection.ReadResult {
            let connection = try Connection.tcp("127.0.0.1", port)
            try connection.send(bytes)
            if shutdown { connection.shutdownWrite() }
            return connection.readToEOF(timeout: 5)
        }

        @Test func v1HeaderDrivesTheEnvironmentAndDataAfterItArrivesIntact() throws {
            let setup = try Setup()
            let header = Array("PROXY TCP4 192.0.2.7 198.51.100.9 40000 443\r\n".utf8)
            let payload = Array("PROXY TCP4 not-a-header\r\nline two\n".utf8)
            let result = try Self.exchange(setup.env, header + payload)
            #expect(
                result.text == "ip=192.0.2.7 port=40000 lip=198.51.100.9 lport=443 via=127.0.0.1\n"
                    + "PROXY TCP4 not-a-header\r\nline two\n")
            #expect(setup.daemon.waitForLog("START: env"))
            #expect(setup.daemon.logLines(containing: "START: env").first?.contains("from=192.0.2.7 via=127.0.0.1") == true)
        }

        @Test func v2IPv6ThroughABuiltinIsByteExact() throws {
            let setup = try Setup()
            let source = [UInt8](repeating: 0, count: 15) + [7]  // ::7
            let destination: [UInt8] = [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 11) + [1]
            let tlvs: [UInt8] = [0x04, 0x00, 0x02, 0, 0]  // a NOOP TLV, skipped
            let header = Self.v2(family: 0x21, body: source + destination + [0x9C, 0x40, 0x01, 0xBB] + tlvs)
            let payload = (0..<4096).map { UInt8(truncatingIfNeeded: $0) } + Self.signature
            let result = try Self.exchange(setup.echo, header + payload)
            #expect(result.bytes == payload)
            let env = try Self.exchange(setup.env, header)
            #expect(env.text.hasPrefix("ip=::7 port=40000 lip=2001:db8::1 lport=443 via=127.0.0.1\n"))
        }

        @Test func v2LocalAndV1UnknownKeepTheRealPeer() throws {
            let setup = try Setup()
            let local = try Self.exchange(setup.env, Self.v2(command: 0x20, family: 0, body: []) + Array("x".utf8))
            #expect(local.text.hasPrefix("ip=127.0.0.1 "))
            #expect(local.text.contains("via=\n"))
            #expect(local.text.hasSuffix("\nx"))
            let unknown = try Self.exchange(setup.env, Array("PROXY UNKNOWN\r\n".utf8))
            #expect(unknown.text.hasPrefix("ip=127.0.0.1 "))
        }

        @Test func untrustedPeerIsRefusedAndLogged() throws {
            let setup = try Setup()
            let result = try Self.exchange(setup.untrusted, Array("PROXY TCP4 192.0.2.7 198.51.100.9 1 2\r\n".utf8))
            #expect(result.bytes.isEmpty)
            #expect(setup.daemon.waitForLog("FAIL: untrusted proxy_untrusted from=127.0.0.1"))
            #expect(setup.daemon.waitForLog("PROXY protocol from untrusted peer 127.0.0.1"))
            #expect(setup.daemon.count("START: untrusted") == 0)
        }

        @Test func malformedTruncatedAndOversizedHeadersClose() throws {
            let setup = try Setup()
            let bad: [(String, [UInt8])] = [
                ("v1 header has a bad IPv4 address", Array("PROXY TCP4 192.0.2.300 1.2.3.4 1 2\r\nhello".utf8)),
                ("not a PROXY protocol header", Array("GET / HTTP/1.0\r\n\r\n".utf8)),
                ("v1 header longer than 107 bytes", Array(("PROXY UNKNOWN " + String(repeating: "x", count: 200)).utf8)),
                ("closed after 20 bytes", Array("PROXY TCP4 192.0.2.7".utf8)),
                ("v2 header of 4016 bytes", Self.signature + [0x21, 0x11, 0x0F, 0xA0] + [UInt8](repeating: 0, count: 64)),
                ("v2 header has version 1", Self.v2(command: 0x11, body: [UInt8](repeating: 0, count: 12))),
            ]
            for (reason, bytes) in bad {
                let result = try Self.exchange(setup.env, bytes)
                #expect(result.bytes.isEmpty, "\(reason): \(result.text)")
                #expect(setup.daemon.waitForLog("FAIL: env proxy_header (\(reason)"), "\(reason)")
            }
            #expect(setup.daemon.count("START: env") == 0)
        }

        /// A header dripped a byte at a time is still read; one that stops half-way is dropped
        /// after the 5 s header timeout.
        @Test func slowHeaderIsReadAndStalledHeaderTimesOut() throws {
            let setup = try Setup()
            let connection = try Connection.tcp("127.0.0.1", setup.env)
            for byte in Array("PROXY TCP4 192.0.2.7 198.51.100.9 40000 443\r\n".utf8) {
                try connection.send([byte])
                usleep(10_000)
            }
            try connection.send(Array("tail".utf8))
            connection.shutdownWrite()
            #expect(connection.readToEOF(timeout: 5).text.hasSuffix("via=127.0.0.1\ntail"))

            let stalled = try Connection.tcp("127.0.0.1", setup.env)
            try stalled.send(Array("PROXY TCP4 19".utf8))
            let start = Clock.now
            let result = stalled.readToEOF(timeout: 8)
            let waited = Clock.now - start
            #expect(result.eof || result.error != nil)
            #expect(result.bytes.isEmpty)
            #expect(waited > 4 && waited < 7.5, "closed after \(waited) s")
            #expect(setup.daemon.waitForLog("FAIL: env proxy_header (timeout after 5 s, 13 bytes)"))
        }

        @Test func onlyFromAndPerSourceUseTheProxiedAddress() throws {
            let setup = try Setup()
            let allowed = try Self.exchange(setup.acl, Array("PROXY TCP4 203.0.113.5 127.0.0.1 1000 80\r\n".utf8))
            #expect(allowed.text.hasPrefix("ip=203.0.113.5 "))
            // The TCP peer (127.0.0.1) is not in only_from either: only the proxied address counts.
            let denied = try Self.exchange(setup.acl, Array("PROXY TCP4 198.51.100.1 127.0.0.1 1000 80\r\n".utf8))
            #expect(denied.bytes.isEmpty)
            #expect(setup.daemon.waitForLog("FAIL: acl address from=198.51.100.1 via=127.0.0.1"))

            // per_source = 1: a second connection for the same proxied client is refused while the
            // first is open; another proxied client is served, though all come from 127.0.0.1.
            let first = try Connection.tcp("127.0.0.1", setup.perSource)
            try first.send(Array("PROXY TCP4 192.0.2.1 127.0.0.1 1000 80\r\n".utf8))
            #expect(String(decoding: first.read(until: "\n"), as: UTF8.self).hasPrefix("ip=192.0.2.1 "))
            let second = try Self.exchange(setup.perSource, Array("PROXY TCP4 192.0.2.1 127.0.0.1 1001 80\r\n".utf8))
            #expect(second.bytes.isEmpty)
            #expect(setup.daemon.waitForLog("FAIL: persource per_source_limit from=192.0.2.1 via=127.0.0.1"))
            let other = try Self.exchange(setup.perSource, Array("PROXY TCP4 192.0.2.2 127.0.0.1 1002 80\r\n".utf8))
            #expect(other.text.hasPrefix("ip=192.0.2.2 "))
            first.close()
        }

        /// inetd.conf form on a tcpmux service: the header comes first, then the tcpmux name; the
        /// target meets the proxied client.
        @Test func inetdFormOnTCPMux() throws {
            let dir = try TempDir()
            let script = try dir.write("show.sh", Self.script)
            chmod(script, 0o755)
            let port = Ports.free()
            let daemon = try Daemon(
                config: """
                    127.0.0.1:\(port) stream tcp4,proxy_protocol,proxy_trusted=127.0.0.0/8 nowait root internal tcpmux
                    tcpmux/+show stream tcp nowait root \(script) show.sh

                    """)
            defer { daemon.stop() }
            let result = try Self.exchange(port, Array("PROXY TCP4 192.0.2.9 127.0.0.1 5555 1\r\nshow\r\nabc".utf8))
            #expect(result.text == "+Go\r\nip=192.0.2.9 port=5555 lip=127.0.0.1 lport=1 via=127.0.0.1\nabc", "\(daemon.log)")
        }

        // MARK: - HAProxy

        final class HAProxy {
            let dir: TempDir
            let pid: pid_t
            let logPath: String

            /// `frontends`: (listen port, backend port, server options).
            init(_ frontends: [(UInt16, UInt16, String)]) throws {
                let binary = "/usr/sbin/haproxy"
                guard access(binary, X_OK) == 0 else {
                    throw HarnessError("haproxy is not installed (Debian package haproxy; .ci/run installs it)")
                }
                dir = try TempDir()
                var config = """
                    global
                        maxconn 100
                    defaults
                        mode tcp
                        timeout connect 2s
                        timeout client 10s
                        timeout server 10s

                    """
                for (index, (listen, backend, options)) in frontends.enumerated() {
                    config += """
                        frontend f\(index)
                            bind 127.0.0.1:\(listen)
                            default_backend b\(index)
                        backend b\(index)
                            server s\(index) 127.0.0.1:\(backend) \(options)

                        """
                }
                let path = try dir.write("haproxy.cfg", config)
                logPath = dir.path + "/haproxy.log"
                pid = try Processes.spawn([binary, "-db", "-f", path], stdout: logPath, stderr: logPath)
                let ready = Clock.poll(timeout: 10) {
                    frontends.allSatisfy { TCP.connectErrno("127.0.0.1", $0.0) == 0 }
                }
                if !ready {
                    Processes.killAndReap(pid)
                    throw HarnessError("haproxy did not start; log:\n\(Files.read(logPath))")
                }
            }

            deinit { Processes.killAndReap(pid) }
        }

        @Test func realHAProxyWithSendProxyAndSendProxyV2() throws {
            let setup = try Setup(trusted: "127.0.0.1")
            let v1 = Ports.free()
            let v2 = Ports.free()
            let aclV1 = Ports.free()
            let aclV2 = Ports.free()
            let haproxy = try HAProxy([
                (v1, setup.env, "send-proxy"), (v2, setup.env, "send-proxy-v2"),
                (aclV1, setup.acl, "send-proxy"), (aclV2, setup.acl, "send-proxy-v2"),
            ])
            _ = haproxy
            for port in [v1, v2] {
                // The client connects from 127.0.0.2; HAProxy connects to swinetd from 127.0.0.1.
                let connection = try Connection.tcp("127.0.0.1", port, from: "127.0.0.2")
                let clientPort = connection.localPort
                // HAProxy may close its server side as soon as the client half-closes: read the
                // answer first, then close.
                try connection.send(Array("after the header\n".utf8))
                var text = String(decoding: connection.read(until: "after the header\n"), as: UTF8.self)
                connection.shutdownWrite()
                text += connection.readToEOF(timeout: 5).text
                #expect(
                    text == "ip=127.0.0.2 port=\(clientPort) lip=127.0.0.1 lport=\(port) via=127.0.0.1\nafter the header\n",
                    "port \(port)")
            }
            // only_from = ... 127.0.0.2: decided by the proxied client, not by HAProxy's address.
            for port in [aclV1, aclV2] {
                let served = try Connection.tcp("127.0.0.1", port, from: "127.0.0.2")
                let text = String(decoding: served.read(until: "\n"), as: UTF8.self)
                #expect(text.hasPrefix("ip=127.0.0.2 "), "port \(port): \(text); \(setup.daemon.log)")
                let refused = try Connection.tcp("127.0.0.1", port, from: "127.0.0.3")
                refused.shutdownWrite()
                #expect(refused.readToEOF(timeout: 5).bytes.isEmpty)
            }
            #expect(setup.daemon.waitForLog("FAIL: acl address from=127.0.0.3 via=127.0.0.1", count: 2))
            // A client going around HAProxy, straight to swinetd from 127.0.0.2, is not trusted.
            let direct = try Connection.tcp("127.0.0.1", setup.env, from: "127.0.0.2")
            try direct.send(Array("PROXY TCP4 10.9.9.9 127.0.0.1 1 2\r\n".utf8))
            direct.shutdownWrite()
            #expect(direct.readToEOF(timeout: 5).bytes.isEmpty)
            #expect(setup.daemon.waitForLog("FAIL: env proxy_untrusted from=127.0.0.2"))
        }
    }
}
