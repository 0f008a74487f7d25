import Crypto
import Foundation
import Models
import Protocol
import Tensor

/// Where a run stands at a checkpoint: what the driver needs to continue as if it had never stopped.
public struct RunCursor: Codable, Sendable, Equatable {
    /// The phase in progress (a `RunDriver.Phase` raw value).
    public var phase: String
    /// That phase's work already done: optimizer steps (sft, reward_model, dpo) or iterations (rl).
    public var done: Int
    /// The AI preference dataset, once labeled.
    public var preferences: PreferenceData?
    public var rewardAccuracyLabeler: Double?
    public var rewardAccuracyGroundTruth: Double?
    /// The replica version: optimizer steps applied so far.
    public var version: UInt64
    /// metrics.jsonl's length when the checkpoint was taken; a resumed run cuts what came after.
    public var metricsBytes: UInt64
    public var weightsChecksum: String
    /// The KL coefficient the next RL iteration uses (moved by an adaptive controller).
    public var klBeta: Double?
    /// Rollouts made ahead of their iteration under `rl.rollout_lag`, not yet trained on.
    public var rolloutsAhead: [IterationRollout]?

    public struct PreferenceData: Codable, Sendable, Equatable {
        public var prompts: [String]
        public var first: [String]
        public var second: [String]
        public var labels: [PreferenceLabel]
        /// The responses' tokens as sampled (absent in checkpoints from before they were kept).
        public var firstTokens: [[Int32]]?
        public var secondTokens: [[Int32]]?
    }
}

/// A checkpoint as written and read: the cursor, the resolved settings, every model's state.
public struct Checkpoint: Sendable {
    public var cursor: RunCursor
    /// The run's resolved settings (JSON), so `rlaif resume` needs no config file.
    public var settings: String
    public var weights: [Wire.Weights]

    public init(cursor: RunCursor, settings: String, weights: [Wire.Weights]) {
        self.cursor = cursor
        self.settings = settings
        self.weights = weights
    }
}

public struct CheckpointError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public var description: String { message }
}

/// The checkpoints of a run, in `RUN_DIR/checkpoints/ckpt-NNNNNN` (numbered in the order written).
/// Each is written to a temporary directory, fsynced and renamed into place, so a checkpoint is
/// either whole or absent; `manifest.json` holds the SHA-256 of every other file and is written
/// last. Only the newest `keep` are kept, and older ones are removed only after a new one is whole.
public struct CheckpointStore: Sendable {
    public let root: URL
    public let keep: Int

    public init(runDirectory: URL, keep: Int) {
        root = runDirectory.appendingPathComponent("checkpoints")
        self.keep = max(1, keep)
    }

    /// The layout of checkpoint directories this build writes and reads.
    static let format = 1

    /// A checkpoint of another layout is named and skipped (an older one, if any, is used).
    static func checkFormat(_ format: Int, of file: String) throws(CheckpointError) {
        guard format != Self.format else { return }
        throw CheckpointError(
            message:
                "\(file) has checkpoint format \(format), and this rlaif reads format \(Self.format): resume it with "
                + "the rlaif version that wrote it, or start the run over with `rlaif launch`")
    }

    static let weightsFile = "weights.safetensors"
    static let stateFile = "state.json"
    static let manifestFile = "manifest.json"

    struct State: Codable {
        struct Model: Codable {
            var model: UInt8
            var optimizerStep: Int64
            var moments: Bool
        }
        var format = CheckpointStore.format
        var cursor: RunCursor
        var settings: String
        var models: [Model]
    }

    struct Manifest: Codable {
        var format = CheckpointStore.format
        var files: [String: String]
    }

    /// The checkpoint directories, oldest first.
    func directories() -> [URL] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: root.path)) ?? []
        return names.filter { $0.hasPrefix("ckpt-") }.sorted().map { root.appendingPathComponent($0) }
    }

    // MARK: Writing

    /// Writes `checkpoint` and prunes old ones; returns its directory.
    @discardableResult
    public func write(_ checkpoint: Checkpoint) throws(CheckpointError) -> URL {
        let existing = directories()
        let number = (existing.last.flatMap { Int($0.lastPathComponent.dropFirst(5)) } ?? 0) + 1
        let name = String(format: "ckpt-%06d", number)
        let final = root.appendingPathComponent(name)
        let temporary = root.appendingPathComponent(".\(name).partial")
        let fm = FileManager.default
        do {
            try fm.createDirectory(at: root, withIntermediateDirectories: true)
            try? fm.removeItem(at: temporary)
            try fm.createDirectory(at: temporary, withIntermediateDirectories: false)

            var tensors: [(String, Tensor)] = []
            var models: [State.Model] = []
            for w in checkpoint.weights {
                guard let state = ModelReplica.ModelState(w) else {
                    throw CheckpointError(message: "a snapshot of \(w.model) is not a model state")
                }
                let key = "\(w.model)"
                tensors.append(("\(key).values", state.values))
                if let m = state.firstMoment, let v = state.secondMoment {
                    tensors += [("\(key).first_moment", m), ("\(key).second_moment", v)]
                }
                models.append(
                    .init(
                        model: w.model.rawValue, optimizerStep: Int64(state.optimizerStep),
                        moments: state.firstMoment != nil))
            }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            // Each file is hashed from the bytes written, not read back.
            let contents = [
                (Self.weightsFile, try SafeTensors.encode(tensors, metadata: ["format": "rlaif-checkpoint"])),
                (
                    Self.stateFile,
                    try encoder.encode(State(cursor: checkpoint.cursor, settings: checkpoint.settings, models: models))
                ),
            ]
            var digests: [String: String] = [:]
            for (file, data) in contents {
                try Self.writeSynced(data, to: temporary.appendingPathComponent(file))
                digests[file] = Self.sha256(data)
            }
            try Self.writeSynced(
                encoder.encode(Manifest(files: digests)), to: temporary.appendingPathComponent(Self.manifestFile))
            try Self.sync(temporary)
            try fm.moveItem(at: temporary, to: final)
            try Self.sync(root)
        } catch {
            try? fm.removeItem(at: temporary)
            let why = (error as? CheckpointError)?.message ?? (error as NSError).localizedDescription
            throw CheckpointError(
                message:
                    "cannot write checkpoint \(name) in \(root.path): \(why); the previous checkpoints are untouched")
        }
        for old in (existing + [final]).dropLast(keep) { try? fm.removeItem(at: old) }
        return final
    }

    static func sync(_ url: URL) throws {
        let fd = open(url.path, O_RDONLY)
        guard fd >= 0 else { throw CheckpointError(message: "cannot open \(url.lastPathComponent) to sync it") }
        defer { close(fd) }
        guard fsync(fd) == 0 else {
            throw CheckpointError(
                message: "fsync of \(url.lastPathComponent) failed (\(String(describing: strerror(errno))))")
        }
    }

    static func writeSynced(_ data: Data, to url: URL) throws {
        try data.write(to: url)
        try sync(url)
    }

    static func sha256(_ data: Data) -> String {
        SHA256.hash(data: data).hex
    }

    // MARK: Reading

    /// The newest checkpoint that verifies; each one skipped is reported by file name and reason.
    public func newest(report: (String) -> Void) -> Checkpoint? {
        for dir in directories().reversed() {
            do {
                return try Self.read(dir)
            } catch {
                report("checkpoint \(dir.lastPathComponent) skipped: \(error.message)")
            }
        }
        return nil
    }

    /// Reads and verifies one checkpoint directory.
    public static func read(_ dir: URL) throws(CheckpointError) -> Checkpoint {
        let decoder = JSONDecoder()
        let manifest: Manifest
        do {
            manifest = try decoder.decode(
                Manifest.self, from: Data(contentsOf: dir.appendingPathComponent(manifestFile)))
        } catch {
            throw CheckpointError(message: "\(manifestFile) is missing or unreadable (a partial write?)")
        }
        try checkFormat(manifest.format, of: manifestFile)
        // Each file is read once: verified, then parsed from the same bytes.
        func verified(_ file: String) throws(CheckpointError) -> Data {
            guard let expected = manifest.files[file] else {
                throw CheckpointError(message: "\(manifestFile) does not list \(file)")
            }
            let data: Data
            do { data = try Data(contentsOf: dir.appendingPathComponent(file), options: .alwaysMapped) } catch {
                throw CheckpointError(message: "\(file) is missing or unreadable")
            }
            guard sha256(data) == expected else {
                throw CheckpointError(message: "\(file) does not match its SHA-256 in \(manifestFile) (corrupt)")
            }
            return data
        }
        let weightsData = try verified(weightsFile), stateData = try verified(stateFile)
        let state: State
        do { state = try decoder.decode(State.self, from: stateData) } catch {
            throw CheckpointError(message: "\(stateFile) cannot be read: \(error)")
        }
        try checkFormat(state.format, of: stateFile)
        let file: SafeTensors
        do { file = try SafeTensors.parse(weightsData, file: dir.appendingPathComponent(weightsFile).path) } catch {
            throw CheckpointError(message: "\(weightsFile): \(error.description)")
        }
        var weights: [Wire.Weights] = []
        for m in state.models {
            guard let model = Wire.Model(rawValue: m.model) else {
                throw CheckpointError(message: "\(stateFile) names an unknown model \(m.model)")
            }
            guard let role = ModelReplica.Role(model) else {
                throw CheckpointError(message: "\(stateFile) names \(model), which is not a model a replica holds")
            }
            do {
                let moments =
                    m.moments
                    ? (try file.float32("\(model).first_moment"), try file.float32("\(model).second_moment")) : nil
                let restored = ModelReplica.ModelState(
                    role: role, values: try file.float32("\(model).values"), firstMoment: moments?.0,
                    secondMoment: moments?.1, optimizerStep: Int(m.optimizerStep))
                weights.append(restored.weights(version: state.cursor.version))
            } catch {
                throw CheckpointError(message: "\(weightsFile): \(error.description)")
            }
        }
        return Checkpoint(cursor: state.cursor, settings: state.settings, weights: weights)
    }
}
