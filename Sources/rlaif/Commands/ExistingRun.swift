import Coordinator
import RLAIF
import Foundation

/// What `rlaif launch` finds in its run directory, and what it does about it: a requeued job
/// (Slurm, Kubernetes) launches again on the same directory and must continue, never start over
/// on top of a run's files, and never continue a different run.
enum ExistingRun {
    /// The files a run writes, removed by `--fresh` (nothing else in the directory is touched).
    static let runFiles = [
        "checkpoints", "metrics.jsonl", "summary.json", "preferences.jsonl", "evaluation.jsonl", "models",
        ClusterRun.settingsFile, ClusterRun.keysFile, "coordinator.json", "tensorboard", "report.html",
        LabelJournal.fileName,
    ]

    enum Plan {
        /// Start from the beginning, or continue from the checkpoint.
        case run(from: Checkpoint?)
        /// The directory holds this run, finished: nothing to do.
        case finished(summary: URL)
    }

    /// What to do in `directory`, after checking that it holds this configuration's run, or
    /// none; with `fresh`, a previous run's files are removed first.
    static func prepare(_ directory: URL, config: ClusterConfig, fresh: Bool, quiet: Bool) throws -> Plan {
        let fm = FileManager.default
        if fresh {
            for name in runFiles { try? fm.removeItem(at: directory.appendingPathComponent(name)) }
            return .run(from: nil)
        }
        let store = CheckpointStore(runDirectory: directory, keep: 1)
        let checkpoint = store.newest(report: { FileHandle.standardError.write(Data("rlaif: \($0)\n".utf8)) })
        let recorded =
            checkpoint?.settings
            ?? (try? String(contentsOf: directory.appendingPathComponent(ClusterRun.settingsFile), encoding: .utf8))
        guard let recorded else {
            guard !fm.fileExists(atPath: directory.appendingPathComponent("metrics.jsonl").path) else {
                throw CommandFailure(
                    "\(directory.path) holds a run's files but not its settings: pass --fresh to start over there")
            }
            return .run(from: nil)
        }
        if let key = config.firstSettingDifference(fromRecorded: recorded) {
            throw CommandFailure(
                "\(directory.path) holds a run with other settings (\(key) differs): pass --fresh to start over "
                    + "there (its files are replaced), or give another --run-dir")
        }
        let summary = directory.appendingPathComponent("summary.json")
        let events = (try? RunEventLine.read(directory.appendingPathComponent("metrics.jsonl")))?.map(\.event) ?? []
        if fm.fileExists(atPath: summary.path),
            RunStatus(events: events, coordinatorPID: nil, isAlive: { _ in false })
                .state == .finished
        {
            return .finished(summary: summary)
        }
        if !quiet {
            if let checkpoint {
                print(
                    "rlaif: continuing the run in \(directory.path) at \(checkpoint.cursor.phase) "
                        + "(\(checkpoint.cursor.done) done, \(checkpoint.cursor.version) optimizer steps); --fresh starts over"
                )
            } else {
                print("rlaif: \(directory.path) holds this run without a checkpoint; starting it over")
            }
        }
        if checkpoint == nil { try? fm.removeItem(at: directory.appendingPathComponent("metrics.jsonl")) }
        return .run(from: checkpoint)
    }
}
