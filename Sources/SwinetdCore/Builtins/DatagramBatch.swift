import CSwinetd

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Buffers for receiving and answering up to `capacity` datagrams with one recvmmsg and one
/// sendmmsg (Builtins/DatagramBuiltin.swift). One set, shared by every UDP builtin: the reactor
/// serves one socket at a time. Made on first use.
///
/// Each slot holds a whole datagram (64 KiB), so 32 slots reserve 2 MiB of address space; only
/// the pages datagrams touch become resident (one page per slot for small datagrams).
final class DatagramBatch {
    static let capacity = 32
    static let slotSize = 65536

    /// Reactor thread only.
    nonisolated(unsafe) static var shared: DatagramBatch = DatagramBatch()

    let buffers: UnsafeMutableRawPointer
    let addresses: UnsafeMutablePointer<sockaddr_storage>
    let receiveVectors: UnsafeMutablePointer<iovec>
    let received: UnsafeMutablePointer<msghdr>
    let lengths: UnsafeMutablePointer<UInt32>
    let sendVectors: UnsafeMutablePointer<iovec>
    let replies: UnsafeMutablePointer<msghdr>

    private init() {
        let n = DatagramBatch.capacity
        buffers = UnsafeMutableRawPointer.allocate(byteCount: n * DatagramBatch.slotSize, alignment: 4096)
        // Zeroed raw memory rather than sockaddr_storage(): its imported initializer would tie
        // this file to CSwinetd's copy of the declaration (MemberImportVisibility).
        let raw = UnsafeMutableRawPointer.allocate(
            byteCount: n * MemoryLayout<sockaddr_storage>.stride, alignment: MemoryLayout<sockaddr_storage>.alignment)
        memset(raw, 0, n * MemoryLayout<sockaddr_storage>.stride)
        addresses = raw.bindMemory(to: sockaddr_storage.self, capacity: n)
        receiveVectors = .allocate(capacity: n)
        sendVectors = .allocate(capacity: n)
        sendVectors.initialize(repeating: iovec(), count: n)
        received = .allocate(capacity: n)
        received.initialize(repeating: msghdr(), count: n)
        lengths = .allocate(capacity: n)
        lengths.initialize(repeating: 0, count: n)
        replies = .allocate(capacity: n)
        replies.initialize(repeating: msghdr(), count: n)
        for i in 0..<n {
            receiveVectors[i] = iovec(iov_base: buffers + i * DatagramBatch.slotSize, iov_len: DatagramBatch.slotSize)
        }
    }

    /// Receives up to `count` datagrams without blocking: how many, or -1 (errno set).
    func receive(fd: Int32, count: Int) -> Int {
        for i in 0..<count {
            var header = msghdr()
            header.msg_name = UnsafeMutableRawPointer(addresses + i)
            header.msg_namelen = socklen_t(MemoryLayout<sockaddr_storage>.size)
            header.msg_iov = receiveVectors + i
            header.msg_iovlen = 1
            received[i] = header
        }
        return Int(sw_recvmmsg(fd, received, lengths, UInt32(count)))
    }

    func payload(_ i: Int) -> UnsafeMutableRawPointer { buffers + i * DatagramBatch.slotSize }
    func length(_ i: Int) -> Int { Int(lengths[i]) }
    func sender(_ i: Int) -> UnsafePointer<sockaddr> {
        UnsafeRawPointer(addresses + i).assumingMemoryBound(to: sockaddr.self)
    }

    /// Queues reply number `slot` to the sender of datagram `i`.
    func setReply(_ slot: Int, to i: Int, bytes: UnsafeRawPointer, count: Int) {
        sendVectors[slot] = iovec(iov_base: UnsafeMutableRawPointer(mutating: bytes), iov_len: count)
        var header = msghdr()
        header.msg_name = UnsafeMutableRawPointer(addresses + i)
        header.msg_namelen = received[i].msg_namelen
        header.msg_iov = sendVectors + slot
        header.msg_iovlen = 1
        replies[slot] = header
    }

    /// Sends replies 0..<count. A reply the kernel refuses (an unreachable destination) is skipped
    /// like a failed sendto; a full socket buffer drops the rest, as UDP does.
    func sendReplies(fd: Int32, count: Int) {
        var next = 0
        while next < count {
            let sent = Int(sw_sendmmsg(fd, replies + next, UInt32(count - next)))
            if sent > 0 {
                next += sent
                continue
            }
            if errno == EINTR { continue }
            if errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS { return }
            next += 1  // this reply's own error: skip it
        }
    }
}
