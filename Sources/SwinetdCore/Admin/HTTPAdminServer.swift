/// The subset of HTTP/1.1 the admin servers speak: one GET or POST per connection, headers and
/// body within 8 KiB, answered with `Connection: close`.
struct HTTPRequest {
    var method: String
    var path: String
    var query: [String: String] = [:]
    /// Lower-cased names.
    var headers: [String: String] = [:]
    var body: [UInt8] = []

    /// Whether `bytes` hold the whole head (and the body its Content-Length announces).
    static func isComplete(_ bytes: [UInt8]) -> Bool {
        guard let end = headEnd(bytes) else { return false }
        let head = String(decoding: bytes[..<end], as: UTF8.self).lowercased()
        for line in head.split(separator: "\r\n") where line.hasPrefix("content-length:") {
            let length = Int(line.dropFirst("content-length:".count).trimmingCharacters()) ?? 0
            return bytes.count >= end + 4 + length
        }
        return true
    }

    private static func headEnd(_ bytes: [UInt8]) -> Int? {
        guard bytes.count >= 4 else { return nil }
        for i in 0...(bytes.count - 4)
        where bytes[i] == 13 && bytes[i + 1] == 10 && bytes[i + 2] == 13 && bytes[i + 3] == 10 {
            return i
        }
        return nil
    }

    static func parse(_ bytes: [UInt8]) -> HTTPRequest? {
        guard let end = headEnd(bytes) else { return nil }
        let head = String(decoding: bytes[..<end], as: UTF8.self)
        var lines = head.split(separator: "\r\n", omittingEmptySubsequences: false)
        guard !lines.isEmpty else { return nil }
        let requestLine = lines.removeFirst().split(separator: " ")
        guard requestLine.count == 3, requestLine[2].hasPrefix("HTTP/1.") else { return nil }
        let target = requestLine[1]
        var request = HTTPRequest(method: String(requestLine[0]), path: String(target))
        if let mark = target.firstIndex(of: "?") {
            request.path = String(target[..<mark])
            for pair in target[target.index(after: mark)...].split(separator: "&") {
                let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                let value = parts.count > 1 ? percentDecode(parts[1]) : ""
                request.query[percentDecode(parts[0])] = value
            }
        }
        for line in lines {
            guard let colon = line.firstIndex(of: ":") else { continue }
            request.headers[line[..<colon].lowercased()] = String(line[line.index(after: colon)...]).trimmingCharacters()
        }
        request.body = Array(bytes[(end + 4)...])
        return request
    }

    static func percentDecode(_ text: Substring) -> String {
        var bytes: [UInt8] = []
        var iterator = Array(text.utf8).makeIterator()
        while let byte = iterator.next() {
            if byte == UInt8(ascii: "+") {
                bytes.append(UInt8(ascii: " "))
            } else if byte == UInt8(ascii: "%"), let high = iterator.next(), let low = iterator.next(),
                let value = UInt8(String(decoding: [high, low], as: UTF8.self), radix: 16)
            {
                bytes.append(value)
            } else {
                bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The fields of an `application/x-www-form-urlencoded` body.
    var formFields: [String: String] {
        var fields: [String: String] = [:]
        for pair in String(decoding: body, as: UTF8.self).split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            fields[Self.percentDecode(parts[0])] = parts.count > 1 ? Self.percentDecode(parts[1]) : ""
        }
        return fields
    }

    /// The value of one cookie.
    func cookie(_ name: String) -> String? {
        guard let header = headers["cookie"] else { return nil }
        for part in header.split(separator: ";") {
            let pair = part.trimmingCharacters()
            if pair.hasPrefix(name + "=") { return String(pair.dropFirst(name.count + 1)) }
        }
        return nil
    }
}

struct HTTPResponse {
    var status: Int
    var contentType = "text/plain; charset=utf-8"
    var headers: [(String, String)] = []
    var body: String

    init(status: Int, contentType: String = "text/plain; charset=utf-8", headers: [(String, String)] = [], body: String) {
        self.status = status
        self.contentType = contentType
        self.headers = headers
        self.body = body
    }

    static func text(_ status: Int, _ body: String) -> HTTPResponse { HTTPResponse(status: status, body: body + "\n") }

    static func json(_ body: String, status: Int = 200) -> HTTPResponse {
        HTTPResponse(status: status, contentType: "application/json", body: body + "\n")
    }

    var bytes: [UInt8] {
        let reasons = [
            200: "OK", 303: "See Other", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden",
            404: "Not Found", 405: "Method Not Allowed", 413: "Content Too Large", 500: "Internal Server Error",
        ]
        var head = "HTTP/1.1 \(status) \(reasons[status] ?? "Status")\r\n"
        head += "Content-Type: \(contentType)\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n"
        head += "Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n"
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        return Array((head + "\r\n" + body).utf8)
    }
}

extension StringProtocol {
    func trimmingCharacters() -> String {
        var scalars = Substring(self).unicodeScalars[...]
        while let first = scalars.first, first == " " || first == "\t" { scalars.removeFirst() }
        while let last = scalars.last, last == " " || last == "\t" || last == "\r" { scalars.removeLast() }
        return String(String.UnicodeScalarView(scalars))
    }
}

extension Supervisor {
    /// The `--metrics` endpoint: GET /metrics, nothing else, no authentication (like every
    /// Prometheus exporter: bind it to loopback or a management network).
    func makeMetricsServer(address: AdminServer.Address) -> AdminServer {
        AdminServer(name: "metrics", address: address, reactor: reactor, framer: HTTPRequest.isComplete) {
            [unowned self] bytes, _, tooLarge in
            if tooLarge { return HTTPResponse.text(413, "request too large").bytes }
            guard let request = HTTPRequest.parse(bytes) else { return HTTPResponse.text(400, "bad request").bytes }
            guard request.method == "GET" || request.method == "HEAD" else {
                return HTTPResponse(status: 405, headers: [("Allow", "GET")], body: "method not allowed\n").bytes
            }
            guard request.path == "/metrics" else { return HTTPResponse.text(404, "not found; try /metrics").bytes }
            var response = HTTPResponse(status: 200, contentType: PrometheusText.contentType, body: PrometheusText.render(self))
            if request.method == "HEAD" {
                var bytes = response.bytes
                bytes.removeLast(response.body.utf8.count)
                response.body = ""
                return bytes
            }
            return response.bytes
        }
    }
}
