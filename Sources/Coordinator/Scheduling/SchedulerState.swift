import Logging
import Protocol
import RLAIF

/// Every decision of the coordinator's side of the cluster, with no I/O: it takes events (a
/// message from a worker, a tick, a request of the run) at explicit instants and returns the
/// directives (messages to send, results for the run, lines for metrics.jsonl) that the
/// `Scheduler` actor carries out.
///
/// Gradient steps run on a ring of every live training worker at the committed version. A
/// training worker that is behind (a joiner, or one whose step failed) is brought up to date from
/// a snapshot of a current one; a step waits, for at most `Timing.stepWait`, for trainers that
/// are syncing or busy, so the ring stays whole. A worker that has finished its share of a step
/// that is not yet committed is ahead, not stale. Rollout workers (`Wire.WorkerRole.rollout`)
/// take jobs and no ring; they get the weights, without optimizer state, when jobs need them.
///
/// A batch of jobs and a step may run at once: the batch's jobs run at the version committed
/// when it was asked for, on rollout workers, while the trainers step. Where no rollout worker
/// can make them, the step waits for the batch, so the answer is the same either way.
public struct SchedulerState: Sendable {
    /// A job the run wants done by any worker.
    public struct JobRequest: Sendable {
        public var kind: Wire.JobKind
        /// The job's parameters in their binary form (`Job.wire`).
        public var body: [UInt8]
        /// Needs the replica at the current version (rollouts, scores); labeling does not.
        public var needsWeights: Bool
        public init(kind: Wire.JobKind, body: [UInt8], needsWeights: Bool) {
            self.kind = kind
            self.body = body
            self.needsWeights = needsWeights
        }
    }

    /// One optimizer step: the objective's settings and every micro-batch, in id order (each
    /// rank gets its `share`).
    public typealias StepRequest = GradientJob

    public struct Timing: Sendable {
        public var lease: Duration
        public var heartbeatInterval: Duration
        public var heartbeatTimeout: Duration
        public var ringTimeout: Duration
        /// The longest a step waits for syncing or busy workers before it starts without them.
        public var stepWait: Duration
        public init(
            lease: Duration, heartbeatInterval: Duration, heartbeatTimeout: Duration, ringTimeout: Duration,
            stepWait: Duration
        ) {
            self.lease = lease
            self.heartbeatInterval = heartbeatInterval
            self.heartbeatTimeout = heartbeatTimeout
            self.ringTimeout = ringTimeout
            self.stepWait = stepWait
        }

        public init(_ c: Deployment.CoordinatorSection) {
            self.init(
                lease: c.lease, heartbeatInterval: c.heartbeatInterval, heartbeatTimeout: c.heartbeatTimeout,
                ringTimeout: c.ringTimeout, stepWait: c.ringTimeout)
        }
    }

    /// What a welcome tells every worker.
    public struct RunIdentity: Sendable {
        public var name: String
        /// The run's settings as JSON.
        public var setup: String
        /// In a cluster with keys, the public keys every worker's ring listener admits.
        public var ringKeys: [String]
        public init(name: String, setup: String, ringKeys: [String] = []) {
            self.name = name
            self.setup = setup
            self.ringKeys = ringKeys
        }
    }

    public enum Event: Sendable {
        case message(Wire.Message, from: PeerID, key: String?)
        /// Time passed: heartbeats and leases are checked, bounded waits end.
        case tick
        case jobsRequested([JobRequest])
        /// A step at the committed version; `next`, when given, is the step the run will ask for
        /// right after this one with nothing between them (no checkpoint): it may be sent to the
        /// same ring ahead, so no rank waits for the round trip to the coordinator.
        case stepRequested(StepRequest, next: StepRequest?)
        /// The run wants every model's state at the committed version (a checkpoint, the export).
        case snapshotRequested
    }

    public enum Directive: Sendable {
        case send(Wire.Message, to: PeerID)
        case jobsFinished(Result<[Wire.Result], RunError>)
        /// One job of the batch has its result (the batch may still be running).
        case jobResult(index: Int, Wire.Result)
        case stepFinished(Result<GradientResult, RunError>)
        case snapshotReady(Result<[Wire.Weights], RunError>)
        case record(RunEvent)
        case log(Logger.Level, String)
    }

    /// Reported failures of one job, or failed rings of one step, after which the run stops.
    public static let maxFailures = 4

    struct WorkerRecord: Sendable {
        let id: WorkerID
        let peer: PeerID
        let ringEndpoint: String
        /// The public key this worker authenticated with (nil in an open cluster): its ring
        /// listener's key, which its predecessor in a ring must expect.
        let publicKey: String?
        let role: Wire.WorkerRole
        /// The replica version the worker last reported (0 at registration: every replica
        /// starts from the run seed).
        var version: UInt64 = 0
        /// The wire job ids of the assignments this worker holds, in the order it runs them (a
        /// step and the next one sent ahead; otherwise at most one).
        var assignments: [UInt64] = []
        var jobsDone = 0
    }

    /// What an assignment (by its wire job id) stands for.
    enum Work: Sendable, Equatable {
        case job(JobID, attempt: UInt32)
        /// A rank's share of the step that runs at this version.
        case step(at: UInt64)
        case snapshotSource
        case synchronize(version: UInt64)
        /// The head of a weights broadcast down a chain of rollout workers.
        case broadcastSource(version: UInt64)
    }

    struct Assignment: Sendable {
        let worker: WorkerID
        let work: Work
        let deadline: ContinuousClock.Instant
        /// When it was sent, for the job's duration in the log.
        let started: ContinuousClock.Instant
        var isJob: Bool {
            if case .job = work { return true }
            return false
        }
    }

    /// What an event may have changed. After a full dispatch every idle worker that could take
    /// a queued job holds one, so a job's success frees its worker and changes nothing else.
    enum DispatchScope {
        case nothing
        case freed(WorkerID)
        case everything
    }

    struct Batch: Sendable {
        var requests: [JobRequest]
        var ledger = JobLedger<Int>()
        var results: [Wire.Result?]
        var failures: [Int]
        /// Some job needs the replica at `pinnedVersion`: rollout workers are brought to it.
        let needsWeights: Bool
        /// The committed version when the batch was asked for: its jobs that need the weights
        /// run at this version even if steps commit meanwhile (`rl.rollout_lag`'s overlap).
        let pinnedVersion: UInt64
        init(_ requests: [JobRequest], pinnedVersion: UInt64) {
            self.requests = requests
            self.pinnedVersion = pinnedVersion
            needsWeights = requests.contains(where: \.needsWeights)
            for i in requests.indices { ledger.enqueue(JobID(UInt64(i)), i) }
            results = Array(repeating: nil, count: requests.count)
            failures = Array(repeating: 0, count: requests.count)
        }
    }

    struct Ring: Sendable {
        let epoch: UInt32
        let participants: [WorkerID]
        /// Each participant's outcome once reported (nil inside: it failed).
        var reports: [WorkerID: GradientResult?] = [:]
    }

    struct Step: Sendable {
        /// The version the step runs at (it commits `runsAt + 1`).
        let runsAt: UInt64
        let request: StepRequest
        /// Since when the step has waited for its ring (nil: from the next dispatch on).
        var waitingSince: ContinuousClock.Instant?
        var ring: Ring?
        var failedRings = 0
        /// What the last rank that failed said (for the error that ends the run).
        var lastFailure = ""
    }

    let timing: Timing
    let identity: RunIdentity
    var membership = Membership()
    var workers: [WorkerID: WorkerRecord] = [:]
    var byPeer: [PeerID: WorkerID] = [:]
    var nextWireJob: UInt64 = 1
    var assignments: [UInt64: Assignment] = [:]
    var ringEpoch: UInt32 = 0
    var batch: Batch?
    var step: Step?
    /// The step after `step`, already sent to its ring (adopted when the run asks for it).
    var lookahead: Step?
    /// What the run said comes after `step` (sent ahead once `step`'s ring is running).
    var nextRequest: StepRequest?
    /// The last snapshot read from a worker, and the messages of one being received.
    var snapshot: (version: UInt64, messages: [Wire.Weights])?
    var snapshotInbox: [Wire.Weights] = []
    var snapshotWanted = false

    /// The committed replica version: optimizer steps applied so far.
    public internal(set) var version: UInt64 = 0

    public init(timing: Timing, identity: RunIdentity) {
        self.timing = timing
        self.identity = identity
    }

    /// Continues a run from a checkpoint: its version, and the state every worker is brought to
    /// before its first job (workers register at version 0, so all are behind).
    public mutating func resume(version: UInt64, weights: [Wire.Weights]) {
        self.version = version
        snapshot = (version, weights)
    }

    public var liveWorkers: [WorkerID] { membership.alive.filter { workers[$0] != nil } }

    /// Live workers that are ranks of the steps' rings (role `train` or `both`), in id order.
    var liveTrainers: [WorkerID] { membership.alive.filter { workers[$0]?.role.trains == true } }

    func trains(_ id: WorkerID) -> Bool { workers[id]?.role.trains == true }

    /// Jobs done per worker (for the summary).
    public var jobCounts: [String: Int] {
        Dictionary(uniqueKeysWithValues: workers.values.map { ("\($0.id)", $0.jobsDone) })
    }

    /// The current batch's jobs by kind: waiting for a worker, and out with one.
    public var occupancy: [String: JobOccupancy] {
        guard let b = batch else { return [:] }
        var out: [String: JobOccupancy] = [:]
        for (id, state) in b.ledger.states {
            let kind = "\(b.requests[Int(id.rawValue)].kind)"
            switch state {
            case .queued: out[kind, default: .init()].queued += 1
            case .leased: out[kind, default: .init()].running += 1
            case .done: break
            }
        }
        return out
    }

    /// The workers a shutdown goes to.
    public var livePeers: [PeerID] { liveWorkers.compactMap { workers[$0]?.peer } }

    func isAlive(_ id: WorkerID) -> Bool {
        guard let s = membership.status(of: id) else { return false }
        return s < .down
    }

    /// Takes one event at `now`; returns what to do, in order.
    public mutating func handle(_ event: Event, at now: ContinuousClock.Instant) -> [Directive] {
        var out: [Directive] = []
        switch event {
        case .message(let message, let peer, let key):
            switch receive(message, from: peer, key: key, at: now, into: &out) {
            case .nothing: return out
            case .freed(let id):
                dispatch(freed: id, at: now, into: &out)
                return out
            case .everything: break
            }
        case .tick:
            expire(at: now, into: &out)
        case .jobsRequested(let requests):
            precondition(batch == nil, "SchedulerState: one batch at a time")
            guard !requests.isEmpty else { return [.jobsFinished(.success([]))] }
            // A worker's decoder refuses such an assignment: fail the job now, with why.
            let limit = WireLimits.default.maxBodyBytes
            if let i = requests.firstIndex(where: { $0.body.count > limit }) {
                let message =
                    "\(requests[i].kind) job \(i) is described in \(requests[i].body.count) bytes, more than the "
                    + "\(limit) a worker accepts (is a prompt or a response far longer than the model's context?)"
                return [.jobsFinished(.failure(RunError(message: message)))]
            }
            batch = Batch(requests, pinnedVersion: version)
        case .stepRequested(let request, let next):
            precondition(step == nil, "SchedulerState: one step at a time")
            if let ahead = lookahead, ahead.runsAt == version {
                step = ahead  // sent ahead: its ring is running, and may even have finished
            } else {
                step = Step(runsAt: version, request: request, waitingSince: now)
            }
            lookahead = nil
            nextRequest = next
            finishStepIfReported(into: &out)
        case .snapshotRequested:
            snapshotWanted = true
        }
        dispatch(at: now, into: &out)
        return out
    }
}
