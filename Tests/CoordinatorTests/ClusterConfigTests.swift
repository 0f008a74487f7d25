import Foundation
import Testing

@testable import Coordinator
import Protocol
import RLAIF

@Suite struct ClusterConfigTests {
    // MARK: Valid files

    @Test func repositoryClusterYaml_spellsOutTheEmbeddedDefaults() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let config = try ClusterConfig.load(path: root.appendingPathComponent("cluster.yaml").path)
        #expect(config == ClusterConfig.defaults)
    }

    @Test func emptyDocument_givesDefaults_andKeysOverrideThem() throws {
        #expect(try ClusterConfig.parse(yaml: "") == .defaults)
        let c = try ClusterConfig.parse(yaml: "run:\n  name: exp-7\n  seed: 99\n")
        #expect(c.run.name == "exp-7" && c.run.seed == 99)
    }

    // MARK: Errors name the key and the line

    @Test func badSeed_namesKeyAndLine() {
        #expect(
            throws: ConfigError(
                file: "cluster.yaml", line: 3, key: "run.seed", message: "must be a non-negative integer, got \"-4\"")
        ) {
            try ClusterConfig.parse(yaml: "run:\n  name: a\n  seed: -4\n")
        }
    }

    /// `--set` errors name the override as it was typed, never the file's first line or a
    /// decoder's dump (`--set run.seed=-4` said "quick.yaml: cannot be read: DecodingError…").
    @Test func badOverride_namesTheOverride() throws {
        let cases: [(String, String)] = [
            ("run.seed=-4", #"--set run.seed must be a non-negative integer, got "-4""#),
            ("coordinator.lease_ms=-4", "--set coordinator.lease_ms must be at least 1, got -4"),
            ("sft.micro_batch=2.5", "--set sft.micro_batch must be a whole number, got 2.5"),
            ("model.precision=fp16", #"--set model.precision must be float32 or bf16, got "fp16""#),
            ("model.width=99999999999999999999", "--set model.width is out of range, got 99999999999999999999"),
        ]
        for (assignment, message) in cases {
            do {
                _ = try ClusterConfig.parse(yaml: "run:\n  seed: 1\n", file: "quick.yaml", overrides: [assignment])
                Issue.record("\(assignment) was accepted")
            } catch {
                #expect(error.description == message)
            }
        }
    }

    /// Values that used to be accepted and killed the run later: a negative learning rate or
    /// clip norm died at step 9 on an exact-sum range error.
    @Test func ratesAndNorms_mustBePositive() {
        for key in ["sft.learning_rate", "reward_model.clip_norm", "rl.learning_rate", "rl.clip_norm"] {
            let section = key.split(separator: ".")[0], name = key.split(separator: ".")[1]
            #expect(
                throws: ConfigError(file: "c.yaml", line: 2, key: key, message: "must be a positive number, got -0.5")
            ) {
                try ClusterConfig.parse(yaml: "\(section):\n  \(name): -0.5\n", file: "c.yaml")
            }
        }
    }

    /// A model that cannot fit in memory is refused with an estimate (a context of 10 million
    /// grew workers to 8 GB until they were declared lost).
    @Test func modelThatCannotFitInMemory_isRefusedWithAnEstimate() throws {
        do {
            _ = try ClusterConfig.parse(yaml: "model:\n  context_length: 10000000\n", file: "c.yaml")
            Issue.record("a model of 10 million positions was accepted")
        } catch {
            #expect(error.line == 2 && error.key == "model.context_length")
            #expect(error.message.contains("GiB per worker") && error.message.contains("this machine's"))
        }
        #expect(RunSettings().workerMemoryEstimate < 1e9)  // the default run: a few MB
    }

    /// The estimate follows the model's shape: a larger vocabulary's logits count, and gradient
    /// checkpointing keeps one block's activations and one chunk of logits.
    @Test func memoryEstimate_countsTheLogits_andWhatCheckpointingKeeps() {
        var s = RunSettings()
        s.model.contextLength = 256
        let small = s.workerMemoryEstimate
        let parameters = 4 * 9 * Double(s.gpt2Config.parameterCount)
        let logits = 4 * 3 * 16 * 256 * 257.0  // rows (micro-batch 16: 8 reward pairs) × vocabulary
        #expect(small > parameters + logits)
        s.model.gradientCheckpointing = true
        let checkpointed = s.workerMemoryEstimate
        #expect(checkpointed < small && checkpointed > parameters)
    }

    /// A run recorded before a setting existed reads back with that setting's default.
    @Test func recordedSettings_withoutANewerKey_readWithItsDefault() throws {
        var recorded = ClusterConfig.defaults
        recorded.settings.run.seed = .max
        recorded.settings.labeler.retries = 7
        let json = recorded.sectionsJSON().replacingOccurrences(of: #""min_valid_fraction":0.2,"#, with: "")
        #expect(!json.contains("min_valid_fraction"))
        let back = try ClusterConfig(json: json)
        #expect(back.settings == recorded.settings && back.deployment == recorded.deployment)
    }

    /// A dry run's reading goes past the checks that do not depend on one another: a model too
    /// large, a missing data file and a missing key file are reported together.
    @Test func reading_collectsIndependentProblems_andEveryValuesOrigin() {
        let yaml = """
            task: {kind: jsonl, prompts: missing.jsonl, demonstrations: missing-demos.jsonl}
            model: {context_length: 10000000}
            labeler: {kind: command, command: judge}
            keys:
              coordinator: nowhere.key
              workers: [nowhere.pub]
            """
        let reading = ClusterConfig.read(yaml: yaml, file: "c.yaml", overrides: ["rl.iterations=3"])
        #expect(reading.problems.map(\.key) == ["model.context_length", "task.prompts", "keys.coordinator"])
        #expect(reading.config != nil)
        let origins = Dictionary(reading.origins.map { ($0.key, ($0.value, $0.origin)) }) { a, _ in a }
        #expect(origins["model.context_length"]! == ("10000000", "c.yaml:2"))
        #expect(origins["rl.iterations"]! == ("3", "--set"))
        #expect(origins["sft.epochs"]! == ("6", "default"))
        #expect(origins.count == reading.origins.count)  // one line per key
        // A problem that stops reading (the values themselves) is the only one.
        #expect(ClusterConfig.read(yaml: "model: {width: -1}\n").problems.count == 1)
    }

    /// The plan a dry run prints: step counts follow from the settings.
    @Test func runPlan_countsStepsFromTheSettings() throws {
        let plan = RunPlan(settings: RunSettings(), demonstrations: 8192)
        #expect(plan.phases[0] == "sft: 1536 steps (6 epochs of 8192 demonstrations)")
        #expect(plan.phases.contains("reward model: at most 693 steps (its valid labels of 7372 training pairs)"))
        #expect(plan.phases.contains("rl: 80 iterations of 64 prompts, 160 steps"))
        #expect(plan.checkpointBytes == Double(RunSettings().gpt2Config.parameterCount) * 28)
    }

    @Test func unknownKey_isRejectedWithItsLine() throws {
        do {
            _ = try ClusterConfig.parse(yaml: "run:\n  nmae: typo\n")
            Issue.record("a misspelt key was accepted")
        } catch {
            #expect(error.key == "run.nmae" && error.line == 2)
            #expect(error.description.contains("cluster.yaml:2: run.nmae is not a known key"))
        }
    }

    @Test func unsafeRunName_isRejected() {
        #expect(throws: ConfigError.self) { try ClusterConfig.parse(yaml: "run:\n  name: ../etc\n") }
        #expect(throws: ConfigError.self) { try ClusterConfig.parse(yaml: "run:\n  name: \"\"\n") }
    }

    @Test func malformedYaml_reportsALine() {
        do {
            _ = try ClusterConfig.parse(yaml: "run:\n  name: [unclosed\n")
            Issue.record("malformed YAML was accepted")
        } catch {
            #expect(error.line != nil)
            #expect(error.message.hasPrefix("is not valid YAML"))
        }
    }

    @Test func wrongShape_saysWhatWasExpected() {
        do {
            _ = try ClusterConfig.parse(yaml: "run: 5\n")
            Issue.record("a scalar run section was accepted")
        } catch {
            #expect(error.key == "run" && error.line == 1)
            #expect(error.message.contains("must be a mapping"))
        }
    }

    @Test func missingFile_isAClearError() {
        #expect(throws: ConfigError.self) { try ClusterConfig.load(path: "/nonexistent/cluster.yaml") }
    }
}

@Suite struct ClusterKeysConfigTests {
    func directory() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("rlaif-config-\(UUID())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    @Test(arguments: 0..<20)
    func keysSection_resolvesFilesRelativeToTheConfig_andSecuresTheListener(attempt: Int) throws {
        // Twenty fresh key sets: Z85 keys contain YAML's special characters in many ways.
        let dir = try directory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let coordinator = try CurveKeyPair.generate(), worker = try CurveKeyPair.generate()
        let other = try CurveKeyPair.generate()
        try coordinator.write(to: dir.appendingPathComponent("coordinator.key").path)
        try worker.write(to: dir.appendingPathComponent("w1.key").path)
        let yaml = "keys:\n  coordinator: coordinator.key\n  workers:\n    - w1.key.pub\n    - \"\(other.publicKey)\"\n"
        try yaml.write(to: dir.appendingPathComponent("cluster.yaml"), atomically: true, encoding: .utf8)
        let config = try ClusterConfig.load(path: dir.appendingPathComponent("cluster.yaml").path)
        #expect(config.keys?.coordinator == coordinator)
        #expect(config.keys?.authorizedWorkers == [worker.publicKey, other.publicKey])
        #expect(
            config.coordinatorSecurity
                == .curve(server: coordinator, authorized: AuthorizedKeys([worker.publicKey, other.publicKey])))
        #expect(ClusterConfig.defaults.coordinatorSecurity == .open)
    }

    @Test func launchedWorkerKey_isAuthorized_andTheKeysComeBackFromTheirReferences() throws {
        let dir = try directory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let coordinator = try CurveKeyPair.generate(), launched = try CurveKeyPair.generate()
        try coordinator.write(to: dir.appendingPathComponent("c.key").path)
        try launched.write(to: dir.appendingPathComponent("w.key").path)
        let config = try ClusterConfig.parse(
            yaml: "keys:\n  coordinator: c.key\n  worker: w.key\n", baseDirectory: dir.path)
        let keys = try #require(config.keys)
        #expect(keys.authorizedWorkers == [launched.publicKey])
        #expect(keys.launchedWorkerKeyFile == dir.appendingPathComponent("w.key").path)
        // What a run directory records names files and public keys only, and gives the same keys back.
        let saved = String(decoding: try JSONEncoder().encode(keys.references), as: UTF8.self)
        #expect(!saved.contains(coordinator.secretKey) && !saved.contains(launched.secretKey))
        #expect(try ClusterConfig.Keys(keys.references, source: "keys.json") == keys)
        // A key file gone since the run started is named.
        try FileManager.default.removeItem(at: dir.appendingPathComponent("c.key"))
        do {
            _ = try ClusterConfig.Keys(keys.references, source: "keys.json")
            Issue.record("a missing coordinator key was accepted")
        } catch {
            #expect(error.key == "keys.coordinator" && error.description.contains("c.key"))
        }
    }

    @Test func missingKeyFile_namesTheKeyAndLine() throws {
        let dir = try directory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let yaml = "run:\n  seed: 1\nkeys:\n  coordinator: nowhere.key\n  workers: [abc]\n"
        do {
            _ = try ClusterConfig.parse(yaml: yaml, baseDirectory: dir.path)
            Issue.record("a missing key file was accepted")
        } catch {
            #expect(error.key == "keys.coordinator" && error.line == 4)
            #expect(error.message.contains("cannot read key file"))
        }
    }

    @Test func badWorkerKey_namesItsIndex() throws {
        let dir = try directory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try CurveKeyPair.generate().write(to: dir.appendingPathComponent("c.key").path)
        do {
            _ = try ClusterConfig.parse(
                yaml: "keys:\n  coordinator: c.key\n  workers:\n    - not-a-key\n", baseDirectory: dir.path)
            Issue.record("an invalid worker key was accepted")
        } catch {
            #expect(error.key == "keys.workers[0]" && error.line == 4)
        }
    }

    // MARK: Training sections

    @Test func aFractionWhereAWholeNumberBelongs_namesKeyAndLine() {
        #expect(
            throws: ConfigError(
                file: "cluster.yaml", line: 3, key: "sft.epochs", message: "must be a whole number, got 1.5")
        ) { try ClusterConfig.parse(yaml: "sft:\n  batch_size: 8\n  epochs: 1.5\n") }
    }

    @Test func setOverrides_applyAfterTheFile_andUnknownKeysAreRefused() throws {
        let c = try ClusterConfig.parse(
            yaml: "rl:\n  iterations: 3\n", overrides: ["rl.iterations=5", "labeler.both_orders=false"])
        #expect(c.settings.rl.iterations == 5 && !c.settings.labeler.bothOrders)
        #expect(throws: ConfigError.self) { try ClusterConfig.parse(yaml: "", overrides: ["rl.iteration=5"]) }
    }

    @Test func sshWorkers_needReadableEntries_andAddressesOtherHostsCanReach() throws {
        #expect(
            throws: ConfigError(
                file: "cluster.yaml", line: 2, key: "workers.ssh",
                message: "has \"me@host:x\"; write host, user@host or user@host:count")
        ) { try ClusterConfig.parse(yaml: "workers:\n  ssh: [\"me@host:x\"]\n") }
        #expect(throws: ConfigError.self) {  // the default bind is loopback
            try ClusterConfig.parse(yaml: "workers:\n  ssh: [\"me@host:2\"]\n")
        }
        let open = "coordinator:\n  bind: tcp://0.0.0.0:5555\n  advertise: tcp://10.0.0.1:5555\n"
        #expect(
            throws: ConfigError(
                file: "cluster.yaml", line: 6, key: "workers.ring_bind",
                message:
                    "is tcp://127.0.0.1:0, which remote workers cannot reach; use tcp://0.0.0.0:0 when local and remote workers share a run"
            )
        ) { try ClusterConfig.parse(yaml: open + "workers:\n  ssh: [a]\n  ring_bind: tcp://127.0.0.1:0\n") }
        let c = try ClusterConfig.parse(yaml: open + "workers:\n  local: 0\n  ssh: [\"me@gpu-1:2\", gpu-2]\n")
        #expect(
            try c.deployment.workers.remoteHosts().get() == [
                .init(destination: "me@gpu-1", count: 2), .init(destination: "gpu-2", count: 1),
            ])
    }

    /// A word outside a choice is an error at its file, line and key that lists the words; the
    /// values decode as cases.
    @Test func choices_listTheirWords_andDecodeAsCases() throws {
        #expect(
            throws: ConfigError(
                file: "cluster.yaml", line: 3, key: "rl.algorithm",
                message: #"must be ppo or policy_gradient or grpo or rloo, got "ppx""#)
        ) { try ClusterConfig.parse(yaml: "rl:\n  iterations: 2\n  algorithm: ppx\n") }
        #expect(
            throws: ConfigError(
                file: "cluster.yaml", line: 2, key: "run.method", message: #"must be rlaif or direct or dpo, got "ppo""#
            )
        ) { try ClusterConfig.parse(yaml: "run:\n  method: ppo\n") }
        #expect(
            throws: ConfigError(
                file: "--set", line: nil, key: "labeler.kind",
                message: #"must be rubric or openai or command, got "gpt""#)
        ) { try ClusterConfig.parse(yaml: "", overrides: ["labeler.kind=gpt"]) }
        let c = try ClusterConfig.parse(yaml: "rl:\n  algorithm: policy_gradient\nrun:\n  method: dpo\n")
        #expect(c.settings.rl.algorithm == .policyGradient && c.settings.run.method == .dpo)
        #expect(c.settings.json().contains(#""algorithm":"policy_gradient""#))
        #expect(try RunSettings.fromJSON(c.settings.json()) == c.settings)
    }

    /// The coordinator and workers sections are the deployment's, not the method's: workers are
    /// told the method's settings only; a run directory records both and reads them back.
    @Test func deploymentSections_areKeptApart_andRecordedWithTheSettings() throws {
        let c = try ClusterConfig.parse(
            yaml:
                "coordinator:\n  lease_ms: 1500\n  heartbeat_timeout_ms: 900\nworkers:\n  local: 3\nrl:\n  iterations: 2\n"
        )
        #expect(c.deployment.coordinator.lease == .milliseconds(1500))
        #expect(c.deployment.coordinator.heartbeatTimeout == .milliseconds(900) && c.deployment.workers.local == 3)
        #expect(!c.settings.json().contains("lease_ms") && !c.settings.json().contains("ring_bind"))
        let back = try ClusterConfig(json: c.sectionsJSON())
        #expect(back.settings == c.settings && back.deployment == c.deployment)
        #expect(
            throws: ConfigError(
                file: "cluster.yaml", line: 2, key: "coordinator.heartbeat_timeout_ms",
                message: "must exceed heartbeat_interval_ms")
        ) { try ClusterConfig.parse(yaml: "coordinator:\n  heartbeat_timeout_ms: 100\n") }
    }

    @Test func labelerKinds_needTheirKeys() {
        #expect(
            throws: ConfigError(
                file: "cluster.yaml", line: 2, key: "labeler.url",
                message: "is required by labeler.kind openai (e.g. http://127.0.0.1:8000/v1)")
        ) { try ClusterConfig.parse(yaml: "labeler:\n  kind: openai\n") }
        #expect(
            throws: ConfigError(
                file: "cluster.yaml", line: 2, key: "labeler.command", message: "is required by labeler.kind command")
        ) { try ClusterConfig.parse(yaml: "labeler:\n  kind: command\n") }
        #expect(throws: Never.self) {
            try ClusterConfig.parse(yaml: "labeler:\n  kind: command\n  command: python3 judge.py\n")
        }
    }

    @Test func jsonlTask_needsItsFiles_resolvedBesideTheConfig() throws {
        #expect(
            throws: ConfigError(
                file: "cluster.yaml", line: 2, key: "task.prompts", message: "is required by task.kind jsonl")
        ) { try ClusterConfig.parse(yaml: "task:\n  kind: jsonl\n  demonstrations: d.jsonl\n") }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("rlaif-config-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try Data(#"{"prompt": "p"}"#.utf8).write(to: dir.appendingPathComponent("p.jsonl"))
        let yaml =
            "task:\n  kind: jsonl\n  prompts: p.jsonl\n  demonstrations: d.jsonl\nlabeler:\n  kind: command\n  command: x\n"
        #expect(
            throws: ConfigError(
                file: "cluster.yaml", line: 4, key: "task.demonstrations",
                message: "names \(dir.path)/d.jsonl, which cannot be read")
        ) { try ClusterConfig.parse(yaml: yaml, baseDirectory: dir.path) }
        try Data(#"{"prompt": "p", "completion": "c"}"#.utf8).write(to: dir.appendingPathComponent("d.jsonl"))
        let config = try ClusterConfig.parse(yaml: yaml, baseDirectory: dir.path)
        #expect(config.settings.task.prompts == dir.appendingPathComponent("p.jsonl").path)
        #expect(config.settings.task.demonstrations == dir.appendingPathComponent("d.jsonl").path)
        // The rubric stand-in judges only the synthetic task.
        #expect(throws: ConfigError.self) {
            try ClusterConfig.parse(
                yaml: "task:\n  kind: jsonl\n  prompts: p.jsonl\n  demonstrations: d.jsonl\n", baseDirectory: dir.path)
        }
    }
}
