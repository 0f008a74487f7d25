import Foundation
import Logging
import Protocol
import RLAIF
import Tensor

/// The coordinator's side of the cluster as an actor: it owns the endpoint, feeds every inbound
/// message and a tick every 50 ms to `SchedulerState`, and carries out the directives it returns
/// (sends, metrics lines, answers to the run). Every decision is in `SchedulerState`.
///
/// The run calls `startJobs` (a batch at a time), `gradientStep` and `currentSnapshot`, and
/// awaits them; a batch may run while steps do (see `SchedulerState`);
/// arrivals, deaths, expired leases and re-formed rings are handled here, so a phase of the run
/// never sees a failure it has to repair. What fails every time (a job rejected by every worker,
/// a step no ring can finish) ends the run with the workers' message.
public actor Scheduler {
    public typealias JobRequest = SchedulerState.JobRequest
    public typealias StepRequest = SchedulerState.StepRequest

    let endpoint: Endpoint
    let logger: Logger
    let events: EventLog
    private var state: SchedulerState
    private var jobsWaiter: CheckedContinuation<[Wire.Result], any Error>?
    /// The batch's outcome when it ended before anyone awaited it.
    private var finishedJobs: Result<[Wire.Result], any Error>?
    /// The running batch: its jobs, their outputs decoded as each result is accepted (once), and
    /// who is told of each.
    private var batchOutputs: BatchOutputs?
    private struct BatchOutputs {
        let jobs: [Job]
        let onOutput: (@Sendable (Int, JobOutput) -> Void)?
        var decoded: [Int: JobOutput] = [:]
    }
    private var stepWaiter: CheckedContinuation<GradientResult, any Error>?
    private var snapshotWaiters: [CheckedContinuation<[Wire.Weights], any Error>] = []
    private var ticker: Task<Void, Never>?
    private var reader: Task<Void, Never>?
    /// Set once the workers are gone for good: every wait ends with it.
    private var aborted: RunError?
    /// The run's labeler budget, which workers ask before each labeler request (nil: none).
    let labelBudget: LabelBudgetDesk?

    /// `ringKeys`: in a cluster with keys, the public keys every worker's ring listener admits.
    public init(
        endpoint: Endpoint, settings: RunSettings, deployment: Deployment, ringKeys: [String] = [], events: EventLog,
        logger: Logger
    ) {
        self.endpoint = endpoint
        labelBudget = settings.labeler.budget.map { limits in
            LabelBudgetDesk(limits) { requests, tokens in
                events.record(
                    .labelerBudget(
                        requests: requests, tokens: tokens, requestLimit: limits.requests, tokenLimit: limits.tokens))
            }
        }
        self.events = events
        self.logger = logger
        state = SchedulerState(
            timing: .init(deployment.coordinator),
            identity: .init(name: settings.run.name, setup: settings.json(), ringKeys: ringKeys))
    }

    /// Where labeler answers go as workers report them (the run's answer journal).
    private var answerJournal: LabelJournal?

    public func start() {
        let endpoint = self.endpoint
        reader = Task { [weak self] in
            for await inbound in endpoint.incoming {
                guard let self, let peer = inbound.peer else { continue }
                switch inbound.message {
                case .labelBudgetRequest(let r): await self.admit(r, from: peer)
                case .labelBudgetSettle(let s): await self.settle(s, from: peer)
                case .labelAnswers(let a): await self.journal(a)
                default: await self.handle(.message(inbound.message, from: peer, key: inbound.clientKey))
                }
            }
        }
        ticker = Task { [weak self] in
            while !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(50))
                await self?.handle(.tick)
            }
        }
    }

    /// Ends what the run waits for, and all it asks later, with `error` (the workers are gone
    /// for good: their `srun` step ended).
    public func abort(_ error: RunError) {
        aborted = error
        if let waiter = jobsWaiter {
            waiter.resume(throwing: error)
        } else if batchOutputs != nil {
            finishedJobs = .failure(error)
        }
        jobsWaiter = nil
        stepWaiter?.resume(throwing: error)
        stepWaiter = nil
        for waiter in snapshotWaiters { waiter.resume(throwing: error) }
        snapshotWaiters = []
    }

    /// Tells every live worker to stop, then stops listening.
    public func shutdown(reason: String) async {
        for peer in state.livePeers { endpoint.post(.shutdown(.init(reason: reason)), to: peer) }
        ticker?.cancel()
        try? await Task.sleep(for: .milliseconds(200))  // let the shutdowns leave
        reader?.cancel()
    }

    /// Continues a run from a checkpoint (see `SchedulerState.resume`).
    public func resume(version: UInt64, weights: [Wire.Weights]) {
        state.resume(version: version, weights: weights)
    }

    /// The committed replica version: optimizer steps applied so far.
    public var version: UInt64 { state.version }

    public var liveWorkerCount: Int { state.liveWorkers.count }

    /// Jobs done per worker (for the summary).
    public func jobCounts() -> [String: Int] { state.jobCounts }
    public func occupancy() -> [String: JobOccupancy] { state.occupancy }

    /// Waits until at least `count` workers have registered.
    /// `count` is asked again at each look: workers that can no longer come (a started
    /// process that exited) stop being waited for; `abandoned` ends the wait at once (false)
    /// when none can come any more.
    public func waitForWorkers(
        _ count: @Sendable () -> Int, timeout: Duration, unless abandoned: @Sendable () -> Bool = { false }
    ) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while liveWorkerCount < count() {
            if ContinuousClock.now > deadline || abandoned() { return false }
            try? await Task.sleep(for: .milliseconds(50))
        }
        return true
    }

    /// Starts every job on some live worker, pinned to the committed version; the task ends with
    /// their outputs in request order.
    public func startJobs(
        _ jobs: [Job], onOutput: (@Sendable (Int, JobOutput) -> Void)?
    ) throws -> Task<[JobOutput], any Error> {
        let requests = jobs.map { job in
            let (kind, body) = job.wire
            return JobRequest(kind: kind, body: body, needsWeights: job.needsWeights)
        }
        if let aborted { throw aborted }
        precondition(batchOutputs == nil, "Scheduler: one batch at a time")
        batchOutputs = BatchOutputs(jobs: jobs, onOutput: onOutput)
        finishedJobs = nil
        handle(.jobsRequested(requests))
        return Task { try await self.awaitJobs() }
    }

    private func awaitJobs() async throws -> [JobOutput] {
        let batch: BatchOutputs?
        let results: [Wire.Result]
        do {
            results = try await withCheckedThrowingContinuation { continuation in
                if let done = finishedJobs {
                    finishedJobs = nil
                    continuation.resume(with: done)
                } else {
                    jobsWaiter = continuation
                }
            }
            batch = batchOutputs
            batchOutputs = nil
        } catch {
            batchOutputs = nil
            throw error
        }
        return try results.indices.map { i in
            if let output = batch?.decoded[i] { return output }
            // Did not decode on arrival: decoding again gives the reason the batch fails with.
            do { return try JobOutput(of: batch!.jobs[i], body: results[i].body) } catch {
                throw RunError(message: "job \(results[i].jobID) from worker \(results[i].workerID): \(error)")
            }
        }
    }

    /// Runs one optimizer step on a ring of the current workers; its result is the same on every
    /// rank. `next`: the step the run will ask for right after this one, with no checkpoint
    /// between them; it may be sent to the ring ahead (see `SchedulerState.Event.stepRequested`),
    /// and the next call must then pass it.
    public func gradientStep(_ request: StepRequest, next: StepRequest? = nil) async throws -> GradientResult {
        if let aborted { throw aborted }
        return try await withCheckedThrowingContinuation { continuation in
            stepWaiter = continuation
            handle(.stepRequested(request, next: next))
        }
    }

    /// Every model's weights and optimizer state at the current version, read from an up-to-date
    /// worker (for a checkpoint or the export). Call between steps.
    public func journalAnswers(in journal: LabelJournal) { answerJournal = journal }

    /// A worker's labeler answers, into the run's answer journal; a body that does not read is
    /// dropped (its question is asked again after a crash, nothing worse).
    private func journal(_ answers: Wire.LabelAnswers) {
        var entries: AnswerSink.Entries = []
        for (key, body) in zip(answers.keys, answers.bodies) {
            do { entries.append((key, try LabelerAnswer(wireBody: body, field: "labelAnswers"))) } catch {
                logger.warning("dropped a labeler answer from worker \(answers.workerID): \(error)")
            }
        }
        answerJournal?.recordAnswers(entries)
    }

    public func currentSnapshot() async throws -> [Wire.Weights] {
        if let aborted { throw aborted }
        return try await withCheckedThrowingContinuation { continuation in
            snapshotWaiters.append(continuation)
            handle(.snapshotRequested)
        }
    }

    /// Answers a live worker's request for a labeler grant when the budget has room (requests
    /// wait in the order they came); from anyone else it is dropped.
    private func admit(_ request: Wire.LabelBudgetRequest, from peer: PeerID) {
        guard state.livePeers.contains(peer) else { return }
        let endpoint = self.endpoint
        guard let desk = labelBudget else {
            let refusal = "this run has no labeler budget (labeler.requests_per_minute, tokens_per_minute)"
            endpoint.post(
                .labelBudgetGrant(.init(ticket: request.ticket, status: .refused, message: refusal)), to: peer)
            return
        }
        Task {
            let asked = ContinuousClock.now
            let answer: Wire.LabelBudgetGrant
            do {
                let grant = try await desk.admit(tokens: Int(request.tokens))
                let queued = (ContinuousClock.now - asked).milliseconds
                answer = .init(
                    ticket: request.ticket, status: .granted, grantID: grant.id,
                    queuedMilliseconds: UInt32(clamping: queued))
            } catch {
                answer = .init(ticket: request.ticket, status: .refused, message: "\(error)")
            }
            endpoint.post(.labelBudgetGrant(answer), to: peer)
        }
    }

    private func settle(_ settle: Wire.LabelBudgetSettle, from peer: PeerID) async {
        guard state.livePeers.contains(peer), let desk = labelBudget else { return }
        await desk.settle(grantID: settle.grantID, tokens: Int(settle.tokens))
    }

    private func handle(_ event: SchedulerState.Event) {
        for directive in state.handle(event, at: .now) { carryOut(directive) }
    }

    private func carryOut(_ directive: SchedulerState.Directive) {
        switch directive {
        case .send(let message, let peer):
            endpoint.post(message, to: peer)
        case .record(let event):
            events.record(event)
        case .log(let level, let message):
            logger.log(level: level, "\(message)")
        case .jobResult(let index, let result):
            // Only the parts needed are read: a copy of the batch would copy `decoded` on write.
            guard let job = batchOutputs?.jobs[index], let output = try? JobOutput(of: job, body: result.body)
            else { break }
            batchOutputs?.decoded[index] = output
            batchOutputs?.onOutput?(index, output)
        case .jobsFinished(let result):
            let waiter = jobsWaiter
            jobsWaiter = nil
            if let waiter {
                waiter.resume(with: result.mapError { $0 as any Error })
            } else {
                finishedJobs = result.mapError { $0 as any Error }
            }
        case .stepFinished(let result):
            let waiter = stepWaiter
            stepWaiter = nil
            waiter?.resume(with: result.mapError { $0 as any Error })
        case .snapshotReady(let result):
            let waiters = snapshotWaiters
            snapshotWaiters = []
            for w in waiters { w.resume(with: result.mapError { $0 as any Error }) }
        }
    }
}

extension Scheduler: TrainingCluster {}
