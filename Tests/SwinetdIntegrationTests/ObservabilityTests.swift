import Foundation
import Glibc
import Testing

/// The observability side (docs/OBSERVABILITY.md): the Prometheus endpoint (`--metrics`), the
/// control socket with `swinetd status/pause/resume/reload` (`--control`), JSON logs
/// (`--log-format json`) and the web console's HTTP API (`--admin`). Real daemon, real sockets,
/// the real CLI binary.
extension Integration {
    @Suite struct ObservabilityTests {
        /// One raw HTTP/1.1 request; returns (status, headers, body).
        static func http(
            _ port: UInt16, _ target: String, method: String = "GET", headers: [String] = [], body: String = ""
        ) throws -> (status: Int, head: String, body: String) {
            let connection = try Connection.tcp("127.0.0.1", port)
            defer { connection.close() }
            let request = "\(method) \(target) HTTP/1.1\r\nHost: 127.0.0.1\r\n" + headers.map { $0 + "\r\n" }.joined() + "\r\n" + body
            try connection.send(request)
            let text = connection.readToEOF(timeout: 5).text
            guard let split = text.range(of: "\r\n\r\n") else { throw HarnessError("no HTTP head in: \(text)") }
            let head = String(text[..<split.lowerBound])
            let status = Int(head.split(separator: " ").dropFirst().first ?? "") ?? 0
            return (status, head, String(text[split.upperBound...]))
        }

        /// The value of one sample line (`name{labels} value`) whose name and labels contain all `parts`.
        static func metric(_ text: String, _ name: String, _ parts: [String] = []) -> Double? {
            for line in text.split(separator: "\n") where !line.hasPrefix("#") {
                guard line.hasPrefix(name + "{") || line.hasPrefix(name + " ") else { continue }
                guard parts.allSatisfy({ line.contains($0) }) else { continue }
                return Double(line.split(separator: " ").last ?? "")
            }
            return nil
        }

        static func swinetd(_ arguments: [String], prefix: [String] = []) throws -> Processes.CommandResult {
            try Processes.run(prefix + [Binaries.swinetd] + arguments, timeout: 20)
        }

        /// Counters move as connections are accepted, refused, spawned and reaped: a probe service
        /// (3 connections, one exiting with code 3), a service that refuses 127.0.0.1 (2 refusals,
        /// by reason "address"), and the daemon-wide gauges. Every line is valid exposition text.
        @Test func metricsEndpointCountsConnections() throws {
            let (probePort, exitPort, deniedPort, metricsPort) = (Ports.free(), Ports.free(), Ports.free(), Ports.free())
            let (echoPort, badPort) = (Ports.free(), Ports.free())
            // Executable, but not a format execve knows: every spawn fails with ENOEXEC.
            let dir = try TempDir()
            let bad = try dir.write("bad", "\u{7f}not an executable\n")
            chmod(bad, 0o755)
            let daemon = try Daemon(
                config: Xinetd.loggingDefaults
                    + Xinetd.service("bad", ["type = UNLISTED", "socket_type = stream", "protocol = tcp", "wait = no", "user = root", "bind = 127.0.0.1", "port = \(badPort)", "server = \(bad)"])
                    + Xinetd.service("echo", ["type = INTERNAL UNLISTED", "socket_type = stream", "protocol = tcp", "wait = no", "user = root", "bind = 127.0.0.1", "port = \(echoPort)"])
                    + Xinetd.probe("probe", port: probePort)
                    + Xinetd.probe("exiter", port: exitPort, mode: "exit 3")
                    + Xinetd.probe("denied", port: deniedPort, ["only_from = 127.0.0.2"]),
                arguments: ["--metrics", "127.0.0.1:\(metricsPort)", "--control", "none"])
            defer { daemon.stop() }
            #expect(daemon.log.contains("metrics on http://127.0.0.1:\(metricsPort)/metrics"), "\(daemon.log)")

            let before = try Self.http(metricsPort, "/metrics")
            #expect(before.status == 200)
            #expect(before.head.contains("Content-Type: text/plain; version=0.0.4"))
            #expect(Self.metric(before.body, "swinetd_connections_accepted_total", ["service=\"probe\""]) == 0)
            #expect(Self.metric(before.body, "swinetd_services") == 5)

            for _ in 0..<3 { #expect(try TCP.probe("127.0.0.1", probePort).isComplete) }
            _ = try TCP.exchange("127.0.0.1", exitPort)
            for _ in 0..<2 { _ = try TCP.exchange("127.0.0.1", deniedPort) }
            _ = try TCP.exchange("127.0.0.1", badPort)
            daemon.waitForLog("FAIL: bad exec", count: 1)
            #expect(try TCP.exchange("127.0.0.1", echoPort, send: Array("hello, metrics\n".utf8)).text == "hello, metrics\n")
            daemon.waitForLog("EXIT: exiter", count: 1)
            daemon.waitForLog("EXIT: probe", count: 3)
            _ = Clock.poll(timeout: 3) { daemon.children().isEmpty }
            // An echo pump books the echoed bytes when it hands the finished connection back to the
            // event loop, which may be after the client saw the FIN: wait for them first.
            _ = Clock.poll(timeout: 3) {
                (try? Self.http(metricsPort, "/metrics")).flatMap {
                    Self.metric($0.body, "swinetd_in_process_sent_bytes_total", ["service=\"echo\""])
                } == 15
            }

            let after = try Self.http(metricsPort, "/metrics").body
            let probe = "service=\"probe\""
            #expect(Self.metric(after, "swinetd_connections_accepted_total", [probe]) == 3, "\(after)")
            #expect(Self.metric(after, "swinetd_spawns_total", [probe]) == 3)
            #expect(Self.metric(after, "swinetd_spawn_failures_total", [probe]) == 0)
            #expect(Self.metric(after, "swinetd_child_exits_total", [probe, "code=\"0\""]) == 3)
            #expect(Self.metric(after, "swinetd_child_exits_total", ["service=\"exiter\"", "code=\"3\""]) == 1)
            #expect(Self.metric(after, "swinetd_child_duration_seconds_count", [probe]) == 3)
            #expect(Self.metric(after, "swinetd_child_duration_seconds_bucket", [probe, "le=\"+Inf\""]) == 3)
            #expect(Self.metric(after, "swinetd_connections_refused_total", ["service=\"denied\"", "reason=\"address\""]) == 2)
            #expect(Self.metric(after, "swinetd_connections_accepted_total", ["service=\"denied\""]) == 2)
            #expect(Self.metric(after, "swinetd_spawns_total", ["service=\"denied\""]) == 0)
            #expect(Self.metric(after, "swinetd_refusals_total") == 2)
            #expect(Self.metric(after, "swinetd_spawn_failures_total", ["service=\"bad\""]) == 1, "\(daemon.log)")
            #expect(Self.metric(after, "swinetd_spawns_total", ["service=\"bad\""]) == 0)
            #expect(Self.metric(after, "swinetd_in_process_received_bytes_total", ["service=\"echo\""]) == 15)
            #expect(Self.metric(after, "swinetd_in_process_sent_bytes_total", ["service=\"echo\""]) == 15)
            #expect(Self.metric(after, "swinetd_connections_accepted_total", ["service=\"echo\""]) == 1)
            #expect(Self.metric(after, "swinetd_children") == 0)
            #expect((Self.metric(after, "swinetd_open_fds") ?? 0) > 3)

            // Exposition format: every sample line is `name{labels} number` or `name number`,
            // every family has HELP and TYPE, histogram buckets are cumulative.
            let sampleLine = try Regex(#"^[a-z_]+(\{([a-z_]+="([^"\\]|\\.)*",?)*\})? [-+0-9.eInf]+$"#)
            for line in after.split(separator: "\n") where !line.hasPrefix("#") {
                #expect(line.wholeMatch(of: sampleLine) != nil, "bad line: \(line)")
            }
            #expect(after.contains("# TYPE swinetd_child_duration_seconds histogram"))

            #expect(try Self.http(metricsPort, "/other").status == 404)
            #expect(try Self.http(metricsPort, "/metrics", method: "POST").status == 405)
        }

        /// An oversized request is answered 413, a silent client is dropped after the timeout,
        /// and more admin connections than the cap are closed while the endpoint keeps serving.
        @Test func metricsEndpointBoundsRequests() throws {
            let metricsPort = Ports.free()
            let daemon = try Daemon(
                config: Xinetd.probe("probe", port: Ports.free()),
                arguments: ["--metrics", "127.0.0.1:\(metricsPort)", "--control", "none"])
            defer { daemon.stop() }
            let big = try Connection.tcp("127.0.0.1", metricsPort)
            try? big.send("GET /metrics HTTP/1.1\r\nX-Filler: " + String(repeating: "a", count: 10_000) + "\r\n\r\n")
            #expect(big.readToEOF(timeout: 5).text.hasPrefix("HTTP/1.1 413"))
            var idle: [Connection] = []
            for _ in 0..<20 { idle.append(try Connection.tcp("127.0.0.1", metricsPort)) }
            // The 17th and later were closed at once.
            let closed = idle.suffix(4).filter { $0.readToEOF(timeout: 2).eof }.count
            #expect(closed == 4)
            for connection in idle { connection.close() }
            #expect(try Self.http(metricsPort, "/metrics").status == 200)
        }

        /// `swinetd status` (table and --json), `pause` (the port refuses connections), `resume`,
        /// `reload` and an unknown service, all through the real CLI and the control socket.
        @Test func controlSocketStatusPauseResumeReload() throws {
            let (probePort, holdPort) = (Ports.free(), Ports.free())
            let dir = try TempDir()
            let control = dir.path + "/control.sock"
            let config = Xinetd.loggingDefaults + Xinetd.probe("probe", port: probePort)
                + Xinetd.probe("holder", port: holdPort, mode: "sleep 30")
            let daemon = try Daemon(config: config, arguments: ["--control", control])
            defer { daemon.stop() }
            var info = stat()
            #expect(lstat(control, &info) == 0)
            #expect(info.st_mode & S_IFMT == S_IFSOCK)
            #expect(info.st_mode & 0o777 == 0o600)
            #expect(info.st_uid == 0)

            let holder = try Connection.tcp("127.0.0.1", holdPort)
            defer { holder.close() }
            let held = ProbeReport(holder.read(until: "\nend\n", timeout: 5))
            daemon.waitForLog("START: holder", count: 1)

            let table = try Self.swinetd(["status", "--control", control])
            #expect(table.status == .exited(0), "\(table)")
            #expect(table.stdout.contains("SERVICE"), "\(table)")
            #expect(table.stdout.split(separator: "\n").contains { $0.hasPrefix("probe ") && $0.contains("active") }, "\(table)")
            #expect(table.stdout.contains("127.0.0.1:\(holdPort)"))
            if let pid = held.pid {
                #expect(table.stdout.split(separator: "\n").contains { $0.hasPrefix("\(pid) ") && $0.contains("holder") && $0.contains("127.0.0.1") }, "\(table)")
            }

            let json = try Self.swinetd(["status", "--control", control, "--json"])
            #expect(json.status == .exited(0), "\(json)")
            let object = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
            let services = object?["services"] as? [[String: Any]] ?? []
            #expect(services.count == 2)
            let probe = services.first { $0["id"] as? String == "probe" }
            #expect(probe?["state"] as? String == "active")
            #expect((probe?["listeners"] as? [[String: Any]])?.first?["address"] as? String == "127.0.0.1:\(probePort)")
            let children = object?["children"] as? [[String: Any]] ?? []
            #expect(children.count == 1)
            #expect(children.first?["service"] as? String == "holder")
            #expect(children.first?["peer"] as? String == "127.0.0.1")
            #expect((children.first?["age_seconds"] as? Double ?? -1) >= 0)
            if let pid = held.pid { #expect(children.first?["pid"] as? Int == Int(pid)) }

            // pause: the socket is closed, connecting is refused; status says until when.
            let pause = try Self.swinetd(["pause", "probe", "--control", control])
            #expect(pause.status == .exited(0), "\(pause)")
            #expect(TCP.connectErrno("127.0.0.1", probePort) == ECONNREFUSED)
            let paused = try Self.swinetd(["status", "--control", control])
            #expect(paused.stdout.split(separator: "\n").contains { $0.hasPrefix("probe ") && $0.contains("paused (until resumed)") }, "\(paused)")
            let timed = try Self.swinetd(["pause", "probe", "--seconds", "300", "--control", control])
            #expect(timed.status == .exited(0))
            let timedJSON = try Self.swinetd(["status", "--json", "--control", control])
            let until = ((try JSONSerialization.jsonObject(with: Data(timedJSON.stdout.utf8)) as? [String: Any])?["services"] as? [[String: Any]])?
                .first { $0["id"] as? String == "probe" }?["paused_until"] as? Int
            let now = Int(Date().timeIntervalSince1970)
            #expect(until.map { $0 >= now + 290 && $0 <= now + 310 } == true, "\(timedJSON.stdout)")

            let resume = try Self.swinetd(["resume", "probe", "--control", control])
            #expect(resume.status == .exited(0), "\(resume)")
            #expect(try TCP.probe("127.0.0.1", probePort).isComplete)

            let unknown = try Self.swinetd(["pause", "nosuch", "--control", control])
            #expect(unknown.status == .exited(1))
            #expect(unknown.stderr.contains("no service named nosuch"))

            // reload: applied, then refused for a broken file (exit 1, the running one stays).
            let reload = try Self.swinetd(["reload", "--control", control])
            #expect(reload.status == .exited(0), "\(reload)")
            #expect(reload.stdout.contains("reloaded: 2 services"))
            try daemon.writeConfig(config + "service broken\n{\n    port = notaport\n}\n")
            let refused = try Self.swinetd(["reload", "--control", control])
            #expect(refused.status == .exited(1), "\(refused)")
            #expect(refused.stderr.contains("reload refused"))
            #expect(try TCP.probe("127.0.0.1", probePort).isComplete)
        }

        /// Which thread starts a child (docs/DESIGN.md, "Spawn threads"): a connection that finds
        /// the daemon idle starts on the reactor; one for a program with a working directory always
        /// goes to a spawn thread; so does a burst (four connections queued while the daemon was
        /// stopped), after which an idle connection starts on the reactor again. Every child runs.
        @Test func childrenStartOnTheReactorOnlyWhenIdle() throws {
            let (quickPort, cwdPort) = (Ports.free(), Ports.free())
            let dir = try TempDir()
            let control = dir.path + "/control.sock"
            let config = Xinetd.loggingDefaults + Xinetd.probe("quick", port: quickPort)
                + Xinetd.probe("cwd", port: cwdPort, ["working_directory = /tmp"])
            let daemon = try Daemon(config: config, arguments: ["--control", control])
            defer { daemon.stop() }

            func counts(_ id: String) throws -> (spawned: Int?, onReactor: Int?) {
                let json = try Self.swinetd(["status", "--control", control, "--json"])
                let object = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
                let service = (object?["services"] as? [[String: Any]])?.first { $0["id"] as? String == id }
                return (service?["spawned"] as? Int, service?["spawned_on_reactor"] as? Int)
            }

            #expect(try TCP.probe("127.0.0.1", quickPort).isComplete)
            #expect(daemon.waitForLog("EXIT: quick", count: 1))
            #expect(try counts("quick") == (1, 1))

            let cwd = try TCP.probe("127.0.0.1", cwdPort)
            #expect(cwd.isComplete)
            #expect(cwd.values["cwd"] == "/tmp", "\(cwd)")
            #expect(try counts("cwd") == (1, 0))

            // A burst: the kernel completes four handshakes while the daemon is stopped.
            daemon.signal(SIGSTOP)
            var burst: [Connection] = []
            defer { burst.forEach { $0.close() } }
            for _ in 0..<4 { burst.append(try Connection.tcp("127.0.0.1", quickPort)) }
            daemon.signal(SIGCONT)
            for connection in burst {
                #expect(ProbeReport(connection.readToEOF(timeout: 5).bytes).isComplete)
            }
            #expect(daemon.waitForLog("EXIT: quick", count: 5))
            #expect(try counts("quick") == (5, 1))

            #expect(try TCP.probe("127.0.0.1", quickPort).isComplete)
            #expect(daemon.waitForLog("EXIT: quick", count: 6))
            #expect(try counts("quick") == (6, 2))
        }

        /// The control socket refuses everyone but root (and the daemon's uid): the socket file is
        /// 0600, and even with the file opened up, SO_PEERCRED turns nobody away.
        @Test func controlSocketRefusesNonRootPeers() throws {
            let dir = try TempDir()
            chmod(dir.path, 0o755)
            let control = dir.path + "/control.sock"
            let daemon = try Daemon(config: Xinetd.probe("probe", port: Ports.free()), arguments: ["--control", control])
            defer { daemon.stop() }
            let nobody = ["/usr/bin/setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
            let denied = try Self.swinetd(["status", "--control", control], prefix: nobody)
            #expect(denied.status != .exited(0), "\(denied)")
            #expect(denied.stderr.contains("Permission denied"), "\(denied)")
            chmod(control, 0o666)
            let credentials = try Self.swinetd(["status", "--control", control], prefix: nobody)
            #expect(credentials.status == .exited(1), "\(credentials)")
            #expect(credentials.stderr.contains("permission denied (uid 65534)"), "\(credentials)")
            #expect(try Self.swinetd(["status", "--control", control]).status == .exited(0))
        }

        /// The control socket is removed when the daemon exits; a live one is never stolen by a
        /// second daemon (which runs on without it when --control was not explicit... here it was,
        /// so it refuses to start).
        @Test func controlSocketIsRemovedAndNotStolen() throws {
            let dir = try TempDir()
            let control = dir.path + "/control.sock"
            let first = try Daemon(config: Xinetd.probe("one", port: Ports.free()), arguments: ["--control", control])
            #expect(throws: (any Error).self) {
                _ = try Daemon(config: Xinetd.probe("two", port: Ports.free()), arguments: ["--control", control], readyTimeout: 5)
            }
            #expect(try Self.swinetd(["status", "--control", control]).stdout.contains("one"))
            first.stop()
            var info = stat()
            #expect(lstat(control, &info) != 0)
        }

        /// `--log-format json`: every stderr line is one JSON object; START, EXIT and FAIL carry
        /// the event, service, pid, peer, exit status and reason as fields; hostile bytes in a
        /// service id cannot break the line.
        @Test func jsonLogFormat() throws {
            let (probePort, exitPort, deniedPort, filedPort) = (Ports.free(), Ports.free(), Ports.free(), Ports.free())
            let dir = try TempDir()
            let fileLog = dir.path + "/filed.log"
            let daemon = try Daemon(
                config: Xinetd.loggingDefaults + Xinetd.probe("probe", port: probePort)
                    + Xinetd.probe("exiter", port: exitPort, mode: "exit 7")
                    + Xinetd.probe("denied", port: deniedPort, ["only_from = 127.0.0.2", "id = de\"nied\\x"])
                    + Xinetd.probe("filed", port: filedPort, ["log_type = FILE \(fileLog)", "log_on_success = PID EXIT"]),
                arguments: ["--log-format", "json", "--control", "none"])
            defer { daemon.stop() }
            let filed = try TCP.probe("127.0.0.1", filedPort)
            #expect(Clock.poll(timeout: 5) { Files.read(fileLog).contains("\"EXIT\"") }, "\(Files.read(fileLog))")
            let fileObjects = try Files.read(fileLog).split(separator: "\n").map {
                try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
            }
            #expect(fileObjects.count == 2, "\(Files.read(fileLog))")
            #expect(fileObjects.first??["event"] as? String == "START")
            #expect(fileObjects.first??["pid"] as? Int == filed.pid.map(Int.init))
            #expect(fileObjects.last??["status"] as? Int == 0)
            #expect(fileObjects.last??["service"] as? String == "filed")
            let report = try TCP.probe("127.0.0.1", probePort)
            _ = try TCP.exchange("127.0.0.1", exitPort)
            _ = try TCP.exchange("127.0.0.1", deniedPort)
            daemon.waitForLog("\"EXIT\"", count: 2)
            daemon.waitForLog("\"FAIL\"", count: 1)
            var objects: [[String: Any]] = []
            for line in daemon.logLines {
                let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
                #expect(object != nil, "not a JSON object: \(line)")
                if let object { objects.append(object) }
            }
            #expect(objects.allSatisfy { $0["ts"] is String && $0["level"] is String && $0["message"] is String })
            #expect(objects.contains { ($0["message"] as? String)?.hasPrefix("ready:") == true })
            let start = objects.first { $0["event"] as? String == "START" && $0["service"] as? String == "probe" }
            #expect(start?["pid"] as? Int == report.pid.map(Int.init))
            #expect(start?["from"] as? String == "127.0.0.1")
            let exit = objects.first { $0["event"] as? String == "EXIT" && $0["service"] as? String == "exiter" }
            #expect(exit?["status"] as? Int == 7, "\(daemon.log)")
            #expect(exit?["duration"] is Double || exit?["duration"] is Int)
            let fail = objects.first { $0["event"] as? String == "FAIL" }
            #expect(fail?["service"] as? String == "de\"nied\\x", "\(daemon.log)")
            #expect(fail?["reason"] as? String == "address")
            #expect(fail?["level"] as? String == "notice")
        }

        /// The console's HTTP side: the login page without a token, 401 for the API, the token as
        /// bearer or cookie, POST actions need the CSRF header, pause refuses connections, check
        /// shows the files on disk, and a non-loopback address is refused without
        /// --admin-allow-remote.
        @Test func consoleAPI() throws {
            let (probePort, adminPort) = (Ports.free(), Ports.free())
            let dir = try TempDir()
            let token = "0123456789abcdef0123456789abcdef"
            let tokenFile = try dir.write("token", token + "\n")
            chmod(tokenFile, 0o600)
            let daemon = try Daemon(
                config: Xinetd.loggingDefaults + Xinetd.probe("probe", port: probePort),
                arguments: ["--admin", "127.0.0.1:\(adminPort)", "--admin-token-file", tokenFile, "--control", "none"])
            defer { daemon.stop() }
            let bearer = ["Authorization: Bearer \(token)"]

            let login = try Self.http(adminPort, "/")
            #expect(login.status == 200)
            #expect(login.body.contains("name=\"token\""))
            #expect(try Self.http(adminPort, "/api/state").status == 401)
            #expect(try Self.http(adminPort, "/api/state", headers: ["Authorization: Bearer wrong-token-wrong-token"]).status == 401)
            #expect(try Self.http(adminPort, "/login?token=nope").status == 403)
            let cookie = try Self.http(adminPort, "/login?token=\(token)")
            #expect(cookie.status == 303)
            #expect(cookie.head.contains("Set-Cookie: swinetd_admin=\(token); Path=/; HttpOnly; SameSite=Strict"))
            let form = try Self.http(
                adminPort, "/login", method: "POST",
                headers: ["Content-Type: application/x-www-form-urlencoded", "Content-Length: \(token.count + 6)"], body: "token=\(token)")
            #expect(form.status == 303, "\(form)")
            #expect(form.head.contains("Set-Cookie: swinetd_admin=\(token);"))
            #expect(try Self.http(adminPort, "/login", method: "POST", headers: ["Content-Length: 9"], body: "token=bad").status == 403)
            let page = try Self.http(adminPort, "/", headers: ["Cookie: swinetd_admin=\(token)"])
            #expect(page.body.contains("<title>swinetd console</title>"))
            #expect(page.head.contains("Content-Security-Policy:"))

            let state = try Self.http(adminPort, "/api/state", headers: bearer)
            #expect(state.status == 200)
            let object = try JSONSerialization.jsonObject(with: Data(state.body.utf8)) as? [String: Any]
            #expect((object?["services"] as? [[String: Any]])?.first?["history"] is [Any])
            #expect(object?["recent_refusals"] is [Any])

            #expect(try Self.http(adminPort, "/api/pause?service=probe", method: "POST", headers: bearer).status == 403)
            #expect(try Self.http(adminPort, "/api/pause?service=probe", method: "GET", headers: bearer).status == 405)
            #expect(TCP.connectErrno("127.0.0.1", probePort) == 0)
            let pause = try Self.http(adminPort, "/api/pause?service=probe", method: "POST", headers: bearer + ["X-Swinetd-Console: 1"])
            #expect(pause.body.contains("\"ok\":true"), "\(pause)")
            #expect(TCP.connectErrno("127.0.0.1", probePort) == ECONNREFUSED, "\(daemon.log)")
            let resume = try Self.http(adminPort, "/api/resume?service=probe", method: "POST", headers: ["Cookie: swinetd_admin=\(token)", "X-Swinetd-Console: 1"])
            #expect(resume.body.contains("\"ok\":true"), "\(resume)")
            #expect(try TCP.probe("127.0.0.1", probePort).isComplete, "\(daemon.log)")

            let check = try Self.http(adminPort, "/api/check", headers: bearer)
            #expect(check.body.contains("\"ok\":true"))
            #expect(check.body.contains("1 services, 0 errors"))
            let metrics = try Self.http(adminPort, "/metrics", headers: bearer)
            #expect(metrics.body.contains("swinetd_spawns_total{service=\"probe\""))

            let remote = try Self.swinetd([
                "--foreground", "-f", daemon.configPath, "--admin", "0.0.0.0:\(Ports.free())", "--admin-token-file", tokenFile,
                "--control", "none",
            ])
            #expect(remote.status == .exited(64), "\(remote)")
            #expect(remote.stderr.contains("--admin-allow-remote"), "\(remote)")
            chmod(tokenFile, 0o644)
            let readable = try Self.swinetd([
                "--foreground", "-f", daemon.configPath, "--admin", "127.0.0.1:\(Ports.free())", "--admin-token-file", tokenFile,
            ])
            #expect(readable.status == .exited(64), "\(readable)")
            #expect(readable.stderr.contains("readable or writable by others"), "\(readable)")
        }
    }
}
