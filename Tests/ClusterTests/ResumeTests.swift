import Coordinator
import Foundation
import RLAIF
import Testing

/// `kill -9` of the coordinator and all its workers at points in every phase, each time followed
/// by `rlaif resume`: the run ends with the uninterrupted run's weights, and metrics.jsonl holds
/// every step once.
@Suite(.serialized) struct ResumeTests {
    typealias Run = ClusterRunTests

    /// SIGKILL to a `launch`/`resume` process and the local workers it started (named local-N-PID).
    static func killCluster(_ p: Process) {
        let pid = p.processIdentifier
        kill(pid, SIGKILL)
        for child in WorkerKillTests.localWorkers(of: pid).values { kill(child, SIGKILL) }
        p.waitUntilExit()
    }

    /// A process that exists and is not a zombie waiting to be reaped.
    static func isRunning(_ pid: Int32) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return false }
        return stat[stat.index(close, offsetBy: 2)] != "Z"
    }

    /// `rlaif status` of a run killed with `kill -9`: not "up", but stopped, with what to do.
    static func expectStatusSaysStopped(_ dir: URL) throws {
        let log = dir.appendingPathComponent("status.log")
        let status = try Run.start(["status", dir.path], log: log)
        #expect(Run.wait(status, seconds: 30) && status.terminationStatus == 0)
        let text = try String(contentsOf: log, encoding: .utf8)
        #expect(text.contains("state:     stopped without finishing"), "\(text)")
        #expect(text.contains("`rlaif resume \(dir.path)`") && text.contains("none running"), "\(text)")
    }

    /// Counts of `metrics` lines per phase, and phase events seen.
    static func progress(_ dir: URL) -> (steps: [String: Int], phases: Set<String>) {
        var steps: [String: Int] = [:]
        var phases = Set<String>()
        for e in Run.events(dir) {
            if case .metrics(let m) = e { steps[m.phase, default: 0] += 1 }
            if case .phase(let p) = e { phases.insert(p) }
        }
        return (steps, phases)
    }

    @Test func killedInEveryPhase_andResumed_endsWithTheUninterruptedWeights() throws {
        let overrides = ["--set", "checkpoint.every_steps=6"]
        let reference = try Run.launch(workers: 2, extra: overrides)
        let dir = try Run.temporaryDirectory(), keys = try Run.temporaryDirectory()
        defer { for d in [dir, keys] { try? FileManager.default.removeItem(at: d) } }
        // In a cluster with keys, which every resume must keep closed.
        let (config, workerKey) = try Run.keyedQuick(in: keys)
        // Each point: the state of metrics.jsonl at which everything is killed.
        typealias Progress = (steps: [String: Int], phases: Set<String>)
        let points: [(name: String, reached: (Progress) -> Bool)] = [
            (
                "sft, after 2 steps (before the first checkpoint: the run starts over)",
                { $0.steps["sft", default: 0] >= 2 }
            ),
            ("sft, after 9 of 18 steps", { $0.steps["sft", default: 0] >= 9 }),
            ("sft, after 15 of 18 steps", { $0.steps["sft", default: 0] >= 15 }),
            ("rollout of the preference pairs", { $0.phases.contains("rollout") }),
            ("labeling", { $0.phases.contains("labeling") }),
            ("reward model, after 20 steps", { $0.steps["reward", default: 0] >= 20 }),
            ("reward model, after 45 of 52 steps", { $0.steps["reward", default: 0] >= 45 }),
            ("rl, after 5 iterations", { $0.steps["rl", default: 0] >= 5 }),
            ("rl, after 17 iterations", { $0.steps["rl", default: 0] >= 17 }),
            ("evaluation", { $0.phases.contains("evaluation") }),
        ]
        var process = try Run.start(
            ["launch", config, "--run-dir", dir.path, "--quiet"] + overrides,
            log: dir.appendingPathComponent("run-0.log"))
        for (i, point) in points.enumerated() {
            let deadline = Date().addingTimeInterval(240)
            var reached = false
            while !reached && process.isRunning && Date() < deadline {
                usleep(20_000)
                reached = point.reached(Self.progress(dir))
            }
            #expect(reached, "never reached \(point.name)")
            Self.killCluster(process)
            if i == 0 { try Self.expectStatusSaysStopped(dir) }
            process = try Run.start(
                ["resume", dir.path, "--quiet"], log: dir.appendingPathComponent("run-\(i + 1).log"))
        }
        #expect(Run.wait(process, seconds: 240), "the last resume did not finish")
        let log =
            (try? String(contentsOf: dir.appendingPathComponent("run-\(points.count).log"), encoding: .utf8)) ?? ""
        #expect(process.terminationStatus == 0, "resume failed: \(log)")
        #expect(try Run.summary(dir)["weights_checksum"] as? String == reference.checksum)
        // Every step logged once, as in the uninterrupted run.
        #expect(Self.progress(dir).steps == reference.steps)
        let resumed = Run.events(dir).filter { if case .resumed = $0 { true } else { false } }
        #expect(!resumed.isEmpty)  // a later resume cuts the log back to its checkpoint, and earlier marks with it
        // Every worker of every resume joined with the run's key: none came in the clear.
        let joined = Run.joined(Run.events(dir))
        #expect(!joined.isEmpty && joined.allSatisfy { $0.key == workerKey })
    }

    /// SIGTERM (Slurm's and Kubernetes' stop) mid-RL: the run finishes its iteration, writes a
    /// checkpoint there, stops its workers and exits 143 with its log written line by line; a
    /// requeued job's `rlaif launch` on the same directory continues it to the same weights.
    @Test func sigterm_checkpointsAndStops_andLaunchingAgainContinues() throws {
        let reference = try Run.reference()
        let dir = try Run.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let arguments = ["launch", Run.quick, "--run-dir", dir.path]
        let launch = try Run.start(arguments, log: dir.appendingPathComponent("launch.log"))
        var inRL = false
        for _ in 0..<2400 where !inRL && launch.isRunning {
            usleep(20_000)
            inRL = Self.progress(dir).steps["rl", default: 0] >= 3
        }
        #expect(inRL, "the run never reached RL")
        let workers = (0..<2).compactMap { WorkerKillTests.localWorker($0, of: launch.processIdentifier) }
        kill(launch.processIdentifier, SIGTERM)
        #expect(Run.wait(launch, seconds: 30), "SIGTERM did not stop the run")
        #expect(launch.terminationStatus == 143)
        usleep(500_000)
        #expect(workers.count == 2 && !workers.contains(where: Self.isRunning), "a local worker outlived the run")
        let text = try String(contentsOf: dir.appendingPathComponent("launch.log"), encoding: .utf8)
        #expect(text.hasPrefix("rlaif: run quick") && text.contains("stopped at a checkpoint"), "\(text)")
        // The checkpoint is of the point where the run stopped: the last step logged.
        let events = Run.events(dir)
        #expect(events.last == .interrupted)
        let lastStep = events.compactMap { if case .step(let v, _, _, _) = $0 { v } else { nil } }.last
        let newest = CheckpointStore(runDirectory: dir, keep: 3).newest { Issue.record("\($0)") }
        #expect(newest?.cursor.phase == "rl" && newest?.cursor.version == lastStep)
        let again = try Run.start(arguments + ["--quiet"], log: dir.appendingPathComponent("again.log"))
        #expect(Run.wait(again, seconds: 240) && again.terminationStatus == 0)
        #expect(try Run.summary(dir)["weights_checksum"] as? String == reference.checksum)
        // Launched once more: the run has finished, nothing runs; with other settings, refused.
        let done = try Run.start(arguments, log: dir.appendingPathComponent("done.log"))
        #expect(Run.wait(done, seconds: 60) && done.terminationStatus == 0)
        #expect(
            try String(contentsOf: dir.appendingPathComponent("done.log"), encoding: .utf8).contains("has finished"))
        let other = try Run.start(
            arguments + ["--set", "rl.iterations=5"], log: dir.appendingPathComponent("other.log"))
        #expect(Run.wait(other, seconds: 60) && other.terminationStatus == 1)
        let refusal = try String(contentsOf: dir.appendingPathComponent("other.log"), encoding: .utf8)
        #expect(refusal.contains("rl.iterations differs") && refusal.contains("--fresh"), "\(refusal)")
    }
}
