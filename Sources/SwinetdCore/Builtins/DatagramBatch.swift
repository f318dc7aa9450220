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
    /// What is sent: one message per run of replies (sendReplies), its first reply and its
    /// segment size (0: a single datagram).
    let runs: UnsafeMutablePointer<msghdr>
    let runStarts: UnsafeMutablePointer<Int>
    let segmentSizes: UnsafeMutablePointer<UInt16>

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
        runs = .allocate(capacity: n)
        runs.initialize(repeating: msghdr(), count: n)
        runStarts = .allocate(capacity: n)
        runStarts.initialize(repeating: 0, count: n)
        segmentSizes = .allocate(capacity: n)
        segmentSizes.initialize(repeating: 0, count: n)
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

    /// Sends replies 0..<count. Each run of equal-size replies to one sender goes as one UDP GSO
    /// message (`UDP_SEGMENT`): the kernel routes and builds it once and cuts it into the
    /// datagrams, which the peer receives one by one, as if sent apart. With 16 echoes in flight
    /// per client, that is most of the daemon's time per reply (BENCHMARKS.md, UDP echo).
    ///
    /// A run the kernel refuses to segment is sent datagram by datagram: EMSGSIZE/EINVAL when
    /// the segment is over the path's MTU (a large echo), EIO from a route without checksum
    /// offload or through IPsec, where `segmentation` is turned off for the service. A reply the
    /// kernel refuses (an unreachable destination) is skipped like a failed sendto; a full socket
    /// buffer drops the rest, as UDP does.
    func sendReplies(fd: Int32, count: Int, segmentation: inout Bool) {
        guard segmentation, DatagramBatch.segmentationAvailable, count > 1 else {
            _ = sendSeparately(fd: fd, from: 0, count: count)
            return
        }
        let messages = groupRuns(count: count)
        var next = 0
        while next < messages {
            let sent = Int(sw_sendmmsg(fd, runs + next, segmentSizes + next, UInt32(messages - next)))
            if sent > 0 {
                next += sent
                continue
            }
            if errno == EINTR { continue }
            if errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS { return }
            if segmentSizes[next] != 0 {
                if errno == EIO { segmentation = false }
                guard sendSeparately(fd: fd, from: runStarts[next], count: runs[next].msg_iovlen) else { return }
            }
            next += 1  // sent apart, or this single reply's own error: skip it
        }
    }

    /// Whether the kernel knows UDP_SEGMENT (Linux 4.18). Asked once.
    static let segmentationAvailable = sw_udp_segmentation_available() != 0
    /// Segments per GSO message: UDP_MAX_SEGMENTS is 64 (128 since Linux 6.x).
    static let maximumSegments = 64
    /// Bytes per GSO message: what one IPv4 datagram can carry.
    static let maximumRunBytes = 65_507

    /// Fills `runs` with one message per run of consecutive replies that share a destination and
    /// a size (the last one of a run may be shorter, as GSO allows, but not empty: an empty
    /// datagram cannot be a segment); returns how many.
    private func groupRuns(count: Int) -> Int {
        var messages = 0
        var slot = 0
        while slot < count {
            let size = sendVectors[slot].iov_len
            var end = slot + 1
            if size > 0 {
                var bytes = size
                while end < count, end - slot < DatagramBatch.maximumSegments,
                    sendVectors[end].iov_len > 0, sendVectors[end].iov_len <= size, bytes + sendVectors[end].iov_len <= DatagramBatch.maximumRunBytes,
                    sameDestination(replies[slot], replies[end])
                {
                    bytes += sendVectors[end].iov_len
                    end += 1
                    if sendVectors[end - 1].iov_len < size { break }  // a shorter one ends the run
                }
            }
            var message = replies[slot]
            message.msg_iovlen = end - slot
            runs[messages] = message
            runStarts[messages] = slot
            segmentSizes[messages] = end - slot > 1 ? UInt16(size) : 0
            messages += 1
            slot = end
        }
        return messages
    }

    private func sameDestination(_ a: msghdr, _ b: msghdr) -> Bool {
        a.msg_namelen == b.msg_namelen && memcmp(a.msg_name, b.msg_name, Int(a.msg_namelen)) == 0
    }

    /// Sends replies first..<first+count one datagram each; false when the socket buffer is full.
    private func sendSeparately(fd: Int32, from first: Int, count: Int) -> Bool {
        var next = first
        let end = first + count
        while next < end {
            let sent = Int(sw_sendmmsg(fd, replies + next, nil, UInt32(end - next)))
            if sent > 0 {
                next += sent
                continue
            }
            if errno == EINTR { continue }
            if errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS { return false }
            next += 1  // this reply's own error: skip it
        }
        return true
    }
}
