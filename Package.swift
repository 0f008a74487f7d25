// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "rlaif",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "rlaif", targets: ["rlaif"]),
        .executable(name: "rlaif-bench", targets: ["rlaif-bench"]),
        .library(name: "Tensor", targets: ["Tensor"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.0.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.0"),
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/swhitty/FlyingFox", from: "0.27.1"),
    ],
    targets: [
        // System libraries, found through pkg-config (Debian: libopenblas-dev, libzmq3-dev).
        .systemLibrary(
            name: "COpenBLAS", pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev", "pkg-config"])]),
        .systemLibrary(
            name: "CZeroMQ", pkgConfig: "libzmq",
            providers: [.apt(["libzmq3-dev", "pkg-config"])]),

        .systemLibrary(name: "CMalloc"),
        // stdio's buffering mode, for the CLI.
        .systemLibrary(name: "CStdio"),
        // C for what Swift cannot say portably: AVX-512/AVX2 kernels chosen at run time (a few rows
        // times a matrix packed once, for decode steps; activations; AdamW; fixed-point sums) and the spin-wait hint.
        .target(name: "CKernels"),
        // The ring's same-host path: sealed memfd segments and seqlock words (C11 atomics).
        .target(name: "CSharedMemory"),

        // Tensor imports nothing of ours.
        .target(name: "Tensor", dependencies: ["COpenBLAS", "CMalloc", "CKernels"]),
        // Models: the transformers rlaif trains and samples (GPT-2), their checkpoints and tokenizers.
        .target(name: "Models", dependencies: ["Tensor"]),
        // Protocol imports at most Tensor.
        .target(
            name: "Protocol",
            dependencies: ["Tensor", "CZeroMQ", "CSharedMemory", .product(name: "Logging", package: "swift-log")]),
        // RLAIF: the method — synthetic task, labelers, objectives, replicas, job specs, and the
        // pipeline that runs them on any `TrainingCluster` (checkpoints, metrics.jsonl). No sockets.
        .target(
            name: "RLAIF",
            dependencies: [
                "Models", "Tensor", "Protocol", .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]),
        // Worker and Coordinator meet only through Protocol (and the job specs of RLAIF).
        .target(
            name: "Worker",
            dependencies: ["RLAIF", "Models", "Protocol", "Tensor", .product(name: "Logging", package: "swift-log")]),
        .target(
            name: "Coordinator",
            dependencies: [
                "RLAIF", "Protocol", "Tensor", "Models", .product(name: "Yams", package: "Yams"),
                .product(name: "Logging", package: "swift-log"), .product(name: "Crypto", package: "swift-crypto"),
            ]),
        // Telemetry: what watches a run — TensorBoard event files, Prometheus /metrics, report.html.
        .target(
            name: "Telemetry",
            dependencies: [
                "Coordinator", "RLAIF", .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "FlyingFox", package: "FlyingFox"),
            ]),
        // The CLI imports all.
        .executableTarget(
            name: "rlaif",
            dependencies: [
                "Tensor", "Models", "Protocol", "Worker", "Coordinator", "RLAIF", "Telemetry", "CStdio",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]),

        // Benchmarks: a plain C reference beside the engine, run in one invocation.
        .target(name: "CSgemmReference", dependencies: ["COpenBLAS"], path: "Benchmarks/CSgemmReference"),
        .executableTarget(name: "rlaif-zmq-reference", dependencies: ["CZeroMQ"], path: "Benchmarks/rlaif-zmq-reference"),
        .executableTarget(
            name: "rlaif-bench",
            dependencies: [
                "Tensor", "Models", "Protocol", "Worker", "Coordinator", "RLAIF", "CSgemmReference",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Benchmarks/rlaif-bench"),

        .testTarget(name: "TensorTests", dependencies: ["Tensor", "CKernels", "TestSupport"]),
        .testTarget(name: "ModelsTests", dependencies: ["Models", "Tensor"], exclude: ["Fixtures"]),
        .testTarget(name: "ProtocolTests", dependencies: ["Protocol", "Tensor", "CZeroMQ"]),
        .testTarget(
            name: "WorkerTests", dependencies: ["Worker", "Protocol", "Tensor", "RLAIF", .product(name: "Logging", package: "swift-log")]),
        .testTarget(name: "CLITests", dependencies: ["Models", "Tensor"]),
        .testTarget(name: "CoordinatorTests", dependencies: ["Coordinator", "Protocol", "RLAIF", "Tensor", "TestSupport"]),
        .testTarget(name: "TelemetryTests", dependencies: ["Telemetry", "Coordinator", "RLAIF"]),
        // What several test targets start: the stand-in chat-completions server.
        .target(name: "TestSupport", path: "Tests/TestSupport"),
        .testTarget(
            name: "RLAIFTests",
            dependencies: [
                "RLAIF", "Models", "Protocol", "Tensor", "TestSupport", .product(name: "Crypto", package: "swift-crypto"),
            ]),
        // Starts the real `rlaif` binary as coordinator and workers.
        .testTarget(
            name: "ClusterTests",
            dependencies: [
                "TestSupport", "Coordinator", "RLAIF", "Telemetry", .product(name: "Logging", package: "swift-log"),
            ]),
    ],
    swiftLanguageModes: [.v6]
)
