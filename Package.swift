// swift-tools-version:6.1
import PackageDescription

// Numeric loops (dequantisation, kernels) run 10–100× slower unoptimised; the test suite runs
// real models, so these targets are optimised in debug builds too.
let optimizedEvenInDebug: [SwiftSetting] = [.unsafeFlags(["-O"], .when(configuration: .debug))]
// The engine's kernels target Haswell-level x86-64 (x86-64-v3: AVX2, FMA, F16C; every x86 server since 2013).
let vectorISA: [SwiftSetting] = [.unsafeFlags(["-target-cpu", "haswell"])]

let package = Package(
    name: "HydraServe",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "hydra", targets: ["hydra"]),
        .library(name: "HydraFormat", targets: ["HydraFormat"]),
        .library(name: "HydraEngine", targets: ["HydraEngine"]),
        .library(name: "HydraStore", targets: ["HydraStore"]),
        .library(name: "HydraWorker", targets: ["HydraWorker"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        // No default traits: swift-configuration support and full Foundation are not needed here.
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1", traits: []),
        // Already in Hummingbird's graph (no extra build): named for the store server's sendfile channel.
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.0"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.34.1"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0", traits: []),
        // Already in Hummingbird's graph: the tests shut a store server down gracefully with it.
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.0.0"),
    ],
    targets: [
        // C libraries, each behind a system-library target (DESIGN.md §8).
        .systemLibrary(name: "CURing", pkgConfig: "liburing", providers: [.apt(["liburing-dev"])]),
        .systemLibrary(name: "CZstd", pkgConfig: "libzstd", providers: [.apt(["libzstd-dev"])]),
        .systemLibrary(name: "CCurl", pkgConfig: "libcurl", providers: [.apt(["libcurl4-openssl-dev"])]),
        .systemLibrary(name: "COpenSSL", pkgConfig: "openssl", providers: [.apt(["libssl-dev"])]),
        // The one shim: only what Swift cannot call or see (macros such as O_DIRECT) or compiles
        // poorly (eight-lane min/max for the engine).
        .target(name: "CHydraShims", linkerSettings: [.linkedLibrary("curl")]),
        // XXH3 from libxxhash-dev's header, inlined and built for AVX2 (the engine's baseline too).
        .target(name: "CXXH3", cSettings: [.unsafeFlags(["-mavx2", "-O3"])]),

        .target(
            name: "HydraSystem",
            dependencies: ["CURing", "CZstd", "CCurl", "COpenSSL", "CXXH3", "CHydraShims", .product(name: "Logging", package: "swift-log")]
        ),
        .target(name: "HydraFormat", dependencies: ["HydraSystem"], swiftSettings: optimizedEvenInDebug),
        .target(name: "HydraEngine", dependencies: ["HydraFormat", "CHydraShims"], swiftSettings: optimizedEvenInDebug + vectorISA),
        .target(
            name: "HydraStore",
            dependencies: [
                "HydraFormat",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                // TLS for the store server (swift-nio-ssl; clients use libcurl's OpenSSL).
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                // The sendfile channel: NIO's HTTP/1 parts carry file regions, HTTP types' do not.
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "NIOHTTPTypesHTTP1", package: "swift-nio-extras"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
            ]
        ),
        // Cold-start workers: stage runners fed by the node cache, linked into pipelines.
        .target(
            name: "HydraWorker",
            dependencies: ["HydraEngine", "HydraStore", .product(name: "Hummingbird", package: "hummingbird")],
            swiftSettings: optimizedEvenInDebug
        ),
        // The control plane: planner, controller, endpoint, cluster backends.
        .target(name: "HydraControl", dependencies: ["HydraWorker", .product(name: "Hummingbird", package: "hummingbird")]),
        .executableTarget(
            name: "hydra",
            dependencies: [
                "HydraFormat",
                "HydraEngine",
                "HydraStore",
                "HydraSystem",
                "HydraWorker",
                "HydraControl",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),

        .testTarget(name: "HydraSystemTests", dependencies: ["HydraSystem"]),
        .testTarget(name: "HydraFormatTests", dependencies: ["HydraFormat"]),
        .testTarget(name: "HydraEngineTests", dependencies: ["HydraEngine"]),
        // Test helpers shared by the test targets: a served store, a flaky relay, off-pool waits.
        .target(
            name: "HydraTestSupport",
            dependencies: [
                "HydraStore", .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Tests/HydraTestSupport"
        ),
        .testTarget(name: "HydraStoreTests", dependencies: ["HydraStore", "HydraTestSupport"]),
        .testTarget(name: "HydraWorkerTests", dependencies: ["HydraWorker", "HydraTestSupport"]),
        .testTarget(name: "HydraControlTests", dependencies: ["HydraControl", "HydraFormat"]),
        // Runs the built `hydra` binary; depends on it so `swift test` builds it first.
        // Scripts/: Python helpers the tests run by path (#filePath), not resources.
        .testTarget(name: "HydraCLITests", dependencies: ["hydra", "HydraWorker", "HydraControl", "HydraTestSupport"], exclude: ["Scripts"]),
    ]
)
