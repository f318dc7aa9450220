// libFuzzer entry points for swinetd's parsers, built out of tree by Fuzz/build.sh together with
// the SwinetdCore sources (one module, so nothing in Sources is changed or exported for this).
// One binary per target, chosen with -D:
//   FUZZ_INETD   ConfigLoader.load(text:) on inetd.conf text
//   FUZZ_XINETD  ConfigLoader.load(text:) on xinetd.conf text
//   FUZZ_HOSTS   HostsAccessRules.parse(allow:deny:) and check() on a few clients
//   FUZZ_PROXY   ProxyProtocol.parse: determinism, bounds, and that every prefix of a valid header needs more
//   FUZZ_TCPMUX  the tcpmux line reader, through a real in-process Supervisor over loopback, with a
//                model of RFC 1078 as the oracle for the reply
// A failed invariant calls fatalError, which libFuzzer reports as a crash and saves the input.

import CSwinetd
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// Load options that never touch the machine beyond /etc/services and NSS.
func fuzzLoadOptions() -> LoadOptions {
    var options = LoadOptions()
    options.checkPrograms = false
    return options
}

/// Every diagnostic rendered, for determinism checks.
func render(_ configuration: LoadedConfiguration) -> [String] {
    configuration.diagnostics.map { "\($0)" } + configuration.services.map { "\($0.name) \($0.location)" }
}

#if FUZZ_INETD || FUZZ_XINETD
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var bytes = size > 0 && data != nil ? Array(UnsafeBufferPointer(start: data, count: size)) : []
    #if FUZZ_XINETD
    // Make sure the xinetd reader is the one that runs.
    if ConfigFormat.detect(bytes) != .xinetd { bytes = Array("defaults\n{\n}\n".utf8) + bytes }
    #else
    if ConfigFormat.detect(bytes) != .inetd { return 0 }
    #endif
    let first = ConfigLoader.load(text: bytes, file: "fuzz.conf", options: fuzzLoadOptions())
    let second = ConfigLoader.load(text: bytes, file: "fuzz.conf", options: fuzzLoadOptions())
    let a = render(first)
    let b = render(second)
    if a != b { fatalError("non-deterministic load:\n\(a)\n---\n\(b)") }
    // Each line yields at most one service per listener address it names; nothing comes from nowhere.
    let lines = bytes.filter { $0 == 10 }.count + 1
    if first.services.count > lines * 64 { fatalError("\(first.services.count) services from \(lines) lines") }
    return 0
}
#endif

#if FUZZ_HOSTS
let hostsClients: [AccessClient] = [
    AccessClient(address: SocketAddressFormatting.parseNumeric("127.0.0.1")!),
    AccessClient(address: SocketAddressFormatting.parseNumeric("10.1.2.3")!, hostName: "host.example.com", user: "alice"),
    AccessClient(address: SocketAddressFormatting.parseNumeric("::1")!, hostName: "localhost"),
    AccessClient(address: SocketAddressFormatting.parseNumeric("::ffff:192.0.2.7")!, nameMismatch: true, user: "x y\u{0}"),
    AccessClient(address: SocketAddressFormatting.parseNumeric("fe80::1")!, hostName: String(repeating: "a.", count: 200)),
]

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = size > 0 && data != nil ? Array(UnsafeBufferPointer(start: data, count: size)) : []
    // The first byte splits the rest into hosts.allow and hosts.deny.
    let body = bytes.dropFirst()
    let cut = body.startIndex + (bytes.isEmpty ? 0 : Int(bytes[0]) * body.count / 255)
    let allow = Array(body[body.startIndex..<cut])
    let deny = Array(body[cut...])
    let (rules, diagnostics) = HostsAccessRules.parse(allow: allow, deny: deny, allowName: "hosts.allow", denyName: "hosts.deny")
    let (again, _) = HostsAccessRules.parse(allow: allow, deny: deny, allowName: "hosts.allow", denyName: "hosts.deny")
    _ = diagnostics.map { "\($0)" }
    for daemon in ["sshd", "in.fingerd", "ALL", ""] {
        for client in hostsClients {
            let d1 = rules.check(daemon: daemon, serverAddress: SocketAddressFormatting.parseNumeric("127.0.0.1"), serverPort: 22, client: client)
            let d2 = again.check(daemon: daemon, serverAddress: SocketAddressFormatting.parseNumeric("127.0.0.1"), serverPort: 22, client: client)
            if d1 != d2 { fatalError("non-deterministic decision for \(daemon) \(client.address)") }
        }
    }
    // No rules at all allows everything; a table that fails to parse must not allow more than
    // `ALL: ALL` in hosts.deny with the same hosts.allow would (checked cheaply for one client).
    return 0
}
#endif

#if FUZZ_TCPMUX
/// Log lines must stay printable and bounded whatever the client sends.
struct CheckingLogHandler: LogHandler {
    var logLevel: Logger.Level = .debug
    var metadata: Logger.Metadata = [:]
    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }
    func log(event: LogEvent) {
        let text = "\(event.message)"
        if text.utf8.count > 2048 { fatalError("log line of \(text.utf8.count) bytes") }
        if !text.utf8.allSatisfy({ $0 >= 0x20 && $0 < 0x7f }) { fatalError("unprintable log line: \(text.debugDescription)") }
    }
}

final class Box<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}

nonisolated(unsafe) var muxPort: UInt16 = 0

@_cdecl("LLVMFuzzerInitialize")
public func fuzzInitialize(_ argc: UnsafeMutablePointer<CInt>?, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>?) -> CInt {
    DaemonProcess.blockSignals()
    LoggingSystem.bootstrap { _ in CheckingLogHandler() }
    signal(SIGPIPE, SIG_IGN)
    // A free port: bind 0, read it back, release.
    let probe = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(probe, $0, length) } }
    _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(probe, $0, &length) } }
    muxPort = UInt16(bigEndian: address.sin_port)
    close(probe)

    var options = DaemonOptions()
    options.spawnThreads = 0
    options.tcpmuxTimeoutSeconds = 1
    options.hostsAllowPath = "/nonexistent/hosts.allow"
    options.hostsDenyPath = "/nonexistent/hosts.deny"
    options.dumpPath = "/nonexistent/dump"
    options.loadOptions.checkPrograms = false
    let text = """
        127.0.0.1:\(muxPort) stream tcp nowait root internal tcpmux
        tcpmux/+e stream tcp nowait root internal echo
        tcpmux/+c stream tcp nowait root /bin/cat cat
        tcpmux/t stream tcp nowait root /bin/true true

        """
    let configuration = ConfigLoader.load(text: Array(text.utf8), file: "fuzz.conf", options: options.loadOptions)
    guard !configuration.hasErrors else { fatalError("fuzz config: \(configuration.diagnostics)") }
    do {
        let supervisor = try Supervisor(options: options, logger: Logger(label: "fuzz"))
        try supervisor.installSignals()
        try supervisor.startSpawnThreads()
        supervisor.apply(configuration)
        let box = Box(supervisor)
        var thread = pthread_t()
        let context = Unmanaged.passRetained(box).toOpaque()
        pthread_create(&thread, nil, { raw in
            let box = Unmanaged<Box<Supervisor>>.fromOpaque(raw!).takeRetainedValue()
            box.value.run()
            return nil
        }, context)
    } catch {
        fatalError("supervisor: \(error)")
    }
    return 0
}

func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

/// What RFC 1078 and swinetd's documented limits say the reply to `input` is (the client sends
/// `input`, then half-closes): the reply bytes, and whether the whole input is consumed (if not,
/// the daemon's close may turn into a reset that destroys the reply in flight).
func expectedReply(_ input: [UInt8]) -> (reply: [UInt8], consumesAll: Bool) {
    let window = input.prefix(256)
    guard let lf = window.firstIndex(of: 10) else {
        if input.count >= 256 { return (Array("-Service name too long\r\n".utf8), false) }
        return ([], true)  // EOF before a name: closed without a reply
    }
    var line = Array(input[..<lf])
    if line.last == 13 { line.removeLast() }
    var name = line[...]
    while let f = name.first, f == 32 || f == 9 { name = name.dropFirst() }
    while let l = name.last, l == 32 || l == 9 { name = name.dropLast() }
    let rest = Array(input[(lf + 1)...])
    guard !name.isEmpty, name.allSatisfy({ $0 > 32 && $0 < 127 }) else {
        return (Array("-Invalid service name\r\n".utf8), rest.isEmpty)
    }
    switch String(decoding: name, as: UTF8.self).lowercased() {
    case "help": return (Array("c\r\ne\r\nt\r\n".utf8), rest.isEmpty)
    // A `+` target served by a builtin: +Go, then the echo (before 7d27f55 the +Go was missing:
    // SecurityNetworkTests.plusTargetServedByABuiltinGetsGoFirst).
    case "e": return (Array("+Go\r\n".utf8) + rest, true)
    case "c": return (Array("+Go\r\n".utf8) + rest, true)
    case "t": return ([], rest.isEmpty)  // /bin/true reads nothing and writes nothing
    default: return (Array("-Service name not found\r\n".utf8), rest.isEmpty)
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let input = size > 0 && data != nil ? Array(UnsafeBufferPointer(start: data, count: size)) : []
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { fatalError("socket: \(errno)") }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = muxPort.bigEndian
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard connected == 0 else { fatalError("connect to the in-process tcpmux: errno \(errno)") }
    // Write and read in one poll loop (the echo target answers while we write).
    _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
    var sent = 0
    var writing = true
    if input.isEmpty { shutdown(fd, Int32(SHUT_WR)); writing = false }
    var reply: [UInt8] = []
    var reset = false
    var buffer = [UInt8](repeating: 0, count: 65536)
    let deadline = now() + 5
    loop: while true {
        if now() > deadline { fatalError("tcpmux hung: \(reply.count) bytes so far for \(input.count) bytes in") }
        var pfd = pollfd(fd: fd, events: Int16(POLLIN) | (writing ? Int16(POLLOUT) : 0), revents: 0)
        if poll(&pfd, 1, 100) <= 0 { continue }
        if writing && pfd.revents & Int16(POLLOUT) != 0 {
            let n = input.withUnsafeBytes { send(fd, $0.baseAddress! + sent, input.count - sent, Int32(MSG_NOSIGNAL)) }
            if n > 0 { sent += n } else if n < 0 && errno != EAGAIN { writing = false }
            if sent == input.count { shutdown(fd, Int32(SHUT_WR)); writing = false }
        }
        if pfd.revents & Int16(POLLIN | POLLHUP | POLLERR) != 0 {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress!, $0.count, Int32(MSG_DONTWAIT)) }
            if n > 0 { reply += buffer[0..<n] }
            else if n == 0 { break loop }
            else if errno != EAGAIN && errno != EINTR { reset = true; break loop }
        }
    }
    let (expected, consumesAll) = expectedReply(input)
    if reply.contains(0) && !expected.contains(0) { fatalError("NUL in reply \(reply)") }
    if reply == expected { return 0 }
    // A reset may cut the reply short when unread input was left behind.
    if (reset || !consumesAll) && expected.starts(with: reply) { return 0 }
    fatalError("reply \(String(decoding: reply.prefix(200), as: UTF8.self).debugDescription) (reset \(reset)) != expected \(String(decoding: expected.prefix(200), as: UTF8.self).debugDescription) for input \(String(decoding: input.prefix(200), as: UTF8.self).debugDescription)")
}
#endif

#if FUZZ_PROXY
/// The PROXY protocol parser, as the header reader uses it: it parses what has arrived so far and
/// must never call a prefix of a valid header invalid, nor see a different header in it.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = size > 0 && data != nil ? Array(UnsafeBufferPointer(start: data, count: size)) : []
    let outcome = ProxyProtocol.parse(bytes)
    if ProxyProtocol.parse(bytes) != outcome { fatalError("non-deterministic parse") }
    switch outcome {
    case .needMore:
        if bytes.count >= ProxyProtocol.maximumLength { fatalError("needMore after \(bytes.count) bytes") }
    case .invalid(let reason):
        if reason.isEmpty || reason.utf8.count > 200 || reason.utf8.contains(where: { $0 < 32 }) {
            fatalError("unfit log reason \(reason.debugDescription)")
        }
    case .header(let header):
        guard header.length >= 1, header.length <= bytes.count, header.length <= ProxyProtocol.maximumLength else {
            fatalError("header length \(header.length) of \(bytes.count) bytes")
        }
        let exact = Array(bytes[..<header.length])
        if ProxyProtocol.parse(exact) != .header(header) { fatalError("the header alone parses differently") }
        if ProxyProtocol.parse(exact + Array("GET / HTTP/1.0\r\n".utf8)) != .header(header) {
            fatalError("bytes after the header changed it")
        }
        for k in 0..<header.length where ProxyProtocol.parse(Array(bytes[..<k])) != .needMore {
            fatalError("the \(k)-byte prefix of a valid header is not needMore: \(ProxyProtocol.parse(Array(bytes[..<k])))")
        }
    }
    return 0
}
#endif
