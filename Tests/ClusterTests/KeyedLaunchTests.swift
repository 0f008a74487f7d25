import Foundation
import Protocol
import Testing

/// `rlaif launch` in a cluster with keys, at the edges of what a key or a worker can be.
@Suite(.serialized) struct KeyedLaunchTests {
    typealias Run = ClusterRunTests

    /// Z85 has "-" among its 85 characters, so about one coordinator key in 85 begins with it:
    /// the launched workers must still take it as the value of `--coordinator-key`, not as an
    /// option (before, each such worker exited with "Missing value for '--coordinator-key'").
    @Test func coordinatorKeyBeginningWithADash_letsTheLaunchedWorkersIn() throws {
        let dir = try Run.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let (config, _) = try Run.keyedQuick(in: dir)
        // One pair in 85 on average: 20,000 draws all missing it has odds below 1e-100.
        let pair = try #require(
            try (0..<20_000).lazy.map { _ in try CurveKeyPair.generate() }.first { $0.publicKey.hasPrefix("-") })
        try pair.write(to: dir.appendingPathComponent("keys/coordinator.key").path)
        let run = dir.appendingPathComponent("run")
        let p = try Run.start(
            [
                "launch", config, "--workers", "2", "--run-dir", run.path, "--quiet", "--set", "sft.epochs=1",
                "--set", "preferences.pairs=64", "--set", "rl.iterations=1",
            ], log: dir.appendingPathComponent("launch.log"))
        let log = { (try? String(contentsOf: dir.appendingPathComponent("launch.log"), encoding: .utf8)) ?? "" }
        #expect(Run.wait(p, seconds: 120) && p.terminationStatus == 0, "\(log())")
        #expect(Run.joined(Run.events(run)).count == 2)
    }

    /// When every worker the launch started has exited before registering, nothing more can
    /// come: the launch ends at once (not after its 120 s wait) and names the workers' error.
    @Test func launchWhoseWorkersAllExit_endsAtOnce_namingTheirError() throws {
        let dir = try Run.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let started = ContinuousClock.now
        let p = try Run.start(
            [
                "launch", Run.quick, "--workers", "2", "--run-dir", dir.path, "--quiet", "--set",
                "workers.ring_bind=tcp://192.0.2.1:0",  // TEST-NET-1: no interface here has it
            ], log: dir.appendingPathComponent("launch.log"))
        #expect(Run.wait(p, seconds: 60))
        #expect(ContinuousClock.now - started < .seconds(30), "the launch took \(ContinuousClock.now - started)")
        #expect(p.terminationStatus != 0)
        let log = (try? String(contentsOf: dir.appendingPathComponent("launch.log"), encoding: .utf8)) ?? ""
        #expect(log.contains("all 2 local workers exited before registering"), "\(log)")
        #expect(
            log.contains("worker-0.log says: Error: zmq_bind") || log.contains("worker-1.log says: Error: zmq_bind"))
    }
}
