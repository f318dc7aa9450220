/// The `key=value` report swinetd-probe writes from inside a spawned child.
///
/// Lines `env:NAME=value` are environment entries; every other line is `key=value`
/// (`Uid`, `Gid`, `Groups`, `SigIgn`, `SigBlk`, `Umask`, `sid`, `pid`, `pgid`, `argvN`, `argc`,
/// `socktypeN`, `fds`, `cwd`, ...). The last line is `end`.
struct ProbeReport: CustomStringConvertible {
    let raw: String
    private(set) var values: [String: String] = [:]
    /// The environment, in the order the child had it.
    private(set) var environment: [(name: String, value: String)] = []
    /// True when the report ended with its `end` line (it was not cut short).
    private(set) var isComplete = false

    init(_ bytes: [UInt8]) { self.init(String(decoding: bytes, as: UTF8.self)) }

    init(_ text: String) {
        raw = text
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line == "end" {
                isComplete = true
                continue
            }
            if line.hasPrefix("env:") {
                let entry = line.dropFirst(4)
                let name = entry.prefix { $0 != "=" }
                let value = entry.dropFirst(name.count + 1)
                environment.append((String(name), String(value)))
                continue
            }
            guard let equals = line.firstIndex(of: "=") else { continue }
            let key = String(line[..<equals])
            if values[key] == nil { values[key] = String(line[line.index(after: equals)...]) }
        }
    }

    var description: String { raw }

    subscript(key: String) -> String? { values[key] }

    /// The environment as a dictionary (last entry wins).
    var env: [String: String] {
        var result: [String: String] = [:]
        for entry in environment { result[entry.name] = entry.value }
        return result
    }

    /// argv as the child received it.
    var argv: [String] {
        guard let count = values["argc"].flatMap(Int.init) else { return [] }
        return (0..<count).map { values["argv\($0)"] ?? "<missing argv\($0)>" }
    }

    /// Open descriptors from `fds=0,1,2,`.
    var fds: [Int] { (values["fds"] ?? "").split(separator: ",").compactMap { Int($0) } }

    private func numbers(_ key: String) -> [UInt32] {
        (values[key] ?? "").split(whereSeparator: { $0 == " " || $0 == "\t" }).compactMap { UInt32($0) }
    }

    /// Real, effective, saved, filesystem uid.
    var uids: [UInt32] { numbers("Uid") }
    var gids: [UInt32] { numbers("Gid") }
    var groups: [UInt32] { numbers("Groups") }
    var pid: Int32? { values["pid"].flatMap(Int32.init) }
    var sid: Int32? { values["sid"].flatMap(Int32.init) }
    var pgid: Int32? { values["pgid"].flatMap(Int32.init) }
}
