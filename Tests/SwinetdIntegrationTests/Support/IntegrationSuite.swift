import Testing

/// The parent of every integration suite. Each test file extends it with a nested suite, so that
/// `.serialized` (a recursive trait) makes the whole integration run one test at a time: the tests
/// start real daemons, count processes and measure timing on a small machine, and must not
/// compete with each other for CPU, ports or the loopback counters.
@Suite("swinetd integration (real binary, real sockets)", .serialized, .timeLimit(.minutes(2)))
struct Integration {}
