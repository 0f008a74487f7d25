import Foundation
import Testing

@testable import RLAIF

/// metrics.jsonl's schema: every event encodes to one JSON line and reads back as itself.
@Suite struct RunEventTests {
    static let all: [RunEvent] = [
        .runStarted(name: "r", seed: "18446744073709551615", coordinator: "tcp://127.0.0.1:5555"),
        .resumed(phase: "rl", done: 3, version: 40),
        .phase("sft"),
        .workerJoined(worker: "w1", name: "local-0", host: "h", pid: 7, ring: "ipc://x", key: nil),
        .workerJoined(worker: "w2", name: "alice", host: "h", pid: 8, ring: "tcp://10.0.0.2:4000", key: "k"),
        .workerLost(worker: "w1", reason: "no heartbeat for 3000 ms"),
        .job(job: 12, kind: "rollout", worker: "w2", attempt: 1, seconds: 0.25),
        .jobFailed(kind: "labeling", worker: "w1", reason: "lease passed"),
        .step(version: 5, participants: ["w1", "w2"], epoch: 6, fingerprint: "00ff"),
        .stepRetry(version: 5, epoch: 7),
        .snapshot(version: 5, from: "w1", purpose: .checkpoint),
        .synchronized(worker: "w3", version: 5),
        .broadcast(version: 5, from: "w1", chain: ["w3", "w4"]),
        .metrics(
            .init(phase: "rl", version: 9, gradientNorm: 0.5, fingerprint: "ab", values: ["loss": -1.25, "kl": 0])),
        .checkpoint(directory: "ckpt-000001", phase: "sft", done: 6, version: 6),
        .labels(phase: "labeling", valid: 10, ambiguous: 2, invalid: 1, retries: 4),
        .rewardModelAccuracy(labeler: 0.75, groundTruth: nil, heldOut: 12),
        .ratings(failed: 1, rated: 64),
        .labelsFromJournal(phase: "labeling", count: 448),
        .labelsRequested(phase: "labeling", questions: 64, journaled: 448),
        .labelerBudget(requests: 38, tokens: 9_120, requestLimit: 60, tokenLimit: nil),
        .labelerBudget(requests: 2, tokens: 300, requestLimit: nil, tokenLimit: 100_000),
        .labelerAudit(
            phase: "labeling", pairsPerSecond: 120, audit: .init(orderAgreement: 0.75, firstPosition: 0.625),
            alignment: .init(debiased: 0.875, singleOrder: nil)),
        .evaluation(
            .init(
                iteration: 10, prompts: 2, winRate: .init(labeler: 0.5, groundTruth: 1), kl: 0.25,
                responseLength: .init(sft: 3, policy: 4), groundTruthQuality: .init(sft: nil, policy: nil),
                examples: [.init(prompt: "p", policy: "a\nb", sft: "c", preference: nil)])),
        .runFinished(jobsPerWorker: ["w1": 3, "w2": 4]),
        .interrupted,
    ]

    @Test func everyEvent_roundTripsThroughOneJSONLine() throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        for event in Self.all {
            let line = try encoder.encode(RunEventLine(event, time: 1.5))
            #expect(!line.contains(UInt8(ascii: "\n")))
            let back = try JSONDecoder().decode(RunEventLine.self, from: line)
            #expect(back == RunEventLine(event, time: 1.5), "\(String(decoding: line, as: UTF8.self))")
        }
    }

    @Test func stepLinesOfEarlierRuns_readWithTheirChecksum_andUnknownKindsAreRefused() throws {
        let old = #"{"checksum":"71ab","epoch":198,"event":"step","participants":["w1","w2"],"t":4.3,"version":198}"#
        let line = try JSONDecoder().decode(RunEventLine.self, from: Data(old.utf8))
        #expect(line.event == .step(version: 198, participants: ["w1", "w2"], epoch: 198, fingerprint: "71ab"))
        #expect(throws: DecodingError.self) {
            try JSONDecoder().decode(RunEventLine.self, from: Data(#"{"event":"party","t":1}"#.utf8))
        }
    }

    // MARK: rlaif status

    /// A run whose coordinator was killed (no event says so) reads as stopped, with what to do;
    /// one whose coordinator lives reads as running; the lost list is never an empty word.
    @Test func status_tellsARunningRunFromOneWhoseCoordinatorIsGone() throws {
        let events: [RunEvent] = [
            .runStarted(name: "r", seed: "1", coordinator: "tcp://127.0.0.1:1"), .phase("sft"),
            .workerJoined(worker: "w1", name: "a", host: "h", pid: 7, ring: "ipc://a", key: nil),
            .workerJoined(worker: "w2", name: "b", host: "h", pid: 8, ring: "ipc://b", key: nil),
            .step(version: 1, participants: ["w1", "w2"], epoch: 1, fingerprint: "f"),
            .workerLost(worker: "w1", reason: "no heartbeat"),
            .step(version: 2, participants: ["w2"], epoch: 2, fingerprint: "g"), .phase("rl"),
        ]
        let killed = RunStatus(events: events, coordinatorPID: 4242, isAlive: { _ in false })
        #expect(killed.state == .stopped(pid: 4242) && killed.phase == "rl")
        #expect(killed.stateLine(runDirectory: "runs/x").contains("`rlaif resume runs/x`"))
        #expect(killed.live == ["w2"] && killed.lost == ["w1"] && killed.steps == 2 && killed.fullRings == 2)
        let running = RunStatus(events: events, coordinatorPID: 4242, isAlive: { $0 == 4242 })
        #expect(running.state == .running(pid: 4242))
        #expect(
            RunStatus(events: events + [.interrupted], coordinatorPID: 1, isAlive: { _ in true }).state == .interrupted)
        // A resumed run is running again, whatever ended the one before.
        let resumed = events + [.interrupted, .resumed(phase: "rl", done: 1, version: 2)]
        #expect(RunStatus(events: resumed, coordinatorPID: 9, isAlive: { _ in true }).state == .running(pid: 9))
        #expect(
            RunStatus(events: events + [.runFinished(jobsPerWorker: [:])], coordinatorPID: nil, isAlive: { _ in true })
                .state == .finished)
        // This test's own process is not an rlaif; a pid no process has is not either.
        #expect(!RunStatus.isRlaifProcess(Int(ProcessInfo.processInfo.processIdentifier)))
        #expect(!RunStatus.isRlaifProcess(Int(Int32.max)))
    }

    @Test func status_countsBroadcasts_andTheWorkersTheyReached() {
        let status = RunStatus(
            events: [
                .broadcast(version: 5, from: "w1", chain: ["w3", "w4"]), .synchronized(worker: "w3", version: 5),
                .synchronized(worker: "w4", version: 5), .broadcast(version: 9, from: "w1", chain: ["w4"]),
            ], coordinatorPID: nil, isAlive: { _ in false })
        #expect(status.broadcasts == 2 && status.broadcastLinks == 3 && status.synchronized == 2)
    }

    @Test func status_countsLabels_retries_andThoseFromTheJournal() {
        let status = RunStatus(
            events: [
                .labelsFromJournal(phase: "labeling", count: 40),
                .labels(phase: "labeling", valid: 50, ambiguous: 10, invalid: 4, retries: 6),
                .labels(phase: "eval-label", valid: 8, ambiguous: 0, invalid: 0, retries: 1),
            ], coordinatorPID: nil, isAlive: { _ in false })
        #expect(status.labels == 72 && status.labelRetries == 7 && status.labelsFromJournal == 40)
        #expect(status.openLabelBatch == nil)
    }

    /// Questions asked and not yet journaled are in flight until the phase's labels are logged.
    @Test func status_countsLabelsInFlight_fromTheJournalSinceTheRequest() {
        let asked: [RunEvent] = [
            .labels(phase: "labeling", valid: 50, ambiguous: 0, invalid: 0, retries: 0),
            .labelsRequested(phase: "eval-label", questions: 30, journaled: 50),
        ]
        let open = RunStatus(events: asked, coordinatorPID: nil, isAlive: { _ in false }).openLabelBatch
        #expect(open == .init(phase: "eval-label", questions: 30, journaledBefore: 50))
        #expect(open?.inFlight(journaledNow: 50) == 30 && open?.inFlight(journaledNow: 62) == 18)
        #expect(open?.inFlight(journaledNow: 200) == 0)
        let done = asked + [.labels(phase: "eval-label", valid: 30, ambiguous: 0, invalid: 0, retries: 0)]
        #expect(RunStatus(events: done, coordinatorPID: nil, isAlive: { _ in false }).openLabelBatch == nil)
        let rated = asked + [.ratings(failed: 0, rated: 30)]
        #expect(RunStatus(events: rated, coordinatorPID: nil, isAlive: { _ in false }).openLabelBatch == nil)
    }

    /// The budget's last reported use, in words.
    @Test func status_showsTheLabelerBudgetsLastUse() {
        let none = RunStatus(events: [.phase("labeling")], coordinatorPID: nil, isAlive: { _ in false })
        #expect(none.labelerBudget == nil)
        let used = RunStatus(
            events: [
                .labelerBudget(requests: 10, tokens: 100, requestLimit: 60, tokenLimit: nil),
                .labelerBudget(requests: 38, tokens: 9_120, requestLimit: 60, tokenLimit: nil),
            ], coordinatorPID: nil, isAlive: { _ in false })
        #expect(used.labelerBudget?.line == "38 of 60 requests, 9120 tokens in its last window")
    }
}
