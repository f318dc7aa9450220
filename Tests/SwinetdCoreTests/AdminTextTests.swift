import Foundation
import Testing

@testable import SwinetdCore

/// The hand-written encoders and parsers of the admin side: JSON escaping (parsed back with
/// Foundation), Prometheus label escaping, the HTTP request parser, address and token checks.
@Suite struct AdminTextTests {
    @Test func jsonEscapingRoundTrips() throws {
        let nasty = "quote\" back\\slash\nnew\tline \u{01}\u{7f} <script> \u{2028} é 🙂"
        var json = JSONText()
        json.beginObject()
        json.string("s", nasty)
        json.number("n", 42)
        json.number("d", 1.5)
        json.string("null", nil)
        json.bool("b", true)
        json.beginArray("a")
        json.number(nil, 1)
        json.raw(nil, "[2,3]")
        json.endArray()
        json.endObject()
        #expect(!json.text.contains("<"))
        let object = try JSONSerialization.jsonObject(with: Data(json.text.utf8)) as? [String: Any]
        #expect(object?["s"] as? String == nasty)
        #expect(object?["n"] as? Int == 42)
        #expect(object?["d"] as? Double == 1.5)
        #expect(object?["null"] is NSNull)
        #expect(object?["b"] as? Bool == true)
        #expect((object?["a"] as? [Any])?.count == 2)
    }

    @Test func prometheusLabelsAreEscaped() {
        #expect(PrometheusText.escapeLabel("a\"b\\c\nd") == "a\\\"b\\\\c\\nd")
        #expect(PrometheusText.formatDouble(5) == "5")
        #expect(PrometheusText.formatDouble(0.5) == "0.5")
        #expect(PrometheusText.formatDouble(.infinity) == "+Inf")
    }

    @Test func histogramBucketsByDuration() {
        let metrics = ServiceMetrics()
        metrics.childExited(status: 0, seconds: 0.005)
        metrics.childExited(status: 3 << 8, seconds: 2)
        metrics.childExited(status: 9, seconds: 7200)
        #expect(metrics.durationBuckets[0] == 1)
        #expect(metrics.durationBuckets[4] == 1)
        #expect(metrics.durationBuckets.reduce(0, +) == 2)  // 7200 s is only in +Inf
        #expect(metrics.durationCount == 3)
        #expect(metrics.exitCodes == [0: 1, 3: 1])
        #expect(metrics.exitSignals == [9: 1])
    }

    @Test func httpRequestParsing() {
        let text = "POST /api/pause?service=my%20svc&seconds=30 HTTP/1.1\r\nHost: x\r\nCookie: a=b; swinetd_admin=tok\r\nX-Swinetd-Console: 1\r\nContent-Length: 2\r\n\r\nhi"
        let bytes = Array(text.utf8)
        #expect(HTTPRequest.isComplete(bytes))
        #expect(!HTTPRequest.isComplete(Array(bytes.dropLast())))
        #expect(!HTTPRequest.isComplete(Array("GET / HTTP/1.1\r\nHost: x\r\n".utf8)))
        let request = HTTPRequest.parse(bytes)
        #expect(request?.method == "POST")
        #expect(request?.path == "/api/pause")
        #expect(request?.query["service"] == "my svc")
        #expect(request?.query["seconds"] == "30")
        #expect(request?.headers["x-swinetd-console"] == "1")
        #expect(request?.cookie("swinetd_admin") == "tok")
        #expect(HTTPRequest.parse(Array("garbage\r\n\r\n".utf8)) == nil)
        #expect(HTTPRequest.parse(Array("GET / SPDY\r\n\r\n".utf8)) == nil)
    }

    @Test func tokenComparison() {
        #expect(ConsoleAuth.matches("0123456789abcdef", "0123456789abcdef"))
        #expect(!ConsoleAuth.matches("0123456789abcdeX", "0123456789abcdef"))
        #expect(!ConsoleAuth.matches("0123456789abcdef0", "0123456789abcdef"))
        #expect(!ConsoleAuth.matches("", "0123456789abcdef"))
    }

    @Test func adminAddressesAndProblems() {
        #expect(AdminOptions.parseAddress("127.0.0.1:9100").map { "\($0.0):\($0.1)" } == "127.0.0.1:9100")
        #expect(AdminOptions.parseAddress("[::1]:9100").map { "\($0.0):\($0.1)" } == "::1:9100")
        #expect(AdminOptions.parseAddress("localhost:80") != nil)
        #expect(AdminOptions.parseAddress("example.com:80") == nil)
        #expect(AdminOptions.parseAddress("127.0.0.1") == nil)
        #expect(AdminOptions.parseAddress("127.0.0.1:99999") == nil)
        var options = AdminOptions()
        options.consoleAddress = "10.0.0.1:9000"
        #expect(options.problems().contains { $0.contains("--admin-allow-remote") })
        #expect(options.problems().contains { $0.contains("--admin needs --admin-token-file") })
        options.controlPath = "relative.sock"
        #expect(options.problems().contains { $0.contains("absolute path") })
    }
}
