import Foundation

/// Where a run stands, read from its `metrics.jsonl` and whether its coordinator still lives:
/// what `rlaif status` prints. A run killed with `kill -9` leaves no event saying so, so
/// liveness comes from the coordinator's process, not from the log.
public struct RunStatus: Sendable, Equatable {
    public enum State: Sendable, Equatable {
        case running(pid: Int)
        case finished
        /// Stopped by Ctrl-C or SIGTERM, which log it.
        case interrupted
        /// The coordinator is gone without a word (killed, crashed, or failed).
        case stopped(pid: Int?)
    }

    public var state: State
    public var phase = "starting"
    public var lastMetrics: RunEvent.StepMetrics?
    /// Workers that joined and were not lost since (meaningful while running).
    public var live: [String] = []
    public var lost: [String] = []
    public var jobs: [String: Int] = [:]
    public var steps = 0
    public var fullRings = 0
    public var synchronized = 0
    /// Weights broadcasts down chains of rollout workers, and the links they were sent to.
    public var broadcasts = 0
    public var broadcastLinks = 0
    /// Labels received from workers, answers asked again, and labels taken from the journal.
    public var labels = 0
    public var labelRetries = 0
    public var labelsFromJournal = 0
    /// The labeling batch under way when the log ends (nil when none is).
    public var openLabelBatch: LabelBatch?
    /// The labeler budget's last reported use (nil: the run has none, or nothing was granted yet).
    public var labelerBudget: BudgetUse?

    /// Requests and tokens granted in the budget's last window, and its limits (nil: unset).
    public struct BudgetUse: Sendable, Equatable {
        public var requests: Int
        public var tokens: Int
        public var requestLimit: Int?
        public var tokenLimit: Int?

        /// In words, e.g. "38 of 60 requests, 9120 tokens in its last window".
        public var line: String {
            let r = requestLimit.map { "\(requests) of \($0) requests" } ?? "\(requests) requests"
            let t = tokenLimit.map { "\(tokens) of \($0) tokens" } ?? "\(tokens) tokens"
            return "\(r), \(t) in its last window"
        }
    }

    /// Questions sent to the labeler in one phase, and how many labels the journal held then.
    public struct LabelBatch: Sendable, Equatable {
        public var phase: String
        public var questions: Int
        public var journaledBefore: Int

        /// Questions not yet answered, given the journal's size now (`LabelJournal.recordedCount`).
        public func inFlight(journaledNow: Int) -> Int {
            max(0, questions - max(0, journaledNow - journaledBefore))
        }
    }

    /// `coordinatorPID`: from coordinator.json; `isAlive` says whether such a process runs.
    public init(events: [RunEvent], coordinatorPID: Int?, isAlive: (Int) -> Bool) {
        var live = Set<String>(), lost = Set<String>(), ended: State?
        state = .stopped(pid: coordinatorPID)
        for event in events {
            switch event {
            case .runStarted, .resumed:
                ended = nil
                openLabelBatch = nil
            case .phase(let p): phase = p
            case .metrics(let m): lastMetrics = m
            case .step(_, let participants, _, _):
                steps += 1
                if Set(participants) == live { fullRings += 1 }
            case .workerJoined(let worker, _, _, _, _, _):
                live.insert(worker)
                lost.remove(worker)
            case .workerLost(let worker, _):
                lost.insert(worker)
                live.remove(worker)
            case .job(_, _, let worker, _, _): jobs[worker, default: 0] += 1
            case .synchronized: synchronized += 1
            case .broadcast(_, _, let chain):
                broadcasts += 1
                broadcastLinks += chain.count
            case .labels(_, let valid, let ambiguous, let invalid, let retries):
                openLabelBatch = nil
                labels += valid + ambiguous + invalid
                labelRetries += retries
            case .labelsFromJournal(_, let count): labelsFromJournal += count
            case .ratings: openLabelBatch = nil
            case .labelsRequested(let phase, let questions, let journaled):
                openLabelBatch = LabelBatch(phase: phase, questions: questions, journaledBefore: journaled)
            case .labelerBudget(let requests, let tokens, let requestLimit, let tokenLimit):
                labelerBudget = BudgetUse(
                    requests: requests, tokens: tokens, requestLimit: requestLimit, tokenLimit: tokenLimit)
            case .runFinished: ended = .finished
            case .interrupted: ended = .interrupted
            default: break
            }
        }
        self.live = live.sorted()
        self.lost = lost.sorted()
        if let ended {
            state = ended
        } else if let pid = coordinatorPID, isAlive(pid) {
            state = .running(pid: pid)
        }
    }

    /// The state in words, with what to do next.
    public func stateLine(runDirectory: String) -> String {
        switch state {
        case .running(let pid): "running (coordinator pid \(pid))"
        case .finished: "finished"
        case .interrupted: "interrupted: `rlaif resume \(runDirectory)` continues it"
        case .stopped(let pid):
            "stopped without finishing (coordinator \(pid.map { "pid \($0) " } ?? "")gone): "
                + "`rlaif resume \(runDirectory)` continues it"
        }
    }

    /// True when a process `pid` is an `rlaif` (not another process that reused the number).
    public static func isRlaifProcess(_ pid: Int) -> Bool {
        guard pid > 0, let cmdline = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return false }
        let program = cmdline.split(separator: 0).first.map { String(decoding: $0, as: UTF8.self) } ?? ""
        return URL(fileURLWithPath: program).lastPathComponent == "rlaif"
    }
}
