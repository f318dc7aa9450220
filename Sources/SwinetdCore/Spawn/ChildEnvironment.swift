#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The variables one connection adds to its child's environment (UCSPI's, xinetd's REMOTE_HOST,
/// TLS facts), as `NAME=value` entries each ending in a NUL, in one byte array: one allocation per
/// connection instead of a String and a strdup per variable (Benchmarks/callgrind.sh). A value
/// type, so it crosses to a spawn thread as is; SpawnPlan.spawn points the child's envp into it.
struct ChildEnvironment: Sendable {
    private(set) var bytes: [UInt8] = []
    /// The number of entries.
    private(set) var count = 0

    init(capacity: Int = 192) {
        bytes.reserveCapacity(capacity)
    }

    init(_ entries: [String]) {
        self.init(capacity: entries.reduce(0) { $0 + $1.utf8.count + 1 })
        for entry in entries { add(entry) }
    }

    /// A whole `NAME=value` entry. A NUL inside would end it early in the child, so one cuts the
    /// entry there (what a C string of it would have said anyway).
    mutating func add(_ entry: String) {
        append(entry)
        end()
    }

    /// `name` is the literal `NAME=`.
    mutating func add(_ name: StaticString, _ value: String) {
        append(UnsafeBufferPointer(start: name.utf8Start, count: name.utf8CodeUnitCount))
        append(value)
        end()
    }

    mutating func add<T: BinaryInteger>(_ name: StaticString, decimal value: T) {
        append(UnsafeBufferPointer(start: name.utf8Start, count: name.utf8CodeUnitCount))
        LineBuffer.with(capacity: 21) { digits in
            digits.appendDecimal(value)
            append(digits.bytes)
        }
        end()
    }

    mutating func add(contentsOf entries: [String]) {
        for entry in entries { add(entry) }
    }

    /// The entries as text (for tests and diagnostics).
    var entries: [String] {
        bytes.split(separator: 0, omittingEmptySubsequences: false).dropLast().map {
            String(decoding: $0, as: UTF8.self)
        }
    }

    /// Calls `body` with a pointer to each entry, in order, valid only inside `body`.
    func withEntryPointers<R>(_ body: (UnsafeBufferPointer<UnsafeMutablePointer<CChar>>) -> R) -> R {
        bytes.withUnsafeBufferPointer { raw in
            withUnsafeTemporaryAllocation(of: UnsafeMutablePointer<CChar>.self, capacity: max(count, 1)) { pointers in
                guard let base = raw.baseAddress else { return body(UnsafeBufferPointer(start: pointers.baseAddress, count: 0)) }
                // The child only reads these (execve copies them); `mutating:` is what envp's C type asks.
                let text = UnsafeMutableRawPointer(mutating: base).assumingMemoryBound(to: CChar.self)
                var start = 0
                var index = 0
                for offset in 0..<raw.count where raw[offset] == 0 {
                    pointers[index] = text + start
                    index += 1
                    start = offset + 1
                }
                return body(UnsafeBufferPointer(start: pointers.baseAddress, count: index))
            }
        }
    }

    /// The bytes of `text` up to any NUL in it, copied in one piece.
    private mutating func append(_ text: String) {
        let done: Void? = text.utf8.withContiguousStorageIfAvailable { append($0) }
        if done == nil {
            var copy = text
            copy.withUTF8 { append($0) }
        }
    }

    private mutating func append(_ text: UnsafeBufferPointer<UInt8>) {
        guard let base = text.baseAddress, !text.isEmpty else { return }
        let length = memchr(base, 0, text.count).map { UnsafeRawPointer($0) - UnsafeRawPointer(base) } ?? text.count
        bytes.append(contentsOf: UnsafeBufferPointer(start: base, count: length))
    }

    private mutating func end() {
        bytes.append(0)
        count += 1
    }
}
