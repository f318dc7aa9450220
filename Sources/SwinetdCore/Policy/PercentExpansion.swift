/// Bytes an expansion may keep: tcpd's `percent_x` set (letters, digits and `!@%-_=+:,./`).
/// Everything else a client controls (host names from DNS, ident user names) becomes `_`, so
/// `a;rm -rf /;`, backticks, `$(...)`, quotes, blanks, newlines and non-ASCII bytes cannot reach a
/// shell or split a log line.
private let percentSafe: [Bool] = {
    var table = [Bool](repeating: false, count: 256)
    for byte in UInt8(ascii: "a")...UInt8(ascii: "z") { table[Int(byte)] = true }
    for byte in UInt8(ascii: "A")...UInt8(ascii: "Z") { table[Int(byte)] = true }
    for byte in UInt8(ascii: "0")...UInt8(ascii: "9") { table[Int(byte)] = true }
    for byte in "!@%-_=+:,./".utf8 { table[Int(byte)] = true }
    return table
}()

/// Longest single expansion kept (a DNS name is at most 253 bytes).
let percentExpansionLimit = 256
/// Longest result.
let percentResultLimit = 4096

/// %a %A %c %d %h %H %n %N %p %r %R %s %u %% expansion (hosts_access(5)), for logging the `spawn`
/// and `twist` commands swinetd does not run. Each expansion has the characters that may confuse a
/// shell replaced by `_` (tcpd's rule) and is cut at 256 bytes; the result is cut at 4096 bytes.
/// The template itself is configuration and is copied as written. Unknown sequences expand to
/// nothing, as in tcpd; swinetd does not know the server's host name (%N is `unknown`, %H and %s
/// use the address) nor ports here (%r and %R are `0`, tcpd's value for unknown).
public func expandPercent(
    _ template: String, daemon: String, client: AccessClient, serverAddress: IPAddress?, pid: Int32
) -> String {
    let clientAddress = TCPWrappers.text(of: TCPWrappers.unmap(client.address))
    let serverText = serverAddress.map { TCPWrappers.text(of: TCPWrappers.unmap($0)) } ?? "unknown"
    let name: String =
        if client.nameMismatch { "paranoid" } else if let host = client.hostName, !host.isEmpty { host } else {
            "unknown"
        }
    let nameKnown = !client.nameMismatch && name != "unknown" && name != "paranoid"
    let hostInfo = nameKnown ? name : clientAddress
    let user = client.user.flatMap { $0.isEmpty ? nil : $0 }

    func expansion(_ letter: UInt8) -> String {
        switch letter {
        case UInt8(ascii: "a"): return clientAddress
        case UInt8(ascii: "A"): return serverText
        case UInt8(ascii: "c"): return user.map { "\($0)@\(hostInfo)" } ?? hostInfo
        case UInt8(ascii: "d"): return daemon
        case UInt8(ascii: "h"): return hostInfo
        case UInt8(ascii: "H"): return serverText
        case UInt8(ascii: "n"): return name
        case UInt8(ascii: "N"): return "unknown"
        case UInt8(ascii: "p"): return String(pid)
        case UInt8(ascii: "r"), UInt8(ascii: "R"): return "0"
        case UInt8(ascii: "s"): return serverAddress == nil ? daemon : "\(daemon)@\(serverText)"
        case UInt8(ascii: "u"): return user ?? "unknown"
        case UInt8(ascii: "%"): return "%"
        default: return ""
        }
    }

    let input = Array(template.utf8)
    var output: [UInt8] = []
    output.reserveCapacity(min(input.count, percentResultLimit))
    var index = 0
    while index < input.count, output.count < percentResultLimit {
        let byte = input[index]
        if byte == UInt8(ascii: "%"), index + 1 < input.count {
            var expanded = 0
            for value in expansion(input[index + 1]).utf8 {
                if expanded == percentExpansionLimit { break }
                output.append(percentSafe[Int(value)] ? value : UInt8(ascii: "_"))
                expanded += 1
            }
            index += 2
            // An unknown letter that is not ASCII: skip the rest of its UTF-8 sequence too.
            while index < input.count, input[index] & 0xc0 == 0x80 { index += 1 }
        } else {
            output.append(byte)
            index += 1
        }
    }
    if output.count > percentResultLimit || index < input.count {
        // Cut, and do not end in the middle of a UTF-8 sequence copied from the template.
        if output.count > percentResultLimit { output.removeSubrange(percentResultLimit...) }
        var start = output.count
        while start > 0, output.count - start < 4, output[start - 1] & 0xc0 == 0x80 { start -= 1 }
        if start > 0 {
            let lead = output[start - 1]
            let length = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 1
            if output.count - (start - 1) < length { output.removeSubrange((start - 1)...) }
        }
    }
    return String(decoding: output, as: UTF8.self)
}
