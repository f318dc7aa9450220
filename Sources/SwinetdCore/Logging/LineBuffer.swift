/// One log line assembled in place, in a buffer that lives only for the call (on the stack when
/// small). The START and EXIT lines run for every connection; built as Strings and interpolations
/// they were about 40 % of swinetd's own instructions per connection (Benchmarks/callgrind.sh).
/// Appends past the end are cut off: a line never overflows its buffer.
struct LineBuffer {
    private let base: UnsafeMutablePointer<UInt8>
    let capacity: Int
    private(set) var count = 0

    private init(base: UnsafeMutablePointer<UInt8>, capacity: Int) {
        self.base = base
        self.capacity = capacity
    }

    /// Runs `body` with an empty line that holds up to `capacity` bytes.
    static func with<R>(capacity: Int, _ body: (inout LineBuffer) throws -> R) rethrows -> R {
        try withUnsafeTemporaryAllocation(of: UInt8.self, capacity: max(capacity, 1)) { buffer in
            var line = LineBuffer(base: buffer.baseAddress!, capacity: buffer.count)
            return try body(&line)
        }
    }

    /// The bytes so far; valid only inside `with`.
    var bytes: UnsafeBufferPointer<UInt8> { UnsafeBufferPointer(start: base, count: count) }

    /// The bytes so far as a String (for the forms that need one).
    var string: String { String(decoding: bytes, as: UTF8.self) }

    /// Room left for at least `reserve` more bytes; the caller of `with` sizes the line so that
    /// its final newline or NUL always fits.
    func hasRoom(_ reserve: Int) -> Bool { capacity - count >= reserve }

    /// Gives back the last byte (to make room for a line's end).
    mutating func dropLast() {
        if count > 0 { count -= 1 }
    }

    mutating func append(_ byte: UInt8) {
        guard count < capacity else { return }
        base[count] = byte
        count += 1
    }

    mutating func append(_ bytes: UnsafeBufferPointer<UInt8>) {
        let n = min(bytes.count, capacity - count)
        guard n > 0 else { return }
        (base + count).update(from: bytes.baseAddress!, count: n)
        count += n
    }

    mutating func append(_ text: StaticString) {
        append(UnsafeBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
    }

    mutating func append(_ bytes: [UInt8]) {
        bytes.withUnsafeBufferPointer { append($0) }
    }

    mutating func append(_ text: String) {
        let done: Void? = text.utf8.withContiguousStorageIfAvailable { append($0) }
        if done == nil { for byte in text.utf8 { append(byte) } }
    }

    /// A decimal integer, written directly (no String, no formatting machinery).
    /// Written whole or not at all: a cut number would be a wrong one.
    mutating func appendDecimal<T: BinaryInteger>(_ value: T) {
        let magnitude = UInt64(value.magnitude)
        var width = 1
        var rest = magnitude
        while rest >= 10 {
            rest /= 10
            width += 1
        }
        guard capacity - count >= width + (value < 0 ? 1 : 0) else { return }
        if value < 0 { append(UInt8(ascii: "-")) }
        rest = magnitude
        for index in stride(from: count + width - 1, through: count, by: -1) {
            base[index] = UInt8(ascii: "0") + UInt8(rest % 10)
            rest /= 10
        }
        count += width
    }

    /// Milliseconds as seconds with up to three decimals and no trailing zeros, but at least one:
    /// `1.5`, `2.0`, `0.002` — the text Swift gives the Double `ms / 1000` (LineBufferTests).
    mutating func appendSeconds(milliseconds: Int) {
        appendDecimal(milliseconds / 1000)
        append(UInt8(ascii: "."))
        var fraction = milliseconds % 1000
        var digits = 3
        while digits > 1, fraction % 10 == 0 {
            fraction /= 10
            digits -= 1
        }
        var divisor = 1
        for _ in 1..<digits { divisor *= 10 }
        while divisor > 0 {
            append(UInt8(ascii: "0") + UInt8(fraction / divisor % 10))
            divisor /= 10
        }
    }

    /// Appends exactly `width` bytes that `fill` writes, or nothing when they do not fit.
    mutating func append(width: Int, _ fill: (UnsafeMutablePointer<UInt8>) -> Void) {
        guard capacity - count >= width else { return }
        fill(base + count)
        count += width
    }

    /// Calls `body` with the line as a C string (a NUL appended; the line must have room for it).
    mutating func withCString<R>(_ body: (UnsafePointer<CChar>) throws -> R) rethrows -> R {
        if count == capacity { count -= 1 }
        base[count] = 0
        return try base.withMemoryRebound(to: CChar.self, capacity: count + 1) { try body($0) }
    }
}
