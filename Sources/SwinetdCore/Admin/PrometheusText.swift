/// Renders the metrics in the Prometheus text exposition format (version 0.0.4).
///
/// Written by hand rather than with swift-prometheus/swift-metrics: the daemon's counters are
/// plain integers on the reactor thread, so rendering them is a few string appends; the libraries
/// would add locks or atomics per update, a registry and two dependencies for no gain.
enum PrometheusText {
    static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    static func escapeLabel(_ value: String) -> String {
        var out = ""
        for character in value {
            switch character {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            default: out.append(character)
            }
        }
        return out
    }

    static func formatDouble(_ value: Double) -> String {
        if value == .infinity { return "+Inf" }
        if value == value.rounded(), abs(value) < 1e15 { return "\(Int(value))" }
        return "\(value)"
    }

    static func render(_ supervisor: Supervisor) -> String {
        var out = ""
        func family(_ name: String, _ type: String, _ help: String) {
            out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
        }
        func sample(_ name: String, _ labels: String, _ value: String) {
            out += labels.isEmpty ? "\(name) \(value)\n" : "\(name){\(labels)} \(value)\n"
        }
        let runtimes = supervisor.runtimes
        let labels: [String] = runtimes.map { runtime in
            let service = runtime.service
            let listen = runtime.listeners.first.map { "\($0.spec.address)" } ?? ""
            return "service=\"\(escapeLabel(service.logName))\",protocol=\"\(escapeLabel(service.protocolName))\",listen=\"\(escapeLabel(listen))\""
        }
        func perService(_ name: String, _ type: String, _ help: String, _ value: (ServiceRuntime) -> String) {
            family(name, type, help)
            for (i, runtime) in runtimes.enumerated() { sample(name, labels[i], value(runtime)) }
        }

        perService("swinetd_connections_accepted_total", "counter", "Connections accepted (before policy checks).") {
            "\($0.metrics.accepted)"
        }
        family("swinetd_connections_refused_total", "counter", "Connections and datagrams refused, by reason (the FAIL reason of the log).")
        for (i, runtime) in runtimes.enumerated() {
            for (reason, count) in runtime.metrics.refused.sorted(by: { $0.key < $1.key }) {
                sample("swinetd_connections_refused_total", labels[i] + ",reason=\"\(escapeLabel(reason))\"", "\(count)")
            }
        }
        perService("swinetd_spawns_total", "counter", "Children started.") { "\($0.metrics.spawned)" }
        perService("swinetd_spawn_failures_total", "counter", "Spawns that failed (fork, sandbox set-up or exec).") {
            "\($0.metrics.spawnFailures)"
        }
        perService("swinetd_service_children", "gauge", "Live children of the service.") { "\($0.liveChildren)" }
        perService("swinetd_service_in_process_connections", "gauge", "Live in-process connections (builtins, redirects, lookups).") {
            "\($0.inProcessConnections)"
        }
        perService("swinetd_service_paused", "gauge", "1 while the service is paused (rate limit, cps or an admin).") {
            $0.isPaused ? "1" : "0"
        }
        family("swinetd_child_exits_total", "counter", "Children that exited, by exit code.")
        for (i, runtime) in runtimes.enumerated() {
            for (code, count) in runtime.metrics.exitCodes.sorted(by: { $0.key < $1.key }) {
                sample("swinetd_child_exits_total", labels[i] + ",code=\"\(code)\"", "\(count)")
            }
        }
        family("swinetd_child_signals_total", "counter", "Children killed by a signal, by signal number.")
        for (i, runtime) in runtimes.enumerated() {
            for (signal, count) in runtime.metrics.exitSignals.sorted(by: { $0.key < $1.key }) {
                sample("swinetd_child_signals_total", labels[i] + ",signal=\"\(signal)\"", "\(count)")
            }
        }
        family("swinetd_child_duration_seconds", "histogram", "How long children ran.")
        for (i, runtime) in runtimes.enumerated() {
            let m = runtime.metrics
            var cumulative = 0
            for (b, bound) in ServiceMetrics.durationBounds.enumerated() {
                cumulative += m.durationBuckets[b]
                sample("swinetd_child_duration_seconds_bucket", labels[i] + ",le=\"\(formatDouble(bound))\"", "\(cumulative)")
            }
            sample("swinetd_child_duration_seconds_bucket", labels[i] + ",le=\"+Inf\"", "\(m.durationCount)")
            sample("swinetd_child_duration_seconds_sum", labels[i], formatDouble(m.durationSum))
            sample("swinetd_child_duration_seconds_count", labels[i], "\(m.durationCount)")
        }
        perService("swinetd_in_process_received_bytes_total", "counter", "Bytes in-process services (builtins, redirect) read from clients.") {
            "\($0.metrics.bytesIn)"
        }
        perService("swinetd_in_process_sent_bytes_total", "counter", "Bytes in-process services (builtins, redirect) sent to clients.") {
            "\($0.metrics.bytesOut)"
        }

        family("swinetd_open_fds", "gauge", "Open file descriptors of the daemon.")
        sample("swinetd_open_fds", "", "\(supervisor.openDescriptorCount)")
        family("swinetd_max_fds", "gauge", "The daemon's descriptor limit (RLIMIT_NOFILE, soft).")
        sample("swinetd_max_fds", "", "\(supervisor.descriptorLimit)")
        family("swinetd_children", "gauge", "Live children of all services.")
        sample("swinetd_children", "", "\(supervisor.liveChildren)")
        family("swinetd_in_process_connections", "gauge", "Live in-process connections of all services.")
        sample("swinetd_in_process_connections", "", "\(supervisor.inProcessConnections)")
        family("swinetd_services", "gauge", "Configured services.")
        sample("swinetd_services", "", "\(runtimes.count)")
        family("swinetd_refusals_total", "counter", "Refusals of all services.")
        sample("swinetd_refusals_total", "", "\(supervisor.policyState.refusals)")
        family("swinetd_reloads_total", "counter", "Configurations applied by a reload.")
        sample("swinetd_reloads_total", "", "\(supervisor.reloadCount)")
        family("swinetd_start_time_seconds", "gauge", "When the daemon started (Unix time).")
        sample("swinetd_start_time_seconds", "", "\(supervisor.observability.startedWallSeconds)")
        return out
    }
}
