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
        guard let text = try? String(contentsOf: metrics, encoding: .utf8) else {
            throw ValidationError("\(metrics.path) cannot be read: is \(runDir) a run directory?")
        }
        var phase = "starting", lastMetrics: [String: Any]?, joined = Set<String>(), lost = Set<String>()
        var jobs: [String: Int] = [:]
        var steps = 0
        for line in text.split(separator: "\n") {
            guard let o = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else { continue }
            switch o["event"] as? String {
            case "phase": phase = o["phase"] as? String ?? phase
            case "metrics": lastMetrics = o
            case "step": steps += 1
            case "worker_joined": joined.insert(o["worker"] as? String ?? "?")
            case "worker_lost": lost.insert(o["worker"] as? String ?? "?")
            case "job": jobs[o["worker"] as? String ?? "?", default: 0] += 1
            default: break
            }
        }
        print("run:       \(dir.path)")
        print("phase:     \(phase)")
        print("steps:     \(steps)")
        print("workers:   \(joined.subtracting(lost).sorted().joined(separator: " ")) up; \(lost.sorted().joined(separator: " ")) lost")
        print("jobs:      " + jobs.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "))
        if let m = lastMetrics {
            let shown = m.filter { !["event", "checksum"].contains($0.key) }.sorted { $0.key < $1.key }
            print("last step: " + shown.map { "\($0.key)=\($0.value)" }.joined(separator: " "))
        }
        let summaryURL = dir.appendingPathComponent("summary.json")
        if let summary = try? RunSummary.read(from: summaryURL) { print(summary.table) }
    }
}
