import Glibc
import SwinetdCore
import Testing

// MARK: - Fixtures

/// A fuller /etc/services than `servicesFixture`, with the names xinetd files use.
let xinetdServicesFixture = """
    tcpmux          1/tcp
    echo            7/tcp
    echo            7/udp
    discard         9/tcp           sink null
    discard         9/udp           sink null
    daytime         13/tcp
    daytime         13/udp
    chargen         19/tcp          ttytst source
    chargen         19/udp          ttytst source
    ftp             21/tcp
    telnet          23/tcp
    smtp            25/tcp          mail
    time            37/tcp          timserver
    time            37/udp          timserver
    tftp            69/udp
    finger          79/tcp
    www             80/tcp          http
    shell           514/tcp         cmd
    rsync           873/tcp
    rsync           873/udp

    """

extension Fixture {
    /// A fixture whose services file is `xinetdServicesFixture`.
    static func xinetd() throws -> Fixture {
        var fixture = try Fixture()
        fixture.options.servicesFile = try fixture.directory.write("xservices", xinetdServicesFixture)
        return fixture
    }
}

extension LoadedConfiguration {
    var errors: [String] { diagnostics.filter { $0.severity == .error }.map(\.description) }
    var warnings: [String] { diagnostics.filter { $0.severity == .warning }.map(\.description) }

    func service(id: String) -> Service? { services.first { $0.id == id } }
}

func listener(_ address: String, _ port: UInt16, _ socketType: SocketType = .stream, v6Only: Bool = false)
    -> ListenerSpec
{
    ListenerSpec(address: .inet(ip(address), port: port, v6Only: v6Only), socketType: socketType)
}

func network(_ address: String, _ prefix: Int) -> AddressPattern {
    .network(ip(address), prefixLength: prefix)
}

let nobodyCredentials = Credentials(user: "nobody", uid: 65534, gid: 65534, groups: [65534], changeIdentity: true)
/// What internal services without `user` run as when swinetd is root.
let daemonRootCredentials = Credentials(user: "root", uid: 0, gid: 0, groups: [], changeIdentity: false)

// MARK: - Format and structure

@Suite struct XinetdFormatTests {
    @Test func detectsTheFormatFromTheFirstLine() {
        #expect(ConfigFormat.detect(Array("# comment\n\nservice echo\n{\n}\n".utf8)) == .xinetd)
        #expect(ConfigFormat.detect(Array("  defaults\n{\n}\n".utf8)) == .xinetd)
        #expect(ConfigFormat.detect(Array("includedir /etc/xinetd.d\n".utf8)) == .xinetd)
        #expect(ConfigFormat.detect(Array("include /etc/x\n".utf8)) == .xinetd)
        #expect(ConfigFormat.detect(Array("{\n".utf8)) == .xinetd)
        #expect(ConfigFormat.detect(Array("echo stream tcp nowait root internal\n".utf8)) == .inetd)
        #expect(ConfigFormat.detect(Array("#service echo\necho stream tcp nowait root internal\n".utf8)) == .inetd)
        #expect(ConfigFormat.detect([]) == .inetd)
    }

    @Test func parsesAnInternalServiceWithXinetdDefaults() throws {
        let config = try Fixture.xinetd().load(
            """
            # description: echo
            service echo
            {
            \tdisable\t\t= no
            \ttype\t\t= INTERNAL
            \tid\t\t= echo-stream
            \tsocket_type\t= stream
            \tprotocol\t= tcp
            \tuser\t\t= root
            \twait\t\t= no
            }
            """)
        #expect(config.messages == [])
        var expected = Service(
            name: "echo", location: ConfigLocation(file: "test.conf", line: 2), socketType: .stream,
            protocolName: "tcp", listeners: [listener("0.0.0.0", 7)], wait: false, credentials: rootCredentials,
            program: .builtin(.echo))
        expected.id = "echo-stream"
        expected.limits.connectionRate = ConnectionRate(rate: 50, pauseSeconds: 10)
        expected.access.libwrapName = "echo-stream"
        expected.logging.onSuccess = []
        expected.logging.onFailure = []
        #expect(config.services == [expected])
    }

    @Test func acceptsTheBraceOnTheServiceLineAndOperatorsWithoutSpaces() throws {
        let config = try Fixture.xinetd().load(
            """
            service daytime {
                type=INTERNAL
                socket_type =dgram
                wait= yes
                only_from+=127.0.0.1
            }
            """)
        #expect(config.messages == [])
        #expect(config.services.first?.listeners == [listener("0.0.0.0", 13, .dgram)])
        #expect(config.services.first?.access.onlyFrom == [network("127.0.0.1", 32)])
    }

    @Test func reportsStructuralErrorsAndKeepsTheOtherServices() throws {
        let config = try Fixture.xinetd().load(
            """
            service echo
            type = INTERNAL
            }
            service time
            {
                type = INTERNAL
                socket_type = stream
                wait = no
            }
            garbage here
            {
                socket_type = stream
            }
            {
            }
            }
            service discard
            {
                type = INTERNAL
                socket_type = stream
                wait = no }
            }
            service chargen
            {
                type = INTERNAL
                socket_type = stream
                wait = no
            service daytime
            {
                type = INTERNAL
                socket_type = stream
                wait = no
            }
            service echo { }
            service
            {
            }
            service time
            """)
        #expect(
            config.errors == [
                "test.conf:1: error: service echo: expected { on the line after it",
                "test.conf:10: error: expected service, defaults, include or includedir, found `garbage here`",
                "test.conf:14: error: { without a `service NAME` or `defaults` line before it",
                "test.conf:16: error: } without a matching {",
                "test.conf:21: error: } must be on a line of its own",
                "test.conf:23: error: service chargen: missing } before line 28",
                "test.conf:34: error: expected `service NAME`, found `service echo { }`",
                "test.conf:35: error: expected `service NAME`, found `service`",
                "test.conf:38: error: service time: missing { at end of file",
            ])
        #expect(config.services.map(\.builtin) == [.time, .daytime])
    }

    @Test func reportsAMissingClosingBraceAtTheEnd() throws {
        let config = try Fixture.xinetd().load(
            "service echo\n{\n  type = INTERNAL\n  socket_type = stream\n  wait = no\n")
        #expect(config.messages == ["test.conf:1: error: service echo: missing } at end of file"])
        #expect(config.services.isEmpty)
    }

    @Test func refusesLinesThatAreNotUTF8OrHoldNUL() throws {
        var bytes = Array("service echo\n{\n  type = INTERNAL\n  socket_type = stream\n  wait = no\n  id = e".utf8)
        bytes += [0xE9] + Array("\n}\nservice time\n{\n  type = INTERNAL\n  socket_type = stream\n  wait = no\n".utf8)
        bytes += Array("  id = x".utf8) + [0] + Array("\n}\nservice daytime\n{\n type = INTERNAL\n wait = no\n".utf8)
        bytes += Array(" socket_type = stream\n}\n".utf8)
        let config = try Fixture.xinetd().load(bytes: bytes)
        #expect(
            config.messages == [
                "test.conf:6: error: line is not valid UTF-8", "test.conf:13: error: NUL byte on line 13",
            ])
        #expect(config.services.map(\.id) == ["daytime"])
    }
}

// MARK: - Attributes and operators

@Suite struct XinetdAttributeTests {
    /// An external nowait stream service around `body`, as a complete file.
    func external(
        _ body: String, name: String = "hello", port: Int = 7070, extra: String = "", omitting omitted: String = ""
    ) -> String {
        let template = [
            "type = UNLISTED", "port = \(port)", "socket_type = stream", "wait = no", "user = nobody",
            "server = /bin/cat",
        ]
        let kept = template.filter { omitted.isEmpty || !$0.hasPrefix(omitted + " ") }.map { "    " + $0 }
        return "\(extra)\nservice \(name)\n{\n" + kept.joined(separator: "\n") + "\n\(body)\n}"
    }

    /// The line number of the last line equal to `line` (1-based).
    func lineNumber(of line: String, in text: String) -> Int {
        text.split(separator: "\n", omittingEmptySubsequences: false).lastIndex { $0 == line }! + 1
    }

    @Test func readsEveryScalarAttribute() throws {
        let config = try Fixture.xinetd().load(
            external(
                """
                    id = hello-world
                    group = nogroup
                    groups = yes
                    server_args = -u -v
                    instances = 7
                    per_source = 3
                    cps = 25 30
                    max_load = 2.5
                    nice = -5
                    umask = 027
                    banner = /etc/issue
                    banner_success = /etc/motd
                    banner_fail = /etc/issue.net
                    env = A=1 B=x=y
                    passenv = PATH TZ
                    access_times = 8:00-12:30 22:00-02:00
                    log_type = SYSLOG local3 warning
                    log_on_success = PID HOST USERID EXIT DURATION
                    log_on_failure = HOST USERID ATTEMPT
                    rlimit_as = 64M
                    rlimit_cpu = 30
                    rlimit_data = 2G
                    rlimit_rss = 512K
                    rlimit_stack = UNLIMITED
                    rlimit_files = 100
                    flags = NODELAY KEEPALIVE NORETRY IDONLY REUSE
                    libwrap = hellod
                    deny_time = 5
                """))
        #expect(config.messages == [])
        let service = try #require(config.services.first)
        #expect(service.id == "hello-world")
        #expect(service.listeners == [listener("0.0.0.0", 7070)])
        #expect(
            service.credentials
                == Credentials(
                    user: "nobody", uid: 65534, gid: 65534, groups: UserDatabase.groupList(user: "nobody", gid: 65534),
                    changeIdentity: true))
        #expect(service.program == .external(path: "/bin/cat", arguments: ["cat", "-u", "-v"]))
        #expect(service.limits.maxChildren == 7)
        #expect(service.limits.maxChildrenPerIP == 3)
        #expect(service.limits.connectionRate == ConnectionRate(rate: 25, pauseSeconds: 30))
        #expect(service.limits.maxLoad == 2.5)
        #expect(service.setup.nice == -5)
        #expect(service.setup.umask == 0o027)
        #expect(service.setup.banner == "/etc/issue")
        #expect(service.setup.bannerSuccess == "/etc/motd")
        #expect(service.setup.bannerFail == "/etc/issue.net")
        #expect(service.setup.environment == ["A=1", "B=x=y"])
        #expect(service.setup.passEnvironment == ["PATH", "TZ"])
        #expect(
            service.access.accessTimes == [
                TimeWindow(startMinute: 480, endMinute: 750), TimeWindow(startMinute: 1320, endMinute: 120),
            ])
        #expect(service.logging.destination == .syslog(facility: 19 << 3, level: 4))
        #expect(service.logging.onSuccess == [.pid, .host, .userid, .exit, .duration])
        #expect(service.logging.onFailure == [.host, .userid, .attempt])
        #expect(
            service.setup.rlimits == [
                ResourceLimit(kind: .addressSpace, soft: 64 << 20, hard: 64 << 20),
                ResourceLimit(kind: .cpu, soft: 30, hard: 30),
                ResourceLimit(kind: .data, soft: 2 << 30, hard: 2 << 30),
                ResourceLimit(kind: .rss, soft: 512 << 10, hard: 512 << 10),
                ResourceLimit(kind: .stack, soft: ResourceLimit.unlimited, hard: ResourceLimit.unlimited),
                ResourceLimit(kind: .files, soft: 100, hard: 100),
            ])
        #expect(service.setup.tcpNoDelay && service.setup.keepAlive)
        #expect(service.flags.noRetry && service.flags.identOnly && !service.flags.sensor)
        #expect(service.flags.denyTimeSeconds == 300)
        #expect(service.access.libwrapName == "hellod")
    }

    @Test func appliesXinetdDefaultsWhenAttributesAreAbsent() throws {
        let config = try Fixture.xinetd().load(external(""))
        #expect(config.messages == [])
        let service = try #require(config.services.first)
        #expect(service.credentials == nobodyCredentials)  // groups = no: only the group itself
        #expect(
            service.limits
                == {
                    var limits = ServiceLimits()
                    limits.connectionRate = ConnectionRate(rate: 50, pauseSeconds: 10)
                    return limits
                }())
        #expect(service.access == AccessPolicy(libwrapName: "cat"))
        #expect(service.setup == ChildSetup())
        #expect(
            service.logging.destination == nil && service.logging.onSuccess.isEmpty && service.logging.onFailure.isEmpty
        )
        #expect(service.flags == ServiceFlags())
    }

    @Test func readsLogFilesWithXinetdsHardLimitRule() throws {
        func destination(_ value: String) throws -> LogSettings.Destination? {
            let config = try Fixture.xinetd().load(external("    log_type = \(value)"))
            #expect(config.errors == [])
            return config.services.first?.logging.destination
        }
        #expect(try destination("FILE /var/log/x") == .file(path: "/var/log/x", softLimit: nil, hardLimit: nil))
        // 1% of the soft limit, at least 5 KiB and at most 20 KiB.
        #expect(
            try destination("FILE /var/log/x 100K") == .file(path: "/var/log/x", softLimit: 102_400, hardLimit: 107_520)
        )
        #expect(
            try destination("FILE /var/log/x 1M")
                == .file(path: "/var/log/x", softLimit: 1 << 20, hardLimit: (1 << 20) + 10_485))
        #expect(
            try destination("FILE /var/log/x 1G")
                == .file(path: "/var/log/x", softLimit: 1 << 30, hardLimit: (1 << 30) + 20_480))
        #expect(
            try destination("FILE /var/log/x 10K 12K")
                == .file(path: "/var/log/x", softLimit: 10_240, hardLimit: 12_288))
        #expect(try destination("SYSLOG daemon") == .syslog(facility: 3 << 3, level: 6))
        #expect(try destination("SYSLOG authpriv debug") == .syslog(facility: 10 << 3, level: 7))
    }

    @Test func reportsBadValuesAtTheirLine() throws {
        let cases: [(String, String)] = [
            ("instances = 0", "instances must be a number of at least 1 or UNLIMITED, found 0"),
            ("per_source = many", "per_source must be a number of at least 1 or UNLIMITED, found many"),
            ("cps = 10", "cps takes two numbers: connections per second and seconds to pause"),
            ("cps = 10 0", "cps pause must be at least 1 second"),
            ("max_load = 0", "max_load must be a load average above 0, found 0"),
            ("max_load = nan", "max_load must be a load average above 0, found nan"),
            ("nice = 20", "nice must be between -20 and 19, found 20"),
            ("umask = 0800", "umask must be octal, 000 to 777, found 0800"),
            ("umask = 1777", "umask must be octal, 000 to 777, found 1777"),
            ("port = 0", "bad port 0 (expected 1-65535)"),
            ("wait = maybe", "wait must be yes or no, found maybe"),
            ("groups = YES", "groups must be yes or no, found YES"),
            ("v6only = 1", "v6only must be yes or no, found 1"),
            ("env = NOEQUALS", "env value NOEQUALS is not NAME=value"),
            ("env -= A=1", "env does not take -="),
            ("passenv = A=1", "passenv takes variable names, found A=1"),
            ("access_times = 8-17", "bad time range 8-17 (expected hh:mm-hh:mm)"),
            ("access_times = 24:00-25:00", "bad time range 24:00-25:00 (expected hh:mm-hh:mm)"),
            ("access_times =", "access_times needs at least one value"),
            ("log_type = SYSLOG kernel", "unknown syslog facility kernel"),
            ("log_type = SYSLOG daemon loud", "unknown syslog level loud"),
            ("log_type = SYSLOG DAEMON", "unknown syslog facility DAEMON (did you mean daemon?)"),
            ("log_type = FILE relative.log", "log file relative.log must be an absolute path"),
            ("log_type = FILE /x 2K 1K", "hard limit 1K is below the soft limit 2K"),
            ("log_type = FILE /x 2X", "bad soft limit 2X (a size with an optional K, M or G suffix)"),
            ("log_type = JOURNAL", "log_type must be SYSLOG facility [level] or FILE path [soft [hard]]"),
            ("log_on_success = PID RECORD", "unknown log_on_success value RECORD"),
            ("log_on_failure = host", "unknown log_on_failure value host (did you mean HOST?)"),
            ("rlimit_cpu = 10K", "rlimit_cpu must be seconds or UNLIMITED, found 10K"),
            (
                "rlimit_as = lots",
                "rlimit_as must be a number with an optional K, M or G suffix or UNLIMITED, found lots"
            ),
            ("deny_time = soon", "deny_time must be minutes, FOREVER or NEVER, found soon"),
            ("flags = nameinargs", "unknown flag nameinargs (did you mean NAMEINARGS?)"),
            ("flags = INTERCEPT", "flag INTERCEPT is not supported"),
            ("flags = LABELED", "flag LABELED is not supported"),
            ("flags += NODELAY", "flags does not take += (only set-valued attributes do)"),
            ("type = RPC", "RPC services are not supported"),
            ("type = SPECIAL", "unknown type SPECIAL"),
            ("rpc_version = 2", "rpc_version is not supported"),
            ("rpc_number = 100000", "rpc_number is not supported"),
            ("mdns = yes", "mdns is not supported"),
            ("socket_type = raw", "socket_type raw is not supported"),
            ("protocol = sctp", "protocol sctp is not supported (expected tcp or udp)"),
            ("banner = issue", "banner issue must be an absolute path"),
            ("server_args =", "server_args needs at least one value"),
            ("id = a b", "id takes exactly one value, found 2: a b"),
            ("enabled = x", "enabled is only allowed in defaults"),
            ("only_form = 1.2.3.4", "unknown attribute only_form"),
            ("Port = 1", "unknown attribute Port (did you mean port?)"),
            (
                "only_from = 10.1",
                "only_from: incomplete IPv4 address 10.1 (write all four octets; trailing .0 octets are wildcards)"
            ),
            (
                "no_access = 1.2.3.4,5.6.7.8",
                "no_access: address 1.2.3.4,5.6.7.8 has a comma in it: separate addresses with spaces"
            ),
            ("redirect = 127.0.0.1", "redirect takes a host and a port"),
            ("redirect = 127.0.0.1 99999", "bad redirect port 99999"),
            ("redirect = 127.0.0.1 nosuchservice", "bad redirect port nosuchservice (not a number or a tcp service)"),
            ("redirect = no-such-host.invalid 25", "cannot resolve redirect host no-such-host.invalid"),
            ("disable", "expected `attribute = value`, found `disable`"),
            ("= 5", "expected `attribute = value`, found `= 5`"),
        ]
        for (line, message) in cases {
            let attribute = String(line.prefix { $0 != " " })
            let text = external(
                "    \(line)", extra: "service echo\n{\n type = INTERNAL\n socket_type = stream\n wait = no\n}",
                omitting: ["port", "wait", "type", "socket_type"].contains(attribute) ? attribute : "")
            let config = try Fixture.xinetd().load(text)
            #expect(
                config.errors == ["test.conf:\(lineNumber(of: "    \(line)", in: text)): error: \(message)"], "\(line)")
            #expect(config.services.map(\.id) == ["echo"], "\(line)")
        }
        // Set twice: the second is refused and names the first.
        let twice = external("    user = root")
        let config = try Fixture.xinetd().load(twice)
        #expect(
            config.errors == [
                "test.conf:\(lineNumber(of: "    user = root", in: twice)): error: user is already set at line "
                    + "\(lineNumber(of: "    user = nobody", in: twice))"
            ])
    }

    @Test func combinesSetValuedAttributesWithTheDefaults() throws {
        let config = try Fixture.xinetd().load(
            """
            defaults
            {
                only_from = 10.0.0.0 192.168.1.1
                only_from = 172.16.0.0/12
                no_access = 10.9.9.9
                log_on_success = PID HOST
                log_on_failure = HOST
                passenv = PATH
            }
            \(external("    id = inherits"))
            \(external("""
                id = adds
                only_from += 127.0.0.1
                log_on_success += EXIT
                passenv += TZ LANG
                env += A=1
                env += B=2
            """, port: 7071))
            \(external("""
                id = removes
                only_from -= 192.168.1.1
                no_access -= 10.9.9.9
                log_on_success -= PID
                log_on_failure -= HOST
                passenv -= PATH
            """, port: 7072))
            \(external("""
                id = replaces
                only_from =
                no_access = .example.com
                log_on_success = DURATION
                passenv =
            """, port: 7073))
            """)
        #expect(config.messages == [])
        let inherits = try #require(config.service(id: "inherits"))
        #expect(
            inherits.access.onlyFrom == [network("10.0.0.0", 8), network("192.168.1.1", 32), network("172.16.0.0", 12)])
        #expect(inherits.access.noAccess == [network("10.9.9.9", 32)])
        #expect(inherits.logging.onSuccess == [.pid, .host])
        #expect(inherits.logging.onFailure == [.host])
        #expect(inherits.setup.passEnvironment == ["PATH"])

        let adds = try #require(config.service(id: "adds"))
        #expect(adds.access.onlyFrom?.last == network("127.0.0.1", 32))
        #expect(adds.access.onlyFrom?.count == 4)
        #expect(adds.logging.onSuccess == [.pid, .host, .exit])
        #expect(adds.setup.passEnvironment == ["PATH", "TZ", "LANG"])
        #expect(adds.setup.environment == ["A=1", "B=2"])

        let removes = try #require(config.service(id: "removes"))
        #expect(removes.access.onlyFrom == [network("10.0.0.0", 8), network("172.16.0.0", 12)])
        #expect(removes.access.noAccess == [])
        #expect(removes.logging.onSuccess == [.host])
        #expect(removes.logging.onFailure == [])
        #expect(removes.setup.passEnvironment == [])

        let replaces = try #require(config.service(id: "replaces"))
        #expect(replaces.access.onlyFrom == [])  // `only_from =`: nobody
        #expect(replaces.access.noAccess == [.domain(".example.com")])
        #expect(replaces.logging.onSuccess == [.duration])
        #expect(replaces.setup.passEnvironment == [])
    }

    @Test func inheritsScalarDefaultsUnlessTheServiceSetsThem() throws {
        let config = try Fixture.xinetd().load(
            """
            defaults
            {
                log_type = FILE /var/log/xinetd.log
                instances = 60
                per_source = 5
                cps = 0 0
                max_load = 3
                umask = 002
                groups = yes
                bind = 127.0.0.1
                banner = /etc/issue
                banner_success = /etc/motd
                banner_fail = /etc/issue.net
                v6only = yes
            }
            \(external("    id = inherits"))
            \(external("""
                id = overrides
                log_type = SYSLOG daemon
                instances = UNLIMITED
                per_source = UNLIMITED
                cps = 9 9
                max_load = 1.5
                umask = 077
                groups = no
                interface = 127.0.0.2
                banner = /etc/hostname
            """))
            \(external("""
                id = six
                flags = IPv6
                bind = ::1
            """))
            """)
        #expect(config.messages == [])
        let inherits = try #require(config.service(id: "inherits"))
        #expect(inherits.logging.destination == .file(path: "/var/log/xinetd.log", softLimit: nil, hardLimit: nil))
        #expect(inherits.limits.maxChildren == 60)
        #expect(inherits.limits.maxChildrenPerIP == 5)
        #expect(inherits.limits.connectionRate == nil)
        #expect(inherits.limits.maxLoad == 3)
        #expect(inherits.setup.umask == 0o002)
        #expect(inherits.credentials.groups == UserDatabase.groupList(user: "nobody", gid: 65534))
        #expect(inherits.listeners == [listener("127.0.0.1", 7070)])
        #expect(inherits.setup.banner == "/etc/issue")
        #expect(inherits.setup.bannerSuccess == "/etc/motd")
        #expect(inherits.setup.bannerFail == "/etc/issue.net")

        let overrides = try #require(config.service(id: "overrides"))
        #expect(overrides.logging.destination == .syslog(facility: 3 << 3, level: 6))
        #expect(overrides.limits.maxChildren == nil)
        #expect(overrides.limits.maxChildrenPerIP == nil)
        #expect(overrides.limits.connectionRate == ConnectionRate(rate: 9, pauseSeconds: 9))
        #expect(overrides.limits.maxLoad == 1.5)
        #expect(overrides.setup.umask == 0o077)
        #expect(overrides.credentials.groups == [65534])
        #expect(overrides.listeners == [listener("127.0.0.2", 7070)])
        #expect(overrides.setup.banner == "/etc/hostname")

        let six = try #require(config.service(id: "six"))
        #expect(six.listeners == [listener("::1", 7070, v6Only: true)])
    }

    @Test func refusesAttributesThatDefaultsCannotHold() throws {
        let config = try Fixture.xinetd().load(
            """
            defaults
            {
                log_on_success = PID
                user = root
                server = /bin/true
            }
            \(external(""))
            """)
        #expect(
            config.errors == [
                "test.conf:4: error: user is not allowed in defaults",
                "test.conf:5: error: server is not allowed in defaults",
                "test.conf:8: error: service hello refused: the defaults section at test.conf:1 has errors",
            ])
        #expect(config.services.isEmpty)
    }

    @Test func allowsOnlyOneDefaultsSection() throws {
        let config = try Fixture.xinetd().load(
            """
            defaults
            {
                instances = 4
            }
            defaults
            {
                instances = 8
            }
            \(external(""))
            """)
        #expect(
            config.errors == [
                "test.conf:5: error: only one defaults section is allowed; this one is ignored (the first is at test.conf:1)"
            ])
        #expect(config.services.first?.limits.maxChildren == 4)
    }

    @Test func warnsWhenRemovingFromAnUnsetOnlyFrom() throws {
        let text = external("    only_from -= 1.2.3.4")
        let config = try Fixture.xinetd().load(text)
        #expect(
            config.messages == [
                "test.conf:\(lineNumber(of: "    only_from -= 1.2.3.4", in: text)): warning: only_from -= on an unset list leaves an empty list, which denies everyone"
            ])
        #expect(config.services.first?.access.onlyFrom == [])
    }
}

// MARK: - Address patterns

@Suite struct XinetdAddressPatternTests {
    func patterns(_ value: String) throws -> [AddressPattern]? {
        let config = try Fixture.xinetd().load(
            "service echo\n{\n type = INTERNAL\n socket_type = stream\n wait = no\n only_from = \(value)\n}\n")
        return config.services.first?.access.onlyFrom
    }

    func error(_ value: String) throws -> [String] {
        let config = try Fixture.xinetd().load(
            "service echo\n{\n type = INTERNAL\n socket_type = stream\n wait = no\n only_from = \(value)\n}\n")
        #expect(config.services.isEmpty)
        return config.errors
    }

    @Test func readsEveryAddressForm() throws {
        #expect(try patterns("192.168.1.7") == [network("192.168.1.7", 32)])
        #expect(try patterns("192.168.1.0") == [network("192.168.1.0", 24)])
        #expect(try patterns("10.0.0.0") == [network("10.0.0.0", 8)])
        #expect(try patterns("10.20.0.0") == [network("10.20.0.0", 16)])
        #expect(try patterns("0.0.0.0") == [network("0.0.0.0", 0)])
        #expect(try patterns("10.0.5.0") == [network("10.0.5.0", 24)])
        #expect(try patterns("192.168.1.7/32") == [network("192.168.1.7", 32)])
        #expect(try patterns("192.168.1.0/32") == [network("192.168.1.0", 32)])
        #expect(try patterns("10.1.2.3/8") == [network("10.0.0.0", 8)])
        #expect(try patterns("0.0.0.0/0") == [network("0.0.0.0", 0)])
        #expect(try patterns("2001:db8::1") == [network("2001:db8::1", 128)])
        #expect(try patterns("[2001:db8::1]") == [network("2001:db8::1", 128)])
        #expect(try patterns("2001:db8:abcd::/48") == [network("2001:db8:abcd::", 48)])
        #expect(try patterns("2001:db8:ffff::1/33") == [network("2001:db8:8000::", 33)])
        #expect(try patterns("::/0") == [network("::", 0)])
        #expect(try patterns("128.138.{209,210}") == [network("128.138.209.0", 24), network("128.138.210.0", 24)])
        #expect(try patterns("10.{1,2.3}") == [network("10.1.0.0", 16), network("10.2.3.0", 24)])
        #expect(try patterns("192.168.1.{5,6}") == [network("192.168.1.5", 32), network("192.168.1.6", 32)])
        #expect(try patterns(".Example.COM") == [.domain(".example.com")])
        #expect(
            try patterns("Host-1.example.com localhost") == [.hostname("host-1.example.com"), .hostname("localhost")])
        #expect(try patterns("") == [])
    }

    @Test func refusesAnythingAmbiguous() throws {
        let cases: [(String, String)] = [
            ("10.0.0.256", "bad IPv4 address 10.0.0.256"),
            ("10.1.2", "incomplete IPv4 address 10.1.2 (write all four octets; trailing .0 octets are wildcards)"),
            ("010.1.2.3", "bad IPv4 address 010.1.2.3"),
            (
                "1.2.3.4.5",
                "incomplete IPv4 address 1.2.3.4.5 (write all four octets; trailing .0 octets are wildcards)"
            ),
            ("10.0.0.0/33", "bad prefix length in 10.0.0.0/33 (0-32)"),
            ("::1/129", "bad prefix length in ::1/129 (0-128)"),
            ("10.0.0.0/", "bad prefix length in 10.0.0.0/ (0-32)"),
            ("host/24", "bad network address in host/24"),
            ("2001:db8::zz", "bad IPv6 address 2001:db8::zz"),
            ("10.{1,}", "empty element in 10.{1,}"),
            ("10.{1,2", "bad factorized address 10.{1,2 (expected a.b.{c,d})"),
            ("{1,2}", "bad factorized address {1,2}: the part before { must end in a dot"),
            ("10.1.2.{3.4,5}", "too many octets in 10.1.2.{3.4,5}"),
            ("10.{300}", "bad IPv4 address 10.{300}"),
            ("..example.com", "bad domain ..example.com"),
            ("bad_host!", "bad address or host name bad_host!"),
            ("a,b", "address a,b has a comma in it: separate addresses with spaces"),
        ]
        for (value, message) in cases {
            #expect(try error(value) == ["test.conf:6: error: only_from: \(message)"], "\(value)")
        }
    }
}

// MARK: - Programs, types and flags

@Suite struct XinetdServiceKindTests {
    @Test func buildsArgvWithAndWithoutNameInArgs() throws {
        let config = try Fixture.xinetd().load(
            """
            service finger
            {
                socket_type = stream
                wait = no
                user = nobody
                server_args = /usr/sbin/in.fingerd -w
                flags = NAMEINARGS
                server = /usr/sbin/tcpd
            }
            service telnet
            {
                socket_type = stream
                wait = no
                user = root
                server = /bin/true
                server_args = -h  -x
            }
            service www
            {
                socket_type = stream
                wait = no
                user = root
                server = /bin/true
            }
            service time
            {
                socket_type = stream
                wait = no
                user = root
                flags = NAMEINARGS
                server = /bin/true
            }
            """)
        #expect(config.errors == ["test.conf:30: error: flags NAMEINARGS needs server_args starting with argv[0]"])
        #expect(
            config.services.map(\.program) == [
                .external(path: "/usr/sbin/tcpd", arguments: ["/usr/sbin/in.fingerd", "-w"]),
                .external(path: "/bin/true", arguments: ["true", "-h", "-x"]),
                .external(path: "/bin/true", arguments: ["true"]),
            ])
        // tcpd's rules are looked up under the wrapped program's name.
        #expect(config.services.map(\.access.libwrapName) == ["in.fingerd", "true", "true"])
    }

    @Test func checksProgramsUnlessToldNotTo() throws {
        let text = """
            service telnet
            {
                socket_type = stream
                wait = no
                user = root
                server = /no/such/telnetd
            }
            service www
            {
                socket_type = stream
                wait = no
                user = root
                server = bin/true
            }
            service finger
            {
                socket_type = stream
                wait = no
                user = root
                server = /etc/passwd
            }
            """
        var fixture = try Fixture.xinetd()
        #expect(
            fixture.load(text).errors == [
                "test.conf:6: error: server /no/such/telnetd cannot be used: No such file or directory",
                "test.conf:13: error: server bin/true must be an absolute path",
                "test.conf:20: error: server /etc/passwd is not executable",
            ])
        fixture.options.checkPrograms = false
        #expect(fixture.load(text).errors == ["test.conf:13: error: server bin/true must be an absolute path"])
    }

    @Test func findsBuiltinsByNameAliasOrIdPrefix() throws {
        let config = try Fixture.xinetd().load(
            """
            service sink
            {
                type = INTERNAL
                socket_type = dgram
                wait = yes
            }
            service myservice
            {
                type = INTERNAL UNLISTED
                id = chargen-alt
                port = 1919
                socket_type = stream
                wait = no
            }
            service nothing
            {
                type = INTERNAL UNLISTED
                port = 1920
                socket_type = stream
                wait = no
                server = /bin/true
            }
            service tcpmux
            {
                type = INTERNAL
                socket_type = dgram
                protocol = udp
                wait = yes
                port = 1
            }
            service echo
            {
                type = INTERNAL
                socket_type = stream
                wait = no
                flags = NAMEINARGS
                server_args = x
            }
            """)
        #expect(
            config.messages == [
                "test.conf:21: warning: server ignored: the service is INTERNAL",
                "test.conf:17: error: service nothing: INTERNAL needs a builtin service name or id (builtins: echo, discard, chargen, daytime, time, tcpmux)",
                "test.conf:26: error: builtin tcpmux needs socket_type stream",
                "test.conf:36: error: an INTERNAL service cannot have flags NAMEINARGS",
            ])
        #expect(config.services.map(\.program) == [.builtin(.discard), .builtin(.chargen)])
        #expect(config.services.map(\.listeners) == [[listener("0.0.0.0", 9, .dgram)], [listener("0.0.0.0", 1919)]])
        #expect(config.services.map(\.credentials) == [daemonRootCredentials, daemonRootCredentials])
        #expect(config.services.map(\.access.libwrapName) == ["sink", "chargen-alt"])
    }

    @Test func readsTCPMuxServicesAndTheirServer() throws {
        let config = try Fixture.xinetd().load(
            """
            service tcpmux
            {
                type = INTERNAL
                id = tcpmux-server
                socket_type = stream
                wait = no
            }
            service Status
            {
                type = UNLISTED TCPMUXPLUS
                socket_type = stream
                wait = no
                user = nobody
                server = /bin/cat
            }
            service help
            {
                type = TCPMUX
                protocol = tcp
                wait = no
                user = nobody
                server = /bin/cat
                port = 4444
            }
            service bad
            {
                type = TCPMUX
                socket_type = dgram
                wait = yes
                user = nobody
                server = /bin/cat
            }
            service worse
            {
                type = TCPMUX TCPMUXPLUS
                socket_type = stream
                wait = no
                user = nobody
                server = /bin/cat
            }
            service status
            {
                type = TCPMUX
                socket_type = stream
                wait = no
                user = nobody
                server = /bin/cat
            }
            """)
        #expect(
            config.messages == [
                "test.conf:23: warning: port ignored: TCPMUX services are reached through tcpmux",
                "test.conf:25: error: service bad: TCPMUX services must be socket_type stream, protocol tcp and wait = no",
                "test.conf:35: error: type TCPMUX and TCPMUXPLUS exclude each other",
                "test.conf:41: error: tcpmux target tcpmux/status has the same name as tcpmux/+Status at test.conf:8 (tcpmux names ignore case)",
            ])
        #expect(config.services.map(\.name) == ["tcpmux", "tcpmux/+Status", "tcpmux/help"])
        #expect(config.services.map(\.id) == ["tcpmux-server", "Status", "help"])
        #expect(
            config.services.map(\.tcpmux) == [
                nil, .target(name: "Status", sendsPlus: true), .target(name: "help", sendsPlus: false),
            ])
        #expect(config.services.map(\.listeners) == [[listener("0.0.0.0", 1)], [], []])
        #expect(config.services[0].builtin == .tcpmux)
    }

    @Test func addsTheTCPMuxServiceWhenOnlyTargetsAreConfigured() throws {
        let config = try Fixture.xinetd().load(
            "service x\n{\n type = TCPMUX\n socket_type = stream\n wait = no\n user = nobody\n server = /bin/cat\n}\n")
        #expect(
            config.messages == [
                "test.conf:1: warning: no tcpmux service configured for tcpmux/x: added `tcpmux stream tcp nowait root internal` on port 1"
            ])
        #expect(config.services.map(\.name) == ["tcpmux/x", "tcpmux"])
    }

    @Test func readsARedirectService() throws {
        let config = try Fixture.xinetd().load(
            """
            service smtp-relay
            {
                type = UNLISTED
                socket_type = stream
                wait = no
                port = 2525
                user = nobody
                redirect = 127.0.0.1 smtp
                log_on_success = TRAFFIC HOST
                server = /bin/true
            }
            service six
            {
                type = UNLISTED
                socket_type = stream
                wait = no
                port = 2526
                user = nobody
                redirect = ::1 25
            }
            service udp-relay
            {
                type = UNLISTED
                socket_type = dgram
                wait = no
                port = 2527
                user = nobody
                redirect = 127.0.0.1 25
            }
            service waits
            {
                type = UNLISTED
                socket_type = stream
                wait = yes
                port = 2528
                user = nobody
                redirect = 127.0.0.1 25
                flags = NAMEINARGS
            }
            service traffic
            {
                type = UNLISTED
                socket_type = stream
                wait = no
                port = 2529
                user = nobody
                server = /bin/true
                log_on_success = TRAFFIC
            }
            service nobody-home
            {
                type = UNLISTED
                socket_type = stream
                wait = no
                port = 2530
                redirect = 127.0.0.1 25
            }
            """)
        #expect(
            config.messages == [
                "test.conf:10: warning: server ignored: redirect relays connections itself",
                "test.conf:28: error: redirect needs socket_type stream",
                "test.conf:37: error: a redirect service must be wait = no",
                "test.conf:38: error: a redirect service cannot have flags NAMEINARGS",
                "test.conf:48: error: log_on_success TRAFFIC is only available for redirect services",
                "test.conf:50: error: service nobody-home: missing user",
            ])
        let relay = try #require(config.services.first)
        #expect(relay.redirect == RedirectTarget(host: "127.0.0.1", address: ip("127.0.0.1"), port: 25))
        #expect(relay.program == .builtin(.discard))
        #expect(relay.listeners == [listener("0.0.0.0", 2525)])
        #expect(relay.access.libwrapName == "smtp-relay")
        #expect(relay.logging.onSuccess == [.traffic, .host])
        #expect(config.services.last?.redirect == RedirectTarget(host: "::1", address: ip("::1"), port: 25))
    }

    @Test func readsASensor() throws {
        let config = try Fixture.xinetd().load(
            """
            service ftp
            {
                id = ftp-sensor
                type = INTERNAL
                socket_type = stream
                wait = no
                flags = SENSOR
                deny_time = 120
            }
            service telnet
            {
                socket_type = stream
                wait = no
                flags = SENSOR
                deny_time = FOREVER
            }
            service time
            {
                socket_type = dgram
                wait = yes
                flags = SENSOR
                deny_time = NEVER
            }
            service finger
            {
                socket_type = stream
                wait = no
                flags = SENSOR
            }
            service www
            {
                socket_type = stream
                wait = yes
                flags = SENSOR
            }
            """)
        #expect(
            config.messages == [
                "test.conf:28: warning: SENSOR without deny_time only logs the client, as in xinetd; set deny_time to ban it",
                "test.conf:33: error: a stream SENSOR must be wait = no",
            ])
        #expect(config.services.map(\.flags.sensor) == [true, true, true, true])
        #expect(config.services.map(\.flags.denyTimeSeconds) == [7200, nil, 0, 0])
        #expect(config.services.map(\.program) == Array(repeating: .builtin(.discard), count: 4))
        #expect(config.services.map(\.access.libwrapName) == ["ftp-sensor", "telnet", "time", "finger"])
        #expect(config.services[2].listeners == [listener("0.0.0.0", 37, .dgram)])
    }

    @Test func runsExternalDatagramNowaitAsWait() throws {
        let config = try Fixture.xinetd().load(
            "service tftp\n{\n socket_type = dgram\n wait = no\n user = nobody\n server = /bin/true\n}\n")
        #expect(
            config.messages == [
                "test.conf:4: warning: dgram wait = no runs as wait = yes (one child at a time owns the socket)"
            ])
        #expect(config.services.first?.wait == true)
    }

    @Test func requiresTheEssentialAttributes() throws {
        let config = try Fixture.xinetd().load(
            """
            service telnet
            {
                user = root
                server = /bin/true
            }
            service www
            {
                socket_type = stream
                wait = no
                server = /bin/true
            }
            service finger
            {
                socket_type = stream
                wait = no
                user = root
            }
            service seq
            {
                socket_type = seqpacket
                wait = no
            }
            service echo
            {
                socket_type = stream
                protocol = udp
                wait = no
                type = INTERNAL
            }
            """)
        #expect(
            config.errors == [
                "test.conf:1: error: service telnet: missing socket_type",
                "test.conf:1: error: service telnet: missing wait",
                "test.conf:6: error: service www: missing user",
                "test.conf:12: error: service finger: missing server",
                "test.conf:20: error: socket_type seqpacket needs SCTP, which swinetd does not support",
                "test.conf:26: error: socket_type stream does not work with protocol udp",
            ])
        #expect(config.services.isEmpty)
    }

    @Test func resolvesUsersAndGroups() throws {
        var fixture = try Fixture.xinetd()
        let text = """
            service telnet
            {
                socket_type = stream
                wait = no
                user = daemon
                group = nogroup
                server = /bin/true
            }
            service www
            {
                socket_type = stream
                wait = no
                user = no-such-user
                group = no-such-group
                server = /bin/true
            }
            service finger
            {
                socket_type = stream
                wait = no
                user = 54321
                server = /bin/true
            }
            service time
            {
                type = INTERNAL
                socket_type = stream
                wait = no
                group = nogroup
            }
            """
        let config = fixture.load(text)
        #expect(
            config.messages == [
                "test.conf:13: error: unknown user no-such-user",
                "test.conf:14: error: unknown group no-such-group",
                "test.conf:21: error: uid 54321 has no passwd entry, so it has no primary group: set group",
                "test.conf:29: warning: group ignored without user",
            ])
        #expect(
            config.services.map(\.credentials) == [
                Credentials(user: "daemon", uid: 1, gid: 65534, groups: [65534], changeIdentity: true),
                daemonRootCredentials,
            ])

        fixture.options.daemonUID = 65534
        fixture.options.daemonGID = 65534
        let unprivileged = fixture.load(text)
        #expect(
            unprivileged.warnings.contains(
                "test.conf:5: warning: runs as nobody because swinetd is not root (configured: user daemon)"))
        #expect(
            unprivileged.services.first?.credentials
                == Credentials(user: "nobody", uid: 65534, gid: 65534, groups: [], changeIdentity: false))
    }
}

// MARK: - Ports and addresses

@Suite struct XinetdListenerTests {
    func service(_ body: String, name: String = "telnet") throws -> LoadedConfiguration {
        try Fixture.xinetd().load(
            "service \(name)\n{\n socket_type = stream\n wait = no\n user = root\n server = /bin/true\n\(body)\n}\n")
    }

    @Test func takesThePortFromServicesOrThePortAttribute() throws {
        #expect(try service("").services.first?.listeners == [listener("0.0.0.0", 23)])
        #expect(try service(" port = 23").services.first?.listeners == [listener("0.0.0.0", 23)])
        let mismatch = try service(" port = 2323")
        #expect(mismatch.errors.count == 1)
        #expect(mismatch.errors.first?.hasPrefix("test.conf:7: error: service telnet is port 23/tcp in ") == true)
        #expect(mismatch.errors.first?.hasSuffix(", not 2323 (add type = UNLISTED to use another port)") == true)
        #expect(try service(" port = 2323\n type = UNLISTED").services.first?.listeners == [listener("0.0.0.0", 2323)])
        #expect(
            try service(" type = UNLISTED").errors == ["test.conf:1: error: service telnet: type UNLISTED needs port"])
        // Not in /etc/services: a port is enough (xinetd would also want type = UNLISTED).
        #expect(try service(" port = 4242", name: "unknown").services.first?.listeners == [listener("0.0.0.0", 4242)])
        let unknown = try service("", name: "unknown")
        #expect(unknown.errors.count == 1)
        #expect(unknown.errors.first?.hasSuffix("; set port (and type = UNLISTED)") == true)
    }

    @Test func bindsToOneAddressOrRefusesTheService() throws {
        #expect(try service(" bind = 127.0.0.1").services.first?.listeners == [listener("127.0.0.1", 23)])
        #expect(try service(" interface = 127.0.0.1").services.first?.listeners == [listener("127.0.0.1", 23)])
        #expect(try service(" bind = localhost").services.first?.listeners == [listener("127.0.0.1", 23)])
        #expect(try service(" bind = ::1").services.first?.listeners == [listener("::1", 23)])
        #expect(
            try service(" bind = ::1\n v6only = yes").services.first?.listeners == [listener("::1", 23, v6Only: true)])
        // Fail closed: never fall back to listening on every address (openSUSE/xinetd#20).
        let refusals: [(String, String)] = [
            (
                " bind = 192.168.1.1 10.0.0.1",
                "test.conf:7: error: bind takes exactly one value, found 2: 192.168.1.1 10.0.0.1"
            ),
            (" bind =", "test.conf:7: error: bind takes exactly one value, found 0"),
            (
                " bind = 10.1",
                "test.conf:7: error: cannot use bind address 10.1: not an address or a resolvable host; the service is not started"
            ),
            (
                " bind = 300.1.1.1",
                "test.conf:7: error: cannot use bind address 300.1.1.1: not an address or a resolvable host; the service is not started"
            ),
            (
                " bind = no-such-host.invalid",
                "test.conf:7: error: cannot use bind address no-such-host.invalid: not an address or a resolvable host; the service is not started"
            ),
            (" bind = ::1\n flags = IPv4", "test.conf:7: error: bind address ::1 has no IPv4 address (flags = IPv4)"),
            (
                " bind = 127.0.0.1\n flags = IPv6",
                "test.conf:7: error: bind address 127.0.0.1 has no IPv6 address (flags = IPv6)"
            ),
            (" bind = 127.0.0.1\n interface = 127.0.0.2", "test.conf:8: error: interface is already set at line 7"),
        ]
        for (body, message) in refusals {
            let config = try service(body)
            #expect(config.errors == [message], "\(body)")
            #expect(config.services.isEmpty, "\(body)")
        }
    }

    @Test func picksTheFamilyFromFlags() throws {
        #expect(try service(" flags = IPv4").services.first?.listeners == [listener("0.0.0.0", 23)])
        #expect(try service(" flags = IPv6").services.first?.listeners == [listener("::", 23)])
        #expect(
            try service(" flags = IPv6\n v6only = yes").services.first?.listeners == [listener("::", 23, v6Only: true)])
        #expect(try service(" flags = IPv4 IPv6").services.first?.listeners == [listener("::", 23)])
        #expect(try service(" v6only = yes").services.first?.listeners == [listener("0.0.0.0", 23)])
    }

    @Test func refusesListenerClashesWithInetdServicesInOtherFiles() throws {
        let fixture = try Fixture.xinetd()
        let inetd = try fixture.directory.write("inetd.conf", "telnet stream tcp4 nowait root /bin/true true\n")
        let xinetd = try fixture.directory.write(
            "xinetd.conf",
            "service telnet\n{\n socket_type = stream\n wait = no\n user = root\n server = /bin/true\n}\n")
        let config = ConfigLoader.load(paths: [inetd, xinetd], options: fixture.options)
        #expect(
            config.errors == ["\(xinetd):1: error: telnet: stream 0.0.0.0:23 is already used by telnet at \(inetd):1"])
        #expect(config.services.count == 1)
    }
}

// MARK: - Services switched off, ids

@Suite struct XinetdEnableTests {
    @Test func skipsDisabledServicesWithoutCheckingThem() throws {
        let config = try Fixture.xinetd().load(
            """
            defaults
            {
                disabled = time-udp
                disabled = chargen
            }
            service shell
            {
                disable = yes
                socket_type = stream
                user = no-such-user
                server = /no/such/rshd
                bogus = attribute
            }
            service time
            {
                type = INTERNAL
                id = time-udp
                socket_type = dgram
                wait = yes
            }
            service time
            {
                type = INTERNAL
                socket_type = stream
                wait = no
                disable = no
            }
            service chargen
            {
                type = INTERNAL
                socket_type = stream
            }
            service daytime
            {
                type = INTERNAL
                socket_type = stream
                wait = no
                disable = perhaps
            }
            """)
        #expect(config.errors == ["test.conf:38: error: disable must be yes or no, found perhaps"])
        #expect(config.services.map(\.id) == ["time"])
    }

    @Test func runsOnlyTheEnabledServicesWhenThereIsAList() throws {
        let config = try Fixture.xinetd().load(
            """
            defaults
            {
                enabled = echo-stream
                enabled += daytime
                disabled = daytime
            }
            service echo
            {
                type = INTERNAL
                id = echo-stream
                socket_type = stream
                wait = no
            }
            service echo
            {
                type = INTERNAL
                id = echo-dgram
                socket_type = dgram
                wait = yes
            }
            service daytime
            {
                type = INTERNAL
                socket_type = stream
                wait = no
            }
            """)
        #expect(config.messages == [])
        #expect(config.services.map(\.id) == ["echo-stream"])
    }

    @Test func refusesARepeatedId() throws {
        let fixture = try Fixture.xinetd()
        let echo = "service echo\n{\n type = INTERNAL\n socket_type = stream\n wait = no\n}\n"
        let first = try fixture.directory.write("a", echo)
        let second = try fixture.directory.write(
            "b", "service echo\n{\n type = INTERNAL\n socket_type = dgram\n wait = yes\n}\n" + echo)
        let config = ConfigLoader.load(paths: [first, second], options: fixture.options)
        #expect(
            config.errors == [
                "\(second):7: error: service echo: id echo is already used at \(second):1 (ids must be unique; set `id`)",
                "\(second):1: error: service echo: id echo is already used at \(first):1 (ids must be unique; set `id`)",
            ])
        #expect(config.services.map(\.location) == [ConfigLocation(file: first, line: 1)])
    }
}

// MARK: - Includes

@Suite struct XinetdIncludeTests {
    let echo =
        "service echo\n{\n type = INTERNAL\n id = ID\n socket_type = stream\n wait = no\n bind = 127.0.0.PORT\n}\n"

    func echo(_ id: String, _ host: Int) -> String {
        echo.replacing("ID", with: id).replacing("PORT", with: String(host))
    }

    @Test func readsIncludesInPlaceAndIncludedirInNameOrder() throws {
        let fixture = try Fixture.xinetd()
        let directory = try fixture.directory.makeDirectory("xinetd.d")
        try fixture.directory.write("xinetd.d/b", echo("b", 2))
        try fixture.directory.write("xinetd.d/B", echo("B", 3))
        try fixture.directory.write("xinetd.d/a-1", echo("a-1", 4))
        for name in ["a.conf", "b~", "c.rpmsave", ".hidden"] {
            try fixture.directory.write("xinetd.d/" + name, "garbage\n")
        }
        try fixture.directory.makeDirectory("xinetd.d/sub")
        try fixture.directory.write("extra", echo("extra", 5))
        let main = try fixture.directory.write(
            "xinetd.conf",
            "defaults\n{\n instances = 3\n}\n" + echo("first", 1)
                + "includedir xinetd.d\ninclude extra\ninclude \(fixture.directory.path)/extra2\n")
        try fixture.directory.write("extra2", echo("extra2", 6))

        let config = ConfigLoader.load(paths: [main], options: fixture.options)
        #expect(config.errors == [])
        #expect(config.services.map(\.id) == ["first", "B", "a-1", "b", "extra", "extra2"])
        // The defaults reach services in included files.
        #expect(config.services.allSatisfy { $0.limits.maxChildren == 3 })
        #expect(
            config.files == [main] + ["B", "a-1", "b"].map { directory + "/" + $0 } + [
                fixture.directory.path + "/extra", fixture.directory.path + "/extra2",
            ])
        #expect(
            config.warnings.sorted() == [
                "\(directory)/.hidden:0: warning: skipped \(directory)/.hidden: xinetd's includedir ignores names containing a dot (includedir at \(main):13)",
                "\(directory)/a.conf:0: warning: skipped \(directory)/a.conf: xinetd's includedir ignores names containing a dot (includedir at \(main):13)",
                "\(directory)/b~:0: warning: skipped \(directory)/b~: xinetd's includedir ignores names ending in ~ (includedir at \(main):13)",
                "\(directory)/c.rpmsave:0: warning: skipped \(directory)/c.rpmsave: xinetd's includedir ignores names containing a dot (includedir at \(main):13)",
                "\(directory)/sub:0: warning: skipped \(directory)/sub: not a regular file (includedir at \(main):13)",
            ])
    }

    @Test func refusesIncludeLoops() throws {
        let fixture = try Fixture.xinetd()
        let path = fixture.directory.path
        let selfIncluding = try fixture.directory.write("self", echo("self", 1) + "include self\n")
        try fixture.directory.write("a", "include b\n" + echo("a", 2))
        try fixture.directory.write("b", "include a\n" + echo("b", 3))
        let directory = try fixture.directory.makeDirectory("loop.d")
        try fixture.directory.write("loop.d/inner", "includedir \(directory)\n" + echo("inner", 4))

        let config = ConfigLoader.load(
            paths: [selfIncluding, path + "/a", directory + "/inner"], options: fixture.options)
        #expect(
            config.errors == [
                "\(selfIncluding):9: error: include loop: \(path)/self is already being read (\(path)/self)",
                "\(path)/b:1: error: include loop: \(path)/a is already being read (\(path)/a -> \(path)/b)",
                "\(directory)/inner:1: error: include loop: \(directory)/inner is already being read (\(directory)/inner)",
            ])
        #expect(config.services.map(\.id) == ["self", "b", "a", "inner"])
    }

    @Test func capsIncludeDepth() throws {
        let fixture = try Fixture.xinetd()
        for level in 0..<20 { try fixture.directory.write("level\(level)", "include level\(level + 1)\n") }
        try fixture.directory.write("level20", echo("deep", 1))
        let config = ConfigLoader.load(paths: [fixture.directory.path + "/level0"], options: fixture.options)
        #expect(
            config.errors == [
                "\(fixture.directory.path)/level15:1: error: includes nested more than 16 deep at \(fixture.directory.path)/level16"
            ])
        #expect(config.services.isEmpty)
    }

    @Test func reportsMissingIncludes() throws {
        let fixture = try Fixture.xinetd()
        let main = try fixture.directory.write("main", "include missing\nincludedir nodir\ninclude a b\n")
        let config = ConfigLoader.load(paths: [main], options: fixture.options)
        #expect(
            config.errors == [
                "\(main):1: error: cannot read \(fixture.directory.path)/missing: No such file or directory",
                "\(main):2: error: cannot read directory \(fixture.directory.path)/nodir: No such file or directory",
                "\(main):3: error: include takes exactly one path",
            ])
    }
}

// MARK: - Default files

@Suite struct DefaultPathTests {
    @Test func defaultsIncludeXinetdConf() {
        #expect(ConfigLoader.defaultPaths == ["/etc/inetd.conf", "/etc/inetd.d", "/etc/xinetd.conf"])
    }

    @Test func acceptsAnyOfTheDefaultFilesButNotNone() throws {
        let fixture = try Fixture.xinetd()
        let path = fixture.directory.path
        let paths = [path + "/inetd.conf", path + "/inetd.d", path + "/xinetd.conf"]
        let none = ConfigLoader.load(defaultPaths: paths, options: fixture.options)
        #expect(
            none.messages == [
                "\(path)/inetd.conf:0: error: no configuration found (looked for \(paths.joined(separator: ", ")))"
            ])

        try fixture.directory.write(
            "xinetd.conf", "service echo\n{\n type = INTERNAL\n socket_type = stream\n wait = no\n}\n")
        let xinetdOnly = ConfigLoader.load(defaultPaths: paths, options: fixture.options)
        #expect(xinetdOnly.messages == [])
        #expect(xinetdOnly.files == [path + "/xinetd.conf"])

        try fixture.directory.write("inetd.conf", "echo dgram udp4 wait root internal\n")
        let both = ConfigLoader.load(defaultPaths: paths, options: fixture.options)
        #expect(both.messages == [])
        #expect(both.services.map(\.socketType) == [.dgram, .stream])
    }
}

// MARK: - The examples directory

@Suite struct XinetdExamplesTests {
    /// examples/ at the top of the package, found from this file's path.
    static let examples: String = {
        let file = #filePath
        guard let tests = file.firstRange(of: "/Tests/") else { return "examples" }
        return String(file[..<tests.lowerBound]) + "/examples"
    }()

    /// The examples name real daemons (in.telnetd, in.tftpd, rsync ...) that need not be installed
    /// here, so programs are not checked.
    static func load() throws -> LoadedConfiguration {
        var fixture = try Fixture.xinetd()
        fixture.options.checkPrograms = false
        return ConfigLoader.load(paths: [examples + "/xinetd.conf"], options: fixture.options)
    }

    @Test func loadsWithoutErrors() throws {
        let config = try Self.load()
        #expect(config.errors == [])
        #expect(config.warnings == [])
        #expect(
            config.services.map(\.id) == [
                "chargen-stream", "daytime-stream", "daytime-dgram", "discard-stream", "echo-dgram", "echo-stream",
                "finger", "ftp-sensor", "hello", "rsync", "smtp-relay", "sysinfo", "tcpmux-server", "telnet", "tftp",
                "time", "time-udp",
            ])
        #expect(config.files.count == 17)
    }

    @Test func appliesTheDefaultsAndEachServicesAttributes() throws {
        let config = try Self.load()
        let telnet = try #require(config.service(id: "telnet"))
        #expect(telnet.listeners == [listener("0.0.0.0", 23)])
        #expect(telnet.program == .external(path: "/usr/sbin/in.telnetd", arguments: ["in.telnetd"]))
        #expect(
            telnet.access.onlyFrom == [
                network("192.168.1.0", 24), network("10.0.0.0", 8), .hostname("localhost"), .domain(".example.com"),
            ])
        #expect(telnet.access.noAccess == [network("10.0.0.66", 32)])
        #expect(telnet.logging.onFailure == [.host, .userid])
        #expect(telnet.logging.onSuccess == [.pid, .host, .duration, .exit])
        #expect(telnet.logging.destination == .syslog(facility: 3 << 3, level: 6))
        #expect(telnet.limits.maxChildren == 50 && telnet.limits.maxChildrenPerIP == 10)
        #expect(telnet.setup.umask == 0o002)
        #expect(telnet.credentials.groups == UserDatabase.groupList(user: "root", gid: 0))

        let rsync = try #require(config.service(id: "rsync"))
        #expect(rsync.listeners == [listener("::", 873)])  // dual-stack: v6only = no in the defaults

        let tftp = try #require(config.service(id: "tftp"))
        #expect(tftp.wait && tftp.socketType == .dgram)
        #expect(tftp.limits.connectionRate == ConnectionRate(rate: 100, pauseSeconds: 2))
        #expect(tftp.limits.maxChildrenPerIP == 11)
        #expect(
            tftp.program == .external(path: "/usr/sbin/in.tftpd", arguments: ["in.tftpd", "-s", "/var/lib/tftpboot"]))

        let finger = try #require(config.service(id: "finger"))
        #expect(finger.program == .external(path: "/usr/sbin/tcpd", arguments: ["/usr/sbin/in.fingerd", "-w"]))
        #expect(finger.access.libwrapName == "in.fingerd")

        let relay = try #require(config.service(id: "smtp-relay"))
        #expect(relay.redirect?.port == 25)
        #expect(relay.listeners == [listener("127.0.0.1", 2525)])
        #expect(relay.logging.onSuccess.contains(.traffic))

        let sensor = try #require(config.service(id: "ftp-sensor"))
        #expect(sensor.flags.sensor && sensor.flags.denyTimeSeconds == 7200)

        let sysinfo = try #require(config.service(id: "sysinfo"))
        #expect(sysinfo.tcpmux == .target(name: "sysinfo", sendsPlus: true))

        let hello = try #require(config.service(id: "hello"))
        #expect(hello.setup.environment == ["GREETING=hello", "LANG=C"])
        #expect(hello.setup.passEnvironment == ["PATH", "TZ"])
        #expect(
            hello.access.accessTimes == [
                TimeWindow(startMinute: 480, endMinute: 750), TimeWindow(startMinute: 810, endMinute: 1080),
            ])
        #expect(hello.setup.rlimits.map(\.kind) == [.addressSpace, .cpu, .stack, .files])
        #expect(
            hello.logging.destination
                == .file(path: "/var/log/swinetd-hello.log", softLimit: 1 << 20, hardLimit: (1 << 20) + 10_485))
        #expect(hello.credentials.gid == 65534)

        #expect(
            config.service(id: "chargen-stream")?.access.onlyFrom == [network("127.0.0.1", 32), network("::1", 128)])
        #expect(config.service(id: "discard-stream")?.listeners == [listener("127.0.0.1", 9)])
        #expect(config.service(id: "time")?.credentials == daemonRootCredentials)
        #expect(config.service(id: "shell") == nil)  // disable = yes
    }

    @Test func loadsTheExamplesWhosProgramsExistWithChecksOn() throws {
        // hello runs /usr/bin/env, which every Debian has; check that one with programs checked.
        let fixture = try Fixture.xinetd()
        let config = ConfigLoader.load(paths: [Self.examples + "/xinetd.d/hello"], options: fixture.options)
        #expect(config.errors == [])
        #expect(config.services.map(\.id) == ["hello"])
    }
}

@Suite struct XinetdInheritedErrorTests {
    @Test func namesTheServiceWhenAnInheritedValueDoesNotFit() throws {
        let config = try Fixture.xinetd().load(
            """
            defaults
            {
                bind = ::1
            }
            service telnet
            {
                socket_type = stream
                wait = no
                user = root
                server = /bin/true
                flags = IPv4
            }
            """)
        #expect(
            config.errors == [
                "test.conf:3: error: bind address ::1 has no IPv4 address (flags = IPv4) (inherited by service telnet at test.conf:5)"
            ])
        #expect(config.services.isEmpty)
    }
}

@Suite struct XinetdLibwrapTests {
    @Test func namesTheTcpdDaemonOrSwitchesItOff() throws {
        let config = try Fixture.xinetd().load(
            """
            service telnet
            {
                socket_type = stream
                wait = no
                user = root
                server = /bin/true
                flags = NOLIBWRAP
            }
            service finger
            {
                socket_type = stream
                wait = no
                user = root
                server = /bin/cat
                libwrap = in.fingerd
            }
            service www
            {
                socket_type = stream
                wait = no
                user = root
                server = /usr/bin/env
            }
            """)
        #expect(config.messages == [])
        #expect(config.services.map(\.access.libwrapName) == [nil, "in.fingerd", "env"])
    }
}
