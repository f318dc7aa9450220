import Foundation
import Glibc
import Testing

/// TLS termination (docs/TLS.md) with real clients: `openssl s_client` and `curl` talk TLS to
/// swinetd, the program behind it reads and writes plaintext. The PKI is made at test time by
/// Tests/helpers/make-test-pki.sh (openssl CLI; CI installs openssl and curl): no keys are
/// committed.
extension Integration {
    @Suite struct TLSTests {
        /// The test PKI plus a scratch directory; everything is removed when released.
        final class PKI {
            let dir: TempDir
            init() throws {
                dir = try TempDir()
                let result = try Processes.run(["/bin/sh", Binaries.helpers + "/make-test-pki.sh", dir.path])
                guard result.status == .exited(0) else { throw HarnessError("make-test-pki.sh: \(result)") }
            }
            func path(_ name: String) -> String { dir.path + "/" + name }
            /// `tcp,tls_certificate=...,tls_key=...[,tls_client_ca=...]` for an inetd.conf line.
            func proto(_ transport: String = "tcp", certificate: String = "server", clientCA: Bool = false) -> String {
                "\(transport),tls_certificate=\(path(certificate + ".pem")),tls_key=\(path(certificate + ".key"))"
                    + (clientCA ? ",tls_client_ca=\(path("ca.pem"))" : "")
            }
        }

        static func shell(_ script: String, timeout: Double = 20) throws -> Processes.CommandResult {
            try Processes.run(["/bin/sh", "-c", script], timeout: timeout)
        }

        /// `openssl s_client` verifying the server against the test CA.
        static func sClient(_ pki: PKI, port: UInt16, _ extra: String = "") -> String {
            "openssl s_client -connect 127.0.0.1:\(port) -CAfile \(pki.path("ca.pem")) -verify_return_error \(extra)"
        }

        /// Sends `line` through `openssl s_client` to a service that echoes it, waits (at most 10 s)
        /// until the echo is back, then closes stdin: s_client sends close_notify and exits.
        static func roundTrip(_ pki: PKI, port: UInt16, _ line: String) throws -> Processes.CommandResult {
            let out = pki.path("roundtrip-\(port).out")
            return try shell(
                "(printf '\(line)\\n'; i=0; while ! grep -q '\(line)' \(out) && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done) | "
                    + sClient(pki, port: port, "-quiet -no_ign_eof -nocommands") + " >\(out); cat \(out)")
        }

        @Test func openSSLClientRoundTripThroughCat() throws {
            let pki = try PKI()
            let port = Ports.free()
            let daemon = try Daemon(config: "127.0.0.1:\(port) stream \(pki.proto()) nowait nobody /bin/cat cat\n")
            defer { daemon.stop() }
            // The client sends a line, waits for the echo, then closes (close_notify): cat reads EOF
            // and exits, and swinetd closes the TLS connection.
            let result = try Self.roundTrip(pki, port: port, "hello over tls")
            #expect(result.stdout == "hello over tls\n", "\(result)")
            #expect(daemon.waitForLog("EXIT: \(port)"), "\(daemon.log)")
            #expect(daemon.count("FAIL:") == 0, "\(daemon.log)")
        }

        @Test func curlGetsAnHTTPResponseFromAShellScript() throws {
            let pki = try PKI()
            let port = Ports.free()
            let script = try pki.dir.write(
                "http.sh",
                """
                #!/bin/sh
                IFS= read -r request
                printf 'HTTP/1.0 200 OK\\r\\nContent-Type: text/plain\\r\\nConnection: close\\r\\n\\r\\n'
                printf 'request: %s\\n' "$request" | tr -d '\\r'
                printf 'tls: %s\\n' "$TLS_VERSION"
                printf 'client: %s\\n' "${TLS_CLIENT_SUBJECT:-none}"
                printf 'remote: %s %s\\n' "$PROTO" "$TCPREMOTEIP"

                """)
            chmod(script, 0o755)
            let daemon = try Daemon(config: "127.0.0.1:\(port) stream \(pki.proto("tcp4")) nowait nobody \(script) http\n")
            defer { daemon.stop() }
            let result = try Processes.run([
                "/usr/bin/curl", "-sS", "--max-time", "10", "--cacert", pki.path("ca.pem"),
                "https://127.0.0.1:\(port)/hello",
            ])
            #expect(result.status == .exited(0), "\(result)\n\(daemon.log)")
            #expect(result.stdout.contains("request: GET /hello HTTP/1.1"), "\(result)")
            #expect(result.stdout.contains("tls: TLSv1.3"), "\(result)")
            #expect(result.stdout.contains("client: none"), "\(result)")
            #expect(result.stdout.contains("remote: TCP 127.0.0.1"), "\(result)")
            // A client that does not trust the certificate refuses it, and no program runs.
            let untrusting = try Processes.run([
                "/usr/bin/curl", "-sS", "--max-time", "10", "--cacert", pki.path("other-ca.pem"),
                "https://127.0.0.1:\(port)/hello",
            ])
            #expect(untrusting.status != .exited(0), "\(untrusting)")
            #expect(daemon.waitForLog("FAIL: \(port) tls handshake"), "\(daemon.log)")
            #expect(daemon.settledCount("START: \(port)", expected: 1) == 1, "\(daemon.log)")
        }

        @Test func clientCertificateIsRequiredAndItsSubjectReachesTheProgram() throws {
            let pki = try PKI()
            let port = Ports.free()
            let daemon = try Daemon(
                config: "127.0.0.1:\(port) stream \(pki.proto(clientCA: true)) nowait nobody /usr/bin/env env\n")
            defer { daemon.stop() }
            // Without a certificate, and with one from another CA: refused, no program started.
            let anonymous = try Self.shell(Self.sClient(pki, port: port, "-quiet") + " </dev/null")
            #expect(!anonymous.stdout.contains("PATH="), "\(anonymous)")
            let stranger = try Self.shell(
                Self.sClient(pki, port: port, "-quiet -cert \(pki.path("stranger.pem")) -key \(pki.path("stranger.key"))")
                    + " </dev/null")
            #expect(!stranger.stdout.contains("PATH="), "\(stranger)")
            #expect(daemon.waitForLog("FAIL: \(port) tls handshake", count: 2), "\(daemon.log)")
            #expect(daemon.count("START: \(port)") == 0, "\(daemon.log)")

            let alice = try Self.shell(
                Self.sClient(pki, port: port, "-quiet -cert \(pki.path("client.pem")) -key \(pki.path("client.key"))")
                    + " </dev/null")
            let expected = try Processes.run([
                "/usr/bin/openssl", "x509", "-in", pki.path("client.pem"), "-noout", "-subject", "-nameopt", "RFC2253",
            ]).stdout.trimmingCharacters(in: .whitespacesAndNewlines).replacingOccurrences(of: "subject=", with: "")
            #expect(expected == "CN=alice,OU=Ops,O=Example Org,C=DE")
            let lines = alice.stdout.split(separator: "\n").map(String.init)
            #expect(lines.contains("TLS_CLIENT_SUBJECT=\(expected)"), "\(alice)")
            #expect(lines.contains("TLS_CLIENT_ISSUER=CN=swinetd test CA"), "\(alice)")
            #expect(lines.contains("TLS_VERSION=TLSv1.3"), "\(alice)")
            #expect(lines.contains("PROTO=TCP"), "\(alice)")
            #expect(lines.contains("TCPREMOTEIP=127.0.0.1"), "\(alice)")
            #expect(lines.contains("TCPLOCALPORT=\(port)"), "\(alice)")
            #expect(daemon.waitForLog("START: \(port)"), "\(daemon.log)")
        }

        @Test func badCertificatePathIsAnErrorWithFileAndLineAndTheServiceIsRefused() throws {
            let pki = try PKI()
            let good = Ports.free()
            let bad = Ports.free()
            let config = """
                127.0.0.1:\(good) stream \(pki.proto()) nowait nobody /bin/cat cat
                127.0.0.1:\(bad) stream tcp,tls_certificate=/nonexistent/swinetd.pem,tls_key=\(pki.path("server.key")) nowait nobody /bin/cat cat

                """
            let file = try pki.dir.write("inetd.conf", config)
            let check = try Processes.run([Binaries.swinetd, "check", "-f", file])
            #expect(check.status == .exited(1), "\(check)")
            #expect(
                check.stderr.contains("\(file):2: error: tls_certificate /nonexistent/swinetd.pem: No such file or directory"),
                "\(check)")
            #expect(check.stdout.contains("tls: certificate \(pki.path("server.pem"))"), "\(check)")

            let daemon = try Daemon(config: config)
            defer { daemon.stop() }
            #expect(TCP.connectErrno("127.0.0.1", bad) == ECONNREFUSED)
            let result = try Self.roundTrip(pki, port: good, "still here")
            #expect(result.stdout == "still here\n", "\(result)")
        }

        @Test func reloadUsesARenewedCertificateForNewConnections() throws {
            let pki = try PKI()
            let port = Ports.free()
            func copy(_ from: String, _ to: String) throws {
                try Files.write(pki.path(to), Array(Files.read(pki.path(from)).utf8))
                chmod(pki.path(to), 0o600)
            }
            try copy("server.pem", "live.pem")
            try copy("server.key", "live.key")
            let daemon = try Daemon(
                config: "127.0.0.1:\(port) stream \(pki.proto(certificate: "live")) nowait nobody /usr/bin/env env\n")
            defer { daemon.stop() }
            func fingerprint(file: String) throws -> String {
                try Processes.run(["/usr/bin/openssl", "x509", "-in", pki.path(file), "-noout", "-fingerprint", "-sha256"])
                    .stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            }
            func served() throws -> String {
                try Self.shell(
                    Self.sClient(pki, port: port) + " </dev/null 2>/dev/null | openssl x509 -noout -fingerprint -sha256"
                ).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            }
            let first = try fingerprint(file: "server.pem")
            let second = try fingerprint(file: "server2.pem")
            #expect(first != second)
            #expect(try served() == first)
            try copy("server2.pem", "live.pem")
            try copy("server2.key", "live.key")
            let line = daemon.hangUp()
            #expect(line?.contains("reloaded") == true, "\(daemon.log)")
            #expect(try served() == second)
        }

        @Test func eightMegabytesBothWaysArriveIntact() throws {
            let pki = try PKI()
            let port = Ports.free()
            let size = 8 << 20
            var payload = [UInt8](repeating: 0, count: size)
            var state: UInt64 = 0x9E37_79B9_7F4A_7C15
            for index in 0..<size {
                state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                payload[index] = UInt8(truncatingIfNeeded: state >> 33)
            }
            let input = pki.path("in.bin")
            let output = pki.path("out.bin")
            try Files.write(input, payload)
            // head copies 8 MB from the client back to it while the client is still sending, then
            // exits; swinetd sends close_notify and the client stops.
            let daemon = try Daemon(
                config: "127.0.0.1:\(port) stream \(pki.proto()) nowait nobody /usr/bin/head head -c \(size)\n")
            defer { daemon.stop() }
            let started = Clock.now
            let result = try Self.shell(
                Self.sClient(pki, port: port, "-quiet -nocommands") + " <\(input) >\(output) 2>\(pki.path("err"))",
                timeout: 60)
            let seconds = Clock.now - started
            let data = FileManager.default.contents(atPath: output).map { [UInt8]($0) } ?? []
            #expect(data.count == size, "\(result) \(Files.read(pki.path("err")))")
            #expect(data == payload, "first difference at \(zip(data, payload).enumerated().first { $0.element.0 != $0.element.1 }?.offset ?? min(data.count, payload.count))")
            #expect(seconds < 30)
            #expect(daemon.waitForLog("EXIT: \(port)"), "\(daemon.log)")
        }

        /// A client that resets in the middle of a session: swinetd closes the socketpair, so the
        /// program reads EOF and exits, and nothing of the connection is left behind.
        @Test func aResetClientEndsTheProgram() throws {
            let pki = try PKI()
            let port = Ports.free()
            let daemon = try Daemon(config: "127.0.0.1:\(port) stream \(pki.proto()) nowait nobody /bin/cat cat\n")
            defer { daemon.stop() }
            let client = """
                import socket, ssl, struct
                ctx = ssl.create_default_context(cafile="\(pki.path("ca.pem"))")
                raw = socket.create_connection(("127.0.0.1", \(port)))
                tls = ctx.wrap_socket(raw, server_hostname="localhost")
                tls.sendall(b"x" * 100000)
                got = 0
                while got < 1000:
                    got += len(tls.recv(65536))
                tls.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                tls.close()
                print("reset after", got)
                """
            let result = try Processes.run(["/usr/bin/python3", "-c", client])
            #expect(result.stdout.hasPrefix("reset after"), "\(result)")
            #expect(daemon.waitForLog("EXIT: \(port)"), "\(daemon.log)")
            #expect(Clock.poll(timeout: 3) { daemon.children().isEmpty }, "\(daemon.children())")
        }

        @Test func aStalledHandshakeIsCutOffAndDoesNotHoldUpOthers() throws {
            let pki = try PKI()
            let port = Ports.free()
            let daemon = try Daemon(
                config: "127.0.0.1:\(port) stream \(pki.proto()) nowait nobody /bin/cat cat\n",
                arguments: ["--tls-handshake-timeout", "1"])
            defer { daemon.stop() }
            let stalled = try Connection.tcp("127.0.0.1", port)
            let partial = try Connection.tcp("127.0.0.1", port)
            try partial.send([0x16, 0x03, 0x01, 0x00, 0x80])  // the start of a ClientHello, then nothing
            let result = try Self.roundTrip(pki, port: port, "meanwhile")
            #expect(result.stdout == "meanwhile\n", "\(result)")
            let started = Clock.now
            let cut = stalled.readToEOF(timeout: 5)
            #expect(cut.eof || cut.error != nil)
            #expect(Clock.now - started < 3)
            let cutPartial = partial.readToEOF(timeout: 5)
            #expect(cutPartial.eof || cutPartial.error != nil)
            #expect(daemon.waitForLog("tls handshake (timed out", count: 2), "\(daemon.log)")
            #expect(daemon.settledCount("START: \(port)", expected: 1) == 1, "\(daemon.log)")
        }
    }
}
