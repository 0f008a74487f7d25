import ArgumentParser
import Coordinator
import RLAIF
import Foundation

/// `rlaif status RUN_DIR`: where a run is, from its files and its coordinator's process.
struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show a run's state, phase, progress, workers and summary.")

    @Argument(help: "The run directory.")
    var runDir: String

    func run() throws {
        let dir = URL(fileURLWithPath: runDir)
        let metrics = dir.appendingPathComponent("metrics.jsonl")
        guard let lines = try? RunEventLine.read(metrics) else {
            throw CommandFailure("\(metrics.path) cannot be read: is \(runDir) a run directory?")
        }
        let info = (try? Data(contentsOf: dir.appendingPathComponent("coordinator.json")))
            .flatMap { try? JSONSerialization.jsonObject(with: $0) as? [String: Any] }
        let s = RunStatus(
            events: lines.map(\.event), coordinatorPID: info?["pid"] as? Int, isAlive: RunStatus.isRlaifProcess)
        print("run:       \(dir.path)")
        print("state:     \(s.stateLine(runDirectory: runDir))")
        print("phase:     \(s.phase)")
        print("steps:     \(s.steps), \(s.fullRings) with every live worker in the ring")
        let lost = s.lost.isEmpty ? "none lost" : s.lost.joined(separator: " ") + " lost"
        if case .running = s.state {
            print("workers:   \(s.live.isEmpty ? "none" : s.live.joined(separator: " ")) up; \(lost)")
        } else {
            print(
                "workers:   none running (\(s.live.isEmpty ? "none" : s.live.joined(separator: " ")) at the end); \(lost)"
            )
        }
        print(
            "syncs:     \(s.synchronized) workers that were behind brought up to date; "
                + "\(s.broadcasts) broadcasts from trainers to \(s.broadcastLinks) rollout workers")
        print(
            "labels:    \(s.labels) done (\(s.labelsFromJournal) of them from the label journal), "
                + "\(s.labelRetries) answers asked again")
        if let batch = s.openLabelBatch {
            let open = batch.inFlight(journaledNow: LabelJournal.recordedCount(in: dir))
            let answered = batch.questions - open
            if case .running = s.state {
                print(
                    "           \(batch.phase): \(open) in flight, \(answered) of \(batch.questions) answered and journaled"
                )
            } else {
                print(
                    "           \(batch.phase): \(answered) of \(batch.questions) answered and journaled before it stopped; "
                        + "a resume asks only for the other \(open)")
            }
        }
        if let budget = s.labelerBudget?.line { print("budget:    labeler \(budget)") }
        print("jobs:      " + s.jobs.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "))
        if let m = s.lastMetrics {
            let shown = m.values.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
            print(
                "last step: "
                    + (["phase=\(m.phase)", "version=\(m.version)", "grad_norm=\(m.gradientNorm)"] + shown).joined(
                        separator: " "))
        }
        let summaryURL = dir.appendingPathComponent("summary.json")
        if let summary = try? RunSummary.read(from: summaryURL) { print(summary.table) }
    }
}
