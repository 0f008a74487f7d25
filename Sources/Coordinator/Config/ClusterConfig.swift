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
    /// Every section but `keys`: run, coordinator, workers and the training sections.
    public var settings: RunSettings

    public static let defaults = ClusterConfig(keys: nil, settings: RunSettings())

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
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw ConfigError(file: path, line: nil, key: "", message: "cannot be read: \(error.localizedDescription)")
        }
        let url = URL(fileURLWithPath: path)
        return try parse(
            yaml: text, file: url.lastPathComponent, baseDirectory: url.deletingLastPathComponent().path,
            overrides: overrides)
    }

    /// Parses YAML text; `file` names it in errors, and relative key paths are resolved against
    /// `baseDirectory` (the directory of the file).
    public static func parse(
        yaml: String, file: String = "cluster.yaml", baseDirectory: String = ".", overrides: [String] = []
    ) throws(ConfigError) -> ClusterConfig {
        let root: Node?
        do {
            root = try Yams.compose(yaml: yaml)
        } catch let error as YamlError {
            throw ConfigError(file: file, line: error.line, key: "", message: "is not valid YAML: \(error)")
        } catch {
            throw ConfigError(file: file, line: nil, key: "", message: "is not valid YAML: \(error)")
        }
        var config = defaults
        var tree = SettingsValue.defaults()
        var lines: [String: Int] = [:]
        guard case .object(let sections) = tree else { preconditionFailure("settings are an object") }
        var document: [String: ConfigNode] = [:]
        if let root {
            document = try ConfigNode(root, path: "", file: file).mapping(allowed: Set(sections.map(\.0) + ["keys"]))
            var fields = sections
            for (i, (name, value)) in fields.enumerated() {
                guard let node = document[name] else { continue }
                if name == "run" {
                    let run = try node.mapping(allowed: ["name", "seed", "directory", "method"])
                    if let n = run["name"] { _ = try n.runName() }
                    if let seed = run["seed"] { _ = try seed.unsignedInteger() }
                }
                fields[i].1 = try value.overlaid(with: node, lines: &lines)
            }
            tree = .object(fields)
        }
        for assignment in overrides {
            guard let eq = assignment.firstIndex(of: "="), eq != assignment.startIndex else {
                throw ConfigError(file: "--set", line: nil, key: assignment, message: "must be written key=value")
            }
            let key = String(assignment[..<eq]), value = String(assignment[assignment.index(after: eq)...])
            let node: Node
            do { node = try Yams.compose(yaml: value) ?? Node("") } catch {
                throw ConfigError(file: "--set", line: nil, key: key, message: "has a value that is not YAML: \(value)")
            }
            if key == "run.name" { _ = try ConfigNode(node, path: key, file: "--set").runName() }
            tree = try tree.setting(
                key.split(separator: ".").map(String.init), to: ConfigNode(node, path: key, file: "--set"),
                lines: &lines)
        }
        do {
            config.settings = try RunSettings.fromJSON(tree.json())
        } catch {
            // Foundation's decoder does not say which key held a fraction where a whole number
            // belongs: find it by trying each fractional number on its own.
            let defaults = SettingsValue.defaults()
            for (path, text) in tree.numbers() where Int64(text) == nil && UInt64(text) == nil {
                let alone = defaults.replacing(path.split(separator: ".").map(String.init)[...], with: .number(text))
                if (try? RunSettings.fromJSON(alone.json())) == nil {
                    throw ConfigError(file: file, line: lines[path], key: path, message: "must be a whole number, got \(text)")
                }
            }
            throw ConfigError(file: file, line: nil, key: "", message: "cannot be read: \(error)")
        }
        if let (key, message) = config.settings.violation() {
            // A required key that is absent is located where its section chose what needs it
            // (`labeler.kind: openai` for `labeler.url`), else at the section.
            let section = key.split(separator: ".").dropLast().joined(separator: ".")
            let line = lines[key] ?? lines[section + ".kind"] ?? lines[section]
            throw ConfigError(file: file, line: line, key: key, message: message)
        }
        // Data files are named relative to the config file; every process gets absolute paths.
        func dataFile(_ key: String, _ path: WritableKeyPath<RunSettings, String>) throws(ConfigError) {
            let value = config.settings[keyPath: path]
            guard !value.isEmpty else { return }
            let resolved = resolve(value, in: baseDirectory)
            guard FileManager.default.isReadableFile(atPath: resolved) else {
                throw ConfigError(file: file, line: lines[key], key: key, message: "names \(resolved), which cannot be read")
            }
            config.settings[keyPath: path] = resolved
        }
        if config.settings.task.kind == "jsonl" {
            try dataFile("task.prompts", \.task.prompts)
            try dataFile("task.demonstrations", \.task.demonstrations)
            try dataFile("task.held_out_prompts", \.task.heldOutPrompts)
        }
        try dataFile("labeler.few_shot", \.labeler.fewShot)
        if let keys = document["keys"] {
            let fields = try keys.mapping(allowed: ["coordinator", "workers", "worker"])
            guard let coordinator = fields["coordinator"], fields["workers"] != nil || fields["worker"] != nil else {
                throw keys.error(
                    "needs 'coordinator' (a secret key file) and the workers' keys: 'workers' (public keys allowed "
                        + "to join) and/or 'worker' (the secret key file of the workers rlaif launch starts)")
            }
            let pair: CurveKeyPair
            let secretFile = resolve(try coordinator.string(), in: baseDirectory)
            do { pair = try CurveKeyPair.read(from: secretFile) } catch {
                throw coordinator.error("cannot be used: \(error.message)")
            }
            var authorized = Set<String>()
            if let workers = fields["workers"] {
                for entry in try workers.list() {
                    let value = try entry.string()
                    let fileOrKey = CurveKeyPair.isValidKey(value) ? value : resolve(value, in: baseDirectory)
                    do { authorized.insert(try CurveKeyPair.publicKey(fileOrKey: fileOrKey)) } catch {
                        // Z85 uses YAML's special characters (? & * ! # …): an unquoted key parses as
                        // something else.
                        throw entry.error("cannot be used: \(error.message) (write a Z85 key in double quotes)")
                    }
                }
                if authorized.isEmpty && fields["worker"] == nil {
                    throw workers.error("must list at least one worker public key")
                }
            }
            var launchedWorkerKeyFile: String?
            if let worker = fields["worker"] {
                let file = resolve(try worker.string(), in: baseDirectory)
                do { authorized.insert(try CurveKeyPair.read(from: file).publicKey) } catch {
                    throw worker.error("cannot be used: \(error.message)")
                }
                launchedWorkerKeyFile = file
            }
            config.keys = Keys(
                coordinator: pair, coordinatorKeyFile: secretFile, authorizedWorkers: authorized,
                launchedWorkerKeyFile: launchedWorkerKeyFile)
        }
        return config
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
            throw ConfigError(file: source, line: nil, key: "keys.coordinator", message: "cannot be used: \(error.message)")
        }
        coordinatorKeyFile = saved.coordinator
        authorizedWorkers = Set(saved.workers)
        launchedWorkerKeyFile = saved.worker
        if let file = saved.worker {
            do { authorizedWorkers.insert(try CurveKeyPair.read(from: file).publicKey) } catch {
                throw ConfigError(file: source, line: nil, key: "keys.worker", message: "cannot be used: \(error.message)")
            }
        }
    }
}

private func resolve(_ path: String, in base: String) -> String {
    path.hasPrefix("/") ? path : URL(fileURLWithPath: base).appendingPathComponent(path).path
}

extension YamlError {
    fileprivate var line: Int? {
        switch self {
        case .scanner(_, _, let mark, _), .parser(_, _, let mark, _), .composer(_, _, let mark, _):
            return mark.line
        default:
            return nil
        }
    }
}
