import ArgumentParser
import SwinetdCore

#if canImport(Glibc)
    import Glibc
#endif

/// `swinetd convert`: prints the configuration in the other format, for migrating between inetd.conf
/// and xinetd.conf (or checking what a migration would lose).
struct Convert: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print inetd.conf files as xinetd.conf or the reverse; what cannot be carried over goes to stderr.",
        discussion: """
            Problems in the input are printed to stderr and make the exit status 1; the services that \
            did load are still converted. Programs are not checked, and users are resolved as written, \
            whoever runs the command.
            """)

    enum Format: String, ExpressibleByArgument, CaseIterable {
        case xinetd, inetd
    }

    @Option(help: "Output format. Default: the other format than the first input file's.")
    var to: Format?

    @Argument(help: "Configuration files or directories to convert.")
    var files: [String]

    func validate() throws {
        if files.isEmpty { throw ValidationError("name at least one configuration file") }
    }

    func run() throws {
        var options = LoadOptions()
        options.checkPrograms = false
        // Resolve `user` fields as configured; a non-root run would otherwise fold every user into its own.
        options.daemonUID = 0
        options.daemonGID = 0
        let configuration = ConfigLoader.load(paths: files, options: options)
        for diagnostic in configuration.diagnostics { printError("\(diagnostic)") }

        // The files actually read, so that a directory argument counts by its contents.
        let inputFormat = configuration.files.lazy.compactMap(ConfigFormat.detect(path:)).first ?? .inetd
        let target: ConfigFormat =
            switch to {
            case .xinetd: .xinetd
            case .inetd: .inetd
            case nil: inputFormat == .xinetd ? .inetd : .xinetd
            }
        let output = ConfigConverter.render(
            configuration.services, as: target, servicesDatabase: ServicesDatabase.load(path: options.servicesFile),
            sources: configuration.files, defaultBacklog: options.defaultBacklog)
        print(output.text, terminator: "")
        for note in output.notes { printError("note: \(note)") }
        if configuration.hasErrors { throw ExitCode(1) }
    }

    private func printError(_ text: String) {
        var line = text + "\n"
        line.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
    }
}
