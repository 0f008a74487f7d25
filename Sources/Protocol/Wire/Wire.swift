import Tensor

/// Every message the system exchanges, as plain values. Encoding and decoding live in
/// `Wire+Codec.swift` and are specified byte for byte in docs/PROTOCOL.md.
public enum Wire {
    /// First four bytes of every control frame.
    public static let magic: [UInt8] = Array("RLAF".utf8)

    /// Kinds 10 and 12 (`cancel` and `error` of protocol 2, which nothing sent) are retired:
    /// a frame of either is refused as an unknown kind.
    public enum Kind: UInt8, Sendable, CaseIterable {
        case hello = 1, welcome, reject, heartbeat, assign, result, weightsRequest, weights, gradientChunk
        case shutdown = 11
        case labelBudgetRequest = 13, labelBudgetGrant, labelBudgetSettle, labelAnswers
    }

    /// What a worker does: rollouts, scores and labeling (`rollout`, which keeps no optimizer
    /// state), gradient steps (`train`), or both.
    public enum WorkerRole: String, Sendable, CaseIterable {
        case both, rollout, train
        /// The role's byte in a hello.
        public var code: UInt8 {
            switch self {
            case .both: 1
            case .rollout: 2
            case .train: 3
            }
        }
        public init?(code: UInt8) {
            guard let role = Self.allCases.first(where: { $0.code == code }) else { return nil }
            self = role
        }
        /// Takes rollout, scoring, evaluation and labeling jobs.
        public var takesJobs: Bool { self != .train }
        /// Is a rank of the gradient steps' rings (and holds optimizer state).
        public var trains: Bool { self != .rollout }
    }

    /// Worker → coordinator, first message on a connection.
    public struct Hello: Sendable, Equatable {
        public var workerName: String
        public var host: String
        public var pid: UInt32
        public var threads: UInt16
        /// Random per process start: tells a restarted worker from a reconnecting one.
        public var incarnation: UInt64
        /// Where this worker's all-reduce ring listener accepts its predecessor ("" when it has none).
        public var ringEndpoint: String
        public var role: WorkerRole
        public init(
            workerName: String, host: String, pid: UInt32, threads: UInt16, incarnation: UInt64,
            ringEndpoint: String = "", role: WorkerRole = .both
        ) {
            self.ringEndpoint = ringEndpoint
            self.role = role
            self.workerName = workerName
            self.host = host
            self.pid = pid
            self.threads = threads
            self.incarnation = incarnation
        }
    }

    /// Coordinator → worker: registered.
    public struct Welcome: Sendable, Equatable {
        public var workerID: UInt32
        public var heartbeatIntervalMilliseconds: UInt32
        public var heartbeatTimeoutMilliseconds: UInt32
        public var runName: String
        /// The run's settings as JSON: what the worker builds its models and labeler from.
        public var setup: String
        /// In a cluster with keys: the Z85 public keys the worker's ring listener admits (the
        /// cluster's workers). Empty in an open cluster.
        public var ringKeys: [String]
        public init(
            workerID: UInt32, heartbeatIntervalMilliseconds: UInt32, heartbeatTimeoutMilliseconds: UInt32,
            runName: String, setup: String = "", ringKeys: [String] = []
        ) {
            self.setup = setup
            self.ringKeys = ringKeys
            self.workerID = workerID
            self.heartbeatIntervalMilliseconds = heartbeatIntervalMilliseconds
            self.heartbeatTimeoutMilliseconds = heartbeatTimeoutMilliseconds
            self.runName = runName
        }
    }

    /// Coordinator → worker: not registered, and why. Its encoding never changes across versions.
    public struct Reject: Sendable, Equatable {
        public var reason: String
        public init(reason: String) { self.reason = reason }
    }

    public struct Heartbeat: Sendable, Equatable {
        public var workerID: UInt32
        public var sequence: UInt64
        public init(workerID: UInt32, sequence: UInt64) {
            self.workerID = workerID
            self.sequence = sequence
        }
    }

    public enum JobKind: UInt8, Sendable, CaseIterable {
        case rollout = 1, labeling, gradient, evaluation
        /// Take the weight snapshot sent just before this assignment (the `weights` messages),
        /// or, with a broadcast body, the one coming down a chain of workers.
        case synchronize
        /// Send this replica's weights, without optimizer state, down a chain of workers.
        case broadcast
    }

    /// Coordinator → worker: do this job under this lease.
    public struct Assign: Sendable, Equatable {
        public var jobID: UInt64
        public var kind: JobKind
        public var step: UInt64
        /// Incremented each time the job is re-queued; results of older attempts are discarded.
        public var attempt: UInt32
        public var leaseMilliseconds: UInt32
        /// The weights the job must run with.
        public var weightsVersion: UInt64
        /// The job's parameters in the binary form its type defines (`WireBodyCodable`).
        public var body: [UInt8]
        public init(
            jobID: UInt64, kind: JobKind, step: UInt64, attempt: UInt32, leaseMilliseconds: UInt32,
            weightsVersion: UInt64, body: [UInt8] = []
        ) {
            self.body = body
            self.jobID = jobID
            self.kind = kind
            self.step = step
            self.attempt = attempt
            self.leaseMilliseconds = leaseMilliseconds
            self.weightsVersion = weightsVersion
        }
    }

    public enum JobStatus: UInt8, Sendable, CaseIterable {
        case succeeded = 1, failed
    }

    /// Worker → coordinator: the outcome of one attempt of one job.
    public struct Result: Sendable, Equatable {
        public var jobID: UInt64
        public var attempt: UInt32
        public var workerID: UInt32
        public var status: JobStatus
        /// Empty on success; on failure, a sentence for the log.
        public var message: String
        /// The job's output (on failure, the worker's replica report) in its binary form.
        public var body: [UInt8]
        public init(
            jobID: UInt64, attempt: UInt32, workerID: UInt32, status: JobStatus, message: String = "",
            body: [UInt8] = []
        ) {
            self.body = body
            self.jobID = jobID
            self.attempt = attempt
            self.workerID = workerID
            self.status = status
            self.message = message
        }
    }

    public enum Model: UInt8, Sendable, CaseIterable {
        case policy = 1, value, reward, reference
    }

    /// Worker → coordinator or peer: send me these weights.
    public struct WeightsRequest: Sendable, Equatable {
        public var workerID: UInt32
        public var model: Model
        public var version: UInt64
        public init(workerID: UInt32, model: Model, version: UInt64) {
            self.workerID = workerID
            self.model = model
            self.version = version
        }
    }

    /// A weight snapshot: the model's flat parameter buffer (one or more tensors).
    public struct Weights: Sendable, Equatable {
        public var model: Model
        public var version: UInt64
        public var tensors: [WireTensor]
        public init(model: Model, version: UInt64, tensors: [WireTensor]) {
            self.model = model
            self.version = version
            self.tensors = tensors
        }
    }

    public enum RingPhase: UInt8, Sendable, CaseIterable {
        case reduceScatter = 1, allGather
        /// A chunk of a weights broadcast down a chain of rollout workers (float32 values).
        case broadcast
    }

    /// Worker → worker in the all-reduce ring: one slice of one chunk of the flat gradient.
    public struct GradientChunk: Sendable, Equatable {
        public var step: UInt64
        /// Bumped whenever the coordinator re-forms the ring; chunks of an old ring are dropped.
        public var ringEpoch: UInt32
        public var phase: RingPhase
        public var chunkIndex: UInt32
        /// Which slice of the chunk: chunks travel in slices so that adding one overlaps sending
        /// the next.
        public var sliceIndex: UInt32
        public var fromRank: UInt16
        public var payload: ChunkPayload
        /// Set when the payload's bytes lie in the sender's shared-memory segment instead of in
        /// frames (ranks on one host); the receiving ring port reads them from there.
        public var shared: SharedSlice?
        public init(
            step: UInt64, ringEpoch: UInt32, phase: RingPhase, chunkIndex: UInt32, sliceIndex: UInt32 = 0,
            fromRank: UInt16, payload: ChunkPayload, shared: SharedSlice? = nil
        ) {
            self.shared = shared
            self.step = step
            self.ringEpoch = ringEpoch
            self.phase = phase
            self.chunkIndex = chunkIndex
            self.sliceIndex = sliceIndex
            self.fromRank = fromRank
            self.payload = payload
        }
    }

    /// What a gradient chunk carries: partial sums while reducing, final values while gathering.
    public enum ChunkPayload: Sendable, Equatable {
        /// Fixed-point partial sums (`ExactSum` units, 2^−32 by default), one int64 each.
        case units(WireWords)
        /// The same sums packed (`PackedUnits`): every element's low 32-bit word (int32), then
        /// (index, units) int64 pairs for the elements that need more than 32 bits.
        case packedUnits(low: WireWords, patches: WireWords)
        /// Fully reduced float32 values, identical on every rank.
        case values(Tensor)

        var tensors: [WireTensor] {
            switch self {
            case .units(let u): [.words(u)]
            case .packedUnits(let low, let patches): [.words(low), .words(patches)]
            case .values(let t): [.float32(t)]
            }
        }

        public static func == (a: ChunkPayload, b: ChunkPayload) -> Bool {
            switch (a, b) {
            case (.units(let x), .units(let y)): x == y
            case (.packedUnits(let x, let p), .packedUnits(let y, let q)): x == y && p == q
            case (.values(let x), .values(let y)): WireTensor.float32(x) == .float32(y)
            default: false
            }
        }
    }

    public struct Shutdown: Sendable, Equatable {
        public var reason: String
        public init(reason: String) { self.reason = reason }
    }

    public enum Message: Sendable, Equatable {
        case hello(Hello)
        case welcome(Welcome)
        case reject(Reject)
        case heartbeat(Heartbeat)
        case assign(Assign)
        case result(Result)
        case weightsRequest(WeightsRequest)
        case weights(Weights)
        case gradientChunk(GradientChunk)
        case shutdown(Shutdown)
        case labelBudgetRequest(LabelBudgetRequest)
        case labelBudgetGrant(LabelBudgetGrant)
        case labelBudgetSettle(LabelBudgetSettle)
        case labelAnswers(LabelAnswers)

        /// The tensors that travel in frames after the control frame.
        public var tensors: [WireTensor] {
            switch self {
            case .weights(let m): m.tensors
            case .gradientChunk(let m): m.payload.tensors
            case .hello, .welcome, .reject, .heartbeat, .assign, .result, .weightsRequest, .shutdown,
                .labelBudgetRequest, .labelBudgetGrant, .labelBudgetSettle, .labelAnswers:
                []
            }
        }

        public var kind: Kind {
            switch self {
            case .hello: .hello
            case .welcome: .welcome
            case .reject: .reject
            case .heartbeat: .heartbeat
            case .assign: .assign
            case .result: .result
            case .weightsRequest: .weightsRequest
            case .weights: .weights
            case .gradientChunk: .gradientChunk
            case .shutdown: .shutdown
            case .labelBudgetRequest: .labelBudgetRequest
            case .labelBudgetGrant: .labelBudgetGrant
            case .labelBudgetSettle: .labelBudgetSettle
            case .labelAnswers: .labelAnswers
            }
        }
    }
}
