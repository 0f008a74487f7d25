import Yams

/// A YAML node with the dotted key path that led to it, so every typed read can fail with an
/// error that names the key and the line.
struct ConfigNode {
    let node: Node
    let path: String
    let file: String

    init(_ node: Node, path: String, file: String) {
        self.node = node
        self.path = path
        self.file = file
    }

    func error(_ message: String) -> ConfigError {
        ConfigError(
            file: file, line: file == ConfigError.overrides ? nil : node.mark?.line, key: path, message: message)
    }

    /// The entries of a mapping, keyed by name; any key outside `allowed` is an error.
    func mapping(allowed: Set<String>) throws(ConfigError) -> [String: ConfigNode] {
        guard case .mapping(let mapping) = node else {
            throw error("must be a mapping of \(allowed.sorted().joined(separator: ", "))")
        }
        var out: [String: ConfigNode] = [:]
        for (key, value) in mapping {
            let name = key.string ?? ""
            let childPath = path.isEmpty ? name : "\(path).\(name)"
            guard allowed.contains(name) else {
                throw ConfigError(
                    file: file, line: key.mark?.line, key: childPath,
                    message: "is not a known key; expected one of \(allowed.sorted().joined(separator: ", "))")
            }
            guard out[name] == nil else {
                throw ConfigError(file: file, line: key.mark?.line, key: childPath, message: "appears twice")
            }
            out[name] = ConfigNode(value, path: childPath, file: file)
        }
        return out
    }

    /// The items of a sequence, each with its index in the path (`keys.workers[1]`).
    func list() throws(ConfigError) -> [ConfigNode] {
        guard case .sequence(let items) = node else { throw error("must be a list, got \(describe())") }
        return items.enumerated().map { ConfigNode($1, path: "\(path)[\($0)]", file: file) }
    }

    private var scalarText: String? {
        if case .scalar(let s) = node { return s.string }
        return nil
    }

    func unsignedInteger() throws(ConfigError) -> UInt64 {
        guard let text = scalarText, let value = UInt64(text.replacingOccurrences(of: "_", with: "")) else {
            throw error("must be a non-negative integer, got \(describe())")
        }
        return value
    }

    func string() throws(ConfigError) -> String {
        guard let text = scalarText else { throw error("must be a string, got \(describe())") }
        return text
    }

    /// A name usable as a directory: 1–100 of letters, digits, `.`, `_`, `-`, not starting with `.`.
    func runName() throws(ConfigError) -> String {
        let name = try string()
        let allowed = name.unicodeScalars.allSatisfy {
            ($0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0)))
                || "._-".unicodeScalars.contains($0)
        }
        guard !name.isEmpty, name.count <= 100, allowed, !name.hasPrefix(".") else {
            throw error("must be 1–100 letters, digits, '.', '_' or '-' (not starting with '.'), got \(describe())")
        }
        return name
    }

    private func describe() -> String {
        switch node {
        case .scalar(let s): "\"\(s.string)\""
        case .mapping: "a mapping"
        case .sequence: "a list"
        case .alias: "an alias"
        }
    }
}
