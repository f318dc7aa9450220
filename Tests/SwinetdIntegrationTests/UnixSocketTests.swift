import Foundation
import Glibc
import Testing

/// Unix-domain stream services: socket owner and mode, the UNIX* environment, cleanup.
extension Integration {
    @Suite struct UnixSocketTests {
        static func fileStat(_ path: String) -> stat? {
            var info = stat()
            return lstat(path, &info) == 0 ? info : nil
        }

        @Test func ownerGroupAndModeFromTheServiceField() throws {
            let dir = try TempDir()
            let path = dir.path + "/x/sock"
            try FileManager.default.createDirectory(atPath: dir.path + "/x", withIntermediateDirectories: true)
            let daemon = try Daemon(config: ":nobody:nogroup:0660:\(path) stream unix nowait root PROBE probe unix\n")
            defer { daemon.stop() }

            let info = try #require(Self.fileStat(path), "no socket at \(path):\n\(daemon.log)")
            #expect(info.st_mode & S_IFMT == S_IFSOCK)
            #expect(info.st_mode & 0o7777 == 0o660, "mode \(String(info.st_mode & 0o7777, radix: 8))")
            #expect(info.st_uid == 65534)
            #expect(info.st_gid == 65534)

            let connection = try Connection.unix(path)
            let report = ProbeReport(connection.readToEOF().bytes)
            try #require(report.isComplete, "\(report)\n\(daemon.log)")
            #expect(report.env["PROTO"] == "UNIX")
            #expect(report.env["UNIXREMOTEPID"] == "\(getpid())")
            #expect(report.env["UNIXREMOTEEUID"] == "0")
            #expect(report.env["UNIXREMOTEEGID"] == "0")
            #expect(report.env["TCPREMOTEIP"] == nil)
            #expect(report.fds == [0, 1, 2])
            #expect(report["socktype0"] == "stream")
            #expect(report.uids.first == 0)
            #expect(daemon.waitForLog("START: \(path) "), "\(daemon.log)")
        }

        @Test func defaultModeIs0600AndTheSocketIsRemovedOnExit() throws {
            let dir = try TempDir()
            let path = dir.path + "/plain.sock"
            let daemon = try Daemon(config: "\(path) stream unix nowait nobody PROBE probe\n")
            defer { daemon.stop() }

            let info = try #require(Self.fileStat(path), "no socket at \(path):\n\(daemon.log)")
            #expect(info.st_mode & 0o7777 == 0o600, "mode \(String(info.st_mode & 0o7777, radix: 8))")
            #expect(info.st_uid == 0)
            let report = ProbeReport(try Connection.unix(path).readToEOF().bytes)
            #expect(report.uids.first == 65534, "\(report)")
            #expect(report.env["PROTO"] == "UNIX")

            #expect(daemon.stop() == .exited(0))
            #expect(Self.fileStat(path) == nil, "socket file left behind after SIGTERM")
        }

        /// SIGHUP: an unchanged Unix socket is kept (same inode), a changed mode rebinds it, and a
        /// removed one is closed and its path unlinked.
        @Test func reloadKeepsRebindsAndRemovesUnixSockets() throws {
            let dir = try TempDir()
            let path = dir.path + "/svc.sock"
            let keep = Ports.free()
            let entry = "\(path) stream unix nowait root PROBE probe"
            let other = "127.0.0.1:\(keep) stream tcp nowait root internal echo"
            let daemon = try Daemon(config: entry + "\n" + other + "\n")
            defer { daemon.stop() }
            let before = try #require(Self.fileStat(path))

            #expect(try daemon.reload(entry + "\n" + other + "\n")?.contains("reloaded") == true)
            let same = try #require(Self.fileStat(path), "socket gone after an unchanged reload")
            #expect(same.st_ino == before.st_ino, "an unchanged Unix socket was bound again")
            #expect(ProbeReport(try Connection.unix(path).readToEOF().bytes).isComplete)

            #expect(try daemon.reload(":::0666:\(path) stream unix nowait root PROBE probe\n" + other + "\n")?.contains("reloaded") == true)
            let changed = try #require(Self.fileStat(path), "socket gone after changing its mode:\n\(daemon.log)")
            #expect(changed.st_mode & 0o7777 == 0o666)
            #expect(ProbeReport(try Connection.unix(path).readToEOF().bytes).isComplete, "\(daemon.log)")

            #expect(try daemon.reload(other + "\n")?.contains("reloaded") == true)
            #expect(Self.fileStat(path) == nil, "a removed Unix service left its socket file")
        }

        /// A stale socket at the path is replaced; a regular file there is never deleted.
        @Test func staleSocketIsReplacedButARegularFileIsKept() throws {
            let dir = try TempDir()
            let stale = dir.path + "/stale.sock"
            let file = dir.path + "/precious"
            // Leave a stale socket behind: bind and close without unlinking.
            let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_UNIX)
            withUnsafeMutableBytes(of: &address.sun_path) { dst in
                for (i, b) in stale.utf8.enumerated() { dst[i] = b }
            }
            let bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
            close(fd)
            try #require(bound == 0)
            try dir.write("precious", "keep me\n")

            let daemon = try Daemon(
                config: """
                    \(stale) stream unix nowait root PROBE probe
                    \(file) stream unix nowait root PROBE probe
                    """)
            defer { daemon.stop() }
            #expect(ProbeReport(try Connection.unix(stale).readToEOF().bytes).isComplete, "\(daemon.log)")
            #expect(Files.read(file) == "keep me\n", "a regular file was replaced by a socket")
            #expect(daemon.log.contains(file), "the refused path must be logged:\n\(daemon.log)")
        }
    }
}
