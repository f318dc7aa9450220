/// The web console (`--admin ADDR:PORT`): the services and their state, live children, recent
/// refusals, per-service graphs, and the safe actions (pause/resume, reload, check). No
/// configuration editing. Authentication: the token from `--admin-token-file`, either as
/// `Authorization: Bearer TOKEN` or as the cookie `/login?token=TOKEN` sets (HttpOnly,
/// SameSite=Strict). Actions are POSTs that must carry `X-Swinetd-Console: 1`: a custom header a
/// cross-site form cannot send, so with the SameSite cookie a foreign page cannot trigger them.
enum ConsoleAuth {
    static let cookieName = "swinetd_admin"
    static let csrfHeader = "x-swinetd-console"

    /// Compares in time independent of where the strings differ.
    static func matches(_ given: String, _ token: String) -> Bool {
        let a = Array(given.utf8)
        let b = Array(token.utf8)
        var difference = a.count ^ b.count
        for i in 0..<b.count { difference |= Int((i < a.count ? a[i] : 0) ^ b[i]) }
        return difference == 0
    }

    static func isAuthorized(_ request: HTTPRequest, token: String) -> Bool {
        if let header = request.headers["authorization"], header.hasPrefix("Bearer ") {
            return matches(String(header.dropFirst(7)).trimmingCharacters(), token)
        }
        if let cookie = request.cookie(cookieName) { return matches(cookie, token) }
        return false
    }
}

extension Supervisor {
    func makeConsoleServer(address: AdminServer.Address, token: String) -> AdminServer {
        AdminServer(name: "web console", address: address, reactor: reactor, framer: HTTPRequest.isComplete) {
            [unowned self] bytes, _, tooLarge in
            if tooLarge { return HTTPResponse.text(413, "request too large").bytes }
            guard let request = HTTPRequest.parse(bytes) else { return HTTPResponse.text(400, "bad request").bytes }
            return consoleResponse(request, token: token).bytes
        }
    }

    private func actionResult(_ result: Result<String, AdminError>) -> HTTPResponse {
        var json = JSONText()
        json.beginObject()
        switch result {
        case .success(let message):
            json.bool("ok", true)
            json.string("message", message)
        case .failure(let error):
            json.bool("ok", false)
            json.string("message", error.description)
        }
        json.endObject()
        return .json(json.text, status: 200)
    }

    func consoleResponse(_ request: HTTPRequest, token: String) -> HTTPResponse {
        let pageHeaders = [
            ("Content-Security-Policy", "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'"),
            ("X-Frame-Options", "DENY"), ("Referrer-Policy", "no-referrer"),
        ]
        guard request.method == "GET" || request.method == "POST" else {
            return HTTPResponse(status: 405, headers: [("Allow", "GET, POST")], body: "method not allowed\n")
        }
        if request.path == "/login" {
            // The sign-in form POSTs the token (so it stays out of the URL and history); scripts may GET.
            let given = request.method == "POST" ? request.formFields["token"] : request.query["token"]
            guard let given, ConsoleAuth.matches(given, token) else {
                return HTTPResponse(status: 403, contentType: "text/html; charset=utf-8", headers: pageHeaders, body: ConsolePage.login(failed: true))
            }
            return HTTPResponse(
                status: 303,
                headers: [("Location", "/"), ("Set-Cookie", "\(ConsoleAuth.cookieName)=\(token); Path=/; HttpOnly; SameSite=Strict")],
                body: "")
        }
        guard ConsoleAuth.isAuthorized(request, token: token) else {
            if request.path == "/" && request.method == "GET" {
                return HTTPResponse(status: 200, contentType: "text/html; charset=utf-8", headers: pageHeaders, body: ConsolePage.login(failed: false))
            }
            return .json("{\"ok\":false,\"message\":\"authentication required\"}", status: 401)
        }
        if request.method == "POST" {
            guard request.headers[ConsoleAuth.csrfHeader] == "1" else {
                return .json("{\"ok\":false,\"message\":\"missing X-Swinetd-Console header\"}", status: 403)
            }
            let service = request.query["service"] ?? ""
            switch request.path {
            case "/api/pause":
                var seconds: Double?
                if let text = request.query["seconds"], !text.isEmpty {
                    guard let value = Double(text) else { return actionResult(.failure(AdminError("bad duration \(text)"))) }
                    seconds = value
                }
                return actionResult(adminPause(service, seconds: seconds))
            case "/api/resume": return actionResult(adminResume(service))
            case "/api/reload": return actionResult(adminReload())
            default: return .json("{\"ok\":false,\"message\":\"not found\"}", status: 404)
            }
        }
        switch request.path {
        case "/":
            return HTTPResponse(status: 200, contentType: "text/html; charset=utf-8", headers: pageHeaders, body: ConsolePage.html)
        case "/api/state":
            return .json(statusJSON(forConsole: true))
        case "/api/check":
            let report = checkReport()
            var json = JSONText()
            json.beginObject()
            json.bool("ok", !report.hasErrors)
            json.string("text", report.text)
            json.endObject()
            return .json(json.text)
        case "/metrics":
            return HTTPResponse(status: 200, contentType: PrometheusText.contentType, body: PrometheusText.render(self))
        case "/api/pause", "/api/resume", "/api/reload":
            return HTTPResponse(status: 405, headers: [("Allow", "POST")], body: "use POST\n")
        default:
            return .text(404, "not found")
        }
    }
}
