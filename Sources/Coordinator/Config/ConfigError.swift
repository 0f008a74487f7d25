/// A problem in `cluster.yaml`, located by file, line and dotted key, worded for the person
/// running rlaif: `cluster.yaml:3: run.seed must be a non-negative integer, got "abc"`.
public struct ConfigError: Error, CustomStringConvertible, Equatable, Sendable {
    public let file: String
    /// 1-based line, when the problem has a place in the file.
    public let line: Int?
    /// Dotted path of the key, e.g. `run.seed`; empty for the document itself.
    public let key: String
    public let message: String

    public var description: String {
        // An override is named as the user typed it: `--set run.seed must be …`.
        if file == Self.overrides { return key.isEmpty ? "--set: \(message)" : "--set \(key) \(message)" }
        let place = line.map { "\(file):\($0)" } ?? file
        return key.isEmpty ? "\(place): \(message)" : "\(place): \(key) \(message)"
    }

    /// The `file` of an error in a `--set` override.
    public static let overrides = "--set"
}
