import Foundation
import Testing

/// `rlaif slurm` on a real Slurm: Debian's slurm-wlm started on this machine by
/// tools/slurm-local.sh (munge, slurmctld, slurmd; one node with this machine's CPUs), stopped
/// after. The job runs the coordinator in its batch step and a worker per task by srun.
@Suite(.serialized) struct SlurmTests {
    typealias Run = ClusterRunTests

    static let tool = Run.root.appendingPathComponent("tools/slurm-local.sh").path
    static let environment = ["SLURM_CONF": "/tmp/rlaif-slurm/slurm.conf"]

    /// Runs a Slurm command (or the tool) to its end: its output, or nil when it failed.
    @discardableResult
    static func slurm(_ arguments: [String], timeout: TimeInterval = 60) -> String? {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = arguments
        p.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out
        guard (try? p.run()) != nil else { return nil }
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        guard Run.wait(p, seconds: timeout), p.terminationStatus == 0 else {
            Issue.record("\(arguments.joined(separator: " ")) failed: \(text)")
            return nil
        }
        return text
    }

    /// Writes and submits the job script for `dir` (2 workers of 1 CPU on one node); the job id.
    static func submit(_ dir: URL, _ overrides: [String]) throws -> String {
        let out = try #require(
            slurm(
                [
                    Run.binary, "slurm", Run.quick, "--run-dir", dir.path, "--workers-per-node", "2",
                    "--cpus-per-task", "1", "--submit",
                ] + overrides.flatMap { ["--set", $0] }))
        let line = try #require(out.split(separator: "\n").first { $0.contains("submitted job") })
        return String(line.split(separator: " ")[3].filter(\.isNumber))
    }

    /// The job's state as `scontrol` reports it (`RUNNING`, `FAILED`, …).
    static func jobState(_ id: String) -> String? {
        guard let out = slurm(["scontrol", "show", "job", "-o", id]) else { return nil }
        return out.split(separator: " ").first { $0.hasPrefix("JobState=") }.map { String($0.dropFirst(9)) }
    }

    /// Waits until the job has ended, in any way (bounded).
    static func waitForJob(_ id: String, seconds: Double = 300) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if let state = jobState(id), ["COMPLETED", "FAILED", "CANCELLED", "TIMEOUT"].contains(state) {
                return true
            }
            usleep(250_000)
        }
        return false
    }

    @Test(.timeLimit(.minutes(10)))
    func sbatchJob_endsWithTheLocalWeights_andACancelledJobRequeuedContinues() throws {
        try #require(Self.slurm(["bash", Self.tool, "start"], timeout: 900) != nil, "Slurm did not start")
        defer { Self.slurm(["bash", Self.tool, "stop"]) }
        let reference = try Run.reference()
        // A whole job: two tasks, the same weights as one local worker.
        let dir = try Run.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let first = try Self.submit(dir, [])
        #expect(Self.waitForJob(first), "job \(first) did not end")
        #expect(try Run.summary(dir)["weights_checksum"] as? String == reference.checksum)
        let joined = Run.joined(Run.events(dir)).map(\.name)
        #expect(
            joined == ["slurm-\(first)-0", "slurm-\(first)-1"] || joined == ["slurm-\(first)-1", "slurm-\(first)-0"])

        // Cancelled mid-RL with SIGTERM to its steps, then requeued: it continues from its
        // newest checkpoint to the uninterrupted weights.
        let overrides = ["rl.iterations=200", "checkpoint.every_steps=20"]
        let again = try Run.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: again) }
        let second = try Self.submit(again, overrides)
        var inRL = false
        for _ in 0..<2400 where !inRL {
            usleep(20_000)
            inRL = ResumeTests.progress(again).steps["rl", default: 0] >= 20
        }
        #expect(inRL, "job \(second) never reached RL")
        Self.slurm(["scancel", "--signal=TERM", second])
        #expect(Self.waitForJob(second), "the cancelled job did not end")
        #expect(!FileManager.default.fileExists(atPath: again.appendingPathComponent("summary.json").path))
        #expect(Self.jobState(second) == "FAILED")  // the coordinator saw its workers' step end
        // The uninterrupted run goes while the requeued job waits out its start time.
        let alone = try Run.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: alone) }
        let uninterrupted = try Run.start(
            ["launch", Run.quick, "--workers", "2", "--run-dir", alone.appendingPathComponent("run").path, "--quiet"]
                + overrides.flatMap { ["--set", $0] }, log: alone.appendingPathComponent("launch.log"))
        defer { if uninterrupted.isRunning { uninterrupted.terminate() } }
        Self.slurm(["scontrol", "requeue", second])
        // Requeued jobs wait otherwise; but not within the second its old credential was revoked,
        // or slurmd refuses the launch ("Job credential revoked") and the job ends FAILED.
        Self.slurm(["scontrol", "update", "JobId=\(second)", "StartTime=now+3"])
        #expect(Self.jobState(second) != "FAILED", "the job was not requeued")
        #expect(Self.waitForJob(second), "the requeued job did not end")
        #expect(Self.jobState(second) == "COMPLETED")
        let log = (try? String(contentsOf: again.appendingPathComponent("slurm-\(second).out"), encoding: .utf8)) ?? ""
        #expect(log.contains("continuing the run in"), "\(log)")
        #expect(Run.wait(uninterrupted, seconds: 240), "the uninterrupted run did not finish")
        let uninterruptedChecksum = try Run.summary(alone.appendingPathComponent("run"))["weights_checksum"]
        #expect(uninterruptedChecksum as? String != nil)
        #expect(try Run.summary(again)["weights_checksum"] as? String == uninterruptedChecksum as? String)
    }
}
