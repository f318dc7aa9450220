import Foundation
import Glibc
import Testing

/// xinetd access control and limits on real connections: only_from / no_access (most specific
/// wins), access_times, instances, per_source, cps, max_load, SENSOR, banners, and how the child
/// is set up (nice, umask, rlimits, env, passenv, groups, NODELAY/KEEPALIVE).
///
/// Loopback accepts any 127/8 source, so "another client" is a socket bound to 127.0.0.2.
extension Integration {
    @Suite struct PolicyTests {
        /// Defaults for every daemon here: START/EXIT/FAIL in the daemon's log, and xinetd's default
        /// cps (50 per second) raised so that only the cps test meets it.
        static let defaults = Xinetd.defaults([
            "log_on_success = PID HOST EXIT DURATION",
            "log_on_failure = HOST ATTEMPT",
            "cps = 1000 1",
        ])

        // MARK: - only_from / no_access

        /// One daemon, one service per rule; each is tried from 127.0.0.1 and from 127.0.0.2.
        @Test func onlyFromAndNoAccessMostSpecificMatchWins() throws {
            let cases: [(name: String, rules: [String], servedFrom: Set<String>)] = [
                ("onlyone", ["only_from = 127.0.0.1"], ["127.0.0.1"]),
                ("notwo", ["no_access = 127.0.0.2"], ["127.0.0.1"]),
                // Both match; the longer prefix decides.
                ("netallow", ["only_from = 127.0.0.0/8", "no_access = 127.0.0.2"], ["127.0.0.1"]),
                ("hostallow", ["only_from = 127.0.0.2", "no_access = 127.0.0.0/8"], ["127.0.0.2"]),
                ("widerdeny", ["only_from = 127.0.0.0/24", "no_access = 127.0.0.0/8"], ["127.0.0.1", "127.0.0.2"]),
                ("widerallow", ["only_from = 127.0.0.0/8", "no_access = 127.0.0.0/30"], []),
                // `only_from =` with no value denies everyone.
                ("nobody", ["only_from ="], []),
                ("anyone", [], ["127.0.0.1", "127.0.0.2"]),
            ]
            var ports: [String: UInt16] = [:]
            var config = Self.defaults
            for entry in cases {
                let port = Ports.free()
                ports[entry.name] = port
                config += Xinetd.probe(entry.name, port: port, entry.rules)
            }
            let daemon = try Daemon(config: config)
            defer { daemon.stop() }
            #expect(daemon.log.contains("ready: \(cases.count) services"), "\(daemon.log)")

            var expectedFails = 0
            for entry in cases {
                let port = ports[entry.name]!
                for source in ["127.0.0.1", "127.0.0.2"] {
                    let outcome = Outcome.probe("127.0.0.1", port, from: source)
                    if entry.servedFrom.contains(source) {
                        #expect(outcome == .served, "\(entry.name) \(entry.rules) from \(source): \(outcome)")
                    } else {
                        #expect(outcome == .closed(bytes: []), "\(entry.name) \(entry.rules) from \(source): \(outcome)")
                        expectedFails += 1
                        #expect(
                            daemon.waitForLog("FAIL: \(entry.name) address from=\(source)", timeout: 2),
                            "no FAIL line for \(entry.name) from \(source):\n\(daemon.log)")
                    }
                }
            }
            #expect(daemon.count("FAIL: ") == expectedFails, "\(daemon.log)")
            // A denial never starts a process.
            let served = cases.reduce(0) { $0 + $1.servedFrom.count }
            #expect(daemon.waitForLog("START: ", count: served, timeout: 2))
            #expect(daemon.settledCount("START: ", expected: served) == served, "\(daemon.log)")
        }

        /// Host-name patterns need a forward-confirmed reverse lookup: 127.0.0.1 is `localhost` in
        /// /etc/hosts (and localhost is 127.0.0.1), so `only_from = localhost` serves it; 127.0.0.2
        /// has no name, so it is denied, and `no_access = localhost` denies 127.0.0.1 only.
        @Test(.enabled(if: localhostIsForwardConfirmed, "skipped: 127.0.0.1 and localhost do not resolve to each other here"))
        func hostNamePatternsUseForwardConfirmedNames() throws {
            let byName = Ports.free()
            let notByName = Ports.free()
            let daemon = try Daemon(
                config: Self.defaults
                    + Xinetd.probe("byname", port: byName, ["only_from = localhost"])
                    + Xinetd.probe("notbyname", port: notByName, ["no_access = localhost"]),
                arguments: ["--lookup-timeout", "2"])
            defer { daemon.stop() }
            #expect(Outcome.probe("127.0.0.1", byName, from: "127.0.0.1") == .served, "\(daemon.log)")
            #expect(Outcome.probe("127.0.0.1", byName, from: "127.0.0.2") == .closed(bytes: []))
            #expect(Outcome.probe("127.0.0.1", notByName, from: "127.0.0.1") == .closed(bytes: []))
            #expect(Outcome.probe("127.0.0.1", notByName, from: "127.0.0.2") == .served, "\(daemon.log)")
            #expect(daemon.waitForLog("FAIL: ", count: 2, timeout: 2))
            #expect(daemon.settledCount("START: ", expected: 2) == 2, "\(daemon.log)")
        }

        static let localhostIsForwardConfirmed: Bool = {
            var hints = addrinfo()
            hints.ai_family = AF_INET
            var result: UnsafeMutablePointer<addrinfo>?
            guard getaddrinfo("localhost", nil, &hints, &result) == 0, let first = result else { return false }
            defer { freeaddrinfo(result) }
            var forward = false
            var cursor: UnsafeMutablePointer<addrinfo>? = first
            while let entry = cursor {
                // Copy only ai_addrlen bytes: the record holds a 16-byte sockaddr_in, not a sockaddr_storage.
                if let address = entry.pointee.ai_addr {
                    var storage = sockaddr_storage()
                    withUnsafeMutableBytes(of: &storage) { $0.copyMemory(from: UnsafeRawBufferPointer(start: address, count: Int(entry.pointee.ai_addrlen))) }
                    let (host, _) = SocketAddress.describe(storage)
                    if host == "127.0.0.1" { forward = true }
                }
                cursor = entry.pointee.ai_next
            }
            var (storage, length, _) = SocketAddress.make("127.0.0.1", 0)
            var name = [CChar](repeating: 0, count: 256)
            let reverse = withUnsafePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    getnameinfo($0, length, &name, 256, nil, 0, NI_NAMEREQD)
                }
            }
            return forward && reverse == 0 && cText(name) == "localhost"
        }()

        /// IPv6: CIDR patterns on a ::1 service, and IPv4 patterns applied to the v4-mapped peers of
        /// a dual-stack `::` service.
        @Test func ipv6PrefixesAndMappedIPv4Peers() throws {
            let exact = Ports.free()
            let other = Ports.free()
            let carved = Ports.free()
            let dual = Ports.free()
            func v6(_ name: String, _ port: UInt16, _ rules: [String]) -> String {
                Xinetd.probe(name, port: port, rules + ["flags = IPv6"]).replacingOccurrences(
                    of: "bind = 127.0.0.1", with: "bind = ::1")
            }
            let config =
                Self.defaults
                + v6("exact", exact, ["only_from = ::1/128"])
                + v6("other", other, ["only_from = 2001:db8::/32 fe80::/10"])
                + v6("carved", carved, ["only_from = ::/64", "no_access = ::1/128"])
                + Xinetd.probe("dual", port: dual, ["flags = IPv6", "only_from = 127.0.0.1"]).replacingOccurrences(
                    of: "    bind = 127.0.0.1\n", with: "")
            let daemon = try Daemon(config: config)
            defer { daemon.stop() }
            #expect(daemon.log.contains("ready: 4 services"), "\(daemon.log)")
            #expect(ProcFS.tcpListeners(port: dual).map(\.address) == ["::"], "\(ProcFS.tcpListeners(port: dual))")

            #expect(Outcome.probe("::1", exact) == .served, "\(daemon.log)")
            #expect(Outcome.probe("::1", other) == .closed(bytes: []))
            #expect(Outcome.probe("::1", carved) == .closed(bytes: []))
            #expect(Outcome.probe("127.0.0.1", dual, from: "127.0.0.1") == .served, "\(daemon.log)")
            #expect(Outcome.probe("127.0.0.1", dual, from: "127.0.0.2") == .closed(bytes: []))
            #expect(Outcome.probe("::1", dual) == .closed(bytes: []))
            #expect(daemon.waitForLog("FAIL: ", count: 4, timeout: 2), "\(daemon.log)")
            #expect(daemon.settledCount("START: ", expected: 2) == 2, "\(daemon.log)")
        }

        // MARK: - access_times

        /// Windows computed from the daemon's local time (TZ=UTC): one that excludes now refuses,
        /// one that includes now (written across midnight when now is near it) serves.
        @Test func accessTimesWindowThatExcludesNowRefuses() throws {
            var seconds = time_t(time(nil))
            var parts = tm()
            gmtime_r(&seconds, &parts)
            let now = Int(parts.tm_hour) * 60 + Int(parts.tm_min)
            func hhmm(_ minute: Int) -> String {
                let m = (minute % 1440 + 1440) % 1440
                return String(format: "%02d:%02d", m / 60, m % 60)
            }
            let excluding = "\(hhmm(now + 30))-\(hhmm(now + 90))"
            let including = "\(hhmm(now - 60))-\(hhmm(now + 60))"
            let closed = Ports.free()
            let open = Ports.free()
            let daemon = try Daemon(
                config: Self.defaults
                    + Xinetd.probe("closed", port: closed, ["access_times = \(excluding)"])
                    + Xinetd.probe("open", port: open, ["access_times = 00:00-00:00 \(including)"]))
            defer { daemon.stop() }
            #expect(Outcome.probe("127.0.0.1", closed) == .closed(bytes: []), "access_times = \(excluding)")
            #expect(daemon.waitForLog("FAIL: closed time from=127.0.0.1"), "\(daemon.log)")
            #expect(Outcome.probe("127.0.0.1", open) == .served, "access_times = \(including):\n\(daemon.log)")
            #expect(daemon.count("START: closed") == 0)
        }

        // MARK: - instances, per_source, cps, max_load

        /// instances = 2: two children; a third client waits in the backlog and is served when one
        /// of them ends.
        @Test func instancesLimitQueuesTheThirdClient() throws {
            let port = Ports.free()
            let daemon = try Daemon(config: Self.defaults + Xinetd.probe("two", port: port, mode: "report-wait", ["instances = 2"]))
            defer { daemon.stop() }
            let first = try Connection.tcp("127.0.0.1", port)
            let second = try Connection.tcp("127.0.0.1", port)
            #expect(ProbeReport(first.read(until: "end\n")).isComplete)
            #expect(ProbeReport(second.read(until: "end\n")).isComplete)
            let third = try Connection.tcp("127.0.0.1", port)
            #expect(third.staysSilent(for: 0.6), "a third child started with instances = 2")
            #expect(daemon.settledCount("START: two", expected: 2) == 2, "\(daemon.log)")
            #expect(daemon.count("FAIL: ") == 0, "the third client must wait, not be refused:\n\(daemon.log)")

            first.shutdownWrite()
            #expect(ProbeReport(third.read(until: "end\n", timeout: 3)).isComplete, "\(daemon.log)")
            #expect(daemon.waitForLog("START: two", count: 3, timeout: 2))
            second.shutdownWrite()
            third.shutdownWrite()
        }

        /// per_source = 1: a second connection from the same address is closed and logged; another
        /// address is served.
        @Test func perSourceClosesTheExcessFromOneAddress() throws {
            let port = Ports.free()
            let daemon = try Daemon(config: Self.defaults + Xinetd.probe("one", port: port, mode: "report-wait", ["per_source = 1"]))
            defer { daemon.stop() }
            let held = try Connection.tcp("127.0.0.1", port, from: "127.0.0.1")
            #expect(ProbeReport(held.read(until: "end\n")).isComplete)
            var outcomes: [Outcome] = []
            for _ in 0..<3 { outcomes.append(Outcome.probe("127.0.0.1", port, from: "127.0.0.1", timeout: 3)) }
            #expect(outcomes.allSatisfy { $0 == .closed(bytes: []) }, "\(outcomes)")
            #expect(daemon.waitForLog("FAIL: one per_source_limit from=127.0.0.1", count: 3, timeout: 2), "\(daemon.log)")

            let other = try Connection.tcp("127.0.0.1", port, from: "127.0.0.2")
            #expect(ProbeReport(other.read(until: "end\n")).isComplete, "another address must be served")
            // START is logged when the spawn result reaches the event loop, possibly after the child wrote.
            #expect(daemon.waitForLog("START: one", count: 2, timeout: 2), "\(daemon.log)")
            held.shutdownWrite()
            other.shutdownWrite()
        }

        /// per_source counts in-process connections too: a held echo connection or redirect relay
        /// from 127.0.0.1 makes a second one from there FAIL per_source_limit (xinetd forks for
        /// both, so its per_source applies to them); another address is served.
        @Test func perSourceAppliesToInternalAndRedirectServices() throws {
            let echo = Ports.free()
            let relay = Ports.free()
            let target = Ports.free()
            // The relay's own connections to its target come from 127.0.0.1, so the target is a
            // second echo without per_source.
            let daemon = try Daemon(
                config: Self.defaults
                    + Xinetd.service(
                        "echo",
                        [
                            "type = INTERNAL UNLISTED", "socket_type = stream", "wait = no", "port = \(echo)",
                            "bind = 127.0.0.1", "per_source = 1",
                        ])
                    + Xinetd.service(
                        "echo",
                        [
                            "id = target", "type = INTERNAL UNLISTED", "socket_type = stream", "wait = no",
                            "port = \(target)", "bind = 127.0.0.1",
                        ])
                    + Xinetd.service(
                        "relay",
                        [
                            "type = UNLISTED", "socket_type = stream", "wait = no", "user = nobody",
                            "port = \(relay)", "bind = 127.0.0.1", "redirect = 127.0.0.1 \(target)", "per_source = 1",
                        ]))
            defer { daemon.stop() }
            for (name, port) in [("echo", echo), ("relay", relay)] {
                let held = try Connection.tcp("127.0.0.1", port, from: "127.0.0.1")
                try held.send("held\n")
                #expect(held.read(count: 5) == Array("held\n".utf8), "\(name): the first connection is not served")
                let excess = try Connection.tcp("127.0.0.1", port, from: "127.0.0.1")
                try? excess.send("excess\n")
                let refused = excess.readToEOF(timeout: 1)
                #expect(refused.bytes.isEmpty && (refused.eof || refused.error != nil), "\(name): a second connection from one address was served (per_source = 1): \(refused.text.debugDescription)")
                #expect(daemon.waitForLog("FAIL: \(name) per_source_limit from=127.0.0.1", timeout: 0.5), "\(name):\n\(daemon.log)")
                let other = try Connection.tcp("127.0.0.1", port, from: "127.0.0.2")
                try other.send("other\n")
                #expect(other.read(count: 6) == Array("other\n".utf8), "\(name): another address must be served")
                held.close()
                other.close()
            }
        }

        /// cps = 3 2: of five connections made at once, exactly three are served; the fourth
        /// deactivates the service (its listener closes, so the fifth is refused too); after the
        /// 2 s pause it serves again.
        @Test func cpsPausesTheServiceAfterRateConnectionsInOneSecond() throws {
            let port = Ports.free()
            let daemon = try Daemon(
                config: Xinetd.defaults(["log_on_success = PID HOST EXIT", "log_on_failure = HOST"])
                    + Xinetd.probe("burst", port: port, ["cps = 3 2"]))
            defer { daemon.stop() }

            // No later than the pause this burst causes, so the resume check below measures at least
            // the whole pause however long reading the outcomes takes on a loaded machine.
            let paused = Clock.now
            // Connect all five first (the kernel completes them from the backlog), then read.
            var connections: [Connection] = []
            var connectFailures = 0
            for _ in 0..<5 {
                do { connections.append(try Connection.tcp("127.0.0.1", port)) } catch { connectFailures += 1 }
            }
            let outcomes = connections.map { connection -> Outcome in
                let result = connection.readToEOF(timeout: 3)
                if ProbeReport(result.bytes).isComplete { return .served }
                return result.eof || result.error != nil ? .closed(bytes: result.bytes) : .hung(bytes: result.bytes)
            }
            let served = outcomes.filter(\.isServed).count
            let refused = outcomes.filter(\.isDenied).count + connectFailures
            #expect(served == 3, "served \(served) of 5 (cps = 3): \(outcomes), \(connectFailures) connect failures\n\(daemon.log)")
            #expect(refused == 2, "refused \(refused) of 5")
            #expect(daemon.waitForLog("Deactivating service burst", timeout: 2), "\(daemon.log)")
            #expect(daemon.settledCount("START: burst", expected: 3) == 3)
            #expect(TCP.connectErrno("127.0.0.1", port) == ECONNREFUSED, "a deactivated service must not accept")

            #expect(Clock.poll(timeout: 4, interval: 0.05) { TCP.connectErrno("127.0.0.1", port) == 0 }, "never resumed:\n\(daemon.log)")
            #expect(Clock.now - paused > 1.2, "resumed after \(Clock.now - paused) s, before the 2 s pause")
            #expect(Outcome.probe("127.0.0.1", port) == .served, "\(daemon.log)")
        }

        static func loadAverage() -> Double {
            Double(Files.read("/proc/loadavg").split(separator: " ").first ?? "") ?? 0
        }

        /// max_load below the current 1-minute load refuses ("load"); a high one serves. Only
        /// meaningful when the load is above 0 (it is on any machine doing something).
        @Test(.enabled(if: loadAverage() >= 0.04, "skipped: the 1-minute load average is 0, nothing can be below it"))
        func maxLoadBelowTheCurrentLoadRefuses() throws {
            let load = Self.loadAverage()
            let limit = String(format: "%.4f", max(load / 4, 0.0001))
            let low = Ports.free()
            let high = Ports.free()
            let daemon = try Daemon(
                config: Self.defaults
                    + Xinetd.probe("low", port: low, ["max_load = \(limit)"])
                    + Xinetd.probe("high", port: high, ["max_load = 1000"]))
            defer { daemon.stop() }
            var outcomes: [Outcome] = []
            for _ in 0..<3 { outcomes.append(Outcome.probe("127.0.0.1", low)) }
            #expect(outcomes.allSatisfy { $0 == .closed(bytes: []) }, "load \(load), max_load \(limit): \(outcomes)")
            #expect(daemon.waitForLog("FAIL: low load from=127.0.0.1", count: 3, timeout: 2), "\(daemon.log)")
            #expect(Outcome.probe("127.0.0.1", high) == .served)
            #expect(daemon.count("START: low") == 0)
        }

        // MARK: - Datagram services

        /// only_from applies to a `wait` datagram service too: the daemon looks at the sender before
        /// starting the server (xinetd peeks with MSG_PEEK), so a denied sender starts nothing and
        /// gets no answer, while an allowed one is answered by exactly one child.
        @Test func datagramWaitServiceAppliesOnlyFromBeforeSpawning() throws {
            let port = Ports.free()
            let daemon = try Daemon(
                config: Self.defaults
                    + Xinetd.service(
                        "udprobe",
                        [
                            "type = UNLISTED", "socket_type = dgram", "wait = yes", "user = root", "port = \(port)",
                            "bind = 127.0.0.1", "server = PROBE", "server_args = dgram", "only_from = 127.0.0.1",
                        ]))
            defer { daemon.stop() }
            let denied = try UDPSocket(bind: "127.0.0.2")
            try denied.send(Array("from a denied address".utf8), to: "127.0.0.1", port)
            let leaked = denied.receive(timeout: 1)
            #expect(leaked == nil, "a denied sender was answered: \(String(decoding: leaked?.bytes.prefix(60) ?? [], as: UTF8.self).debugDescription)")

            let allowed = try UDPSocket(bind: "127.0.0.1")
            try allowed.send(Array("from an allowed address".utf8), to: "127.0.0.1", port)
            let answer = allowed.receive(timeout: 3)
            #expect(answer.map { ProbeReport($0.bytes).isComplete } == true, "the allowed sender got no report:\n\(daemon.log)")
            _ = Clock.poll(timeout: 2) { daemon.children().isEmpty }
            #expect(daemon.settledCount("START: udprobe", expected: 1) == 1, "children started: \(daemon.count("START: udprobe"))\n\(daemon.log)")
        }

        /// UDP builtins apply access_times (and only_from, checked for stream elsewhere): outside
        /// the window no datagram is answered.
        @Test func udpBuiltinsApplyAccessTimesAndOnlyFrom() throws {
            var seconds = time_t(time(nil))
            var parts = tm()
            gmtime_r(&seconds, &parts)
            let now = Int(parts.tm_hour) * 60 + Int(parts.tm_min)
            let later = (now + 120) % 1440
            let window = String(format: "%02d:%02d-%02d:%02d", later / 60, later % 60, ((later + 30) % 1440) / 60, (later + 30) % 60)
            let timed = Ports.free()
            let guarded = Ports.free()
            let daemon = try Daemon(
                config: Self.defaults
                    + Xinetd.service(
                        "timed",
                        [
                            "id = echo-timed", "type = INTERNAL UNLISTED", "socket_type = dgram", "wait = yes",
                            "port = \(timed)", "bind = 127.0.0.1", "access_times = \(window)",
                        ])
                    + Xinetd.service(
                        "guarded",
                        [
                            "id = echo-guarded", "type = INTERNAL UNLISTED", "socket_type = dgram", "wait = yes",
                            "port = \(guarded)", "bind = 127.0.0.1", "only_from = 127.0.0.1",
                        ]))
            defer { daemon.stop() }
            let client = try UDPSocket(bind: "127.0.0.1")
            let other = try UDPSocket(bind: "127.0.0.2")
            #expect(try client.exchange([1, 2, 3], to: "127.0.0.1", guarded) == [1, 2, 3], "\(daemon.log)")
            #expect(try other.exchange([1, 2, 3], to: "127.0.0.1", guarded, timeout: 0.7) == nil, "only_from ignored for a UDP builtin")
            let outside = try client.exchange([4, 5, 6], to: "127.0.0.1", timed, timeout: 1)
            #expect(outside == nil, "a UDP builtin answered outside access_times = \(window)")
        }

        // MARK: - SENSOR

        /// A client that touches a SENSOR service is refused by every service; other addresses are not.
        @Test func sensorBansTheClientFromEveryService() throws {
            let trap = Ports.free()
            let probe = Ports.free()
            let daemon = try Daemon(
                config: Self.defaults
                    + Xinetd.service(
                        "trap",
                        [
                            "type = UNLISTED", "flags = SENSOR", "socket_type = stream", "wait = no",
                            "port = \(trap)", "bind = 127.0.0.1", "deny_time = 1",
                        ])
                    + Xinetd.probe("probe", port: probe))
            defer { daemon.stop() }

            #expect(Outcome.probe("127.0.0.1", probe, from: "127.0.0.3") == .served, "served before the trap")
            let tripped = Outcome.probe("127.0.0.1", trap, from: "127.0.0.3")
            #expect(tripped == .closed(bytes: []), "\(tripped)")
            #expect(daemon.waitForLog("FAIL: trap sensor from=127.0.0.3"), "\(daemon.log)")
            #expect(daemon.waitForLog("sensor tripped by 127.0.0.3"), "\(daemon.log)")

            var banned: [Outcome] = []
            for _ in 0..<3 { banned.append(Outcome.probe("127.0.0.1", probe, from: "127.0.0.3")) }
            #expect(banned.allSatisfy { $0 == .closed(bytes: []) }, "\(banned)")
            #expect(daemon.waitForLog("FAIL: probe address (sensor) from=127.0.0.3", count: 3, timeout: 2), "\(daemon.log)")
            #expect(Outcome.probe("127.0.0.1", trap, from: "127.0.0.3") == .closed(bytes: []))
            // Another address is unaffected.
            #expect(Outcome.probe("127.0.0.1", probe, from: "127.0.0.4") == .served)
            #expect(Outcome.probe("127.0.0.1", probe, from: "127.0.0.1") == .served)
            #expect(daemon.settledCount("START: probe", expected: 3) == 3, "\(daemon.log)")
        }

        // MARK: - Banners

        /// banner always, then banner_success before the program's output on a grant, or
        /// banner_fail (and nothing else) on a denial.
        @Test func bannersOnSuccessAndOnFailure() throws {
            let tree = try XinetdTree()
            let banner = try tree.writeFile("banner", "BANNER line\n")
            let success = try tree.writeFile("success", "WELCOME \u{00e9}\n")
            let fail = try tree.writeFile("fail", "GO AWAY\r\n")
            let port = Ports.free()
            let daemon = try Daemon(
                config: Self.defaults
                    + Xinetd.probe(
                        "greeted", port: port,
                        [
                            "only_from = 127.0.0.1", "banner = \(banner)", "banner_success = \(success)",
                            "banner_fail = \(fail)",
                        ]))
            defer { daemon.stop() }

            let granted = try Connection.tcp("127.0.0.1", port, from: "127.0.0.1").readToEOF()
            let prefix = Array("BANNER line\nWELCOME \u{00e9}\n".utf8)
            #expect(granted.bytes.starts(with: prefix), "\(granted.text.prefix(80).debugDescription)")
            let report = ProbeReport(Array(granted.bytes.dropFirst(prefix.count)))
            #expect(report.isComplete && report.raw.hasPrefix("argv0="), "the report must follow the banners directly")

            let denied = try Connection.tcp("127.0.0.1", port, from: "127.0.0.2").readToEOF()
            #expect(denied.text == "BANNER line\nGO AWAY\r\n", "\(denied.text.debugDescription)")
            #expect(denied.eof || denied.error != nil)
            #expect(daemon.waitForLog("FAIL: greeted address from=127.0.0.2"))
        }

        /// A banner path that is a FIFO (an admin's mistake, or a file replaced under the daemon):
        /// opening it must not block the daemon, which serves every service from one thread.
        @Test func bannerThatIsAFifoDoesNotFreezeTheDaemon() throws {
            let tree = try XinetdTree()
            let fifo = tree.path + "/banner.fifo"
            guard mkfifo(fifo, 0o644) == 0 else { throw HarnessError("mkfifo failed") }
            let bannered = Ports.free()
            let daytime = Ports.free()
            let daemon = try Daemon(
                config: Self.defaults
                    + Xinetd.probe("bannered", port: bannered, ["banner = \(fifo)"])
                    + Xinetd.service(
                        "daytime",
                        [
                            "type = INTERNAL UNLISTED", "socket_type = stream", "wait = no", "port = \(daytime)",
                            "bind = 127.0.0.1",
                        ]))
            defer {
                // If the daemon is stuck in open(2) on the FIFO, a writer that comes and goes frees it.
                let writer = open(fifo, O_WRONLY | O_NONBLOCK)
                if writer >= 0 { close(writer) }
                daemon.stop()
            }
            let client = try Connection.tcp("127.0.0.1", bannered)
            let other = try TCP.exchange("127.0.0.1", daytime, timeout: 1.5)
            #expect(Expected.daytimeMatchesNow(other.text), "another service is not served while a banner FIFO is opened: \(other.text.debugDescription)")
            let result = client.readToEOF(timeout: 2)
            #expect(result.eof || result.error != nil, "the bannered client hangs (\(result.bytes.count) bytes)")
        }

        // MARK: - Child setup

        @Test func childGetsNiceUmaskRlimitsAndEnvironment() throws {
            let port = Ports.free()
            var environment = Processes.defaultEnvironment.filter { !$0.hasPrefix("HOME=") }
            environment.append("HOME=/xyz")
            let daemon = try Daemon(
                config: Self.defaults
                    + Xinetd.probe(
                        "shaped", port: port,
                        [
                            "nice = 5", "umask = 077", "rlimit_files = 64", "rlimit_cpu = 10", "env = A=1 B=2",
                            "passenv = HOME",
                        ]),
                environment: environment)
            defer { daemon.stop() }
            let report = try TCP.probe("127.0.0.1", port)
            try #require(report.isComplete, "\(report)\n\(daemon.log)")
            #expect(report["nice"] == "5")
            if ProcFS.autogroupsExist {
                // The session group gets the service's nice too (Autogroup.swift), else `nice`
                // would not lower the child's share against other sessions.
                #expect(report["autogroup_nice"] == (ProcFS.autogroupsEnabled ? "5" : "0"), "\(report)")
            }
            #expect(report["Umask"] == "0077")
            #expect(report["rlimit_nofile"] == "64")
            #expect(report["rlimit_cpu"] == "10")
            #expect(report.env["A"] == "1")
            #expect(report.env["B"] == "2")
            #expect(report.env["HOME"] == "/xyz", "passenv HOME: \(report.environment)")
            #expect(report.env["SWINETD_TEST_MARKER"] == nil, "a variable not in passenv leaked")
            #expect(report.env["TCPREMOTEIP"] == "127.0.0.1")
        }

        static func groupList(_ user: String) -> [UInt32] { XinetdTests.groupList(user) }

        /// A user with a supplementary group: `groups = yes` gives initgroups' list, `groups = no`
        /// (xinetd's default) only the primary group.
        static let userWithSupplementaryGroups: String? = {
            for candidate in ["postgres", "daemon", "bin", "sys", "mail", "news"] {
                guard let entry = getpwnam(candidate) else { continue }
                let primary = entry.pointee.pw_gid
                if groupList(candidate).contains(where: { $0 != primary }) { return candidate }
            }
            return nil
        }()

        @Test(.enabled(if: userWithSupplementaryGroups != nil, "skipped: no system user here has a supplementary group"))
        func groupsYesGivesSupplementaryGroupsAndNoDoesNot() throws {
            let user = try #require(Self.userWithSupplementaryGroups)
            let primary = try #require(getpwnam(user)).pointee.pw_gid
            let yes = Ports.free()
            let no = Ports.free()
            let unset = Ports.free()
            let daemon = try Daemon(
                config: Self.defaults
                    + Xinetd.probe("gyes", port: yes, user: user, ["groups = yes"])
                    + Xinetd.probe("gno", port: no, user: user, ["groups = no"])
                    + Xinetd.probe("gunset", port: unset, user: user))
            defer { daemon.stop() }
            let expected = Set(Self.groupList(user))
            let withGroups = try TCP.probe("127.0.0.1", yes)
            try #require(withGroups.isComplete, "\(withGroups)\n\(daemon.log)")
            #expect(Set(withGroups.groups) == expected, "groups = yes for \(user): Groups=\(withGroups["Groups"] ?? "?")")
            #expect(withGroups.gids.allSatisfy { $0 == primary })
            for (name, port) in [("groups = no", no), ("no groups attribute", unset)] {
                let report = try TCP.probe("127.0.0.1", port)
                try #require(report.isComplete, "\(report)")
                #expect(report.groups.allSatisfy { $0 == primary }, "\(name) for \(user): Groups=\(report["Groups"] ?? "?")")
                #expect(report.gids.allSatisfy { $0 == primary })
            }
        }

        /// flags NODELAY and KEEPALIVE set TCP_NODELAY and SO_KEEPALIVE on the socket the program
        /// gets (Tests/helpers/xinetd_service.py sockopt reads them back with getsockopt).
        @Test func nodelayAndKeepaliveReachTheChildsSocket() throws {
            let flagged = Ports.free()
            let plain = Ports.free()
            let daemon = try Daemon(
                config: Self.defaults
                    + Xinetd.helper("flagged", port: flagged, mode: "sockopt", ["flags = NODELAY KEEPALIVE"])
                    + Xinetd.helper("plain", port: plain, mode: "sockopt"))
            defer { daemon.stop() }
            let on = try TCP.exchange("127.0.0.1", flagged)
            #expect(on.text == "nodelay=1\nkeepalive=1\nend\n", "\(on.text.debugDescription)\n\(daemon.log)")
            let off = try TCP.exchange("127.0.0.1", plain)
            #expect(off.text == "nodelay=0\nkeepalive=0\nend\n", "\(off.text.debugDescription)\n\(daemon.log)")
        }
    }
}
