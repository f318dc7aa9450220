import Glibc
import SwinetdCore
import Testing

@Suite struct ConfigLoaderTests {
    @Test func refusesADuplicateListenerInALaterFile() throws {
        let fixture = try Fixture()
        let first = try fixture.directory.write("a.conf", "\necho stream tcp nowait root internal\n")
        let second = try fixture.directory.write(
            "b.conf",
            """
            127.0.0.1:echo stream tcp4 nowait root internal
            7 stream tcp6 nowait root internal echo
            echo dgram udp wait root internal
            """)
        let config = ConfigLoader.load(paths: [first, second], options: fixture.options)
        #expect(config.files == [first, second])
        // 127.0.0.1:7 cannot listen beside 0.0.0.0:7 (Linux refuses the bind), so it is refused too.
        #expect(
            config.messages == [
                "\(second):2: error: 7: stream [::]:7 is already used by echo at \(first):2",
                "\(second):1: error: echo: stream 127.0.0.1:7 overlaps stream 0.0.0.0:7 of echo at \(first):2 "
                    + "(the kernel refuses both listening on that port)",
            ])
        #expect(
            config.services.map(\.location) == [
                ConfigLocation(file: first, line: 2), ConfigLocation(file: second, line: 3),
            ])
    }

    @Test func overlappingStreamListenersAreRefusedButDatagramOnesAreNot() throws {
        let fixture = try Fixture()
        let file = try fixture.directory.write(
            "c.conf",
            """
            127.0.0.1:9001 stream tcp nowait root internal echo
            [::1]:9001 stream tcp nowait root internal echo
            9001 stream tcp46 nowait root internal echo
            127.0.0.2:9001 stream tcp nowait root internal echo
            [::]:9002 stream tcp6 nowait root internal echo
            9002 stream tcp4 nowait root internal echo
            9003 dgram udp wait root internal echo
            127.0.0.1:9003 dgram udp wait root internal echo
            """)
        let config = ConfigLoader.load(paths: [file], options: fixture.options)
        // tcp46 on [::] covers IPv4 too; two IPv4 hosts, and a v6-only wildcard beside IPv4, coexist.
        #expect(config.messages.count == 1 && config.messages[0].hasPrefix("\(file):3: error: 9001: "), "\(config.messages)")
        #expect(config.services.map(\.location.line) == [1, 2, 4, 5, 6, 7, 8])
    }

    @Test func readsADirectoryInNameOrderSkippingLeftovers() throws {
        let fixture = try Fixture()
        let directory = try fixture.directory.makeDirectory("inetd.d")
        try fixture.directory.write("inetd.d/b-daytime", "daytime stream tcp nowait root internal\n")
        try fixture.directory.write("inetd.d/B-time", "time stream tcp nowait root internal\n")
        try fixture.directory.write("inetd.d/a-echo", "echo stream tcp nowait root internal\n")
        let skipped = [
            ".hidden", "echo~", "x.dpkg-old", "x.dpkg-new", "x.dpkg-dist", "x.rpmsave", "x.rpmnew", "x.bak",
            "x.swp",
        ]
        for name in skipped { try fixture.directory.write("inetd.d/" + name, "garbage\n") }
        try fixture.directory.makeDirectory("inetd.d/subdir")

        let config = ConfigLoader.load(paths: [directory + "/"], options: fixture.options)
        #expect(config.files == ["B-time", "a-echo", "b-daytime"].map { directory + "/" + $0 })
        #expect(config.services.map(\.builtin) == [.time, .echo, .daytime])
        #expect(!config.hasErrors)
        let warnings = config.diagnostics.filter { $0.severity == .warning }
        #expect(warnings.count == skipped.count + 1)
        for name in skipped + ["subdir"] {
            #expect(warnings.contains { $0.location == ConfigLocation(file: directory + "/" + name, line: 0) })
        }
        #expect(
            config.messages.contains(
                "\(directory)/echo~:0: warning: skipped \(directory)/echo~: name ends in ~ (editor or package-manager leftover)"
            ))
        #expect(config.messages.contains("\(directory)/.hidden:0: warning: skipped \(directory)/.hidden: hidden file"))
        #expect(
            config.messages.contains("\(directory)/subdir:0: warning: skipped \(directory)/subdir: not a regular file"))
    }

    @Test func startsEachFileWithTheWildcardHost() throws {
        let fixture = try Fixture()
        let first = try fixture.directory.write("a.conf", "127.0.0.1:\necho stream tcp4 nowait root internal\n")
        let second = try fixture.directory.write("b.conf", "discard stream tcp4 nowait root internal\n")
        let config = ConfigLoader.load(paths: [first, second], options: fixture.options)
        #expect(config.messages == [])
        #expect(
            config.services.map(\.listeners) == [
                [ListenerSpec(address: .inet(ip("127.0.0.1"), port: 7, v6Only: false), socketType: .stream)],
                [ListenerSpec(address: .inet(.anyV4, port: 9, v6Only: false), socketType: .stream)],
            ])
    }

    @Test func reportsAMissingExplicitFile() throws {
        let fixture = try Fixture()
        let missing = fixture.directory.path + "/missing.conf"
        let present = try fixture.directory.write("present.conf", "echo stream tcp nowait root internal\n")
        let config = ConfigLoader.load(paths: [missing, present], options: fixture.options)
        #expect(config.messages == ["\(missing):0: error: cannot read \(missing): No such file or directory"])
        #expect(config.files == [present])
        #expect(config.services.count == 1)
    }

    @Test(.enabled(if: access("/etc/inetd.d", F_OK) != 0, "only meaningful where /etc/inetd.d is absent"))
    func acceptsAMissingDefaultDirectory() throws {
        let config = ConfigLoader.load(paths: ["/etc/inetd.d"], options: try Fixture().options)
        #expect(config.diagnostics.isEmpty)
        #expect(config.files.isEmpty)
        #expect(ConfigLoader.defaultPaths == ["/etc/inetd.conf", "/etc/inetd.d", "/etc/xinetd.conf"])
    }

    @Test func readsFilesLargerThanOneReadCall() throws {
        let fixture = try Fixture()
        let arguments = (0..<30_000).map { "a\($0)" }
        let text = "# big\n4000 stream tcp nowait root /bin/true " + arguments.joined(separator: "\t") + "\r\n"
        let path = try fixture.directory.write("big.conf", text)
        let config = ConfigLoader.load(paths: [path], options: fixture.options)
        #expect(config.messages == [])
        #expect(config.services.first?.program == .external(path: "/bin/true", arguments: arguments))
    }

    @Test func matchesTCPMuxTargetsAcrossFilesAndAddsTheService() throws {
        let fixture = try Fixture()
        let first = try fixture.directory.write("a.conf", "tcpmux/+Status stream tcp nowait nobody /bin/true true\n")
        let second = try fixture.directory.write(
            "b.conf",
            "tcpmux/status stream tcp nowait root /bin/true true\ntcpmux/other stream tcp nowait root /bin/true true\n")
        let config = ConfigLoader.load(paths: [first, second], options: fixture.options)
        #expect(
            config.messages == [
                "\(second):1: error: tcpmux target tcpmux/status has the same name as tcpmux/+Status at \(first):1 (tcpmux names ignore case)",
                "\(first):1: warning: no tcpmux service configured for tcpmux/+Status: added `tcpmux stream tcp nowait root internal` on port 1",
            ])
        #expect(config.services.map(\.name) == ["tcpmux/+Status", "tcpmux/other", "tcpmux"])
    }

    @Test func refusesTheAddedTCPMuxServiceWhenItsPortIsTaken() throws {
        var fixture = try Fixture()
        fixture.options.daemonUID = 65534
        fixture.options.daemonGID = 65534
        let config = fixture.load(
            """
            1 stream tcp nowait nobody /bin/true true
            tcpmux/x stream tcp nowait nobody /bin/true true
            """)
        #expect(
            config.messages == [
                "test.conf:2: warning: no tcpmux service configured for tcpmux/x: added `tcpmux stream tcp nowait nobody internal` on port 1",
                "test.conf:2: error: tcpmux: stream 0.0.0.0:1 is already used by 1 at test.conf:1",
            ])
        #expect(config.services.map(\.name) == ["1", "tcpmux/x"])
    }
}

@Suite struct UserDatabaseTests {
    @Test func looksUpUsersByNameAndNumber() {
        #expect(UserDatabase.user(named: "root") == UserDatabase.User(name: "root", uid: 0, primaryGID: 0))
        #expect(UserDatabase.user(id: 65534)?.name == "nobody")
        #expect(UserDatabase.user("65534") == UserDatabase.User(name: "nobody", uid: 65534, primaryGID: 65534))
        #expect(UserDatabase.user("54321") == UserDatabase.User(name: "54321", uid: 54321, primaryGID: nil))
        #expect(UserDatabase.user("no-such-user") == nil)
        #expect(UserDatabase.user("-1") == nil)
        #expect(UserDatabase.user("4294967296") == nil)
    }

    @Test func looksUpGroupsByNameAndNumber() {
        #expect(UserDatabase.groupID("nogroup") == 65534)
        #expect(UserDatabase.groupID(named: "root") == 0)
        #expect(UserDatabase.groupID("4242") == 4242)
        #expect(UserDatabase.groupID("no-such-group") == nil)
        #expect(UserDatabase.groupName(id: 0) == "root")
        #expect(UserDatabase.groupName(id: 4_000_000) == nil)
    }

    @Test func listsSupplementaryGroupsStartingWithTheGivenOne() {
        #expect(UserDatabase.groupList(user: "nobody", gid: 65534) == [65534])
        #expect(UserDatabase.groupList(user: "root", gid: 0).first == 0)
    }
}
