/// Compiles `system_call_filter` and `system_call_architectures` into a classic BPF program for
/// seccomp(2), by hand: libseccomp would need its -dev package and allocates in its API, and the
/// program is small. Built once per configuration load; the child only hands it to the kernel.
///
/// The program (offsets into `struct seccomp_data`: nr at 0, arch at 4):
///
///     ld  [4]                         ; arch
///     jeq NATIVE_ARCH, +1             ; another ABI (i386 on x86_64, arm32 on aarch64): numbers
///     ret KILL_PROCESS                ;   differ there, so the filter could be bypassed: kill
///     ld  [0]                         ; nr
///     (x86_64) 0x40000000 <= nr <= 0x7fffffff → ret KILL_PROCESS   ; the x32 ABI, same arch value
///     jeq N → match  |  jge A; jgt B → match   ; one test per number or run of consecutive numbers
///     ...                             ; (in blocks of at most 200, each followed by
///     ja +1; match: ret MATCH         ;  its own `ret MATCH`: jt/jf offsets are 8 bits)
///     ret DEFAULT
///
/// Allow list: MATCH = ALLOW, DEFAULT = ERRNO(EPERM), except numbers above the highest one this
/// build knows, which get ERRNO(ENOSYS) so that libc falls back to the older call it replaces.
/// Deny list: MATCH = ERRNO(EPERM), DEFAULT = ALLOW. Only the architecture check: DEFAULT = ALLOW.
struct SeccompFilter: Hashable, Sendable {
    /// One `struct sock_filter`.
    struct Instruction: Hashable, Sendable {
        var code: UInt16
        var jt: UInt8
        var jf: UInt8
        var k: UInt32
    }

    var instructions: [Instruction]

    // <linux/filter.h>, <linux/bpf_common.h>
    static let loadWordAbsolute: UInt16 = 0x20  // BPF_LD | BPF_W | BPF_ABS
    static let jumpEqual: UInt16 = 0x15  // BPF_JMP | BPF_JEQ | BPF_K
    static let jumpGreater: UInt16 = 0x25  // BPF_JMP | BPF_JGT | BPF_K
    static let jumpGreaterOrEqual: UInt16 = 0x35  // BPF_JMP | BPF_JGE | BPF_K
    static let returnConstant: UInt16 = 0x06  // BPF_RET | BPF_K
    static let jumpAlways: UInt16 = 0x05  // BPF_JMP | BPF_JA (32-bit offset in k)
    /// Placeholder for "the offset to this block's ret MATCH", filled in when the block closes.
    private static let toMatchMarker: UInt8 = 0xFF

    // <linux/seccomp.h>
    static let killProcess: UInt32 = 0x8000_0000
    static let allow: UInt32 = 0x7FFF_0000
    static func errno(_ value: Int32) -> UInt32 { 0x0005_0000 | (UInt32(value) & 0xFFFF) }
    static let eperm: Int32 = 1  // the same on x86_64 and aarch64
    static let enosys: Int32 = 38

    /// The x32 ABI marker in the syscall number on x86_64 (__X32_SYSCALL_BIT).
    static let x32Bit: UInt32 = 0x4000_0000

    /// The calls a filter denies, or allows, as numbers on one architecture.
    enum Mode: Hashable, Sendable {
        case allowOnly(Set<Int32>)
        case deny(Set<Int32>)
        /// `system_call_architectures = native` without a filter.
        case architectureOnly
    }

    /// The calls that stay allowed whatever a deny list says: the child makes them after the filter
    /// is loaded (execve; exit and exit_group on failure).
    static let requiredAfterLoad: Set<String> = ["execve", "exit", "exit_group"]

    /// The numbers a filter resolves to on `architecture`. Unknown names were refused at load, so
    /// only calls that do not exist on this architecture are skipped here.
    static func mode(for filter: Sandbox.SystemCallFilter?, on architecture: SyscallNumbers.Architecture) -> Mode {
        guard let filter else { return .architectureOnly }
        func numbers(_ words: [String]) -> Set<Int32> {
            var names = Set<String>()
            for word in words { names.formUnion(SyscallSets.expand(word) ?? []) }
            return Set(names.compactMap { SyscallNumbers.number($0, on: architecture) })
        }
        var deniedNames = Set<String>()
        for word in filter.denied { deniedNames.formUnion(SyscallSets.expand(word) ?? []) }
        let deniedNumbers = numbers(Array(deniedNames.subtracting(requiredAfterLoad)))
        if let allowed = filter.allowed {
            let allowedNumbers = numbers(allowed + ["@default"])
            return .allowOnly(allowedNumbers.subtracting(deniedNumbers))
        }
        return .deny(deniedNumbers)
    }

    /// Builds the program for `mode` on `architecture`.
    init(mode: Mode, architecture: SyscallNumbers.Architecture) {
        let (numbers, match, fallback): (Set<Int32>, UInt32, UInt32)
        switch mode {
        case .allowOnly(let allowed): (numbers, match, fallback) = (allowed, Self.allow, Self.errno(Self.eperm))
        case .deny(let denied): (numbers, match, fallback) = (denied, Self.errno(Self.eperm), Self.allow)
        case .architectureOnly: (numbers, match, fallback) = ([], Self.allow, Self.allow)
        }
        let isAllowList = if case .allowOnly = mode { true } else { false }
        // Runs of consecutive numbers: one or two tests each instead of one per call.
        var runs: [ClosedRange<UInt32>] = []
        for number in numbers.sorted().map({ UInt32(bitPattern: $0) }) {
            if let last = runs.last, last.upperBound + 1 == number {
                runs[runs.count - 1] = last.lowerBound...number
            } else {
                runs.append(number...number)
            }
        }
        // Tests come in blocks, each ending in `ja +1; ret MATCH`, so that every forward jump to a
        // match stays within the 255 instructions a jt/jf offset can encode.
        var body: [Instruction] = []
        var block: [Instruction] = []
        func closeBlock() {
            guard !block.isEmpty else { return }
            for index in block.indices {
                // Offsets to the block's `ret MATCH`: the rest of the block, then over the `ja`.
                let toMatch = block.count - index - 1 + 1
                if block[index].jt == Self.toMatchMarker { block[index].jt = UInt8(toMatch) }
                if block[index].jf == Self.toMatchMarker { block[index].jf = UInt8(toMatch) }
            }
            body += block
            body.append(Instruction(code: Self.jumpAlways, jt: 0, jf: 0, k: 1))
            body.append(Self.ret(match))
            block = []
        }
        for run in runs {
            if block.count >= 200 { closeBlock() }
            if run.count == 1 {
                block.append(Instruction(code: Self.jumpEqual, jt: Self.toMatchMarker, jf: 0, k: run.lowerBound))
            } else {
                // nr < low: not in this run (skip the next test); nr > high: not either; else match.
                block.append(Instruction(code: Self.jumpGreaterOrEqual, jt: 0, jf: 1, k: run.lowerBound))
                block.append(Instruction(code: Self.jumpGreater, jt: 0, jf: Self.toMatchMarker, k: run.upperBound))
            }
        }
        closeBlock()
        var program: [Instruction] = [
            Self.load(offset: 4),
            Self.jump(Self.jumpEqual, architecture.auditArch, jt: 1, jf: 0),
            Self.ret(Self.killProcess),
            Self.load(offset: 0),
        ]
        if architecture == .x86_64 {
            // x32 calls: the same arch value with bit 30 set in nr. Killed like another ABI; negative
            // numbers (syscall(-1)) are not x32 and go on to the tests.
            program.append(Self.jump(Self.jumpGreaterOrEqual, Self.x32Bit, jt: 0, jf: 2))
            program.append(Self.jump(Self.jumpGreater, 0x7FFF_FFFF, jt: 1, jf: 0))
            program.append(Self.ret(Self.killProcess))
        }
        program += body
        if isAllowList {
            let highest = UInt32(SyscallNumbers.highest(on: architecture))
            program.append(Self.jump(Self.jumpGreater, highest, jt: 1, jf: 0))
            program.append(Self.ret(fallback))
            program.append(Self.ret(Self.errno(Self.enosys)))
        } else {
            program.append(Self.ret(fallback))
        }
        instructions = program
    }

    private static func load(offset: UInt32) -> Instruction {
        Instruction(code: loadWordAbsolute, jt: 0, jf: 0, k: offset)
    }

    private static func jump(_ code: UInt16, _ k: UInt32, jt: Int, jf: Int) -> Instruction {
        Instruction(code: code, jt: UInt8(jt), jf: UInt8(jf), k: k)
    }

    private static func ret(_ value: UInt32) -> Instruction {
        Instruction(code: returnConstant, jt: 0, jf: 0, k: value)
    }

    /// Runs the program as the kernel would for one call and returns the action: a BPF interpreter
    /// for exactly the instructions this builder emits, so tests can check every number.
    func evaluate(arch: UInt32, nr: Int32) -> UInt32 {
        var accumulator: UInt32 = 0
        var pc = 0
        while pc < instructions.count {
            let instruction = instructions[pc]
            switch instruction.code {
            case Self.loadWordAbsolute:
                accumulator = instruction.k == 4 ? arch : UInt32(bitPattern: nr)
                pc += 1
            case Self.jumpEqual, Self.jumpGreater, Self.jumpGreaterOrEqual:
                let taken =
                    switch instruction.code {
                    case Self.jumpEqual: accumulator == instruction.k
                    case Self.jumpGreater: accumulator > instruction.k
                    default: accumulator >= instruction.k
                    }
                pc += 1 + Int(taken ? instruction.jt : instruction.jf)
            case Self.jumpAlways:
                pc += 1 + Int(instruction.k)
            case Self.returnConstant:
                return instruction.k
            default:
                return Self.killProcess
            }
        }
        return Self.killProcess  // falling off the end is invalid; the kernel refuses such a program
    }
}
