import Protocol
import Testing

@testable import Coordinator
@testable import RLAIF

/// Drives a `SchedulerState` at explicit instants, playing the workers' side by hand: what each
/// worker was told, and the messages it answers with. No sockets, no processes, no clock.
struct SchedulerHarness {
    var state: SchedulerState
    var now = ContinuousClock.now
    /// Every directive so far, in order.
    private(set) var log: [SchedulerState.Directive] = []
    /// Workers by id: their peer identity and the replica version they hold.
    private(set) var peers: [UInt32: PeerID] = [:]
    var replicaVersion: [UInt32: UInt64] = [:]

    static let timing = SchedulerState.Timing(
        lease: .seconds(60), heartbeatInterval: .milliseconds(100), heartbeatTimeout: .seconds(3),
        ringTimeout: .seconds(2), stepWait: .seconds(2))

    init(timing: SchedulerState.Timing = Self.timing) {
        state = SchedulerState(timing: timing, identity: .init(name: "test", setup: "{}"))
    }

    @discardableResult
    mutating func handle(_ event: SchedulerState.Event) -> [SchedulerState.Directive] {
        let out = state.handle(event, at: now)
        log += out
        return out
    }

    mutating func advance(_ d: Duration) { now = now + d }

    /// Registers a worker named `name`; returns its id.
    @discardableResult
    mutating func join(_ name: String, role: Wire.WorkerRole = .both) -> UInt32 {
        let peer = PeerID(Array(name.utf8))
        let out = handle(
            .message(
                .hello(
                    .init(
                        workerName: name, host: "h", pid: 1, threads: 1, incarnation: 1,
                        ringEndpoint: "tcp://\(name):1", role: role)), from: peer, key: nil))
        for case .send(.welcome(let w), _) in out {
            peers[w.workerID] = peer
            replicaVersion[w.workerID] = replicaVersion[w.workerID] ?? 0
            return w.workerID
        }
        Issue.record("no welcome for \(name)")
        return 0
    }

    /// Heartbeats from every listed worker (keeps them alive across `advance`).
    mutating func heartbeat(_ ids: [UInt32]) {
        for id in ids {
            handle(.message(.heartbeat(.init(workerID: id, sequence: 1)), from: peers[id]!, key: nil))
        }
    }

    /// Assignments sent in `directives`, by worker id.
    func assignments(in directives: [SchedulerState.Directive]) -> [(worker: UInt32, assign: Wire.Assign)] {
        directives.compactMap {
            guard case .send(.assign(let a), let peer) = $0, let id = worker(of: peer) else { return nil }
            return (id, a)
        }
    }

    func weightsRequests(in directives: [SchedulerState.Directive]) -> [UInt32] {
        directives.compactMap {
            guard case .send(.weightsRequest, let peer) = $0 else { return nil }
            return worker(of: peer)
        }
    }

    func worker(of peer: PeerID) -> UInt32? { peers.first { $0.value == peer }?.key }

    static func stepRequest(microBatches: Int = 4) -> SchedulerState.StepRequest {
        let micros = (0..<microBatches).map {
            MicroBatch(id: $0, batch: SequenceBatch(prompts: [[1]], responses: [[2]]))
        }
        return .init(
            spec: GradientSpec(objective: .sft, learningRate: 0.1, clipNorm: 1, normalizer: 1), microBatches: micros)
    }

    /// A worker's answer to its step assignment: success moves its replica one version on.
    mutating func reportStep(_ id: UInt32, _ a: Wire.Assign, succeeded: Bool = true, metrics: [String: Double] = [:]) {
        var result = Wire.Result(
            jobID: a.jobID, attempt: a.attempt, workerID: id, status: .failed, message: "ring timed out")
        if succeeded {
            replicaVersion[id] = a.step + 1
            let gradient = GradientResult(
                version: a.step + 1, fingerprint: "f\(a.step + 1)", metrics: metrics, gradientNorm: 1)
            result = .init(
                jobID: a.jobID, attempt: a.attempt, workerID: id, status: .succeeded, body: gradient.wireBody)
        } else {
            result.body = ReplicaReport(version: replicaVersion[id] ?? 0).wireBody
        }
        handle(.message(.result(result), from: peers[id]!, key: nil))
    }

    /// A snapshot source's answer: its models' weights, the policy last.
    mutating func sendSnapshot(from id: UInt32) {
        let v = replicaVersion[id] ?? 0
        for model in [Wire.Model.reward, .policy] {
            handle(.message(.weights(.init(model: model, version: v, tensors: [])), from: peers[id]!, key: nil))
        }
    }

    /// A worker's answer to a synchronize assignment.
    mutating func reportSynchronized(_ id: UInt32, _ a: Wire.Assign) {
        replicaVersion[id] = a.weightsVersion
        let report = ReplicaReport(version: a.weightsVersion, fingerprint: "s")
        handle(
            .message(
                .result(
                    .init(jobID: a.jobID, attempt: 0, workerID: id, status: .succeeded, body: report.wireBody)),
                from: peers[id]!, key: nil))
    }

    /// `n` rollout jobs that need the policy's weights.
    static func rollouts(_ n: Int) -> [SchedulerState.JobRequest] {
        (0..<n).map { _ in .init(kind: .rollout, body: [], needsWeights: true) }
    }

    /// Rollout workers r1 and r2 and a trainer t, after one committed step: asked for `rollouts`
    /// rollouts that need weights, the scheduler answers with a broadcast chain's links.
    mutating func chainOfTwoRolloutWorkers(rollouts: Int)
        -> (r1: UInt32, r2: UInt32, t: UInt32, links: [(worker: UInt32, assign: Wire.Assign)])
    {
        let r1 = join("r1", role: .rollout), r2 = join("r2", role: .rollout), t = join("t", role: .train)
        let ring = assignments(in: handle(.stepRequested(Self.stepRequest(), next: nil)))
        for a in ring { reportStep(a.worker, a.assign) }
        return (r1, r2, t, assignments(in: handle(.jobsRequested(Self.rollouts(rollouts)))))
    }

    /// Steps committed so far, with their participants.
    var committedSteps: [(version: UInt64, participants: [String])] {
        log.compactMap {
            guard case .record(.step(let v, let p, _, _)) = $0 else { return nil }
            return (v, p)
        }
    }

    var synchronizations: Int {
        log.filter { if case .record(.synchronized) = $0 { true } else { false } }.count
    }

    var stepOutcomes: [Result<GradientResult, RunError>] {
        log.compactMap {
            guard case .stepFinished(let r) = $0 else { return nil }
            return r
        }
    }
}
