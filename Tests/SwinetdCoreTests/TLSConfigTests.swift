import Glibc
import SwinetdCore
import Testing

/// A throwaway PKI made by Tests/helpers/make-test-pki.sh with the openssl CLI (needed: CI
/// installs it), once per test process.
enum TestPKI {
    static let directory: String = {
        let here = #filePath  // .../Tests/SwinetdCoreTests/TLSConfigTests.swift
        var parts = here.split(separator: "/", omittingEmptySubsequences: false)
        parts.removeLast(2)  // .../Tests
        let tests = parts.joined(separator: "/")
        let dir = "/tmp/swinetd-core-pki-\(getpid())"
        let status = system("sh '\(tests)/helpers/make-test-pki.sh' '\(dir)'")
        precondition(status == 0, "make-test-pki.sh failed (is openssl installed?)")
        atexit { _ = system("rm -rf /tmp/swinetd-core-pki-\(getpid())") }
        return dir
    }()

    static func path(_ name: String) -> String { directory + "/" + name }
}

@Suite struct TLSConfigTests {
    var certificate: String { TestPKI.path("server.pem") }
    var key: String { TestPKI.path("server.key") }
    var clientCA: String { TestPKI.path("ca.pem") }

    @Test func parsesTheInetdConfProtocolOptions() throws {
        let config = try Fixture().load(
            "127.0.0.1:4433 stream tcp,tls_certificate=\(certificate),tls_key=\(key) nowait root /bin/cat cat\n"
                + "127.0.0.1:4434 stream tcp4,rcvbuf=64k,tls_certificate=\(certificate),tls_key=\(key),tls_client_ca=\(clientCA) nowait root /bin/cat cat\n"
        )
        #expect(config.messages == [])
        try #require(config.services.count == 2)
        let plain = try #require(config.services[0].tls)
        #expect(plain.certificatePath == certificate)
        #expect(plain.keyPath == key)
        #expect(plain.clientCAPath == nil)
        #expect(plain.context?.verifiesClients == false)
        let mutual = try #require(config.services[1].tls)
        #expect(mutual.clientCAPath == clientCA)
        #expect(mutual.context?.verifiesClients == true)
        #expect(config.services[1].listeners.first?.receiveBuffer == 65536)
    }

    @Test func parsesTheXinetdAttributes() throws {
        let config = try Fixture.xinetd().load(
            """
            service securecat
            {
                type            = UNLISTED
                port            = 4433
                socket_type     = stream
                wait            = no
                user            = root
                server          = /bin/cat
                tls_certificate = \(certificate)
                tls_key         = \(key)
                tls_client_ca   = \(clientCA)
            }

            """)
        #expect(config.errors == [])
        let tls = try #require(config.service(id: "securecat")?.tls)
        #expect(tls == ServiceTLS(certificatePath: certificate, keyPath: key, clientCAPath: clientCA))
        #expect(tls.context?.verifiesClients == true)
    }

    @Test func reportsBadFilesWithFileAndLineAndRefusesTheService() throws {
        let fixture = try Fixture()
        let config = fixture.load(
            "4433 stream tcp,tls_certificate=/nonexistent/cert.pem,tls_key=\(key) nowait root /bin/cat cat\n"
                + "4434 stream tcp,tls_certificate=\(certificate),tls_key=\(TestPKI.path("mismatch.key")) nowait root /bin/cat cat\n"
                + "4435 stream tcp,tls_certificate=\(key),tls_key=\(key) nowait root /bin/cat cat\n"
                + "4436 stream tcp,tls_certificate=\(certificate) nowait root /bin/cat cat\n"
                + "4437 stream tcp,tls_certificate=\(certificate),tls_key=\(key),tls_client_ca=relative.pem nowait root /bin/cat cat\n"
                + "4438 stream tcp,tls_key nowait root /bin/cat cat\n")
        #expect(config.services.isEmpty)
        let errors = config.errors
        #expect(errors.contains { $0.hasPrefix("test.conf:1: error: tls_certificate /nonexistent/cert.pem: No such file") })
        #expect(errors.contains { $0.hasPrefix("test.conf:2: error: ") && $0.contains("cannot be used together") })
        #expect(errors.contains { $0.hasPrefix("test.conf:3: error: tls_certificate \(key): ") })
        #expect(errors.contains { $0.hasPrefix("test.conf:4: error: tls_key is missing") })
        #expect(errors.contains { $0.hasPrefix("test.conf:5: error: tls_client_ca relative.pem: must be an absolute path") })
        #expect(errors.contains { $0.hasPrefix("test.conf:6: error: protocol option tls_key needs a path") })
    }

    @Test func refusesTLSWhereSwinetdCannotTerminateIt() throws {
        let tls = "tls_certificate=\(certificate),tls_key=\(key)"
        let config = try Fixture().load(
            "echo stream tcp,\(tls) nowait root internal\n"
                + "4433 stream tcp,\(tls) wait root /bin/cat cat\n"
                + "4434 dgram udp,\(tls) wait root /bin/cat cat\n"
                + "/run/x.sock stream unix,\(tls) nowait root /bin/cat cat\n"
                + "tcpmux/+secure stream tcp,\(tls) nowait root /bin/cat cat\n")
        #expect(config.services.filter { $0.tls != nil }.isEmpty)
        let errors = config.errors
        #expect(errors.contains { $0.hasPrefix("test.conf:1: error: TLS is not available for internal services") })
        #expect(errors.contains { $0.hasPrefix("test.conf:2: error: TLS needs a nowait service") })
        #expect(errors.contains { $0.hasPrefix("test.conf:3: error: TLS needs a TCP stream service") })
        #expect(errors.contains { $0.hasPrefix("test.conf:4: error: TLS needs a TCP stream service") })
        #expect(errors.contains { $0.hasPrefix("test.conf:5: error: TLS cannot be used on a tcpmux service") })
    }

    @Test func xinetdErrorsPointAtTheAttributeLine() throws {
        let config = try Fixture.xinetd().load(
            """
            service securecat
            {
                type            = UNLISTED
                port            = 4433
                socket_type     = stream
                wait            = no
                user            = root
                server          = /bin/cat
                banner          = /etc/issue
                tls_certificate = \(certificate)
                tls_key         = /nonexistent.key
            }

            """)
        #expect(config.services.isEmpty)
        #expect(config.errors.contains { $0.hasPrefix("test.conf:10: error: banner, banner_success and banner_fail cannot be used with TLS") })
        var withoutBanner = try Fixture.xinetd().load(
            """
            service securecat
            {
                type            = UNLISTED
                port            = 4433
                socket_type     = stream
                wait            = no
                user            = root
                server          = /bin/cat
                tls_certificate = \(certificate)
                tls_key         = /nonexistent.key
            }

            """)
        #expect(withoutBanner.errors == ["test.conf:10: error: tls_key /nonexistent.key: No such file or directory"])
        withoutBanner = try Fixture.xinetd().load(
            """
            defaults
            {
                tls_key         = \(key)
            }

            """)
        #expect(withoutBanner.errors == ["test.conf:3: error: tls_key is not allowed in defaults"])
    }

    @Test func warnsAboutAWorldReadableKey() throws {
        let fixture = try Fixture()
        let open = try fixture.directory.write("open.key", TestPKIFile.read(key), mode: 0o644)
        let config = fixture.load(
            "4433 stream tcp,tls_certificate=\(certificate),tls_key=\(open) nowait root /bin/cat cat\n")
        #expect(config.errors == [])
        #expect(config.services.first?.tls != nil)
        #expect(config.warnings.contains { $0.hasPrefix("test.conf:1: warning: tls_key \(open) is readable by every user") })
    }

    @Test func convertCarriesTLSBothWays() throws {
        let fixture = try Fixture()
        let input = try fixture.directory.write(
            "input",
            "127.0.0.1:4433 stream tcp4,tls_certificate=\(certificate),tls_key=\(key),tls_client_ca=\(clientCA) nowait root /bin/cat cat\n")
        let original = ConfigLoader.load(paths: [input], options: fixture.options)
        #expect(original.errors == [])
        let database = ServicesDatabase.load(path: fixture.options.servicesFile)
        let xinetd = ConfigConverter.render(original.services, as: .xinetd, servicesDatabase: database, sources: original.files)
        #expect(xinetd.text.contains("tls_certificate = \(certificate)"))
        #expect(xinetd.text.contains("tls_client_ca   = \(clientCA)"))
        let converted = try fixture.directory.write("converted", xinetd.text)
        let reloaded = ConfigLoader.load(paths: [converted], options: fixture.options)
        #expect(reloaded.errors == [])
        #expect(reloaded.services.first?.tls == original.services.first?.tls)
        let inetd = ConfigConverter.render(reloaded.services, as: .inetd, servicesDatabase: database, sources: reloaded.files)
        #expect(inetd.text.contains(",tls_certificate=\(certificate),tls_key=\(key),tls_client_ca=\(clientCA)"))
        let back = try fixture.directory.write("back", inetd.text)
        let again = ConfigLoader.load(paths: [back], options: fixture.options)
        #expect(again.errors == [])
        #expect(again.services.first?.tls == original.services.first?.tls)
    }
}

enum TestPKIFile {
    static func read(_ path: String) -> String {
        guard let file = fopen(path, "r") else { return "" }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = fread(&buffer, 1, buffer.count, file)
            if n <= 0 { break }
            bytes += buffer[0..<n]
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
