import Glibc

/// The two configuration languages swinetd reads.
public enum ConfigFormat: String, Sendable, CaseIterable {
    /// Classic one-line-per-service inetd.conf.
    case inetd
    /// xinetd.conf: `defaults { }`, `service NAME { attr = values }`, `include`, `includedir`.
    case xinetd

    /// xinetd when the first line that is neither blank nor a comment starts with `defaults`, `service`,
    /// `include`, `includedir` or `{`; no inetd.conf line can start that way, so the guess is safe.
    public static func detect(_ bytes: [UInt8]) -> ConfigFormat {
        for line in ConfigText.lines(bytes) {
            guard let first = ConfigText.fields(line.content).first else { continue }
            if first.first == UInt8(ascii: "#") { continue }
            let word = String(decoding: first, as: UTF8.self)
            return ["defaults", "service", "include", "includedir", "{"].contains(word) ? .xinetd : .inetd
        }
        return .inetd
    }

    /// The format of the file at `path`; nil when it is not a readable regular file.
    public static func detect(path: String) -> ConfigFormat? {
        guard case .success(.regular) = ConfigFile.kind(of: path), case .success(let bytes) = ConfigFile.read(path)
        else { return nil }
        return detect(bytes)
    }
}

/// One `name op values` line of a section.
struct XinetdAttribute {
    enum Operator: String {
        case set = "="
        case add = "+="
        case remove = "-="
    }

    var name: String
    var op: Operator
    var values: [String]
    var location: ConfigLocation
}

/// A `defaults { }` or `service NAME { }` block, as read.
struct XinetdSection {
    enum Kind: Equatable {
        case defaults
        case service(String)
    }

    var kind: Kind
    var location: ConfigLocation
    var attributes: [XinetdAttribute] = []
    /// Set when a problem inside the block was already reported; the block is then refused as a whole.
    var isBroken = false

    var label: String {
        switch kind {
        case .defaults: "defaults"
        case .service(let name): "service \(name)"
        }
    }
}

/// Reads an xinetd configuration tree into sections, following `include` and `includedir` in place,
/// so that the order of services is the order xinetd would read them.
struct XinetdConfReader {
    /// Deep enough for any real layout; stops runaway nesting that a loop check alone would not catch
    /// (for example a chain of distinct symlinks).
    static let maximumIncludeDepth = 16

    private(set) var sections: [XinetdSection] = []
    private(set) var diagnostics: [Diagnostic] = []
    private(set) var files: [String] = []
    /// Canonical paths of the files being read, outermost first, to refuse include loops.
    private var includeStack: [String] = []

    /// Reads the top file from bytes already in memory (its includes are read from disk).
    mutating func read(_ bytes: [UInt8], file: String) {
        includeStack = [Self.canonicalPath(file) ?? file]
        parse(bytes, file: file)
        includeStack = []
    }

    private mutating func error(_ location: ConfigLocation, _ message: String) {
        diagnostics.append(Diagnostic(.error, location, message))
    }

    private mutating func warning(_ location: ConfigLocation, _ message: String) {
        diagnostics.append(Diagnostic(.warning, location, message))
    }

    // MARK: Includes

    private static func canonicalPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    /// Relative include paths are taken from the including file's directory (xinetd uses its working
    /// directory, which is `/` for a daemon; the including file's directory is what people mean).
    private static func resolve(_ path: String, from file: String) -> String {
        guard !path.hasPrefix("/"), let slash = file.lastIndex(of: "/") else { return path }
        return String(file[...slash]) + path
    }

    /// Whether another file may be entered from `location`; reports depth and loop problems.
    private mutating func mayEnter(_ canonical: String, _ path: String, from location: ConfigLocation) -> Bool {
        if includeStack.contains(canonical) {
            error(location, "include loop: \(path) is already being read (\(includeStack.joined(separator: " -> ")))")
            return false
        }
        if includeStack.count >= Self.maximumIncludeDepth {
            error(location, "includes nested more than \(Self.maximumIncludeDepth) deep at \(path)")
            return false
        }
        return true
    }

    private mutating func include(_ written: String, from location: ConfigLocation) {
        let path = Self.resolve(written, from: location.file)
        guard let canonical = Self.canonicalPath(path) else {
            error(location, "cannot read \(path): \(errnoDescription(errno))")
            return
        }
        guard mayEnter(canonical, path, from: location) else { return }
        switch ConfigFile.kind(of: path) {
        case .success(.regular): break
        case .success: return error(location, "cannot include \(path): not a regular file")
        case .failure(let failure): return error(location, "cannot read \(path): \(errnoDescription(failure.errno))")
        }
        readFile(path, canonical: canonical, from: location)
    }

    private mutating func readFile(_ path: String, canonical: String, from location: ConfigLocation) {
        switch ConfigFile.read(path) {
        case .success(let bytes):
            includeStack.append(canonical)
            parse(bytes, file: path)
            includeStack.removeLast()
        case .failure(let failure):
            error(location, "cannot read \(path): \(errnoDescription(failure.errno))")
        }
    }

    /// Reads the directory's files in bytewise (C locale) order. Like xinetd, names containing a dot or
    /// ending in `~` are skipped — but each with a warning, because a silently ignored `foo.conf` is the
    /// most common xinetd surprise.
    private mutating func includeDirectory(_ written: String, from location: ConfigLocation) {
        let directory = Self.resolve(written, from: location.file)
        let names: [[UInt8]]
        switch ConfigFile.names(in: directory) {
        case .success(let found): names = found.sorted { $0.lexicographicallyPrecedes($1) }
        case .failure(let failure):
            return error(location, "cannot read directory \(directory): \(errnoDescription(failure.errno))")
        }
        let prefix = directory.hasSuffix("/") ? directory : directory + "/"
        for nameBytes in names {
            let name = String(decoding: nameBytes, as: UTF8.self)
            let path = prefix + name
            let skipLocation = ConfigLocation(file: path, line: 0)
            let reason: String? =
                if name.contains(".") {
                    "xinetd's includedir ignores names containing a dot"
                } else if name.hasSuffix("~") {
                    "xinetd's includedir ignores names ending in ~"
                } else if String(validating: nameBytes, as: UTF8.self) == nil {
                    "name is not valid UTF-8"
                } else {
                    nil
                }
            if let reason {
                warning(skipLocation, "skipped \(path): \(reason) (includedir at \(location))")
                continue
            }
            switch ConfigFile.kind(of: path) {
            case .success(.regular): break
            case .success:
                warning(skipLocation, "skipped \(path): not a regular file (includedir at \(location))")
                continue
            case .failure(let failure):
                error(skipLocation, "cannot read \(path): \(errnoDescription(failure.errno))")
                continue
            }
            guard let canonical = Self.canonicalPath(path) else {
                error(skipLocation, "cannot read \(path): \(errnoDescription(errno))")
                continue
            }
            guard mayEnter(canonical, path, from: location) else { continue }
            readFile(path, canonical: canonical, from: location)
        }
    }

    // MARK: Lines

    private static let topLevelKeywords: Set<String> = ["service", "defaults", "include", "includedir"]

    /// A line that starts a new top-level item rather than continuing a section: used to recover
    /// when a `}` is missing.
    private static func isTopLevel(_ fields: [String]) -> Bool {
        guard let first = fields.first, topLevelKeywords.contains(first) else { return false }
        return !fields.dropFirst().contains { $0.hasPrefix("=") || $0.hasPrefix("+=") || $0.hasPrefix("-=") }
    }

    /// A header read, waiting for its `{`.
    private struct PendingHeader {
        var section: XinetdSection
        /// False for a line that was not a header at all: if no `{` follows, it was only a stray line.
        var isHeader: Bool
    }

    private mutating func parse(_ bytes: [UInt8], file: String) {
        files.append(file)
        var open: XinetdSection?
        var pending: PendingHeader?
        var skippingBlock = false

        for line in ConfigText.lines(bytes) {
            let location = ConfigLocation(file: file, line: line.number)
            if line.content.contains(0) || String(validating: line.content, as: UTF8.self) == nil {
                error(
                    location, line.content.contains(0) ? "NUL byte on line \(line.number)" : "line is not valid UTF-8")
                open?.isBroken = true
                pending?.section.isBroken = true
                continue
            }
            let fields = ConfigText.fields(line.content).map { String(decoding: $0, as: UTF8.self) }
            guard let first = fields.first, !first.hasPrefix("#") else { continue }

            if let header = pending {
                pending = nil
                if fields == ["{"] {
                    open = header.section
                    continue
                }
                if header.isHeader {
                    // A header that was itself wrong has been reported already.
                    if !header.section.isBroken {
                        error(header.section.location, "\(header.section.label): expected { on the line after it")
                    }
                    if !Self.isTopLevel(fields) {
                        skippingBlock = fields != ["}"]
                        continue
                    }
                }
            }
            if skippingBlock {
                if fields == ["}"] {
                    skippingBlock = false
                    continue
                }
                guard Self.isTopLevel(fields) else { continue }
                skippingBlock = false
            }
            if var section = open {
                if fields == ["}"] {
                    sections.append(section)
                    open = nil
                    continue
                }
                if Self.isTopLevel(fields) {
                    error(section.location, "\(section.label): missing } before line \(line.number)")
                    open = nil
                } else {
                    if fields.last == "}" || fields.last == "{" {
                        error(location, "\(fields.last!) must be on a line of its own")
                        section.isBroken = true
                    } else if let attribute = parseAttribute(fields, location: location) {
                        section.attributes.append(attribute)
                    } else {
                        section.isBroken = true
                    }
                    open = section
                    continue
                }
            }
            switch topLevel(fields, location: location) {
            case .done: break
            case .open(let section): open = section
            case .awaitBrace(let header): pending = header
            case .skipBlock: skippingBlock = true
            }
        }
        if let section = open {
            error(section.location, "\(section.label): missing } at end of file")
        } else if let header = pending, header.isHeader, !header.section.isBroken {
            error(header.section.location, "\(header.section.label): missing { at end of file")
        }
    }

    /// What a top-level line leads to.
    private enum TopLevelOutcome {
        case done
        /// `service NAME {` on one line: accepted, although xinetd itself wants the brace alone.
        case open(XinetdSection)
        case awaitBrace(PendingHeader)
        case skipBlock
    }

    private mutating func topLevel(_ fields: [String], location: ConfigLocation) -> TopLevelOutcome {
        var words = fields
        let opensHere = words.count > 1 && words.last == "{"
        if opensHere { words.removeLast() }
        switch words[0] {
        case "service", "defaults":
            var section: XinetdSection
            if words[0] == "service" {
                section = XinetdSection(kind: .service(words.count > 1 ? words[1] : ""), location: location)
                if words.count != 2 {
                    error(location, "expected `service NAME`, found `\(fields.joined(separator: " "))`")
                    section.isBroken = true
                }
            } else {
                section = XinetdSection(kind: .defaults, location: location)
                if words.count != 1 {
                    error(location, "expected `defaults`, found `\(fields.joined(separator: " "))`")
                    section.isBroken = true
                }
            }
            return opensHere ? .open(section) : .awaitBrace(PendingHeader(section: section, isHeader: true))
        case "include", "includedir":
            guard words.count == 2, !opensHere else {
                error(location, "\(words[0]) takes exactly one path")
                return .done
            }
            if words[0] == "include" {
                include(words[1], from: location)
            } else {
                includeDirectory(words[1], from: location)
            }
            return .done
        case "{":
            error(location, "{ without a `service NAME` or `defaults` line before it")
            return .skipBlock
        case "}":
            error(location, "} without a matching {")
            return .done
        default:
            error(
                location,
                "expected service, defaults, include or includedir, found `\(fields.joined(separator: " "))`")
            // If a block follows, skip it rather than reading its attributes as top-level lines.
            var stray = XinetdSection(kind: .service(words[0]), location: location)
            stray.isBroken = true
            return opensHere ? .skipBlock : .awaitBrace(PendingHeader(section: stray, isHeader: false))
        }
    }

    /// `name op values...`; reports and returns nil when there is no operator.
    private mutating func parseAttribute(_ fields: [String], location: ConfigLocation) -> XinetdAttribute? {
        // Split the first field at an operator written without spaces (`port=7000`), which xinetd refuses
        // but which is unambiguous.
        let line = fields.joined(separator: " ")
        guard let opRange = Self.operatorRange(in: line) else {
            error(location, "expected `attribute = value`, found `\(line)`")
            return nil
        }
        let name = String(line[..<opRange.lowerBound]).trimmingBlanks
        let opText = String(line[opRange])
        guard !name.isEmpty, !name.contains(" ") else {
            error(location, "expected `attribute = value`, found `\(line)`")
            return nil
        }
        let values = line[opRange.upperBound...].split(separator: " ").map(String.init)
        return XinetdAttribute(
            name: name, op: XinetdAttribute.Operator(rawValue: opText)!, values: values, location: location)
    }

    /// The first `=`, `+=` or `-=` in the line.
    private static func operatorRange(in line: String) -> Range<String.Index>? {
        guard let equals = line.firstIndex(of: "=") else { return nil }
        if equals > line.startIndex {
            let before = line.index(before: equals)
            if line[before] == "+" || line[before] == "-" { return before..<line.index(after: equals) }
        }
        return equals..<line.index(after: equals)
    }
}

extension String {
    fileprivate var trimmingBlanks: String {
        var text = Substring(self)
        while text.first == " " || text.first == "\t" { text = text.dropFirst() }
        while text.last == " " || text.last == "\t" { text = text.dropLast() }
        return String(text)
    }
}
