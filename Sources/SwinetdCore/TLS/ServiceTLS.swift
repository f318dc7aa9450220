import NIOSSL

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// TLS termination for one service (docs/TLS.md): swinetd speaks TLS with the client and the
/// program sees plaintext on fds 0-2.
///
/// The files are read when the configuration is loaded (so `swinetd check` reports a bad file
/// with file:line and the service is refused), and again on every reload (SIGHUP), so new
/// connections use a renewed certificate. Equality compares the paths only.
public struct ServiceTLS: Hashable, Sendable {
    /// PEM: the server certificate, then any intermediates.
    public var certificatePath: String
    /// PEM: the private key of the first certificate.
    public var keyPath: String
    /// PEM: the CAs a client certificate must chain to; nil: no client certificate is asked for.
    public var clientCAPath: String?
    /// The server context built from the files at load; nil only in a model built by hand.
    public var context: TLSServerContext?

    public init(certificatePath: String, keyPath: String, clientCAPath: String? = nil, context: TLSServerContext? = nil) {
        self.certificatePath = certificatePath
        self.keyPath = keyPath
        self.clientCAPath = clientCAPath
        self.context = context
    }

    public static func == (lhs: ServiceTLS, rhs: ServiceTLS) -> Bool {
        lhs.certificatePath == rhs.certificatePath && lhs.keyPath == rhs.keyPath && lhs.clientCAPath == rhs.clientCAPath
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(certificatePath)
        hasher.combine(keyPath)
        hasher.combine(clientCAPath)
    }

    /// For `swinetd check`'s service table.
    public var summary: String {
        "certificate \(certificatePath), key \(keyPath)" + (clientCAPath.map { ", client certificates from \($0)" } ?? "")
    }

    /// The option names, the same in both formats (xinetd attribute, inetd.conf protocol option).
    public static let attributeNames = ["tls_certificate", "tls_key", "tls_client_ca"]
}

/// A loaded NIOSSL server context, shared by every connection of one loaded configuration.
public final class TLSServerContext: Sendable {
    let context: NIOSSLContext
    /// Whether a verified client certificate is required.
    public let verifiesClients: Bool

    init(context: NIOSSLContext, verifiesClients: Bool) {
        self.context = context
        self.verifiesClients = verifiesClients
    }
}

/// The `tls_*` values of one entry as written, before the files are read.
struct TLSSpec: Sendable {
    var certificate: String?
    var key: String?
    var clientCA: String?

    var isEmpty: Bool { certificate == nil && key == nil && clientCA == nil }

    /// Sets one option; the value is a path.
    mutating func set(_ name: String, _ value: String) {
        switch name {
        case "tls_certificate": certificate = value
        case "tls_key": key = value
        case "tls_client_ca": clientCA = value
        default: break
        }
    }

    /// One problem: its message and the option it is about (xinetd points at that attribute's line).
    struct Problem {
        var attribute: String?
        var message: String
        var isError: Bool
    }

    /// Checks where TLS may be used and reads the files. Returns the settings (nil when there is
    /// no TLS or on any error) and every problem found.
    func resolve(
        socketType: SocketType, isUnix: Bool, wait: Bool, program: ServerProgram, isTCPMuxTarget: Bool,
        isRedirect: Bool, hasBanner: Bool
    ) -> (ServiceTLS?, [Problem]) {
        guard !isEmpty else { return (nil, []) }
        var problems: [Problem] = []
        func error(_ message: String, _ attribute: String? = nil) {
            problems.append(Problem(attribute: attribute, message: message, isError: true))
        }
        let first = certificate != nil ? "tls_certificate" : key != nil ? "tls_key" : "tls_client_ca"
        if socketType != .stream || isUnix {
            error("TLS needs a TCP stream service (tcp, tcp4, tcp6 or tcp46)", first)
        }
        if wait { error("TLS needs a nowait service: swinetd must accept the connection to terminate TLS", first) }
        if isTCPMuxTarget { error("TLS cannot be used on a tcpmux service", first) }
        if isRedirect {
            error("TLS cannot be combined with redirect", first)
        } else if case .builtin = program {
            error("TLS is not available for internal services; run a program instead", first)
        }
        if hasBanner { error("banner, banner_success and banner_fail cannot be used with TLS (they would be sent in plaintext)", first) }
        if certificate == nil { error("tls_certificate is missing (TLS needs tls_certificate and tls_key)", first) }
        if key == nil { error("tls_key is missing (TLS needs tls_certificate and tls_key)", first) }
        guard let certificate, let key, !problems.contains(where: \.isError) else { return (nil, problems) }
        do throws(TLSLoadError) {
            let context = try TLSLoader.load(certificate: certificate, key: key, clientCA: clientCA)
            if let warning = TLSLoader.keyPermissionWarning(key) {
                problems.append(Problem(attribute: "tls_key", message: warning, isError: false))
            }
            let tls = ServiceTLS(certificatePath: certificate, keyPath: key, clientCAPath: clientCA, context: context)
            return (tls, problems)
        } catch {
            problems.append(Problem(attribute: error.attribute, message: error.message, isError: true))
            return (nil, problems)
        }
    }
}

/// Why the TLS files could not be used.
struct TLSLoadError: Error {
    var attribute: String
    var message: String
}

/// Reads PEM files into a NIOSSL server context.
enum TLSLoader {
    static func load(certificate: String, key: String, clientCA: String?) throws(TLSLoadError) -> TLSServerContext {
        let chain = try certificates(certificate, attribute: "tls_certificate")
        try readable(key, attribute: "tls_key")
        let privateKey: NIOSSLPrivateKey
        do {
            privateKey = try NIOSSLPrivateKey(file: key, format: .pem)
        } catch {
            throw TLSLoadError(
                attribute: "tls_key",
                message: "tls_key \(key): no usable PEM private key (an encrypted key is not supported) (\(error))")
        }
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(privateKey))
        configuration.minimumTLSVersion = .tlsv12
        if let clientCA {
            let roots = try certificates(clientCA, attribute: "tls_client_ca")
            configuration.trustRoots = .certificates(roots)
            // A client must present a certificate that chains to these roots; no host name check.
            configuration.certificateVerification = .noHostnameVerification
            configuration.sendCANameList = true
        }
        do {
            let context = try NIOSSLContext(configuration: configuration)
            return TLSServerContext(context: context, verifiesClients: clientCA != nil)
        } catch {
            throw TLSLoadError(
                attribute: "tls_key",
                message: "tls_certificate \(certificate) and tls_key \(key) cannot be used together (does the key belong to the first certificate?) (\(error))")
        }
    }

    private static func readable(_ path: String, attribute: String) throws(TLSLoadError) {
        guard path.hasPrefix("/") else {
            throw TLSLoadError(attribute: attribute, message: "\(attribute) \(path): must be an absolute path")
        }
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else {
            throw TLSLoadError(attribute: attribute, message: "\(attribute) \(path): \(errnoDescription(errno))")
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, info.st_mode & S_IFMT == S_IFREG else {
            throw TLSLoadError(attribute: attribute, message: "\(attribute) \(path): not a regular file")
        }
    }

    private static func certificates(_ path: String, attribute: String) throws(TLSLoadError) -> [NIOSSLCertificate] {
        try readable(path, attribute: attribute)
        let chain: [NIOSSLCertificate]
        do {
            chain = try NIOSSLCertificate.fromPEMFile(path)
        } catch {
            throw TLSLoadError(attribute: attribute, message: "\(attribute) \(path): not a PEM certificate file (\(error))")
        }
        guard !chain.isEmpty else {
            throw TLSLoadError(attribute: attribute, message: "\(attribute) \(path): no certificate in the file")
        }
        return chain
    }

    /// A key others can read is a warning (not an error: the file may be on its way to the right mode).
    static func keyPermissionWarning(_ path: String) -> String? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        guard info.st_mode & 0o004 != 0 else { return nil }
        return "tls_key \(path) is readable by every user (mode \(String(info.st_mode & 0o777, radix: 8))); chmod o-r it"
    }
}

// MARK: - convert

extension ServiceTLS {
    /// The options as xinetd attributes, in order.
    var attributes: [(String, String)] {
        [("tls_certificate", certificatePath), ("tls_key", keyPath)] + (clientCAPath.map { [("tls_client_ca", $0)] } ?? [])
    }

    /// The options as inetd.conf protocol options (`,tls_certificate=PATH,...`); a path with a `,`
    /// or a blank cannot be written there and is reported as lost (and then TLS is left out whole,
    /// so the result never runs the service without the certificate it asked for).
    func inetdOptions(lost: inout [String]) -> String {
        let unwritable = attributes.filter { $0.1.contains(where: { ", \t".contains($0) }) }
        guard unwritable.isEmpty else {
            lost.append("TLS (\(unwritable.map { "\($0.0) \($0.1)" }.joined(separator: ", ")): a , or blank cannot be written in inetd.conf)")
            return ""
        }
        return attributes.map { ",\($0.0)=\($0.1)" }.joined()
    }
}
