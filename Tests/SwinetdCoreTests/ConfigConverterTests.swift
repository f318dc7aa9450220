import Glibc
import SwinetdCore
import Testing

/// A service with the parts that name where it came from blanked, for comparing loads of
/// different files. `protocolName` is display text as written (`tcp4` in inetd.conf, `tcp` in xinetd).
func comparable(_ service: Service, keepID: Bool = false) -> Service {
    var copy = service
    copy.location = ConfigLocation(file: "", line: 0)
    copy.protocolName = ""
    if !keepID { copy.id = "" }
    return copy
}

@Suite struct ConfigConverterTests {
    /// Loads `text` from a file, converts it to `format`, and loads the result again.
    func convert(_ text: String, to format: ConfigFormat, fixture: Fixture, checkPrograms: Bool = true)
        throws -> (original: LoadedConfiguration, output: ConfigConverter.Output, reloaded: LoadedConfiguration)
    {
        var options = fixture.options
        options.checkPrograms = checkPrograms
        let input = try fixture.directory.write("input", text)
        let original = ConfigLoader.load(paths: [input], options: options)
        return try reconvert(original, to: format, fixture: fixture, options: options)
    }

    func reconvert(_ original: LoadedConfiguration, to format: ConfigFormat, fixture: Fixture, options: LoadOptions)
        throws -> (original: LoadedConfiguration, output: ConfigConverter.Output, reloaded: LoadedConfiguration)
    {
        let output = ConfigConverter.render(
            original.services, as: format, servicesDatabase: ServicesDatabase.load(path: options.servicesFile),
            sources: original.files)
        let converted = try fixture.directory.write("converted", output.text)
        #expect(ConfigFormat.detect(path: converted) == format)
        return (original, output, ConfigLoader.load(paths: [converted], options: options))
    }

    @Test func carriesInetdServicesToXinetdAndBack() throws {
        let (original, output, reloaded) = try convert(
            """
            echo\tstream\ttcp4\tnowait\troot\tinternal
            echo\tdgram\tudp4\twait\troot\tinternal
            127.0.0.1:daytime stream tcp4 nowait root internal
            [::1]:time stream tcp6 nowait root internal
            discard stream tcp46 nowait root internal
            chargen stream tcp6 nowait nobody:nogroup internal
            4000 stream tcp4 nowait/5/0/2 nobody /bin/cat cat -u
            4001 dgram udp4 wait daemon /bin/true in.whatever -x
            tcpmux stream tcp4 nowait root internal
            tcpmux/+Status stream tcp nowait nobody /bin/cat cat
            tcpmux/help stream tcp nowait nobody /bin/cat cat
            """, to: .xinetd, fixture: try .xinetd())
        #expect(original.messages == [])
        #expect(output.notes == [])
        #expect(reloaded.messages == [])
        #expect(reloaded.services.map { comparable($0) } == original.services.map { comparable($0) })
        // inetd.conf ids repeat (`echo` twice); xinetd's may not.
        #expect(
            reloaded.services.map(\.id) == [
                "echo-stream", "echo-dgram", "daytime", "time", "discard", "chargen", "4000", "4001", "tcpmux",
                "Status", "help",
            ])
        #expect(output.text.hasPrefix("# Converted by swinetd convert from \(original.files[0])\n"))
        #expect(
            output.text.contains(
                """
                service 4001
                {
                \tid              = 4001
                \ttype            = UNLISTED
                \tflags           = NAMEINARGS IPv4 NOLIBWRAP
                \tsocket_type     = dgram
                \tprotocol        = udp
                \twait            = yes
                \tuser            = daemon
                \tserver          = /bin/true
                \tserver_args     = in.whatever -x
                \tport            = 4001
                \tcps             = 0 0
                \tlog_on_success  = PID HOST EXIT DURATION
                \tlog_on_failure  = HOST
                }
                """))
    }

    @Test func splitsAnInetdDualStackEntryIntoTwoXinetdServices() throws {
        let (original, output, reloaded) = try convert(
            "echo stream tcp nowait root internal\n", to: .xinetd, fixture: try .xinetd())
        #expect(reloaded.messages == [])
        #expect(reloaded.services.map(\.id) == ["echo", "echo-ipv6"])
        #expect(reloaded.services.flatMap(\.listeners) == original.services[0].listeners)
        var merged = comparable(reloaded.services[0])
        merged.listeners += reloaded.services[1].listeners
        #expect(merged == comparable(original.services[0]))
        #expect(
            output.notes == [
                "\(original.files[0]):1 echo: not carried over: one socket per xinetd service: written as 2 services"
            ])
    }

    @Test func listsWhatXinetdCannotSay() throws {
        let fixture = try Fixture.xinetd()
        let (original, output, reloaded) = try convert(
            """
            4000 stream tcp4,rcvbuf=64k,backlog=5 nowait.30 nobody /bin/cat cat
            4002 stream tcp4 nowait/0/10 nobody /bin/cat cat
            /run/echo.sock stream unix nowait root internal echo
            4003 stream tcp4 nowait root internal echo
            """, to: .xinetd, fixture: fixture)
        #expect(original.messages == [])
        let file = original.files[0]
        #expect(
            output.notes == [
                "\(file):1 4000: not carried over: spawn limit 30/min; rcvbuf/sndbuf; backlog 5",
                "\(file):2 4002: not carried over: 10 connections per client per minute",
                "\(file):3 /run/echo.sock: not carried over: Unix-domain socket /run/echo.sock (mode 600) (xinetd has none; service skipped)",
            ])
        #expect(reloaded.messages == [])
        #expect(reloaded.services.map(\.name) == ["4000", "4002", "echo"])
        // xinetd finds builtins by service name, so the internal service on port 4003 is renamed.
        #expect(reloaded.services[2].builtin == .echo)
        #expect(reloaded.services[2].listeners == [listener("0.0.0.0", 4003)])
        #expect(reloaded.services[2].id == "4003")
    }

    @Test func rewritesEveryXinetdAttributeFaithfully() throws {
        var fixture = try Fixture.xinetd()
        fixture.options.checkPrograms = false
        let original = ConfigLoader.load(
            paths: [XinetdExamplesTests.examples + "/xinetd.conf"], options: fixture.options)
        #expect(original.errors == [])
        let (_, output, reloaded) = try reconvert(original, to: .xinetd, fixture: fixture, options: fixture.options)
        #expect(output.notes == [])
        #expect(reloaded.messages == [])
        #expect(
            reloaded.services.map { comparable($0, keepID: true) }
                == original.services.map { comparable($0, keepID: true) })
    }

    @Test func writesTheAttributesOfOneService() throws {
        var fixture = try Fixture.xinetd()
        fixture.options.checkPrograms = false
        let original = ConfigLoader.load(
            paths: [XinetdExamplesTests.examples + "/xinetd.d/hello"], options: fixture.options)
        let output = ConfigConverter.render(
            original.services, as: .xinetd, servicesDatabase: ServicesDatabase.load(path: fixture.options.servicesFile))
        #expect(
            output.text == """
                # Converted by swinetd convert

                # hello from \(XinetdExamplesTests.examples)/xinetd.d/hello:3
                service hello
                {
                \tid              = hello
                \ttype            = UNLISTED
                \tflags           = IPv4 NODELAY KEEPALIVE
                \tsocket_type     = stream
                \tprotocol        = tcp
                \twait            = no
                \tuser            = nobody
                \tserver          = /usr/bin/env
                \tport            = 7070
                \tinstances       = 5
                \tcps             = 50 10
                \tmax_load        = 4.5
                \tnice            = 10
                \tumask           = 077
                \trlimit_as       = 67108864
                \trlimit_cpu      = 20
                \trlimit_stack    = UNLIMITED
                \trlimit_files    = 64
                \tenv             = GREETING=hello LANG=C
                \tpassenv         = PATH TZ
                \taccess_times    = 08:00-12:30 13:30-18:00
                \tlog_type        = FILE /var/log/swinetd-hello.log 1048576 1059061
                \tlog_on_success  = PID HOST EXIT
                }

                """)
    }

    @Test func carriesXinetdServicesToInetdAndListsTheRest() throws {
        var fixture = try Fixture.xinetd()
        fixture.options.checkPrograms = false
        let original = ConfigLoader.load(
            paths: [XinetdExamplesTests.examples + "/xinetd.conf"], options: fixture.options)
        let (_, output, reloaded) = try reconvert(original, to: .inetd, fixture: fixture, options: fixture.options)
        #expect(reloaded.messages == [])
        let skipped = ["smtp-relay", "ftp-sensor"]
        let kept = original.services.filter { !skipped.contains($0.id) }
        // hello is UNLISTED: inetd.conf names it by its port.
        #expect(reloaded.services.map(\.name) == kept.map { $0.name == "hello" ? "7070" : $0.name })
        #expect(reloaded.services.map(\.listeners) == kept.map(\.listeners))
        #expect(reloaded.services.map(\.program) == kept.map(\.program))
        #expect(reloaded.services.map(\.wait) == kept.map(\.wait))
        #expect(reloaded.services.map(\.tcpmux) == kept.map(\.tcpmux))
        #expect(reloaded.services.map(\.limits.maxChildren) == kept.map(\.limits.maxChildren))
        #expect(reloaded.services.map(\.limits.maxChildrenPerIP) == kept.map(\.limits.maxChildrenPerIP))
        #expect(reloaded.services.map(\.credentials.uid) == kept.map(\.credentials.uid))
        #expect(reloaded.services.map(\.credentials.gid) == kept.map(\.credentials.gid))

        let examples = XinetdExamplesTests.examples + "/xinetd.d"
        let notes = output.notes
        #expect(
            notes.contains(
                "\(examples)/smtp-relay:3 smtp-relay: not carried over: redirect 127.0.0.1 25 (inetd.conf has no redirect; service skipped)"
            ))
        #expect(
            notes.contains(
                "\(examples)/ftp-sensor:6 ftp: not carried over: SENSOR (inetd.conf has no sensor; service skipped)"))
        #expect(
            notes.contains(
                "\(examples)/telnet:4 telnet: not carried over: only_from 192.168.1.0/24 10.0.0.0/8 localhost .example.com; "
                    + "no_access 10.0.0.66; libwrap in.telnetd (use --libwrap or tcpd); cps 50 10; umask 002; banner_fail /etc/issue.net; "
                    + "log_type; log_on_failure HOST USERID"))
        #expect(notes.count == kept.count + skipped.count)
        #expect(
            output.text.contains(
                "\n# telnet from \(examples)/telnet:4\ntelnet\tstream\ttcp4\tnowait/50/0/10\troot\t/usr/sbin/in.telnetd in.telnetd\n"
            ))
        #expect(
            output.text.contains("\ntcpmux/+sysinfo\tstream\ttcp\tnowait/50/0/10\tnobody\t/usr/bin/uptime uptime\n"))
        #expect(output.text.contains("\nrsync\tstream\ttcp46\tnowait/50/0/10\troot\t/usr/bin/rsync rsync --daemon\n"))
        #expect(output.text.contains("\n127.0.0.1:discard\tstream\ttcp4\tnowait/50/0/10\troot\tinternal discard\n"))
        #expect(output.text.contains("\n7070\tstream\ttcp4\tnowait/5/0/10\tnobody\t/usr/bin/env env\n"))
    }

    @Test func keepsDualStackInetdEntriesOnOneLine() throws {
        let (original, output, reloaded) = try convert(
            """
            echo stream tcp nowait root internal
            4000 stream tcp nowait.10 nobody:nogroup /bin/cat cat
            """, to: .inetd, fixture: try .xinetd())
        #expect(output.notes == [])
        #expect(output.text.contains("\necho\tstream\ttcp\tnowait\troot\tinternal echo\n"))
        // nogroup is nobody's own group, so it is not written.
        #expect(output.text.contains("\n4000\tstream\ttcp\tnowait.10\tnobody\t/bin/cat cat\n"))
        #expect(reloaded.messages == [])
        #expect(reloaded.services.map { comparable($0) } == original.services.map { comparable($0) })
    }
}
