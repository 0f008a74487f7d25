import Foundation
import Models
import Protocol
import RLAIF
import Yams

/// Reading `cluster.yaml` and `--set` overrides: YAML → a settings tree with the line of every
/// key → `RunSettings`, checked; then data file paths and keys. Every error names file, line, key.
extension ClusterConfig {
    /// Parses YAML text; `file` names it in errors, and relative key paths are resolved against
    /// `baseDirectory` (the directory of the file).
    public static func parse(
        yaml: String, file: String = "cluster.yaml", baseDirectory: String = ".", overrides: [String] = []
    ) throws(ConfigError) -> ClusterConfig {
        let reading = read(yaml: yaml, file: file, baseDirectory: baseDirectory, overrides: overrides)
        if let first = reading.problems.first { throw first }
        return reading.config!
    }

    /// What reading a configuration found: the configuration (nil when its values could not be
    /// read), every problem (`parse` stops at the first; a dry run reports them all) and where
    /// each setting's value came from.
    public struct Reading: Sendable {
        public var config: ClusterConfig?
        public var problems: [ConfigError] = []
        /// Every setting as (dotted key, value as JSON, origin: "default", "FILE:LINE" or "--set").
        public var origins: [(key: String, value: String, origin: String)] = []
    }

    /// Reads YAML text and overrides as `parse` does, going on past the checks that do not
    /// depend on one another (memory, data files, keys) to report every problem.
    public static func read(
        yaml: String, file: String = "cluster.yaml", baseDirectory: String = ".", overrides: [String] = []
    ) -> Reading {
        var reading = Reading()
        do throws(ConfigError) {
            let document = try Self.document(yaml, file: file)
            var origins = KeyOrigins(file: file)
            var tree = try Self.settingsTree(document, file: file, lines: &origins.lines)
            for assignment in overrides { try Self.apply(assignment, to: &tree, origins: &origins) }
            reading.origins = tree.leaves().map { ($0.path, $0.value, origins.origin(of: $0.path)) }
            var config = defaults
            (config.settings, config.deployment) = try Self.decode(tree, origins: origins)
            if let (key, message) = config.deployment.violation() ?? config.settings.violation() {
                // A required key that is absent is located where its section chose what needs it
                // (`labeler.kind: openai` for `labeler.url`), else at the section.
                let section = key.split(separator: ".").dropLast().joined(separator: ".")
                let located = [key, section + ".kind", section].first { origins.knows($0) } ?? key
                throw origins.error(at: located, key: key, message)
            }
            do throws(ConfigError) { try Self.checkMemory(config.settings, origins: origins) } catch {
                reading.problems.append(error)
            }
            do throws(ConfigError) {
                try Self.resolveDataFiles(&config.settings, baseDirectory: baseDirectory, origins: origins)
            } catch {
                reading.problems.append(error)
            }
            do throws(ConfigError) {
                if let keys = document["keys"] { config.keys = try Keys(keys, baseDirectory: baseDirectory) }
            } catch { reading.problems.append(error) }
            reading.config = config
        } catch {
            reading.problems.append(error)
        }
        return reading
    }

    /// The file's top-level sections ({} for an empty file).
    static func document(_ yaml: String, file: String) throws(ConfigError) -> [String: ConfigNode] {
        let root: Node?
        do {
            root = try Yams.compose(yaml: yaml)
        } catch let error as YamlError {
            throw ConfigError(file: file, line: error.line, key: "", message: "is not valid YAML: \(error)")
        } catch {
            throw ConfigError(file: file, line: nil, key: "", message: "is not valid YAML: \(error)")
        }
        guard let root else { return [:] }
        guard case .object(let sections) = SettingsValue.defaults() else {
            preconditionFailure("settings are an object")
        }
        return try ConfigNode(root, path: "", file: file).mapping(allowed: Set(sections.map(\.0) + ["keys"]))
    }

    /// The defaults overlaid with the file's sections; `lines` gets the line of every key.
    static func settingsTree(
        _ document: [String: ConfigNode], file: String, lines: inout [String: Int]
    ) throws(ConfigError) -> SettingsValue {
        guard case .object(var fields) = SettingsValue.defaults() else { preconditionFailure("settings are an object") }
        for (i, (name, value)) in fields.enumerated() {
            guard let node = document[name] else { continue }
            if name == "run" {
                let run = try node.mapping(allowed: ["name", "seed", "directory", "method"])
                if let n = run["name"] { _ = try n.runName() }
                if let seed = run["seed"] { _ = try seed.unsignedInteger() }
            }
            fields[i].1 = try value.overlaid(with: node, lines: &lines)
        }
        return .object(fields)
    }

    /// One `--set key=value`.
    static func apply(_ assignment: String, to tree: inout SettingsValue, origins: inout KeyOrigins)
        throws(ConfigError)
    {
        guard let eq = assignment.firstIndex(of: "="), eq != assignment.startIndex else {
            throw ConfigError(
                file: ConfigError.overrides, line: nil, key: assignment, message: "must be written key=value")
        }
        let key = String(assignment[..<eq]), value = String(assignment[assignment.index(after: eq)...])
        let node: Node
        do { node = try Yams.compose(yaml: value) ?? Node("") } catch {
            throw ConfigError(
                file: ConfigError.overrides, line: nil, key: key, message: "has a value that is not YAML: \(value)")
        }
        if key == "run.name" { _ = try ConfigNode(node, path: key, file: ConfigError.overrides).runName() }
        if key == "run.seed" { _ = try ConfigNode(node, path: key, file: ConfigError.overrides).unsignedInteger() }
        tree = try tree.setting(
            key.split(separator: ".").map(String.init), to: ConfigNode(node, path: key, file: ConfigError.overrides),
            lines: &origins.lines)
        origins.overridden.insert(key)
    }

    /// Where each key was given: a line of the file, or `--set` (which wins, as it is applied last).
    struct KeyOrigins {
        let file: String
        var lines: [String: Int] = [:]
        /// Keys `--set` gave, whole sections included.
        var overridden: Set<String> = []

        func isOverridden(_ key: String) -> Bool {
            overridden.contains { key == $0 || key.hasPrefix($0 + ".") }
        }

        func knows(_ key: String) -> Bool { lines[key] != nil || isOverridden(key) }

        /// Where `key`'s value came from: "--set", "FILE:LINE" or "default".
        func origin(of key: String) -> String {
            if isOverridden(key) { return "--set" }
            return lines[key].map { "\(file):\($0)" } ?? "default"
        }

        /// An error about `key`, located where `located` was given.
        func error(at located: String, key: String, _ message: String) -> ConfigError {
            if isOverridden(located) {
                return ConfigError(file: ConfigError.overrides, line: nil, key: key, message: message)
            }
            return ConfigError(file: file, line: lines[located], key: key, message: message)
        }
    }

    static func decode(_ tree: SettingsValue, origins: KeyOrigins) throws(ConfigError) -> (RunSettings, Deployment) {
        do {
            let json = tree.json()
            return (try RunSettings.fromJSON(json), try Deployment.fromJSON(json))
        } catch DecodingError.dataCorrupted(let context) where !context.codingPath.isEmpty {
            // A word outside a choice's (`SettingChoice`): the decoder names the key and the words.
            let key = context.codingPath.map { snakeCase($0.stringValue) }.joined(separator: ".")
            throw origins.error(at: key, key: key, context.debugDescription)
        } catch {
            // Foundation's decoder does not say which number did not fit its key (a fraction
            // where a whole number belongs, a negative seed): find it by trying each on its own.
            let defaults = SettingsValue.defaults()
            for (path, text) in tree.numbers() {
                let alone = defaults.replacing(path.split(separator: ".").map(String.init)[...], with: .number(text))
                guard
                    (try? RunSettings.fromJSON(alone.json())) == nil || (try? Deployment.fromJSON(alone.json())) == nil
                else { continue }
                let integer = text.drop(while: { $0 == "-" }).allSatisfy { $0.isASCII && $0.isNumber }
                let problem =
                    !integer
                    ? "must be a whole number"
                    : (text.hasPrefix("-") && Int64(text) != nil ? "must not be negative" : "is out of range")
                throw origins.error(at: path, key: path, "\(problem), got \(text)")
            }
            throw ConfigError(file: origins.file, line: nil, key: "", message: "cannot be read: \(error)")
        }
    }

    /// A model that cannot fit in this machine's memory is refused before any worker starts it
    /// (a context of 10 million grew workers to 8 GB until they were declared lost).
    static func checkMemory(_ settings: RunSettings, origins: KeyOrigins) throws(ConfigError) {
        guard settings.model.initDirectory.isEmpty else { return }  // the shape keys describe a fresh model only
        let needed = settings.workerMemoryEstimate, available = Double(ProcessInfo.processInfo.physicalMemory)
        guard needed > available else { return }
        func gib(_ bytes: Double) -> String { String(format: "%.1f GiB", bytes / Double(1 << 30)) }
        let key = ["model.context_length", "model.width", "model.layers"].first { origins.knows($0) } ?? "model.width"
        throw origins.error(
            at: key, key: key,
            "makes a model that needs at least \(gib(needed)) per worker (\(settings.gpt2Config.parameterCount) "
                + "parameters, three models with optimizer state, one micro-batch's attention), more than this "
                + "machine's \(gib(available)): lower model.context_length, model.width, model.layers or the micro-batches"
        )
    }

    /// `heartbeatTimeoutMs` → `heartbeat_timeout_ms`, as the keys are written in cluster.yaml.
    static func snakeCase(_ name: String) -> String {
        name.reduce(into: "") { out, c in out += c.isUppercase ? "_" + c.lowercased() : String(c) }
    }

    /// Data files are named relative to the config file; every process gets absolute paths.
    static func resolveDataFiles(_ settings: inout RunSettings, baseDirectory: String, origins: KeyOrigins)
        throws(ConfigError)
    {
        func dataFile(_ key: String, _ path: WritableKeyPath<RunSettings, String>) throws(ConfigError) {
            let value = settings[keyPath: path]
            guard !value.isEmpty else { return }
            let resolved = resolve(value, in: baseDirectory)
            guard FileManager.default.isReadableFile(atPath: resolved),
                let digest = try? DataDigests.digest(ofFile: resolved)
            else {
                throw origins.error(at: key, key: key, "names \(resolved), which cannot be read")
            }
            settings[keyPath: path] = resolved
            settings.task.dataDigests.removeAll { $0.key == key }
            settings.task.dataDigests.append(.init(key: key, sha256: digest))
        }
        if settings.task.kind == .jsonl {
            try dataFile("task.prompts", \.task.prompts)
            try dataFile("task.demonstrations", \.task.demonstrations)
            try dataFile("task.held_out_prompts", \.task.heldOutPrompts)
            try dataFile("task.preferences", \.task.preferences)
        }
        try dataFile("labeler.few_shot", \.labeler.fewShot)
        try resolveInitDirectory(&settings, baseDirectory: baseDirectory, origins: origins)
    }

    /// `model.init`: an absolute path, a directory rlaif can read (config, tokenizer, chat
    /// template), and the SHA-256 of its files, which a resume and every worker check.
    static func resolveInitDirectory(_ settings: inout RunSettings, baseDirectory: String, origins: KeyOrigins)
        throws(ConfigError)
    {
        guard !settings.model.initDirectory.isEmpty else { return }
        let key = "model.init"
        let resolved = resolve(settings.model.initDirectory, in: baseDirectory)
        settings.model.initDirectory = resolved
        do {
            let model = try RunModel(settings: settings)
            _ = try RunModel.parameterCount(settings)
            if let tokenizer = model.tokenizer as? HuggingFaceTokenizer {
                do { _ = try tokenizer.settings.parsedChatTemplate() } catch {
                    throw ModelError(message: "\(resolved)/tokenizer_config.json: \(error.message)")
                }
            }
            settings.model.initDigest = try RunModel.digest(of: URL(fileURLWithPath: resolved))
        } catch let error as ModelError {
            throw origins.error(at: key, key: key, "cannot start from \(resolved): \(error.message)")
        } catch {
            throw origins.error(at: key, key: key, "cannot read \(resolved): \(error.localizedDescription)")
        }
    }
}

extension ClusterConfig.Keys {
    /// The `keys` section: the coordinator's secret key file and the workers' keys.
    init(_ keys: ConfigNode, baseDirectory: String) throws(ConfigError) {
        let fields = try keys.mapping(allowed: ["coordinator", "workers", "worker"])
        guard let coordinator = fields["coordinator"], fields["workers"] != nil || fields["worker"] != nil else {
            throw keys.error(
                "needs 'coordinator' (a secret key file) and the workers' keys: 'workers' (public keys allowed "
                    + "to join) and/or 'worker' (the secret key file of the workers rlaif launch starts)")
        }
        let secretFile = resolve(try coordinator.string(), in: baseDirectory)
        do { self.coordinator = try CurveKeyPair.read(from: secretFile) } catch {
            throw coordinator.error("cannot be used: \(error.message)")
        }
        coordinatorKeyFile = secretFile
        authorizedWorkers = []
        if let workers = fields["workers"] {
            for entry in try workers.list() {
                let value = try entry.string()
                let fileOrKey = CurveKeyPair.isValidKey(value) ? value : resolve(value, in: baseDirectory)
                do { authorizedWorkers.insert(try CurveKeyPair.publicKey(fileOrKey: fileOrKey)) } catch {
                    // Z85 uses YAML's special characters (? & * ! # …): an unquoted key parses as
                    // something else.
                    throw entry.error("cannot be used: \(error.message) (write a Z85 key in double quotes)")
                }
            }
            if authorizedWorkers.isEmpty && fields["worker"] == nil {
                throw workers.error("must list at least one worker public key")
            }
        }
        launchedWorkerKeyFile = nil
        if let worker = fields["worker"] {
            let file = resolve(try worker.string(), in: baseDirectory)
            do { authorizedWorkers.insert(try CurveKeyPair.read(from: file).publicKey) } catch {
                throw worker.error("cannot be used: \(error.message)")
            }
            launchedWorkerKeyFile = file
        }
    }
}
