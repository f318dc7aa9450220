import SwinetdCore
import Testing

@Suite struct ServicesDatabaseTests {
    @Test func parsesNamesPortsProtocolsAndAliases() {
        let database = ServicesDatabase(
            parsing: Array(
                """
                # comment line
                discard\t9/tcp\t\tsink null   # trailing comment
                discard 9/udp sink null\r
                www 80/tcp http#glued-comment
                """.utf8))
        #expect(
            database.entries == [
                ServicesDatabase.Entry(name: "discard", port: 9, protocolName: "tcp", aliases: ["sink", "null"]),
                ServicesDatabase.Entry(name: "discard", port: 9, protocolName: "udp", aliases: ["sink", "null"]),
                ServicesDatabase.Entry(name: "www", port: 80, protocolName: "tcp", aliases: ["http"]),
            ])
        #expect(database.port(named: "sink", protocolName: "udp") == 9)
        #expect(database.port(named: "http", protocolName: "tcp") == 80)
        #expect(database.port(named: "http", protocolName: "udp") == nil)
        #expect(database.entry(named: "null", protocolName: "tcp")?.name == "discard")
    }

    @Test func skipsMalformedLinesAndKeepsTheFirstOfRepeatedNames() {
        let database = ServicesDatabase(
            parsing: Array(
                """
                lonely
                noslash 12
                noproto 12/
                badport x/tcp
                bigport 70000/tcp
                signed +5/tcp
                first 100/tcp same
                second 200/tcp same
                first 300/tcp
                """.utf8))
        #expect(database.entries.map(\.name) == ["first", "second", "first"])
        #expect(database.port(named: "first", protocolName: "tcp") == 100)
        #expect(database.port(named: "same", protocolName: "tcp") == 100)
        #expect(database.port(named: "second", protocolName: "tcp") == 200)
    }

    @Test func fallsBackToWellKnownPortsForBuiltins() {
        let empty = ServicesDatabase()
        for builtin in Builtin.allCases {
            #expect(empty.port(named: builtin.rawValue, protocolName: "tcp") == builtin.wellKnownPort)
        }
        #expect(empty.port(named: "ssh", protocolName: "tcp") == nil)
        // The file wins over the fallback.
        let moved = ServicesDatabase(entries: [.init(name: "echo", port: 7007, protocolName: "tcp")])
        #expect(moved.port(named: "echo", protocolName: "tcp") == 7007)
    }

    @Test func loadsAFileAndTreatsAMissingOneAsEmpty() throws {
        let directory = try TemporaryDirectory()
        let path = try directory.write("services", servicesFixture)
        let database = ServicesDatabase.load(path: path)
        #expect(database.port(named: "ttytst", protocolName: "tcp") == 19)
        #expect(database.port(named: "tftp", protocolName: "udp") == 69)
        #expect(database.entries.count == 11)

        let missing = ServicesDatabase.load(path: directory.path + "/none")
        #expect(missing.entries.isEmpty)
        #expect(missing.port(named: "daytime", protocolName: "udp") == 13)
        // A directory cannot be read as a file: also empty, not a crash.
        #expect(ServicesDatabase.load(path: directory.path).entries.isEmpty)
    }
}
