// swift-tools-version:6.0
import PackageDescription

let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

let package = Package(
    name: "swinetd",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "swinetd", targets: ["swinetd"]),
        .library(name: "SwinetdCore", targets: ["SwinetdCore"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        // TLS termination (docs/TLS.md): NIOSSL's handler driven inside an EmbeddedChannel by the
        // reactor; no NIO event loop runs in the daemon.
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
    ],
    targets: [
        // The only C: what runs between fork and exec, plus syscalls Glibc does not export.
        .target(name: "CSwinetd"),
        .target(
            name: "SwinetdCore",
            dependencies: [
                "CSwinetd",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                // TLSUserEvent (handshake completed); NIOSSL links it anyway.
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "swinetd",
            dependencies: [
                "SwinetdCore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strict
        ),
        // Test helper: run by swinetd as a service, reports what the child process received.
        .executableTarget(name: "swinetd-probe"),
        .testTarget(
            name: "SwinetdCoreTests",
            dependencies: ["SwinetdCore"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "SwinetdIntegrationTests",
            dependencies: ["SwinetdCore"],
            swiftSettings: strict
        ),
    ],
    swiftLanguageModes: [.v6]
)
