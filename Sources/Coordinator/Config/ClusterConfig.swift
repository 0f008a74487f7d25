import Foundation
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

    public var run: Run

    public static let defaults = ClusterConfig(run: Run(name: "rlaif-small", seed: 1234))

    /// Reads and validates the file at `path`.
    public static func load(path: String) throws(ConfigError) -> ClusterConfig {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw ConfigError(file: path, line: nil, key: "", message: "cannot be read: \(error.localizedDescription)")
        }
        return try parse(yaml: text, file: (path as NSString).lastPathComponent)
    }

    /// Parses YAML text; `file` names it in errors.
    public static func parse(yaml: String, file: String = "cluster.yaml") throws(ConfigError) -> ClusterConfig {
        let root: Node?
        do {
            root = try Yams.compose(yaml: yaml)
        } catch let error as YamlError {
            throw ConfigError(file: file, line: error.line, key: "", message: "is not valid YAML: \(error)")
        } catch {
            throw ConfigError(file: file, line: nil, key: "", message: "is not valid YAML: \(error)")
        }
        var config = defaults
        guard let root else { return config }  // an empty document: all defaults
        let document = try ConfigNode(root, path: "", file: file).mapping(allowed: ["run"])
        if let run = document["run"] {
            let fields = try run.mapping(allowed: ["name", "seed"])
            if let name = fields["name"] { config.run.name = try name.runName() }
            if let seed = fields["seed"] { config.run.seed = try seed.unsignedInteger() }
        }
        return config
    }
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
