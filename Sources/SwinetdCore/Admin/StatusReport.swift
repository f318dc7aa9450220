import CSwinetd
import Logging

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// What `swinetd status`, the control socket and the console show, and the admin actions they
/// share (pause, resume, reload, check). Runs on the reactor thread.
extension Supervisor {
    /// A pause without a duration lasts until `resume` (ten years, in practice).
    static let indefinitePauseSeconds = 10.0 * 365 * 86400

    /// Seconds until a paused service resumes; nil when it is not paused or paused until resumed.
    func pauseSecondsLeft(_ runtime: ServiceRuntime) -> Double? {
        guard let deadline = runtime.resumeDeadline else { return nil }
        let left = Double(deadline - monotonicNanoseconds()) / 1e9
        return left > Self.indefinitePauseSeconds / 2 ? nil : max(0, left)
    }

    func stateName(_ runtime: ServiceRuntime) -> String {
        if runtime.isPaused { return "paused" }
        if runtime.listeners.contains(where: { !$0.isOpen }) && !runtime.listeners.isEmpty { return "unbound" }
        if runtime.stateDescription.hasPrefix("busy") { return "busy" }
        return "active"
    }

    func programText(_ service: Service) -> String {
        if let redirect = service.redirect { return "redirect \(redirect)" }
        switch service.program {
        case .builtin(let builtin): return "internal \(builtin.rawValue)"
        case .external(let path, _): return path
        }
    }

    /// The whole state as one JSON object (`swinetd status --json`, the console's /api/state).
    func statusJSON(forConsole: Bool = false) -> String {
        let now = monotonicNanoseconds()
        let wallNow = wallClockSeconds()
        var json = JSONText()
        json.beginObject()
        json.number("pid", Int(getpid()))
        json.number("started", observability.startedWallSeconds)
        json.number("uptime_seconds", Double(now - observability.startedMonotonic) / 1e9)
        json.number("reloads", reloadCount)
        json.number("live_children", liveChildren)
        json.number("in_process_connections", inProcessConnections)
        json.number("refusals", policyState.refusals)
        json.number("open_fds", openDescriptorCount)
        json.beginArray("services")
        for runtime in runtimes {
            let service = runtime.service
            let m = runtime.metrics
            json.beginObject()
            json.string("id", service.logName)
            json.string("name", service.name)
            json.string("protocol", service.protocolName)
            json.string("socket_type", "\(service.socketType)")
            json.bool("wait", service.wait)
            json.string("program", programText(service))
            json.string("location", "\(service.location)")
            json.string("state", stateName(runtime))
            let left = pauseSecondsLeft(runtime)
            json.number("paused_until", runtime.isPaused ? left.map { wallNow + Int($0.rounded(.up)) } : nil)
            json.bool("paused_indefinitely", runtime.isPaused && left == nil)
            json.beginArray("listeners")
            for listener in runtime.listeners {
                json.beginObject()
                json.string("address", "\(listener.spec.address)")
                json.bool("bound", listener.isOpen)
                json.bool("watched", listener.isArmed)
                json.endObject()
            }
            json.endArray()
            json.number("live_children", runtime.liveChildren)
            json.number("in_process_connections", runtime.inProcessConnections)
            json.number("accepted", m.accepted)
            json.number("refused", m.refusedTotal)
            json.number("spawned", m.spawned)
            json.number("spawn_failures", m.spawnFailures)
            json.number("spawned_on_reactor", m.spawnedOnReactor)
            if forConsole {
                json.beginArray("history")
                for sample in m.history.samples {
                    json.raw(nil, "[\(sample.accepted),\(sample.refused),\(sample.spawned),\(sample.live)]")
                }
                json.endArray()
            }
            json.endObject()
        }
        json.endArray()
        json.beginArray("children")
        for (pid, record) in childRecords.sorted(by: { $0.key < $1.key }) {
            json.beginObject()
            json.number("pid", Int(pid))
            json.string("service", record.runtime.service.logName)
            json.string("peer", record.peer.map { "\($0)" })
            json.number("age_seconds", Double(now - record.startedAt) / 1e9)
            json.bool("wait", record.isWaitChild)
            json.endObject()
        }
        json.endArray()
        if forConsole {
            json.number("sample_seconds", Int(Observability.sampleSeconds))
            json.beginArray("recent_refusals")
            for refusal in observability.recentRefusals {
                json.beginObject()
                json.number("time", refusal.wallSeconds)
                json.string("service", refusal.service)
                json.string("reason", refusal.reason)
                json.string("peer", refusal.peer)
                json.endObject()
            }
            json.endArray()
        }
        json.endObject()
        return json.text
    }

    /// The human table of `swinetd status`.
    func statusText() -> String {
        let now = monotonicNanoseconds()
        let uptime = Int(Double(now - observability.startedMonotonic) / 1e9)
        var text = "swinetd pid \(getpid()), up \(Self.duration(uptime)), \(runtimes.count) services, \(liveChildren) children, "
        text += "\(inProcessConnections) in-process connections, \(policyState.refusals) refused, \(reloadCount) reloads\n\n"
        var rows: [[String]] = [["SERVICE", "PROTO", "STATE", "CHILDREN", "ACCEPTED", "REFUSED", "SPAWNED", "LISTENERS"]]
        for runtime in runtimes {
            let service = runtime.service
            var state = stateName(runtime)
            if runtime.isPaused {
                state += pauseSecondsLeft(runtime).map { " (\(Self.duration(Int($0.rounded(.up)))) left)" } ?? " (until resumed)"
            }
            let listeners = runtime.listeners.map { "\($0.spec.address)\($0.isOpen ? "" : "(closed)")" }.joined(separator: " ")
            rows.append([
                service.logName, service.protocolName, state,
                "\(runtime.liveChildren + runtime.inProcessConnections)", "\(runtime.metrics.accepted)",
                "\(runtime.metrics.refusedTotal)", "\(runtime.metrics.spawned)", listeners.isEmpty ? "-" : listeners,
            ])
        }
        text += Self.table(rows)
        let records = childRecords.sorted(by: { $0.key < $1.key })
        if records.isEmpty {
            text += "\nno live children\n"
        } else {
            var children: [[String]] = [["PID", "SERVICE", "PEER", "AGE"]]
            for (pid, record) in records {
                children.append([
                    "\(pid)", record.runtime.service.logName, record.peer.map { "\($0)" } ?? "-",
                    Self.duration(Int(Double(now - record.startedAt) / 1e9)),
                ])
            }
            text += "\n" + Self.table(children)
        }
        return text
    }

    static func duration(_ seconds: Int) -> String {
        if seconds < 120 { return "\(seconds)s" }
        if seconds < 7200 { return "\(seconds / 60)m\(seconds % 60)s" }
        if seconds < 172_800 { return "\(seconds / 3600)h\(seconds % 3600 / 60)m" }
        return "\(seconds / 86400)d\(seconds % 86400 / 3600)h"
    }

    static func table(_ rows: [[String]]) -> String {
        guard let first = rows.first else { return "" }
        var widths = [Int](repeating: 0, count: first.count)
        for row in rows { for (i, cell) in row.enumerated() { widths[i] = max(widths[i], cell.count) } }
        var text = ""
        for row in rows {
            var line = ""
            for (i, cell) in row.enumerated() {
                line += i == row.count - 1 ? cell : cell + String(repeating: " ", count: widths[i] - cell.count + 2)
            }
            text += line + "\n"
        }
        return text
    }

    /// The services a name selects: by log id or service field (several when a name has both
    /// tcp and udp entries).
    func runtimes(named name: String) -> [ServiceRuntime] {
        runtimes.filter { $0.service.logName == name || $0.service.name == name }
    }

    /// Pauses services (their sockets are closed: clients are refused) for `seconds` or until resumed.
    func adminPause(_ name: String, seconds: Double?) -> Result<String, AdminError> {
        let selected = runtimes(named: name)
        guard !selected.isEmpty else { return .failure(AdminError("no service named \(name)")) }
        if let seconds, !(seconds > 0 && seconds <= Self.indefinitePauseSeconds / 4) {
            return .failure(AdminError("bad duration \(seconds)"))
        }
        for runtime in selected {
            // A child being spawned on a worker thread holds a copy of every descriptor until it
            // execs, so closing the listener alone could leave it listening (connections queue,
            // and re-binding on resume fails). shutdown() stops the socket itself. Only for
            // sockets swinetd accepts from: a wait service's child may own its socket.
            if runtime.service.builtin != nil || !runtime.service.wait {
                for listener in runtime.listeners where listener.isOpen && listener.spec.socketType != .dgram {
                    shutdown(listener.fd, Int32(SHUT_RDWR))
                }
            }
            runtime.pause(seconds: seconds ?? Self.indefinitePauseSeconds)
        }
        let how = seconds.map { "for \(Self.duration(Int($0.rounded(.up))))" } ?? "until resumed"
        logger.notice("\(name): paused \(how) by an administrator")
        return .success("paused \(selected.count) service\(selected.count == 1 ? "" : "s") named \(name) \(how)")
    }

    func adminResume(_ name: String) -> Result<String, AdminError> {
        let selected = runtimes(named: name)
        guard !selected.isEmpty else { return .failure(AdminError("no service named \(name)")) }
        var resumed = 0
        for runtime in selected where runtime.isPaused {
            runtime.resume()
            resumed += 1
        }
        if resumed > 0 { logger.notice("\(name): resumed by an administrator") }
        return .success("resumed \(resumed) service\(resumed == 1 ? "" : "s") named \(name)")
    }

    /// Reloads as SIGHUP does; says whether the new configuration was applied.
    func adminReload() -> Result<String, AdminError> {
        let before = reloadCount
        reload()
        if reloadCount > before { return .success("reloaded: \(runtimes.count) services") }
        return .failure(AdminError("reload refused: the configuration on disk has errors (see `check`); the running configuration stays"))
    }

    /// `swinetd check` of the files on disk, as text, and whether it found errors.
    func checkReport() -> (text: String, hasErrors: Bool) {
        let configuration = ConfigLoader.load(paths: options.configPaths, options: options.loadOptions)
        var text = ""
        for diagnostic in configuration.diagnostics {
            text += "\(diagnostic)\n"
            if let hint = DiagnosticHints.hint(for: diagnostic) { text += "    hint: \(hint)\n" }
        }
        text += ServiceTable.render(configuration.services, color: false)
        let errors = configuration.diagnostics.filter { $0.severity == .error }.count
        text += "\(configuration.services.count) services, \(errors) errors, \(configuration.diagnostics.count - errors) warnings\n"
        return (text, errors > 0)
    }
}

struct AdminError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
