import NIOSSL

/// How TLS facts are written into a program's environment.
enum TLSNames {
    /// `TLSv1.2`, `TLSv1.3` (the spelling of OpenSSL and mod_ssl's SSL_PROTOCOL).
    static func version(_ version: TLSVersion) -> String {
        switch version {
        case .tlsv1: "TLSv1"
        case .tlsv11: "TLSv1.1"
        case .tlsv12: "TLSv1.2"
        case .tlsv13: "TLSv1.3"
        }
    }

    /// A failed handshake's reason for the log: BoringSSL's reason code
    /// (`PEER_DID_NOT_RETURN_A_CERTIFICATE`, `WRONG_VERSION_NUMBER`), else NIOSSL's error, short.
    static func reason(_ error: any Error) -> String {
        let text = "\(error)"
        if let marker = text.firstRange(of: "OPENSSL_internal:") {
            return String(text[marker.upperBound...].prefix { $0 != " " && $0 != "]" && $0 != ")" })
        }
        if text.contains("eofDuringHandshake") { return "client closed the connection" }
        return String(text.prefix(160))
    }

    /// Short names of the attribute types NIOSSL reports.
    private static let shortNames: [(SSLCertificateNameType, String)] = [
        (.commonName, "CN"), (.organization, "O"), (.organizationalUnit, "OU"), (.country, "C"),
        (.state, "ST"), (.city, "L"), (.emailAddress, "emailAddress"), (.userId, "UID"),
    ]

    /// A distinguished name as RFC 2253 writes it: most specific first (`CN=alice,O=Example,C=DE`),
    /// `,`, `+`, `"`, `\`, `<`, `>`, `;`, a leading `#` or space and a trailing space escaped with
    /// `\`, control characters as `\XX`. Attribute types other than CN, O, OU, C, ST, L,
    /// emailAddress and UID are left out (NIOSSL does not name them).
    static func rfc2253(_ names: [SSLCertificateName]) -> String {
        names.reversed().compactMap { name -> String? in
            guard let type = shortNames.first(where: { $0.0 == name.type })?.1 else { return nil }
            return type + "=" + escape(name.value)
        }.joined(separator: ",")
    }

    static func escape(_ value: String) -> String {
        var out = ""
        let characters = Array(value)
        for (index, character) in characters.enumerated() {
            let special = ",+\"\\<>;".contains(character)
            let leading = index == 0 && (character == "#" || character == " ")
            let trailing = index == characters.count - 1 && character == " "
            if special || leading || trailing {
                out.append("\\")
                out.append(character)
            } else if let ascii = character.asciiValue, ascii < 0x20 || ascii == 0x7f {
                let hex = String(ascii, radix: 16, uppercase: true)
                out += "\\" + (hex.count == 1 ? "0" + hex : hex)
            } else {
                out.append(character)
            }
        }
        return out
    }
}
