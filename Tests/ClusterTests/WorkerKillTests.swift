import Foundation
import TestSupport
import Testing

/// `kill -9` of one of two local workers at random moments (issue 26: three of four such kills
/// stalled the run for good). Every run finishes, in bounded time, with the undisturbed weights.
@Suite(.serialized) struct WorkerKillTests {
    typealias Run = ClusterRunTests

    /// The local workers `launch` (pid `launcher`) started, named local-INDEX-PID: their pids by index.
    static func localWorkers(of launcher: Int32) -> [Int: Int32] {
        var found: [Int: Int32] = [:]
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let pid = Int32(entry), let cmdline = FileManager.default.contents(atPath: "/proc/\(entry)/cmdline")
            else { continue }
            for arg in cmdline.split(separator: 0).map({ String(decoding: $0, as: UTF8.self) })
            where arg.hasPrefix("local-") && arg.hasSuffix("-\(launcher)") {
                if let index = Int(arg.dropFirst("local-".count).prefix { $0.isNumber }) { found[index] = pid }
            }
        }
        return found
    }

    static func localWorker(_ index: Int, of launcher: Int32) -> Int32? { localWorkers(of: launcher)[index] }

    @Test func workerKilledAtRandomMoments_neverStallsTheRun_andLeavesTheWeightsUnchanged() throws {
        let reference = try Run.reference()
        let wall = try #require(reference.summary["wall_seconds"] as? Double)
        var rng = SplitMix64(seed: 26)
        var killed = 0
        for attempt in 0..<6 {
            // Anywhere from the first SFT steps to the evaluation.
            let delay = 0.2 + Double(rng.next() % 1000) / 1000 * max(wall, 1)
            let dir = try Run.temporaryDirectory()
            defer { try? FileManager.default.removeItem(at: dir) }
            let launch = try Run.start(
                [
                    "launch", Run.quick, "--workers", "2", "--run-dir", dir.appendingPathComponent("run").path,
                    "--quiet", "--set", "checkpoint.every_steps=5",
                ], log: dir.appendingPathComponent("launch.log"))
            usleep(UInt32(delay * 1_000_000))
            let victim = Self.localWorker(0, of: launch.processIdentifier)
            if let victim {
                kill(victim, SIGKILL)
                killed += 1
            }
            let finished = Run.wait(launch, seconds: 120)
            let log = (try? String(contentsOf: dir.appendingPathComponent("launch.log"), encoding: .utf8)) ?? ""
            #expect(finished, "kill \(attempt) at \(delay) s: the run stalled")
            guard finished else { continue }  // (a process still running has no status to read)
            #expect(launch.terminationStatus == 0, "kill \(attempt) at \(delay) s: \(log)")
            let run = dir.appendingPathComponent("run")
            #expect(
                try Run.summary(run)["weights_checksum"] as? String == reference.checksum,
                "kill \(attempt) at \(delay) s (worker \(victim.map(String.init) ?? "already gone"))")
        }
        #expect(killed >= 5, "only \(killed) of 6 runs still had the worker to kill")
    }
}
