import Tensor

@testable import Protocol

/// One example of every message kind, with tensors where the kind carries them.
enum WireFixtures {
    static let floats = WireTensor.float32(Tensor(shape: [2, 3], scalars: [1, -2, 3.5, .infinity, -0.0, 6]))
    static let ids = WireTensor.int32(TokenTensor(shape: [4], ids: [0, -1, 50_256, .max]))
    static let empty = WireTensor.float32(Tensor(zeros: [0, 5]))
    static let units = WireTensor.int64([0, -1, .max, .min, 1 << 40])
    static let reduced = Tensor(shape: [6], scalars: [1, -2, 3.5, .infinity, -0.0, 6])

    static let all: [Wire.Message] = [
        .hello(
            .init(
                workerName: "w-1 ünïcode", host: "node-7", pid: 4242, threads: 2, incarnation: .max,
                ringEndpoint: "tcp://10.0.0.7:41000", role: .rollout)
        ),
        .welcome(
            .init(
                workerID: 3, heartbeatIntervalMilliseconds: 500, heartbeatTimeoutMilliseconds: 5000, runName: "exp",
                setup: #"{"seed":1}"#,
                ringKeys: ["rbRNXEXsr59S]YYeAt-gQgj4>7y7@.luris=BT&f", "ünïcode"])),
        .reject(.init(reason: "unauthorized")),
        .heartbeat(.init(workerID: 3, sequence: 99)),
        .assign(
            .init(
                jobID: 1 << 40, kind: .rollout, step: 12, attempt: 2, leaseMilliseconds: 30_000, weightsVersion: 7,
                body: [1, 2, 3, 0, 255])),
        .assign(
            .init(jobID: 2, kind: .synchronize, step: 0, attempt: 0, leaseMilliseconds: 1, weightsVersion: 0)),
        .result(
            .init(
                jobID: 5, attempt: 1, workerID: 3, status: .succeeded, body: Array(repeating: 7, count: 70_000))),
        .result(.init(jobID: 6, attempt: 0, workerID: 4, status: .failed, message: "out of memory")),
        .weightsRequest(.init(workerID: 9, model: .reward, version: 3)),
        .weights(.init(model: .policy, version: 11, tensors: [floats])),
        .gradientChunk(
            .init(
                step: 4, ringEpoch: 2, phase: .allGather, chunkIndex: 1, sliceIndex: 7, fromRank: 3,
                payload: .values(reduced))),
        .gradientChunk(
            .init(
                step: 6, ringEpoch: 9, phase: .broadcast, chunkIndex: 2, fromRank: 0, payload: .values(reduced))),
        .gradientChunk(
            .init(
                step: 5, ringEpoch: 2, phase: .reduceScatter, chunkIndex: 0, fromRank: 1,
                payload: .units(WireWords([0, -1, .max, .min, 1 << 40] as [Int64])))),
        .gradientChunk(
            .init(
                step: 5, ringEpoch: 2, phase: .reduceScatter, chunkIndex: 1, sliceIndex: 2, fromRank: 1,
                payload: .packedUnits(
                    low: WireWords([3, -4, 0, .min] as [Int32]),
                    patches: WireWords([1, 1 << 40, 3, -(1 << 35)] as [Int64])))),
        .shutdown(.init(reason: "run finished")),
        .labelBudgetRequest(.init(workerID: 2, ticket: 1 << 40, tokens: 5_000)),
        .labelBudgetGrant(.init(ticket: 9, status: .granted, grantID: 77, queuedMilliseconds: 1_500)),
        .labelBudgetGrant(.init(ticket: 10, status: .refused, message: "larger than the budget")),
        .labelBudgetSettle(.init(workerID: 2, grantID: 77, tokens: 812)),
        .labelAnswers(.init(workerID: 3, keys: ["a1", "b2"], bodies: [[1, 2, 3], []])),
    ]

    /// The frames a socket would carry for `message`.
    static func frames(_ message: Wire.Message, version: ProtocolVersion = .current) -> [ZMQFrame] {
        let e = Wire.encode(message, version: version)
        return [ZMQFrame(e.control)]
            + e.tensors.map { t in
                switch t {
                case .float32(let x): ZMQFrame(x.scalars.withUnsafeBytes { Array($0) })
                case .int32(let x): ZMQFrame(x.ids.withUnsafeBytes { Array($0) })
                case .int64(let x): ZMQFrame(x.withUnsafeBytes { Array($0) })
                case .words(let w) where w.dtype == .int32: ZMQFrame(w.withInt32s { Array(UnsafeRawBufferPointer($0)) })
                case .words(let w): ZMQFrame(w.withInt64s { Array(UnsafeRawBufferPointer($0)) })
                }
            }
    }
}
