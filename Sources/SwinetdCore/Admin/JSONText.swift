/// A minimal JSON writer (no Foundation in the daemon): strings are escaped per RFC 8259, so any
/// byte a peer or a configuration put in a name comes out as valid JSON.
struct JSONText {
    private(set) var text = ""
    private var needsComma: [Bool] = [false]

    static func quoted(_ string: String) -> String {
        var out = "\""
        for scalar in string.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "<": out += "\\u003c"  // safe to embed in HTML
            default:
                if scalar.value < 0x20 || scalar.value == 0x7f || scalar.value == 0x2028 || scalar.value == 0x2029 {
                    let hex = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }

    private mutating func separator() {
        if needsComma[needsComma.count - 1] { text += "," }
        needsComma[needsComma.count - 1] = true
    }

    private mutating func key(_ name: String?) {
        separator()
        if let name { text += Self.quoted(name) + ":" }
    }

    mutating func beginObject(_ name: String? = nil) {
        key(name)
        text += "{"
        needsComma.append(false)
    }

    mutating func endObject() {
        needsComma.removeLast()
        text += "}"
    }

    mutating func beginArray(_ name: String? = nil) {
        key(name)
        text += "["
        needsComma.append(false)
    }

    mutating func endArray() {
        needsComma.removeLast()
        text += "]"
    }

    mutating func string(_ name: String?, _ value: String?) {
        key(name)
        text += value.map(Self.quoted) ?? "null"
    }

    mutating func number(_ name: String?, _ value: Int?) {
        key(name)
        text += value.map { "\($0)" } ?? "null"
    }

    mutating func number(_ name: String?, _ value: Double) {
        key(name)
        text += value.isFinite ? "\((value * 1000).rounded() / 1000)" : "null"
    }

    mutating func bool(_ name: String?, _ value: Bool) {
        key(name)
        text += value ? "true" : "false"
    }

    /// Inserts already-encoded JSON.
    mutating func raw(_ name: String?, _ json: String) {
        key(name)
        text += json
    }
}
