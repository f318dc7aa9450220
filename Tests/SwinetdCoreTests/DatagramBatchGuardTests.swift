import Glibc
import Testing

@testable import SwinetdCore

/// The batched UDP builtins check each sender straight from its socket address
/// (`refusal(sender:port:builtinPorts:)`); it must answer exactly like the IPAddress form.
@Suite struct DatagramBatchGuardTests {
    @Test func rawSenderGuardAgreesWithTheAddressGuard() {
        let addresses = [
            "127.0.0.1", "10.1.2.3", "0.0.0.0", "255.255.255.255", "224.0.0.1", "239.255.255.250", "223.255.255.255",
            "::1", "::", "ff02::1", "fe80::1", "2001:db8::5", "::ffff:127.0.0.1", "::ffff:224.0.0.1",
            "::ffff:0.0.0.0", "::ffff:255.255.255.255", "::127.0.0.1", "0:0:0:0:0:1:ffff:1",
        ]
        let ports: [UInt16] = [0, 7, 1023, 1024, 17019, 40000, 65535]
        let builtinPorts: Set<UInt16> = [17019]
        for text in addresses {
            guard let address = SocketAddressFormatting.parseNumeric(text) else {
                Issue.record("\(text) does not parse")
                continue
            }
            for port in ports {
                var storage = sockaddr_storage()
                _ = SocketAddressFormatting.fill(&storage, address: address, port: port)
                let raw = withUnsafePointer(to: &storage) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        DatagramBuiltin.refusal(sender: $0, port: port, builtinPorts: builtinPorts)
                    }
                }
                let typed = DatagramBuiltin.refusal(address: address, port: port, builtinPorts: builtinPorts)
                #expect(raw == typed, "\(text) port \(port): \(raw ?? "nil") vs \(typed ?? "nil")")
            }
        }
        var unknown = sockaddr_storage()
        unknown.ss_family = sa_family_t(AF_UNIX)
        let raw = withUnsafePointer(to: &unknown) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                DatagramBuiltin.refusal(sender: $0, port: 40000, builtinPorts: [])
            }
        }
        #expect(raw == DatagramBuiltin.refusal(address: nil, port: 40000, builtinPorts: []))
    }
}
