import Testing

@testable import SwinetdCore

@Suite struct DiagnosticHintsTests {
    @Test func commonErrorsGetAHint() {
        let location = ConfigLocation(file: "a.conf", line: 3)
        let unknownUser = Diagnostic(.error, location, "unknown user nosuchuser")
        #expect(DiagnosticHints.hint(for: unknownUser)?.contains("useradd") == true)
        let overlap = Diagnostic(.error, location, "echo: stream 127.0.0.1:7 overlaps stream 0.0.0.0:7 of echo at b:1")
        #expect(DiagnosticHints.hint(for: overlap)?.contains("wildcard") == true)
        #expect(DiagnosticHints.hint(for: Diagnostic(.warning, location, "something else entirely")) == nil)
    }

    /// Every hint is found for a real message the loader produces.
    @Test func hintsMatchLoaderMessages() {
        let text = Array("nosuch stream tcp nowait root internal\n99999 stream tcp nowait root /bin/cat cat\n".utf8)
        var options = LoadOptions()
        options.servicesFile = "/nonexistent"
        let loaded = ConfigLoader.load(text: text, file: "x.conf", options: options)
        let errors = loaded.diagnostics.filter { $0.severity == .error }
        #expect(errors.count == 2, "\(loaded.diagnostics)")
        #expect(errors.allSatisfy { DiagnosticHints.hint(for: $0) != nil }, "\(errors)")
    }
}
