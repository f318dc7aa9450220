import Glibc
@testable import SwinetdCore
import Testing

/// The PROXY protocol parser (haproxy doc/proxy-protocol.txt), on crafted headers.
@Suite struct ProxyProtocolParserTests {
    static let signature: [UInt8] = [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A]

    static func v2(command: UInt8 = 0x21, family: UInt8 = 0x11, body: [UInt8]) -> [UInt8] {
        signature + [command, family, UInt8(body.count >> 8), UInt8(body.count & 0xff)] + body
    }

    static let v4Body: [UInt8] = [192, 0, 2, 7, 10, 0, 0, 1, 0x30, 0x39, 0x01, 0xBB]

    func header(_ outcome: ProxyProtocol.Outcome) -> ProxyProtocol.Header? {
        if case .header(let header) = outcome { return header }
        return nil
    }

    func isInvalid(_ outcome: ProxyProtocol.Outcome) -> Bool {
        if case .invalid = outcome { return true }
        return false
    }

    @Test func v1TCP4() throws {
        let text = Array("PROXY TCP4 192.0.2.7 10.0.0.1 12345 443\r\nGET /".utf8)
        let parsed = try #require(header(ProxyProtocol.parse(text)))
        #expect(parsed.version == 1)
        #expect(parsed.length == 41)
        #expect(parsed.source == .init(address: ip("192.0.2.7"), port: 12345))
        #expect(parsed.destination == .init(address: ip("10.0.0.1"), port: 443))
    }

    @Test func v1TCP6() throws {
        let text = Array("PROXY TCP6 2001:db8::7 ::1 65535 0\r\n".utf8)
        let parsed = try #require(header(ProxyProtocol.parse(text)))
        #expect(parsed.source == .init(address: ip("2001:db8::7"), port: 65535))
        #expect(parsed.destination == .init(address: ip("::1"), port: 0))
        #expect(parsed.length == text.count)
    }

    @Test func v1UnknownKeepsTheRealPeer() throws {
        let parsed = try #require(header(ProxyProtocol.parse(Array("PROXY UNKNOWN ff 00 1 2\r\nx".utf8))))
        #expect(parsed.source == nil)
        #expect(parsed.length == 25)
        #expect(header(ProxyProtocol.parse(Array("PROXY UNKNOWN\r\n".utf8)))?.length == 15)
    }

    @Test func v1PrefixesNeedMore() {
        for prefix in ["P", "PROX", "PROXY ", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r"] {
            #expect(ProxyProtocol.parse(Array(prefix.utf8)) == .needMore, "\(prefix)")
        }
    }

    @Test(arguments: [
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n",  // LF without CR
        "PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n",  // a field missing
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n",  // one too many
        "PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n",
        "PROXY TCP4 ::1 5.6.7.8 1 2\r\n",  // v6 address in TCP4
        "PROXY TCP6 1.2.3.4 ::1 1 2\r\n",  // v4 address in TCP6
        "PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n",
        "PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n",
        "PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n",  // leading zero
        "PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n",  // two spaces
        "PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n",
        "PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n",
        "PROXY TCP4 host.example 5.6.7.8 1 2\r\n",
        "PROXY TCP6 [::1] ::1 1 2\r\n",
        "PROXI TCP4 1.2.3.4 5.6.7.8 1 2\r\n",
        "GET / HTTP/1.0\r\n",
        "\r\n\r\nX",  // starts like the v2 signature, then is not
    ])
    func v1Malformed(_ text: String) {
        #expect(isInvalid(ProxyProtocol.parse(Array(text.utf8))), "\(text)")
    }

    @Test func v1OversizedAndControlBytes() {
        let long = "PROXY UNKNOWN " + String(repeating: "x", count: 100) + "\r\n"
        #expect(isInvalid(ProxyProtocol.parse(Array(long.utf8))))
        // 107 bytes with no line end: it can never become a header.
        #expect(isInvalid(ProxyProtocol.parse(Array(("PROXY UNKNOWN " + String(repeating: "x", count: 93)).utf8))))
        #expect(isInvalid(ProxyProtocol.parse(Array("PROXY TCP4 1.2.3.4\u{0} 5.6.7.8 1 2\r\n".utf8))))
        // The longest valid one: exactly 107 bytes.
        let max = "PROXY UNKNOWN " + String(repeating: "x", count: 91) + "\r\n"
        #expect(max.utf8.count == 107)
        #expect(header(ProxyProtocol.parse(Array(max.utf8)))?.length == 107)
    }

    @Test func v2IPv4WithTrailingData() throws {
        let bytes = Self.v2(body: Self.v4Body) + Array("hello".utf8)
        let parsed = try #require(header(ProxyProtocol.parse(bytes)))
        #expect(parsed.version == 2)
        #expect(parsed.length == 28)
        #expect(parsed.source == .init(address: ip("192.0.2.7"), port: 12345))
        #expect(parsed.destination == .init(address: ip("10.0.0.1"), port: 443))
    }

    @Test func v2IPv6AndTLVsSkipped() throws {
        let source = [UInt8](repeating: 0, count: 15) + [1]
        let destination: [UInt8] = [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 11) + [9]
        let tlvs: [UInt8] = [0x04, 0x00, 0x03, 0, 0, 0, 0x01, 0x00, 0x02, 0x68, 0x32]  // NOOP, ALPN "h2"
        let bytes = Self.v2(family: 0x21, body: source + destination + [0, 80, 1, 0] + tlvs)
        let parsed = try #require(header(ProxyProtocol.parse(bytes)))
        #expect(parsed.length == 16 + 36 + tlvs.count)
        #expect(parsed.source == .init(address: ip("::1"), port: 80))
        #expect(parsed.destination == .init(address: ip("2001:db8::9"), port: 256))
    }

    @Test func v2LocalAndUnspecKeepTheRealPeer() throws {
        let local = try #require(header(ProxyProtocol.parse(Self.v2(command: 0x20, family: 0x00, body: []))))
        #expect(local.source == nil && local.length == 16)
        // LOCAL with an address block: skipped, still the real peer.
        let localWithBody = try #require(header(ProxyProtocol.parse(Self.v2(command: 0x20, body: Self.v4Body))))
        #expect(localWithBody.source == nil && localWithBody.length == 28)
        let unspec = try #require(header(ProxyProtocol.parse(Self.v2(family: 0x00, body: [1, 2, 3]))))
        #expect(unspec.source == nil && unspec.length == 19)
        let unix = try #require(header(ProxyProtocol.parse(Self.v2(family: 0x31, body: [UInt8](repeating: 0, count: 216)))))
        #expect(unix.source == nil)
    }

    @Test func v2TruncatedNeedsMore() {
        let full = Self.v2(body: Self.v4Body)
        for cut in [1, 5, 12, 15, 16, 27] {
            #expect(ProxyProtocol.parse(Array(full.prefix(cut))) == .needMore, "\(cut) bytes")
        }
    }

    @Test func v2Malformed() {
        #expect(isInvalid(ProxyProtocol.parse(Self.v2(command: 0x11, body: Self.v4Body))))  // version 1
        #expect(isInvalid(ProxyProtocol.parse(Self.v2(command: 0x22, body: Self.v4Body))))  // command 2
        #expect(isInvalid(ProxyProtocol.parse(Self.v2(family: 0x12, body: Self.v4Body))))  // UDP
        #expect(isInvalid(ProxyProtocol.parse(Self.v2(family: 0x41, body: Self.v4Body))))  // family 4
        #expect(isInvalid(ProxyProtocol.parse(Self.v2(body: Array(Self.v4Body.prefix(8))))))  // too short for v4
        #expect(isInvalid(ProxyProtocol.parse(Self.v2(family: 0x21, body: Self.v4Body))))  // too short for v6
        var badSignature = Self.v2(body: Self.v4Body)
        badSignature[6] = 0x0B
        #expect(isInvalid(ProxyProtocol.parse(badSignature)))
        #expect(isInvalid(ProxyProtocol.parse(Array(badSignature.prefix(8)))))
    }

    @Test func v2OversizedIsRefusedFromTheLengthAlone() {
        // The fixed part announces 4000 bytes: refused before any of them is read.
        let bytes = Self.signature + [0x21, 0x11, 0x0F, 0xA0]
        #expect(isInvalid(ProxyProtocol.parse(bytes)))
        let largest = Self.v2(body: Self.v4Body + [UInt8](repeating: 0, count: ProxyProtocol.maximumV2Length - 28))
        #expect(header(ProxyProtocol.parse(largest))?.length == ProxyProtocol.maximumV2Length)
    }

    @Test func trustIsByNetwork() throws {
        let policy = ProxyProtocolPolicy(trusted: try SocketHandoffOptions.trustedNetworks(["10.0.0.0/8", "::1"]))
        #expect(policy.trusts(ip("10.1.2.3")))
        #expect(policy.trusts(ip("::ffff:10.1.2.3")))
        #expect(policy.trusts(ip("::1")))
        #expect(!policy.trusts(ip("11.0.0.1")))
        #expect(!policy.trusts(ip("127.0.0.1")))
        #expect(throws: (any Error).self) { try SocketHandoffOptions.trustedNetworks(["lb.example.com"]) }
        #expect(throws: (any Error).self) { try SocketHandoffOptions.trustedNetworks([".example.com"]) }
        #expect(throws: (any Error).self) { try SocketHandoffOptions.trustedNetworks([]) }
    }
}

/// `proxy_protocol`, `proxy_trusted` and `listen_fds` in both formats, their errors, and convert.
@Suite struct SocketHandoffConfigTests {
    @Test func inetdForms() throws {
        let fixture = try Fixture()
        let loaded = fixture.load(
            """
            127.0.0.1:4000 stream tcp4,proxy_protocol,proxy_trusted=10.0.0.0/8;192.0.2.1;::1 nowait root /bin/cat cat
            4001 stream tcp4,listen_fds wait root /bin/cat cat
            4002 stream tcp4,proxy_protocol=no nowait root /bin/cat cat
            """)
        #expect(loaded.messages == [])
        let proxied = try #require(loaded.services.first)
        #expect(proxied.proxyProtocol?.trusted == [network("10.0.0.0", 8), network("192.0.2.1", 32), network("::1", 128)])
        #expect(!proxied.listenFDs)
        #expect(loaded.services[1].listenFDs)
        #expect(loaded.services[1].proxyProtocol == nil)
        #expect(loaded.services[2].proxyProtocol == nil)
    }

    @Test(arguments: [
        ("4000 stream tcp4,proxy_protocol nowait root /bin/cat cat", "proxy_protocol needs proxy_trusted"),
        ("4000 stream tcp4,proxy_trusted=10.0.0.0/8 nowait root /bin/cat cat", "proxy_trusted without proxy_protocol"),
        ("4000 stream tcp4,proxy_protocol,proxy_trusted=lb.example nowait root /bin/cat cat", "not host names"),
        ("4000 stream tcp4,proxy_protocol,proxy_trusted=10.0.0.0/33 nowait root /bin/cat cat", "bad prefix length"),
        ("4000 stream tcp4,proxy_protocol,proxy_trusted=1.2.3.4;;5.6.7.8 nowait root /bin/cat cat", "empty item"),
        ("4000 stream tcp4,proxy_protocol,proxy_trusted=1.2.3.4 wait root /bin/cat cat", "needs a nowait service"),
        ("4000 dgram udp4,proxy_protocol,proxy_trusted=1.2.3.4 wait root /bin/cat cat", "needs a TCP stream service"),
        ("/tmp/x.sock stream unix,proxy_protocol,proxy_trusted=1.2.3.4 nowait root /bin/cat cat", "needs a TCP stream"),
        ("4000 stream tcp4,proxy_protocol=maybe,proxy_trusted=1.2.3.4 nowait root /bin/cat cat", "must be yes or no"),
        ("4000 stream tcp4,listen_fds nowait root /bin/cat cat", "listen_fds needs a wait service"),
        ("echo stream tcp4,listen_fds wait root internal", "listen_fds needs a wait service"),
    ])
    func inetdErrors(line: String, message: String) throws {
        let loaded = try Fixture().load(line)
        #expect(loaded.services.isEmpty, "\(line)")
        #expect(loaded.messages.contains { $0.hasPrefix("test.conf:1: error:") && $0.contains(message) }, "\(loaded.messages)")
    }

    @Test func xinetdForms() throws {
        let fixture = try Fixture.xinetd()
        let loaded = fixture.load(
            """
            service web
            {
                type = UNLISTED
                socket_type = stream
                wait = no
                user = root
                port = 4000
                server = /bin/cat
                proxy_protocol = yes
                proxy_trusted = 10.0.0.0/8 2001:db8::/32
            }
            service sd
            {
                type = UNLISTED
                socket_type = stream
                wait = yes
                user = root
                port = 4001
                server = /bin/cat
                listen_fds = yes
            }
            service bad
            {
                type = UNLISTED
                socket_type = stream
                wait = no
                user = root
                port = 4002
                server = /bin/cat
                proxy_protocol = yes
            }
            service bad2
            {
                type = UNLISTED
                socket_type = stream
                wait = no
                user = root
                port = 4003
                server = /bin/cat
                listen_fds = yes
            }
            """)
        #expect(loaded.service(id: "web")?.proxyProtocol?.trusted == [network("10.0.0.0", 8), network("2001:db8::", 32)])
        #expect(loaded.service(id: "sd")?.listenFDs == true)
        #expect(loaded.service(id: "bad") == nil)
        #expect(loaded.service(id: "bad2") == nil)
        #expect(loaded.errors.contains { $0.hasPrefix("test.conf:30: error: proxy_protocol needs proxy_trusted") }, "\(loaded.errors)")
        #expect(loaded.errors.contains { $0.hasPrefix("test.conf:40: error: listen_fds needs a wait service") }, "\(loaded.errors)")
    }

    @Test func checkTableShowsThem() throws {
        let loaded = try Fixture().load(
            """
            127.0.0.1:4000 stream tcp4,proxy_protocol,proxy_trusted=10.0.0.0/8;::1 nowait root /bin/cat cat
            127.0.0.1,[::1]:4001 stream tcp,listen_fds wait root /bin/cat cat
            """)
        let table = ServiceTable.render(loaded.services)
        #expect(table.contains("\n    proxy_protocol from 10.0.0.0/8 ::1/128\n"), "\(table)")
        #expect(table.contains("\n    listen_fds: 2 socket(s) as fd 3 and up\n"), "\(table)")
    }

    @Test func convertCarriesThemBothWays() throws {
        let fixture = try Fixture.xinetd()
        let text = """
            127.0.0.1:4000 stream tcp4,proxy_protocol,proxy_trusted=10.0.0.0/8;::1 nowait root /bin/cat cat
            127.0.0.1:4001 stream tcp4,listen_fds wait root /bin/cat cat
            """
        let input = try fixture.directory.write("input", text)
        let original = ConfigLoader.load(paths: [input], options: fixture.options)
        #expect(original.messages == [])
        for format in [ConfigFormat.xinetd, .inetd] {
            let output = ConfigConverter.render(
                original.services, as: format, servicesDatabase: ServicesDatabase.load(path: fixture.options.servicesFile),
                sources: original.files)
            let converted = try fixture.directory.write("converted-\(format)", output.text)
            let reloaded = ConfigLoader.load(paths: [converted], options: fixture.options)
            #expect(reloaded.messages == [], "\(output.text)")
            #expect(reloaded.services.map(\.proxyProtocol) == original.services.map(\.proxyProtocol), "\(output.text)")
            #expect(reloaded.services.map(\.listenFDs) == [false, true], "\(output.text)")
        }
    }
}

/// How inherited (systemd) sockets are matched to configured listeners.
@Suite struct InheritedSocketMatchingTests {
    @Test func v6OnlyMattersOnlyForTheIPv6Wildcard() {
        #expect(InheritedSockets.effectiveV6Only(ip("::"), false) == false)
        #expect(InheritedSockets.effectiveV6Only(ip("::"), true) == true)
        #expect(InheritedSockets.effectiveV6Only(ip("::1"), false) == true)
        #expect(InheritedSockets.effectiveV6Only(ip("::ffff:127.0.0.1"), true) == false)
        #expect(InheritedSockets.effectiveV6Only(ip("127.0.0.1"), true) == false)
        let dual = ListenerSpec(address: .inet(ip("::"), port: 13, v6Only: false), socketType: .stream)
        let v6 = ListenerSpec(address: .inet(ip("::"), port: 13, v6Only: true), socketType: .stream)
        #expect(InheritedSockets.identity(of: dual) != InheritedSockets.identity(of: v6))
        let udp = ListenerSpec(address: .inet(ip("::"), port: 13, v6Only: false), socketType: .dgram)
        #expect(InheritedSockets.identity(of: dual) != InheritedSockets.identity(of: udp))
        let unix = ListenerSpec(address: .unix(path: "/run/a.sock", owner: 1, group: 2, mode: 0o600), socketType: .stream)
        #expect(InheritedSockets.identity(of: unix) == .init(address: .unix("/run/a.sock"), socketType: .stream))
    }

    @Test func identifiesARealSocket() throws {
        let fd = socket(AF_INET6, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var off: Int32 = 0
        setsockopt(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, &off, socklen_t(MemoryLayout<Int32>.size))
        var storage = sockaddr_storage()
        let length = SocketAddressFormatting.fill(&storage, address: ip("::"), port: 0)
        let bound = withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
        }
        #expect(bound == 0)
        let identity = try #require(InheritedSockets.identify(fd))
        guard case .inet(let address, let port, let v6Only) = identity.address else {
            Issue.record("not inet: \(identity)")
            return
        }
        #expect(address == ip("::") && port != 0 && !v6Only && identity.socketType == .stream)
        let spec = ListenerSpec(address: .inet(ip("::"), port: port, v6Only: false), socketType: .stream)
        #expect(InheritedSockets.identity(of: spec) == identity)
    }
}
