import Foundation
import Protocol
import RLAIF
import Yams

/// The run described by `cluster.yaml`. Every key has a default (`ClusterConfig.defaults`), so an
/// empty file is a valid small run; the file at the repository root spells the defaults out.
///
/// The schema grows with the coordinator and pipeline issues; unknown keys are errors, so a typo
/// never silently falls back to a default.
public struct ClusterConfig: Sendable, Equatable {
    public struct Run: Sendable, Equatable {
        /// Names the run directory (`runs/<name>`): letters, digits, `.`, `_` and `-`.
        public var name: String
        /// The root of every random stream of the run.
        public var seed: UInt64
    }

    /// CURVE keys of the cluster. Without them the cluster is open (and says so when it starts).
    public struct Keys: Sendable, Equatable {
        /// The coordinator's key pair, read from its secret key file.
        public var coordinator: CurveKeyPair
        public var coordinatorKeyFile: String
        /// Public keys of the workers allowed to join. The same list guards each worker's ring
        /// listener, so only these workers can send each other gradients.
        public var authorizedWorkers: Set<String>
        /// The secret key file of the workers `rlaif launch` starts (local ones, and remote ones,
        /// which read it at the same path on their host). Its public key is authorized.
        public var launchedWorkerKeyFile: String?
    }

    /// The run's name and seed (read from `settings.run`).
    public var run: Run { Run(name: settings.run.name, seed: settings.run.seed) }
    public var keys: Keys?
    /// The method's sections: run, task, model, labeler and the training sections.
    public var settings: RunSettings
    /// Where and how the cluster runs: the `coordinator` and `workers` sections.
    public var deployment: Deployment

    public static let defaults = ClusterConfig(keys: nil, settings: RunSettings(), deployment: Deployment())

    /// Every section but `keys` as one JSON object (what a run directory and its checkpoints
    /// record, so `rlaif resume` runs the same way); `init(json:)` reads it back.
    public func sectionsJSON() -> String {
        SettingsValue.merging(settings.json(), deployment.json()).json()
    }

    /// The first setting of the method (a dotted key) in which a recorded run's settings differ
    /// from these; nil when they are the same. Deployment sections may differ freely.
    public func firstSettingDifference(fromRecorded json: String) -> String? {
        guard let recorded = try? ClusterConfig(json: json) else { return "(the recorded settings cannot be read)" }
        return SettingsValue.parse(settings.json()).firstDifference(from: SettingsValue.parse(recorded.settings.json()))
    }

    /// The configuration `sectionsJSON()` recorded, without keys. A key added since the run was
    /// recorded takes its default (which keeps what the run did before the key existed).
    public init(json: String) throws {
        let filled = SettingsValue.defaults().filling(SettingsValue.parse(json)).json()
        self.init(keys: nil, settings: try RunSettings.fromJSON(filled), deployment: try Deployment.fromJSON(filled))
    }

    public init(keys: Keys?, settings: RunSettings, deployment: Deployment) {
        self.keys = keys
        self.settings = settings
        self.deployment = deployment
    }

    /// How the coordinator's listening socket admits workers.
    public var coordinatorSecurity: ListenerSecurity {
        keys.map { .curve(server: $0.coordinator, authorized: AuthorizedKeys($0.authorizedWorkers)) } ?? .open
    }

    /// Printed at start-up when the cluster has no keys.
    public static let openClusterWarning =
        "warning: the cluster is open: any process that reaches the coordinator's port can join. "
        + "Create keys with `rlaif keygen` and list them under `keys:` in cluster.yaml."

    /// Reads and validates the file at `path`.
    public static func load(path: String, overrides: [String] = []) throws(ConfigError) -> ClusterConfig {
        let reading = read(path: path, overrides: overrides)
        if let first = reading.problems.first { throw first }
        return reading.config!
    }

    /// `read(yaml:…)` of a file, or of the embedded defaults when `path` is nil.
    public static func read(path: String?, overrides: [String] = []) -> Reading {
        guard let path else { return read(yaml: "", file: "defaults", overrides: overrides) }
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            var reading = Reading()
            reading.problems = [
                ConfigError(file: path, line: nil, key: "", message: "cannot be read: \(error.localizedDescription)")
            ]
            return reading
        }
        let url = URL(fileURLWithPath: path)
        return read(
            yaml: text, file: url.lastPathComponent, baseDirectory: url.deletingLastPathComponent().path,
            overrides: overrides)
    }
}

extension ClusterConfig.Keys {
    /// What a run directory records of its keys (`keys.json`), so `rlaif resume` secures the run
    /// again: key file paths and public keys, never a secret.
    public struct References: Codable, Sendable, Equatable {
        public var coordinator: String
        public var workers: [String]
        public var worker: String?
    }

    public var references: References {
        References(coordinator: coordinatorKeyFile, workers: authorizedWorkers.sorted(), worker: launchedWorkerKeyFile)
    }

    /// The keys again from their files (`source` names the record in errors); an error names
    /// the key file that is gone or changed.
    public init(_ saved: References, source: String) throws(ConfigError) {
        do { coordinator = try CurveKeyPair.read(from: saved.coordinator) } catch {
            throw ConfigError(
                file: source, line: nil, key: "keys.coordinator", message: "cannot be used: \(error.message)")
        }
        coordinatorKeyFile = saved.coordinator
        authorizedWorkers = Set(saved.workers)
        launchedWorkerKeyFile = saved.worker
        if let file = saved.worker {
            do { authorizedWorkers.insert(try CurveKeyPair.read(from: file).publicKey) } catch {
                throw ConfigError(
                    file: source, line: nil, key: "keys.worker", message: "cannot be used: \(error.message)")
            }
        }
    }
}

func resolve(_ path: String, in base: String) -> String {
    path.hasPrefix("/") ? path : URL(fileURLWithPath: base).appendingPathComponent(path).path
}

extension YamlError {
    var line: Int? {
        switch self {
        case .scanner(_, _, let mark, _), .parser(_, _, let mark, _), .composer(_, _, let mark, _):
            return mark.line
        default:
            return nil
        }
    }
}
