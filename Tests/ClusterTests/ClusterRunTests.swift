import Coordinator
import Foundation
import Logging
import RLAIF
import Testing

/// Real runs: the `rlaif` binary as coordinator and as worker processes over tcp loopback,
/// on examples/quick.yaml.
@Suite(.serialized) struct ClusterRunTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    /// The `rlaif` built beside this test bundle (debug or release, whatever the build folder).
    static let binary: String = {
        let me =
            (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        return URL(fileURLWithPath: me).deletingLastPathComponent().appendingPathComponent("rlaif").path
    }()
    static let quick = root.appendingPathComponent("examples/quick.yaml").path

    struct Failure: Error, CustomStringConvertible {
        let message: String
        var description: String { message }
    }

    static func temporaryDirectory() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("rlaif-cluster-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    /// Starts the `rlaif` binary with `arguments`, output to `log`; `launcher` runs it through
    /// another command (e.g. `ip netns exec NS`).
    static func start(
        _ arguments: [String], log: URL, environment: [String: String] = [:], launcher: [String] = []
    ) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: launcher.first ?? binary)
        p.arguments = launcher.isEmpty ? arguments : Array(launcher.dropFirst()) + [binary] + arguments
        if !environment.isEmpty {
            p.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        }
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let h = try FileHandle(forWritingTo: log)
        p.standardOutput = h
        p.standardError = h
        try p.run()
        return p
    }

    static func wait(_ p: Process, seconds: Double) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while p.isRunning && Date() < deadline { usleep(50_000) }
        if p.isRunning {
            p.terminate()
            return false
        }
        return true
    }

    /// The address a coordinator writes to `coordinator.json` in its run directory (nil: none within 10 s).
    static func coordinatorAddress(_ dir: URL) -> String? {
        for _ in 0..<200 {
            if let data = try? Data(contentsOf: dir.appendingPathComponent("coordinator.json")),
                let o = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
                let address = o["address"] as? String
            {
                return address
            }
            usleep(50_000)
        }
        return nil
    }

    /// `win_rate_vs_sft.<judge>` of a summary (−1 when absent).
    static func winRate(_ summary: [String: Any], _ judge: String) -> Double {
        (summary["win_rate_vs_sft"] as? [String: Any])?[judge] as? Double ?? -1
    }

    static func summary(_ dir: URL) throws -> [String: Any] {
        let data = try Data(contentsOf: dir.appendingPathComponent("summary.json"))
        return try JSONSerialization.jsonObject(with: data) as! [String: Any]
    }

    static func events(_ dir: URL) -> [RunEvent] {
        (try? RunEventLine.read(dir.appendingPathComponent("metrics.jsonl")).map(\.event)) ?? []
    }

    /// The `worker_joined` events: id, name, ring listener and key of each worker.
    static func joined(_ events: [RunEvent]) -> [(worker: String, name: String, ring: String, key: String?)] {
        events.compactMap {
            guard case .workerJoined(let worker, let name, _, _, let ring, let key) = $0 else { return nil }
            return (worker, name, ring, key)
        }
    }

    /// Optimizer steps and how many had at least `workers` ranks in their ring, and snapshots shipped
    /// to workers that were behind.
    static func ringUse(_ events: [RunEvent], workers: Int) -> (steps: Int, full: Int, synchronized: Int) {
        var steps = 0, full = 0, synchronized = 0
        for e in events {
            if case .step(_, let participants, _, _) = e {
                steps += 1
                if participants.count >= workers { full += 1 }
            }
            if case .synchronized = e { synchronized += 1 }
        }
        return (steps, full, synchronized)
    }

    /// quick.yaml with a `keys` section, its keys made by `rlaif keygen` in `dir/keys`: the
    /// config's path and the public key of the workers `launch` starts.
    static func keyedQuick(in dir: URL) throws -> (config: String, workerKey: String?) {
        for name in ["coordinator", "worker"] {
            let keygen = try start(
                ["keygen", name, "--directory", dir.appendingPathComponent("keys").path],
                log: dir.appendingPathComponent("keygen-\(name).log"))
            #expect(wait(keygen, seconds: 30) && keygen.terminationStatus == 0)
        }
        let pub = try String(contentsOf: dir.appendingPathComponent("keys/worker.key.pub"), encoding: .utf8)
        let config = dir.appendingPathComponent("keyed.yaml").path
        try
            (String(contentsOfFile: quick, encoding: .utf8)
            + "keys:\n  coordinator: keys/coordinator.key\n  worker: keys/worker.key\n")
            .write(toFile: config, atomically: true, encoding: .utf8)
        return (config, pub.split(separator: "\n").first.map { String($0.dropFirst("public: ".count)) })
    }

    /// Runs quick.yaml with `workers` local workers; the final weights' checksum, the summary,
    /// the number of optimizer steps logged per phase, the key each worker joined with, and what
    /// the workers logged.
    /// `keyed`: with a `keys` section (from `rlaif keygen`), so every link is CURVE.
    static func launch(
        workers: Int, keyed: Bool = false, extra: [String] = [], environment: [String: String] = [:]
    ) throws -> Launched {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        var config = quick
        var workerKey: String?
        if keyed { (config, workerKey) = try keyedQuick(in: dir) }
        let run = dir.appendingPathComponent("run")
        let p = try start(
            ["launch", config, "--workers", "\(workers)", "--run-dir", run.path, "--quiet"] + extra,
            log: dir.appendingPathComponent("launch.log"), environment: environment)
        #expect(wait(p, seconds: 240), "launch with \(workers) workers did not finish")
        // A failed launch says why in the test's output (its directory goes with the test).
        let log = (try? String(contentsOf: dir.appendingPathComponent("launch.log"), encoding: .utf8)) ?? ""
        #expect(p.terminationStatus == 0, "launch with \(workers) workers failed: \(log.suffix(3000))")
        let s = try summary(run)
        var steps: [String: Int] = [:]
        let events = events(run)
        for case .metrics(let m) in events { steps[m.phase, default: 0] += 1 }
        // What the workers logged, one file after the other.
        let workerLogs = ((try? FileManager.default.contentsOfDirectory(atPath: run.path)) ?? [])
            .filter { $0.hasPrefix("worker-") && $0.hasSuffix(".log") }.sorted()
            .compactMap { try? String(contentsOf: run.appendingPathComponent($0), encoding: .utf8) }.joined()
        return (
            s["weights_checksum"] as? String ?? "", s, steps, joined(events).map(\.key), workerKey, events, workerLogs
        )
    }

    typealias Launched = (
        checksum: String, summary: [String: Any], steps: [String: Int], joinedWith: [String?], workerKey: String?,
        events: [RunEvent], workerLogs: String
    )

    /// quick.yaml with one worker, launched once for every test that compares with it.
    static func reference() throws -> Launched {
        try referenceRun.lock.withLock {
            if let done = referenceRun.result { return done }
            let result = try launch(workers: 1)
            referenceRun.result = result
            return result
        }
    }

    final class ReferenceRun: @unchecked Sendable {
        let lock = NSLock()
        var result: Launched?
    }
    static let referenceRun = ReferenceRun()

    /// The pipeline on replicas in this process (`LocalCluster`) ends with the weights that worker
    /// processes over sockets end with.
    @Test func inProcessRun_endsWithTheWeightsOfWorkerProcesses() async throws {
        let reference = try Self.reference().checksum
        let settings = try ClusterConfig.load(path: Self.quick).settings
        let dir = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let events = try EventLog(url: dir.appendingPathComponent("metrics.jsonl"))
        defer { events.close() }
        let driver = RunDriver(
            settings: settings, cluster: try LocalCluster(settings: settings, replicas: 2), events: events,
            directory: dir, logger: Logger(label: "test"),
            task: try TaskDataFactory.make(settings, tokenizer: try RunModel(settings: settings).tokenizer), quiet: true
        )
        #expect(try await driver.run().weightsChecksum == reference)
    }

    @Test func sameRun_withOneTwoAndFourWorkers_endsWithBitIdenticalWeights() throws {
        let one = try Self.reference()
        let two = try Self.launch(workers: 2)
        // Four workers in a cluster with keys: CURVE between the coordinator and every worker and
        // on every ring link, the weights the same.
        let four = try Self.launch(workers: 4, keyed: true)
        #expect(!one.checksum.isEmpty)
        #expect(one.checksum == two.checksum)
        #expect(one.checksum == four.checksum)
        #expect(two.joinedWith == [nil, nil])
        // Data parallelism holds: every step of the undisturbed runs has every worker in its
        // ring, and no snapshot is shipped (every replica starts from the seed).
        for (run, n) in [(two, 2), (four, 4)] {
            let use = Self.ringUse(run.events, workers: n)
            #expect(
                use.steps > 0 && use.full == use.steps, "\(n) workers: \(use.full) of \(use.steps) steps on a full ring"
            )
            #expect(use.synchronized == 0)
        }
        #expect(four.workerKey?.count == 40 && four.joinedWith == Array(repeating: four.workerKey, count: 4))
        // The summary has every field the pipeline promises, fractions in [0, 1].
        for key in ["win_rate_vs_sft", "labeler_alignment", "reward_model_accuracy"] {
            let section = one.summary[key] as? [String: Any]
            #expect(section != nil, "summary lacks \(key)")
            for (_, v) in section ?? [:] { if let x = v as? Double { #expect((0...1).contains(x)) } }
        }
        #expect(one.summary["kl_to_sft"] is Double)
        // The test-sized run already improves on SFT as judged by the ground truth.
        let truth = Self.winRate(one.summary, "ground_truth")
        #expect(truth > 0.6, "RLAIF's ground-truth win rate against SFT: \(truth)")
    }

    /// A coordinator with hand-started workers: one is killed with SIGKILL when RL starts and
    /// another joins at that moment. The run finishes with the undisturbed run's weights, and the
    /// newcomer's jobs are in metrics.jsonl.
    /// `model.precision: bf16` on the AVX2 emulation (`RLAIF_BF16_KERNEL=avx2`) ends with the
    /// weights the AVX-512 BF16 kernel gives: workers on CPUs with and without it agree.
    @Test func bf16Run_onTheEmulation_endsWithTheWeightsOfTheBF16Kernel() throws {
        let bf16 = ["--set", "model.precision=bf16"]
        let native = try Self.launch(workers: 2, extra: bf16)
        let emulated = try Self.launch(workers: 2, extra: bf16, environment: ["RLAIF_BF16_KERNEL": "avx2"])
        #expect(!native.checksum.isEmpty && emulated.checksum == native.checksum)
        // The emulation did run: its workers said so.
        #expect(emulated.workerLogs.contains("products are emulated"))
        #expect(native.checksum != (try Self.reference().checksum))  // bf16 did change the products
    }

    @Test func killedWorker_andJoiningWorker_leaveTheWeightsUnchanged() throws {
        let reference = try Self.reference().checksum
        let dir = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let coordinator = try Self.start(
            ["coordinator", Self.quick, "--run-dir", dir.path, "--quiet"], log: dir.appendingPathComponent("c.log"))
        let endpoint = try #require(Self.coordinatorAddress(dir))
        func worker(_ name: String, _ extra: [String] = []) throws -> Process {
            try Self.start(
                ["worker", "--connect", endpoint, "--threads", "1", "--name", name] + extra,
                log: dir.appendingPathComponent("\(name).log"))
        }
        let a = try worker("a", ["--log-level", "debug"]), b = try worker("b")
        defer { for p in [a, b] where p.isRunning { p.terminate() } }
        // Wait for RL, then add a worker and kill another.
        var inRL = false
        for _ in 0..<2400 where !inRL {
            usleep(50_000)
            inRL = Self.events(dir).contains(.phase("rl"))
        }
        #expect(inRL, "the run never reached RL")
        let c = try worker("c")
        defer { if c.isRunning { c.terminate() } }
        kill(b.processIdentifier, SIGKILL)
        #expect(Self.wait(coordinator, seconds: 240), "the coordinator did not finish")
        #expect(coordinator.terminationStatus == 0)
        let events = Self.events(dir)
        let joined = Self.joined(events)
        let newcomer = try #require(joined.first { $0.name == "c" }?.worker)
        let killed = try #require(joined.first { $0.name == "b" }?.worker)
        #expect(events.contains { if case .workerLost(killed, _) = $0 { true } else { false } })
        let newcomerWorked = events.contains {
            switch $0 {
            case .job(_, _, let worker, _, _): worker == newcomer
            case .step(_, let participants, _, _): participants.contains(newcomer)
            default: false
            }
        }
        #expect(newcomerWorked, "the worker that joined mid-run took no job")
        // Snapshots are shipped only to the newcomer and to a rank left behind by the ring the
        // killed worker broke, never as a side effect of checkpoints or slow steps.
        let lost = events.filter { if case .workerLost = $0 { true } else { false } }.count
        let retries = events.filter { if case .stepRetry = $0 { true } else { false } }.count
        let use = Self.ringUse(events, workers: 2)
        #expect(use.synchronized <= 1 + lost + retries, "\(use.synchronized) snapshots shipped")
        #expect(use.full * 10 >= use.steps * 9, "\(use.full) of \(use.steps) steps on a full ring")
        #expect(try Self.summary(dir)["weights_checksum"] as? String == reference)
        // Every step's log line says where its time went; worker a, at debug, logged its share.
        let sft = events.compactMap { if case .metrics(let m) = $0, m.phase == "sft" { m.values } else { nil } }
        let timings = [StepTiming.compute, StepTiming.allReduce, StepTiming.update]
        #expect(!sft.isEmpty && sft.allSatisfy { v in timings.allSatisfy { v[$0] != nil } })
        #expect(sft.contains { $0[StepTiming.straggler] != nil }, "no two-rank SFT step logged its straggler")
        let aLog = try String(contentsOf: dir.appendingPathComponent("a.log"), encoding: .utf8)
        #expect(aLog.contains(" rank 0/2: compute ") || aLog.contains(" rank 1/2: compute "))
    }

    /// A worker whose key the cluster does not list is refused in silence (CURVE tells it
    /// nothing): after its registration wait it exits and says which keys to check.
    @Test func workerWithAnUnlistedKey_exitsAfterItsWait_namingTheKeys() throws {
        let dir = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let (config, _) = try Self.keyedQuick(in: dir)
        let stranger = try Self.start(
            ["keygen", "stranger", "--directory", dir.appendingPathComponent("keys").path],
            log: dir.appendingPathComponent("keygen-stranger.log"))
        #expect(Self.wait(stranger, seconds: 30) && stranger.terminationStatus == 0)
        let run = dir.appendingPathComponent("run")
        let coordinator = try Self.start(
            ["coordinator", config, "--run-dir", run.path, "--quiet"], log: dir.appendingPathComponent("c.log"))
        defer { if coordinator.isRunning { kill(coordinator.processIdentifier, SIGKILL) } }
        let endpoint = try #require(Self.coordinatorAddress(run))
        let log = dir.appendingPathComponent("w.log")
        let started = ContinuousClock.now
        let worker = try Self.start(
            [
                "worker", "--connect", endpoint, "--key", dir.appendingPathComponent("keys/stranger.key").path,
                "--coordinator-key", dir.appendingPathComponent("keys/coordinator.key.pub").path,
                "--registration-wait", "2",
            ], log: log)
        #expect(Self.wait(worker, seconds: 30), "the refused worker waited on")
        // Its wait, not also a send blocked on a peer that never came (7 s and more before).
        #expect(ContinuousClock.now - started < .seconds(6), "the refused worker took \(ContinuousClock.now - started)")
        #expect(worker.terminationStatus == 1)
        let text = try String(contentsOf: log, encoding: .utf8)
        #expect(text.contains("did not answer within 2 s") && text.contains("keys.workers"), "\(text)")
        #expect(!text.contains("Usage:"))
    }

    /// Workers never outlive their coordinator: one whose coordinator was killed exits once it
    /// has heard nothing for heartbeat_timeout_ms (1.5 s in quick.yaml).
    @Test func workerWhoseCoordinatorIsKilled_exitsAfterTheHeartbeatTimeout() throws {
        let dir = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let coordinator = try Self.start(
            ["coordinator", Self.quick, "--run-dir", dir.path, "--quiet", "--set", "rl.iterations=500"],
            log: dir.appendingPathComponent("c.log"))
        defer { if coordinator.isRunning { kill(coordinator.processIdentifier, SIGKILL) } }
        let endpoint = try #require(Self.coordinatorAddress(dir))
        let log = dir.appendingPathComponent("w.log")
        let worker = try Self.start(["worker", "--connect", endpoint, "--threads", "1", "--name", "orphan"], log: log)
        defer { if worker.isRunning { kill(worker.processIdentifier, SIGKILL) } }
        var working = false
        for _ in 0..<600 where !working {
            usleep(20_000)
            working = Self.events(dir).contains { if case .step = $0 { true } else { false } }
        }
        #expect(working, "the worker never took a step")
        kill(coordinator.processIdentifier, SIGKILL)
        let killed = Date()
        #expect(Self.wait(worker, seconds: 20), "the worker outlived its coordinator")
        #expect(Date().timeIntervalSince(killed) < 6, "the worker waited \(Date().timeIntervalSince(killed)) s")
        let text = try String(contentsOf: log, encoding: .utf8)
        #expect(text.contains("lost the coordinator"), "\(text)")
    }

    /// `--dry-run` reports a missing data file, an unreachable labeler, a missing key file and a
    /// model too large for memory at once, exits non-zero, and starts nothing.
    @Test func dryRun_reportsEveryProblemAtOnce_andStartsNothing() throws {
        let dir = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let config = dir.appendingPathComponent("bad.yaml")
        try """
        task: {kind: jsonl, prompts: missing.jsonl, demonstrations: missing-demos.jsonl}
        model: {context_length: 10000000}
        labeler: {kind: openai, url: "http://127.0.0.1:1/v1", model: judge}
        keys:
          coordinator: nowhere/coordinator.key
          workers: [nowhere/w.key.pub]
        """.write(to: config, atomically: true, encoding: .utf8)
        let run = dir.appendingPathComponent("run")
        let log = dir.appendingPathComponent("dry.log")
        let p = try Self.start(["launch", config.path, "--dry-run", "--run-dir", run.path], log: log)
        #expect(Self.wait(p, seconds: 60) && p.terminationStatus == 1)
        let text = try String(contentsOf: log, encoding: .utf8)
        for expected in [
            "model.context_length makes a model that needs", "task.prompts names", "keys.coordinator cannot be used",
            "labeler.url: http://127.0.0.1:1/v1 cannot be reached",
        ] {
            #expect(text.contains(expected), "missing \(expected) in \(text)")
        }
        #expect(text.contains("nothing was started") && !text.contains("Usage:"))
        #expect(!FileManager.default.fileExists(atPath: run.path), "the dry run made the run directory")
        // A good configuration: the plan, and ready.
        let good = try Self.start(["launch", Self.quick, "--dry-run", "--run-dir", run.path], log: log)
        #expect(Self.wait(good, seconds: 60) && good.terminationStatus == 0)
        let plan = try String(contentsOf: log, encoding: .utf8)
        #expect(
            plan.contains("sft: 18 steps (3 epochs of 192 demonstrations)") && plan.contains("rlaif: ready"), "\(plan)")
        #expect(!FileManager.default.fileExists(atPath: run.path))
        // `rlaif config`: each key with its value and origin.
        let shown = try Self.start(["config", Self.quick, "--set", "rl.iterations=3"], log: log)
        #expect(Self.wait(shown, seconds: 60) && shown.terminationStatus == 0)
        let lines = try String(contentsOf: log, encoding: .utf8).split(separator: "\n")
        let line = { (key: String) in
            lines.first { $0.hasPrefix(key + " ") }.map { $0.split(separator: " ").map(String.init) }
        }
        #expect(line("rl.iterations") == ["rl.iterations", "3", "--set"])
        #expect(line("model.width") == ["model.width", "64", "quick.yaml:15"])
        #expect(line("sft.batch_size") == ["sft.batch_size", "32", "default"])
        #expect(line("coordinator.bind") == ["coordinator.bind", "\"tcp://127.0.0.1:0\"", "default"])
    }
}
