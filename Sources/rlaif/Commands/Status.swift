import ArgumentParser
import Coordinator
import Foundation

/// `rlaif status RUN_DIR`: where a run is, from its files.
struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show a run's phase, progress, workers and summary.")

    @Argument(help: "The run directory.")
    var runDir: String

    func run() throws {
        let dir = URL(fileURLWithPath: runDir)
        let metrics = dir.appendingPathComponent("metrics.jsonl")
        guard let lines = try? RunEventLine.read(metrics) else {
            throw ValidationError("\(metrics.path) cannot be read: is \(runDir) a run directory?")
        }
        var phase = "starting", lastMetrics: RunEvent.StepMetrics?, joined = Set<String>(), lost = Set<String>()
        var jobs: [String: Int] = [:]
        var steps = 0, synchronized = 0, fullRings = 0
        var live = Set<String>()
        for line in lines {
            switch line.event {
            case .phase(let p): phase = p
            case .metrics(let m): lastMetrics = m
            case .step(_, let participants, _, _):
                steps += 1
                if Set(participants) == live { fullRings += 1 }
            case .workerJoined(let worker, _, _, _, _, _):
                joined.insert(worker)
                live.insert(worker)
            case .workerLost(let worker, _):
                lost.insert(worker)
                live.remove(worker)
            case .job(_, _, let worker, _): jobs[worker, default: 0] += 1
            case .synchronized: synchronized += 1
            default: break
            }
        }
        print("run:       \(dir.path)")
        print("phase:     \(phase)")
        print("steps:     \(steps), \(fullRings) with every live worker in the ring")
        print(
            "workers:   \(joined.subtracting(lost).sorted().joined(separator: " ")) up; \(lost.sorted().joined(separator: " ")) lost"
        )
        print("syncs:     \(synchronized) snapshots shipped to workers that were behind")
        print("jobs:      " + jobs.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "))
        if let m = lastMetrics {
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
