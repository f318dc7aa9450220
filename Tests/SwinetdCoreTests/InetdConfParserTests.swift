import Glibc
import SwinetdCore
import Testing

// MARK: - Shared fixtures

struct TestSetupError: Error, CustomStringConvertible {
    var description: String
}

/// A fresh directory under /tmp (mkdtemp), removed with everything in it when released.
final class TemporaryDirectory {
    let path: String

    init() throws {
        var template = Array("/tmp/swinetd-test.XXXXXX".utf8CString)
        guard mkdtemp(&template) != nil else { throw TestSetupError(description: "mkdtemp failed") }
        path = String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    deinit { Self.remove(path) }

    /// Writes `bytes` to `name` (relative to the directory) with `mode`; returns the full path.
    @discardableResult
    func write(_ name: String, bytes: [UInt8], mode: mode_t = 0o644) throws -> String {
        let file = path + "/" + name
        let descriptor = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
        guard descriptor >= 0 else { throw TestSetupError(description: "cannot create \(file)") }
        defer { close(descriptor) }
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress, $0.count) }
            guard written > 0 else { throw TestSetupError(description: "cannot write \(file)") }
            offset += written
        }
        guard fchmod(descriptor, mode) == 0 else { throw TestSetupError(description: "cannot chmod \(file)") }
        return file
    }

    @discardableResult
    func write(_ name: String, _ text: String, mode: mode_t = 0o644) throws -> String {
        try write(name, bytes: Array(text.utf8), mode: mode)
    }

    @discardableResult
    func makeDirectory(_ name: String) throws -> String {
        let directory = path + "/" + name
        guard mkdir(directory, 0o755) == 0 else { throw TestSetupError(description: "cannot mkdir \(directory)") }
        return directory
    }

    private static func remove(_ path: String) {
        if let stream = opendir(path) {
            while let entry = readdir(stream) {
                // Read d_name in place: a readdir record may end before the 256-byte field does.
                let offset = MemoryLayout<dirent>.offset(of: \dirent.d_name)!
                let name = String(cString: (UnsafeRawPointer(entry) + offset).assumingMemoryBound(to: CChar.self))
                guard name != ".", name != ".." else { continue }
                let child = path + "/" + name
                if entry.pointee.d_type == UInt8(DT_DIR) { remove(child) } else { unlink(child) }
            }
            closedir(stream)
        }
        rmdir(path)
    }
}

/// A small /etc/services, so tests do not depend on the machine's.
let servicesFixture = """
    # test services
    tcpmux          1/tcp                   # TCP port service multiplexer
    echo            7/tcp
    echo            7/udp
    discard         9/tcp           sink null
    discard         9/udp           sink null
    daytime         13/tcp
    chargen         19/tcp          ttytst source
    time            37/tcp          timserver
    www             80/tcp          http    # WorldWideWeb HTTP
    tftp            69/udp
    myservice       4000/tcp        mine

    """

/// A temporary directory holding a services file, and options that point at it with swinetd as root.
struct Fixture {
    let directory: TemporaryDirectory
    var options = LoadOptions()

    init() throws {
        directory = try TemporaryDirectory()
        options.servicesFile = try directory.write("services", servicesFixture)
        options.daemonUID = 0
        options.daemonGID = 0
    }

    /// Parses `text` as a file named `test.conf`.
    func load(_ text: String) -> LoadedConfiguration {
        ConfigLoader.load(text: Array(text.utf8), file: "test.conf", options: options)
    }

    func load(bytes: [UInt8]) -> LoadedConfiguration {
        ConfigLoader.load(text: bytes, file: "test.conf", options: options)
    }
}

extension LoadedConfiguration {
    var messages: [String] { diagnostics.map(\.description) }
}

/// Both listeners `tcp`/`udp` open for `*`.
func dualListeners(port: UInt16, _ socketType: SocketType = .stream) -> [ListenerSpec] {
    [
        ListenerSpec(address: .inet(.anyV4, port: port, v6Only: false), socketType: socketType),
        ListenerSpec(address: .inet(.anyV6, port: port, v6Only: true), socketType: socketType),
    ]
}

func ip(_ text: String) -> IPAddress {
    SocketAddressFormatting.parseNumeric(text)!
}

let rootCredentials = Credentials(user: "root", uid: 0, gid: 0, groups: [0], changeIdentity: true)

// MARK: - Lines, comments, bytes

@Suite struct InetdConfLineTests {
    @Test func parsesACompleteBuiltinEntry() throws {
        let config = try Fixture().load("echo\tstream  tcp nowait root internal\n")
        #expect(config.messages == [])
        #expect(
            config.services == [
                Service(
                    name: "echo", location: ConfigLocation(file: "test.conf", line: 1), socketType: .stream,
                    protocolName: "tcp", listeners: dualListeners(port: 7), wait: false,
                    credentials: rootCredentials, program: .builtin(.echo))
            ])
        #expect(config.files == ["test.conf"])
    }

    @Test func skipsCommentsAndBlankLinesAndKeepsMidLineHashes() throws {
        let config = try Fixture().load(
            """
            # a comment
               # an indented comment

            \t
            daytime stream tcp nowait root /bin/true true #not-a-comment a#b
            """)
        #expect(config.messages == [])
        #expect(config.services.count == 1)
        #expect(config.services[0].location.line == 5)
        #expect(
            config.services[0].program == .external(path: "/bin/true", arguments: ["true", "#not-a-comment", "a#b"]))
    }

    @Test func joinsContinuationLines() throws {
        let config = try Fixture().load(
            """
            4000 stream tcp nowait root /bin/true
              true -a
            # a commented-out argument does not end the entry
            \t-b

              time stream tcp nowait root internal
            """)
        #expect(config.messages == [])
        #expect(config.services.map(\.location.line) == [1, 6])
        #expect(config.services[0].program == .external(path: "/bin/true", arguments: ["true", "-a", "-b"]))
        // After a blank line an indented line starts a new entry.
        #expect(config.services[1].builtin == .time)
    }

    @Test func acceptsCRLFAndAMissingFinalNewline() throws {
        let config = try Fixture().load(
            "echo stream tcp nowait root internal\r\ndiscard stream tcp nowait root internal\r\n\r\nchargen stream tcp nowait root internal"
        )
        #expect(config.messages == [])
        #expect(config.services.map(\.builtin) == [.echo, .discard, .chargen])
        #expect(config.services.map(\.location.line) == [1, 2, 4])
    }

    @Test func refusesAnEntryWithANulByte() throws {
        var bytes = Array("echo stream tcp nowait root internal\ndiscard stream tcp nowait root internal\n  ".utf8)
        bytes += [0] + Array("x\ndaytime stream tcp nowait root internal\n".utf8)
        let config = try Fixture().load(bytes: bytes)
        #expect(config.messages == ["test.conf:2: error: NUL byte on line 3"])
        #expect(config.services.map(\.builtin) == [.echo, .daytime])
    }

    @Test func refusesAnEntryThatIsNotUTF8() throws {
        let bytes =
            Array("echo stream tcp nowait root /bin/true caf".utf8) + [0xE9]
            + Array("\ntime stream tcp nowait root internal\n".utf8)
        let config = try Fixture().load(bytes: bytes)
        #expect(config.messages == ["test.conf:1: error: line 1 is not valid UTF-8"])
        #expect(config.services.map(\.builtin) == [.time])
    }

    @Test func keepsEveryArgumentOfAHundredKilobyteLine() throws {
        let arguments = (0..<5000).map { "argument-\($0)-" + String(repeating: "x", count: 6) }
        let line = "4000 stream tcp nowait root /bin/true " + arguments.joined(separator: " ")
        #expect(line.utf8.count > 100_000)
        let config = try Fixture().load(line + "\n")
        #expect(config.messages == [])
        #expect(config.services.first?.program == .external(path: "/bin/true", arguments: arguments))
    }

    @Test func refusesAnIncompleteEntry() throws {
        let config = try Fixture().load("echo stream tcp nowait root\n")
        #expect(
            config.messages == [
                "test.conf:1: error: incomplete entry: expected service, socket type, protocol, wait, user and program, found 5 fields"
            ])
        #expect(config.services.isEmpty)
    }
}

// MARK: - Hosts

@Suite struct InetdConfHostTests {
    @Test func bindsAnIPv4Literal() throws {
        let config = try Fixture().load("127.0.0.1:echo stream tcp nowait root internal\n")
        #expect(config.messages == [])
        #expect(config.services.first?.name == "echo")
        #expect(
            config.services.first?.listeners == [
                ListenerSpec(address: .inet(ip("127.0.0.1"), port: 7, v6Only: false), socketType: .stream)
            ])
    }

    @Test(arguments: ["[::1]:echo", "::1:echo"])
    func bindsAnIPv6LiteralBracketedOrBare(field: String) throws {
        let config = try Fixture().load("\(field) stream tcp nowait root internal\n")
        #expect(config.messages == [])
        #expect(
            config.services.first?.listeners == [
                ListenerSpec(address: .inet(ip("::1"), port: 7, v6Only: true), socketType: .stream)
            ])
    }

    @Test func makesOneListenerPerHostInAList() throws {
        let config = try Fixture().load("127.0.0.1,[::1],localhost:7 stream tcp nowait root internal echo\n")
        #expect(!config.hasErrors)
        #expect(
            config.services.first?.listeners.map(\.address) == [
                .inet(ip("127.0.0.1"), port: 7, v6Only: false), .inet(ip("::1"), port: 7, v6Only: true),
            ])
        // localhost repeats 127.0.0.1 (and ::1 where it resolves to that too): reported once, bound once.
        #expect(config.messages.contains("test.conf:1: warning: stream 127.0.0.1:7 listed twice"))
    }

    @Test func refusesAnUnresolvableHost() throws {
        let config = try Fixture().load("no-such-host.invalid:echo stream tcp nowait root internal\n")
        #expect(config.messages == ["test.conf:1: error: cannot resolve host no-such-host.invalid"])
        #expect(config.services.isEmpty)
    }

    @Test func refusesAnEmptyHostOrService() throws {
        let config = try Fixture().load(
            """
            127.0.0.1,:echo stream tcp nowait root internal
            127.0.0.1: stream tcp nowait root internal
            """)
        #expect(
            config.messages == [
                "test.conf:1: error: empty host name in 127.0.0.1,:echo",
                "test.conf:2: error: missing service name after host 127.0.0.1:",
            ])
    }

    @Test func appliesDefaultHostLinesUntilReset() throws {
        let config = try Fixture().load(
            """
            127.0.0.1,::1:
            echo stream tcp nowait root internal
            *:
            discard stream tcp4 nowait root internal
            ,:
            """)
        #expect(config.messages == ["test.conf:5: error: empty host name in default host list ,:"])
        #expect(
            config.services.map(\.listeners) == [
                [
                    ListenerSpec(address: .inet(ip("127.0.0.1"), port: 7, v6Only: false), socketType: .stream),
                    ListenerSpec(address: .inet(ip("::1"), port: 7, v6Only: true), socketType: .stream),
                ],
                [ListenerSpec(address: .inet(.anyV4, port: 9, v6Only: false), socketType: .stream)],
            ])
    }
}

// MARK: - Protocols and socket types

/// One protocol-field case: the listeners `*` gives, and the error for an address of the wrong family.
struct ProtocolCase: Sendable, CustomTestStringConvertible {
    var proto: String
    var socketType: SocketType
    var wildcard: [ListenAddress]
    var refusedHost: String?
    var acceptedHost: (host: String, address: ListenAddress)?

    var testDescription: String { proto }
}

@Suite struct InetdConfProtocolTests {
    static let cases: [ProtocolCase] = [
        ProtocolCase(
            proto: "tcp", socketType: .stream,
            wildcard: [.inet(.anyV4, port: 7, v6Only: false), .inet(.anyV6, port: 7, v6Only: true)],
            acceptedHost: ("::1", .inet(ip("::1"), port: 7, v6Only: true))),
        ProtocolCase(
            proto: "udp", socketType: .dgram,
            wildcard: [.inet(.anyV4, port: 7, v6Only: false), .inet(.anyV6, port: 7, v6Only: true)],
            acceptedHost: ("127.0.0.1", .inet(ip("127.0.0.1"), port: 7, v6Only: false))),
        ProtocolCase(
            proto: "tcp4", socketType: .stream, wildcard: [.inet(.anyV4, port: 7, v6Only: false)],
            refusedHost: "::1"),
        ProtocolCase(
            proto: "udp4", socketType: .dgram, wildcard: [.inet(.anyV4, port: 7, v6Only: false)],
            refusedHost: "[::1]"),
        ProtocolCase(
            proto: "tcp6", socketType: .stream, wildcard: [.inet(.anyV6, port: 7, v6Only: true)],
            refusedHost: "127.0.0.1"),
        ProtocolCase(
            proto: "udp6", socketType: .dgram, wildcard: [.inet(.anyV6, port: 7, v6Only: true)],
            refusedHost: "127.0.0.1"),
        ProtocolCase(
            proto: "tcp6only", socketType: .stream, wildcard: [.inet(.anyV6, port: 7, v6Only: true)],
            refusedHost: "127.0.0.1"),
        ProtocolCase(
            proto: "udp6only", socketType: .dgram, wildcard: [.inet(.anyV6, port: 7, v6Only: true)],
            refusedHost: "127.0.0.1"),
        ProtocolCase(
            proto: "tcp46", socketType: .stream, wildcard: [.inet(.anyV6, port: 7, v6Only: false)],
            refusedHost: "127.0.0.1", acceptedHost: ("::1", .inet(ip("::1"), port: 7, v6Only: false))),
        ProtocolCase(
            proto: "udp46", socketType: .dgram, wildcard: [.inet(.anyV6, port: 7, v6Only: false)],
            refusedHost: "127.0.0.1"),
    ]

    @Test(arguments: cases)
    func listensOnTheProtocolsAddressFamilies(_ testCase: ProtocolCase) throws {
        let fixture = try Fixture()
        let type = testCase.socketType.rawValue
        let config = fixture.load("echo \(type) \(testCase.proto) wait root internal\n")
        #expect(config.messages == [])
        #expect(config.services.first?.listeners.map(\.address) == testCase.wildcard)
        #expect(config.services.first?.protocolName == testCase.proto)
        if let host = testCase.refusedHost {
            let refused = fixture.load("\(host):echo \(type) \(testCase.proto) wait root internal\n")
            let family = testCase.proto.hasSuffix("4") && !testCase.proto.hasSuffix("46") ? "IPv4" : "IPv6"
            #expect(
                refused.messages == [
                    "test.conf:1: error: host \(host) has no \(family) address, which protocol \(testCase.proto) needs"
                ])
        }
        if let (host, address) = testCase.acceptedHost {
            let accepted = fixture.load("\(host):echo \(type) \(testCase.proto) wait root internal\n")
            #expect(accepted.messages == [])
            #expect(accepted.services.first?.listeners.map(\.address) == [address])
        }
    }

    @Test func appliesSocketOptionsFromTheProtocolField() throws {
        let config = try Fixture().load(
            "127.0.0.1:echo stream tcp4,rcvbuf=64k,sndbuf=1m,backlog=256 nowait root internal\n")
        #expect(config.messages == [])
        #expect(config.services.first?.protocolName == "tcp4")
        #expect(
            config.services.first?.listeners == [
                ListenerSpec(
                    address: .inet(ip("127.0.0.1"), port: 7, v6Only: false), socketType: .stream, backlog: 256,
                    receiveBuffer: 65536, sendBuffer: 1_048_576)
            ])
    }

    @Test func usesTheConfiguredDefaultBacklog() throws {
        var fixture = try Fixture()
        fixture.options.defaultBacklog = 7
        let config = fixture.load("echo stream tcp4,rcvbuf=100 nowait root internal\n")
        #expect(config.services.first?.listeners.map(\.backlog) == [7])
        #expect(config.services.first?.listeners.map(\.receiveBuffer) == [100])
    }

    @Test func refusesBadProtocolOptions() throws {
        let config = try Fixture().load(
            """
            echo stream tcp,rcvbuf=lots nowait root internal
            echo stream tcp,sndbuf=4g nowait root internal
            echo stream tcp,backlog=1k nowait root internal
            echo stream tcp,rcvbuf nowait root internal
            echo stream tcp,nodelay nowait root internal
            echo stream tcp, nowait root internal
            echo stream tcp,sndbuf=0 nowait root internal
            """)
        #expect(
            config.messages == [
                "test.conf:1: error: bad value for protocol option rcvbuf: lots",
                "test.conf:2: error: bad value for protocol option sndbuf: 4g",
                "test.conf:3: error: bad value for protocol option backlog: 1k",
                "test.conf:4: error: protocol option rcvbuf needs a value (rcvbuf=N)",
                "test.conf:5: error: unknown protocol option nodelay",
                "test.conf:6: error: empty protocol option in tcp,",
                "test.conf:7: error: bad value for protocol option sndbuf: 0",
            ])
        #expect(config.services.isEmpty)
    }

    @Test func refusesUnknownProtocolsAndMismatchedSocketTypes() throws {
        let config = try Fixture().load(
            """
            echo stream sctp nowait root internal
            echo stream udp nowait root internal
            echo dgram tcp wait root internal
            echo seqpacket tcp nowait root /bin/true true
            echo raw tcp nowait root internal
            echo rdm tcp nowait root internal
            echo datagram udp wait root internal
            """)
        #expect(
            config.messages == [
                "test.conf:1: error: unknown protocol sctp",
                "test.conf:2: error: socket type stream does not work with protocol udp",
                "test.conf:3: error: socket type dgram does not work with protocol tcp",
                "test.conf:4: error: socket type seqpacket does not work with protocol tcp (seqpacket needs unix)",
                "test.conf:5: error: socket type raw is not supported",
                "test.conf:6: error: socket type rdm is not supported",
                "test.conf:7: error: unknown socket type datagram (expected stream, dgram or seqpacket)",
            ])
        #expect(config.services.isEmpty)
    }

    @Test func refusesRPCServices() throws {
        let config = try Fixture().load("rstatd/1-3 dgram rpc/udp wait root /usr/sbin/rpc.rstatd rpc.rstatd\n")
        #expect(config.messages == ["test.conf:1: error: RPC services are not supported (rstatd/1-3 rpc/udp)"])
        #expect(config.services.isEmpty)
    }
}

// MARK: - Service field

@Suite struct InetdConfServiceFieldTests {
    @Test func acceptsPortNumbersNamesAndAliases() throws {
        let config = try Fixture().load(
            """
            17010 stream tcp nowait root /bin/true true
            http stream tcp nowait root /bin/true true
            mine stream tcp nowait root /bin/true true
            tftp dgram udp wait root /bin/true true
            65535 stream tcp nowait root /bin/true true
            """)
        #expect(config.messages == [])
        #expect(config.services.map(\.name) == ["17010", "http", "mine", "tftp", "65535"])
        #expect(
            config.services.map { $0.listeners.first?.address } == [
                .inet(.anyV4, port: 17010, v6Only: false), .inet(.anyV4, port: 80, v6Only: false),
                .inet(.anyV4, port: 4000, v6Only: false), .inet(.anyV4, port: 69, v6Only: false),
                .inet(.anyV4, port: 65535, v6Only: false),
            ])
    }

    @Test func refusesBadPortsAndUnknownNames() throws {
        let fixture = try Fixture()
        let config = fixture.load(
            """
            0 stream tcp nowait root internal echo
            65536 stream tcp nowait root internal echo
            99999999999999999999999 stream tcp nowait root internal echo
            gopher stream tcp nowait root internal echo
            tftp stream tcp nowait root internal echo
            """)
        let services = fixture.options.servicesFile
        #expect(
            config.messages == [
                "test.conf:1: error: bad port 0 (expected 1-65535)",
                "test.conf:2: error: bad port 65536 (expected 1-65535)",
                "test.conf:3: error: bad port 99999999999999999999999 (expected 1-65535)",
                "test.conf:4: error: unknown service gopher/tcp (not in \(services))",
                "test.conf:5: error: unknown service tftp/tcp (not in \(services))",
            ])
        #expect(config.services.isEmpty)
    }

    @Test func worksWithoutAServicesFile() throws {
        var fixture = try Fixture()
        fixture.options.servicesFile = fixture.directory.path + "/no-such-services"
        let config = fixture.load(
            """
            17010 stream tcp nowait root /bin/true true
            echo stream tcp nowait root internal
            daytime dgram udp wait root internal
            time stream tcp nowait root internal
            http stream tcp nowait root /bin/true true
            """)
        #expect(
            config.messages == ["test.conf:5: error: unknown service http/tcp (not in \(fixture.options.servicesFile))"]
        )
        #expect(
            config.services.map { $0.listeners.first?.address } == [
                .inet(.anyV4, port: 17010, v6Only: false), .inet(.anyV4, port: 7, v6Only: false),
                .inet(.anyV4, port: 13, v6Only: false), .inet(.anyV4, port: 37, v6Only: false),
            ])
    }

    @Test func parsesUnixSocketPaths() throws {
        let config = try Fixture().load(
            """
            /run/swinetd/echo stream unix nowait root internal
            :nobody:nogroup:660:/run/swinetd/a:b.sock stream unix nowait root /bin/true true
            ::::/run/swinetd/plain.sock dgram unix wait root /bin/true true
            :0:65534:0:/run/swinetd/numeric.sock seqpacket unix nowait root /bin/true true
            """)
        #expect(config.messages == [])
        #expect(
            config.services.map(\.name) == [
                "/run/swinetd/echo", "/run/swinetd/a:b.sock", "/run/swinetd/plain.sock", "/run/swinetd/numeric.sock",
            ])
        #expect(
            config.services.map(\.listeners) == [
                [
                    ListenerSpec(
                        address: .unix(path: "/run/swinetd/echo", owner: nil, group: nil, mode: 0o600),
                        socketType: .stream)
                ],
                [
                    ListenerSpec(
                        address: .unix(path: "/run/swinetd/a:b.sock", owner: 65534, group: 65534, mode: 0o660),
                        socketType: .stream)
                ],
                [
                    ListenerSpec(
                        address: .unix(path: "/run/swinetd/plain.sock", owner: nil, group: nil, mode: 0o600),
                        socketType: .dgram)
                ],
                [
                    ListenerSpec(
                        address: .unix(path: "/run/swinetd/numeric.sock", owner: 0, group: 65534, mode: 0),
                        socketType: .seqpacket)
                ],
            ])
        #expect(config.services.first?.builtin == .echo)
    }

    @Test func refusesBadUnixSockets() throws {
        let longPath = "/" + String(repeating: "p", count: 120)
        let config = try Fixture().load(
            """
            run/x.sock stream unix nowait root /bin/true true
            localhost:/run/x.sock stream unix nowait root /bin/true true
            :nosuchuser:nosuchgroup:999:/run/x.sock stream unix nowait root /bin/true true
            :root:root:600 stream unix nowait root /bin/true true
            \(longPath) stream unix nowait root /bin/true true
            """)
        #expect(
            config.messages == [
                "test.conf:1: error: unix socket path run/x.sock must be absolute",
                "test.conf:2: error: unix socket path localhost:/run/x.sock must be absolute",
                "test.conf:3: error: unknown user nosuchuser for unix socket /run/x.sock",
                "test.conf:3: error: unknown group nosuchgroup for unix socket /run/x.sock",
                "test.conf:3: error: bad mode 999 for unix socket /run/x.sock (expected octal, e.g. 660)",
                "test.conf:4: error: bad unix socket :root:root:600 (expected /path or :user:group:mode:/path)",
                "test.conf:5: error: unix socket path \(longPath) is longer than 107 bytes",
            ])
        #expect(config.services.isEmpty)
    }
}

// MARK: - Wait and limits

@Suite struct InetdConfWaitTests {
    @Test(arguments: [
        ("wait", true, ServiceLimits()),
        ("nowait", false, ServiceLimits()),
        ("nowait.10", false, ServiceLimits(maxSpawnsPerMinute: 10)),
        ("wait.0", true, ServiceLimits()),
        ("nowait/5", false, ServiceLimits(maxChildren: 5)),
        ("nowait/5/30", false, ServiceLimits(maxChildren: 5, maxConnectionsPerIPPerMinute: 30)),
        ("nowait/0/30/2", false, ServiceLimits(maxConnectionsPerIPPerMinute: 30, maxChildrenPerIP: 2)),
    ])
    func parsesWaitAndLimits(field: String, wait: Bool, limits: ServiceLimits) throws {
        let config = try Fixture().load("echo stream tcp \(field) root internal\n")
        #expect(config.messages == [])
        #expect(config.services.first?.wait == wait)
        #expect(config.services.first?.limits == limits)
    }

    @Test func refusesBadWaitFields() throws {
        let config = try Fixture().load(
            """
            echo stream tcp maybe root internal
            echo stream tcp nowait.x root internal
            echo stream tcp nowait. root internal
            echo stream tcp nowait/1/2/3/4 root internal
            echo stream tcp nowait.5/6 root internal
            echo stream tcp wait/-1 root internal
            """)
        #expect(
            config.messages == [
                "test.conf:1: error: expected wait or nowait, found maybe",
                "test.conf:2: error: bad limits in nowait.x (expected nowait.N or nowait/N[/N[/N]])",
                "test.conf:3: error: bad limits in nowait. (expected nowait.N or nowait/N[/N[/N]])",
                "test.conf:4: error: bad limits in nowait/1/2/3/4 (expected nowait.N or nowait/N[/N[/N]])",
                "test.conf:5: error: bad limits in nowait.5/6 (expected nowait.N or nowait/N[/N[/N]])",
                "test.conf:6: error: bad limits in wait/-1 (expected wait.N or wait/N[/N[/N]])",
            ])
    }

    @Test func runsDatagramNowaitProgramsAsWait() throws {
        let config = try Fixture().load(
            """
            tftp dgram udp nowait root /bin/true true
            echo dgram udp nowait root internal
            """)
        #expect(
            config.messages == ["test.conf:1: warning: dgram nowait runs as wait (one child at a time owns the socket)"]
        )
        #expect(config.services.map(\.wait) == [true, false])
    }
}

// MARK: - User field

@Suite struct InetdConfUserTests {
    static let nobody = Credentials(user: "nobody", uid: 65534, gid: 65534, groups: [65534], changeIdentity: true)

    @Test(arguments: [
        ("root", rootCredentials),
        ("nobody:nogroup", nobody),
        ("nobody.nogroup", nobody),
        ("65534:65534", nobody),
        ("65534.nogroup", nobody),
        ("nobody", nobody),
        ("root:nogroup", Credentials(user: "root", uid: 0, gid: 65534, groups: [65534], changeIdentity: true)),
        ("12345:nogroup", Credentials(user: "12345", uid: 12345, gid: 65534, groups: [65534], changeIdentity: true)),
    ])
    func resolvesUsersAndGroups(field: String, credentials: Credentials) throws {
        let config = try Fixture().load("echo stream tcp nowait \(field) internal\n")
        #expect(config.messages == [])
        #expect(config.services.first?.credentials == credentials)
    }

    @Test func ignoresALoginClassWithAWarning() throws {
        let config = try Fixture().load("echo stream tcp nowait nobody:nogroup/daemon internal\n")
        #expect(config.messages == ["test.conf:1: warning: login class daemon ignored"])
        #expect(config.services.first?.credentials == Self.nobody)
    }

    @Test func refusesUnknownUsersAndGroups() throws {
        let config = try Fixture().load(
            """
            echo stream tcp nowait nosuchuser internal
            echo stream tcp nowait root:nosuchgroup internal
            echo stream tcp nowait nosuchuser.nosuchgroup internal
            echo stream tcp nowait nobody: internal
            echo stream tcp nowait :root internal
            echo stream tcp nowait 12345 internal
            """)
        #expect(
            config.messages == [
                "test.conf:1: error: unknown user nosuchuser",
                "test.conf:2: error: unknown group nosuchgroup",
                "test.conf:3: error: unknown user nosuchuser",
                "test.conf:3: error: unknown group nosuchgroup",
                "test.conf:4: error: no group after nobody:",
                "test.conf:5: error: no user in :root",
                "test.conf:6: error: uid 12345 has no passwd entry, so it has no primary group: write 12345:group",
            ])
        #expect(config.services.isEmpty)
    }

    @Test func runsEverythingAsTheDaemonWhenNotRoot() throws {
        var fixture = try Fixture()
        fixture.options.daemonUID = 65534
        fixture.options.daemonGID = 65534
        let config = fixture.load(
            """
            echo stream tcp nowait root internal
            discard stream tcp nowait nobody internal
            daytime stream tcp nowait nobody:root internal
            time stream tcp nowait nosuchuser internal
            """)
        #expect(
            config.messages == [
                "test.conf:1: warning: runs as nobody because swinetd is not root (configured: root)",
                "test.conf:3: warning: runs as nobody because swinetd is not root (configured: nobody:root)",
                "test.conf:4: error: unknown user nosuchuser",
            ])
        let daemon = Credentials(user: "nobody", uid: 65534, gid: 65534, groups: [], changeIdentity: false)
        #expect(config.services.map(\.credentials) == [daemon, daemon, daemon])
    }
}

// MARK: - Program field

@Suite struct InetdConfProgramTests {
    @Test func choosesTheBuiltin() throws {
        let config = try Fixture().load(
            """
            4000 stream tcp nowait root internal chargen
            sink stream tcp nowait root internal
            discard dgram udp wait root internal
            127.0.0.1:daytime stream tcp nowait root internal
            /run/swinetd/time stream unix nowait root internal
            timserver stream tcp nowait root internal
            echo stream tcp nowait root internal echo extra
            """)
        #expect(config.messages == ["test.conf:7: warning: arguments after internal echo ignored"])
        #expect(config.services.map(\.builtin) == [.chargen, .discard, .discard, .daytime, .time, .time, .echo])
    }

    @Test func refusesBuiltinsItCannotName() throws {
        let config = try Fixture().load(
            """
            4000 stream tcp nowait root internal
            www stream tcp nowait root internal
            echo stream tcp nowait root internal qotd
            /run/swinetd/echo seqpacket unix nowait root internal
            /run/swinetd/tcpmux dgram unix wait root internal
            """)
        #expect(
            config.messages == [
                "test.conf:1: error: internal service 4000: name the builtin after `internal`",
                "test.conf:2: error: internal service www: name the builtin after `internal`",
                "test.conf:3: error: unknown builtin qotd (builtins: echo, discard, chargen, daytime, time, tcpmux)",
                "test.conf:4: error: builtin echo does not support seqpacket sockets",
                "test.conf:5: error: builtin tcpmux needs a stream socket",
            ])
        #expect(config.services.isEmpty)
    }

    @Test func checksExternalPrograms() throws {
        let fixture = try Fixture()
        let notExecutable = try fixture.directory.write("script", "#!/bin/sh\n", mode: 0o644)
        let executable = try fixture.directory.write("run", "#!/bin/sh\n", mode: 0o755)
        let config = fixture.load(
            """
            4000 stream tcp nowait root bin/true true
            4001 stream tcp nowait root \(fixture.directory.path)/missing missing
            4002 stream tcp nowait root \(notExecutable) script
            4003 stream tcp nowait root \(fixture.directory.path) dir
            4004 stream tcp nowait root \(executable)
            """)
        #expect(
            config.messages == [
                "test.conf:1: error: program bin/true must be an absolute path or internal",
                "test.conf:2: error: program \(fixture.directory.path)/missing cannot be used: No such file or directory",
                "test.conf:3: error: program \(notExecutable) is not executable",
                "test.conf:4: error: program \(fixture.directory.path) is not a regular file",
                "test.conf:5: warning: no argv[0] after \(executable); using run",
            ])
        #expect(config.services.map(\.program) == [.external(path: executable, arguments: ["run"])])
    }

    @Test func skipsProgramChecksWhenAsked() throws {
        var fixture = try Fixture()
        fixture.options.checkPrograms = false
        let config = fixture.load("4000 stream tcp nowait root /nonexistent/prog prog -x\n")
        #expect(config.messages == [])
        #expect(config.services.first?.program == .external(path: "/nonexistent/prog", arguments: ["prog", "-x"]))
    }
}

// MARK: - tcpmux

@Suite struct InetdConfTCPMuxTests {
    @Test func parsesTargetsAndAddsTheTCPMuxService() throws {
        let config = try Fixture().load(
            """
            tcpmux/+Hello stream tcp nowait root /bin/true true
            127.0.0.1:tcpmux/raw stream tcp nowait.5 nobody /bin/true true
            """)
        #expect(
            config.messages == [
                "test.conf:2: warning: host prefix on 127.0.0.1:tcpmux/raw ignored: tcpmux targets are reached through the tcpmux service",
                "test.conf:1: warning: no tcpmux service configured for tcpmux/+Hello: added `tcpmux stream tcp nowait root internal` on port 1",
            ])
        #expect(config.services.map(\.name) == ["tcpmux/+Hello", "tcpmux/raw", "tcpmux"])
        #expect(
            config.services.map(\.tcpmux) == [
                .target(name: "Hello", sendsPlus: true), .target(name: "raw", sendsPlus: false), nil,
            ])
        #expect(config.services[0].listeners == [])
        #expect(config.services[1].limits == ServiceLimits(maxSpawnsPerMinute: 5))
        let added = config.services[2]
        #expect(added.builtin == .tcpmux)
        #expect(added.listeners == dualListeners(port: 1))
        #expect(added.location == ConfigLocation(file: "test.conf", line: 1))
        #expect(added.credentials == Credentials(user: "root", uid: 0, gid: 0, groups: [], changeIdentity: false))
    }

    @Test func keepsAConfiguredTCPMuxService() throws {
        let config = try Fixture().load(
            """
            tcpmux stream tcp4 nowait root internal
            tcpmux/+hello stream tcp nowait root /bin/true true
            """)
        #expect(config.messages == [])
        #expect(config.services.map(\.builtin) == [.tcpmux, nil])
    }

    @Test func refusesBadTargets() throws {
        let config = try Fixture().load(
            """
            tcpmux/a stream tcp wait root /bin/true true
            tcpmux/b dgram udp nowait root /bin/true true
            tcpmux/+ stream tcp nowait root /bin/true true
            tcpmux/c stream tcp nowait root internal tcpmux
            tcpmux/Dup stream tcp nowait root /bin/true true
            tcpmux/+dUP stream tcp nowait root /bin/true true
            """)
        #expect(
            config.messages == [
                "test.conf:1: error: tcpmux target tcpmux/a must be stream, tcp and nowait",
                "test.conf:2: error: tcpmux target tcpmux/b must be stream, tcp and nowait",
                "test.conf:3: error: tcpmux target tcpmux/+ has no name",
                "test.conf:4: error: the tcpmux builtin cannot be a tcpmux target",
                "test.conf:6: error: tcpmux target tcpmux/+dUP has the same name as tcpmux/Dup at test.conf:5 (tcpmux names ignore case)",
                "test.conf:5: warning: no tcpmux service configured for tcpmux/Dup: added `tcpmux stream tcp nowait root internal` on port 1",
            ])
        #expect(config.services.map(\.name) == ["tcpmux/Dup", "tcpmux"])
    }
}
