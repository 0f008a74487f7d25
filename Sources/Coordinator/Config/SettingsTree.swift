import Foundation
import RLAIF
import Yams

/// `RunSettings` as a tree of keys, for overlaying YAML (and `--set key=value`) onto the defaults
/// with errors that name the key and the line. The defaults decide which keys exist and what kind
/// of value each takes; decoding the result into `RunSettings` checks integer versus fraction.
enum SettingsValue {
    case object([(String, SettingsValue)])
    case list([SettingsValue])
    case string(String)
    /// The number's text, emitted as is (keeps 64-bit seeds exact).
    case number(String)
    case bool(Bool)

    /// The defaults of every section (the method's and the deployment's), read from their JSON.
    static func defaults() -> SettingsValue {
        merging(RunSettings().json(), Deployment().json())
    }

    /// The sections of several JSON objects as one tree, keys in order.
    static func merging(_ objects: String...) -> SettingsValue {
        var fields: [(String, SettingsValue)] = []
        for text in objects {
            let json = try! JSONSerialization.jsonObject(with: Data(text.utf8))
            guard case .object(let own) = from(json: json, key: "", text: text) else { continue }
            fields += own
        }
        return .object(fields.sorted { $0.0 < $1.0 })
    }

    /// The dotted path of the first leaf where `other` differs from this tree; nil when equal.
    func firstDifference(from other: SettingsValue, prefix: String = "") -> String? {
        switch (self, other) {
        case (.object(let mine), .object(let theirs)):
            let byKey = Dictionary(theirs, uniquingKeysWith: { a, _ in a })
            for (key, value) in mine {
                let path = prefix.isEmpty ? key : "\(prefix).\(key)"
                guard let given = byKey[key] else { return path }
                if let found = value.firstDifference(from: given, prefix: path) { return found }
            }
            return nil
        default:
            return json() == other.json() ? nil : prefix
        }
    }

    /// A JSON object's text as a tree (an empty object when it is not one).
    static func parse(_ text: String) -> SettingsValue {
        guard let json = try? JSONSerialization.jsonObject(with: Data(text.utf8)) else { return .object([]) }
        return from(json: json, key: "", text: text)
    }

    /// `given` where it has a key, this tree's value where it has not.
    func filling(_ given: SettingsValue) -> SettingsValue {
        guard case .object(let fields) = self, case .object(let values) = given else { return given }
        let byKey = Dictionary(values, uniquingKeysWith: { a, _ in a })
        return .object(fields.map { key, value in (key, byKey[key].map { value.filling($0) } ?? value) })
    }

    private static func from(json: Any, key: String, text: String) -> SettingsValue {
        switch json {
        case let d as [String: Any]:
            return .object(d.keys.sorted().map { ($0, from(json: d[$0]!, key: $0, text: text)) })
        case let a as [Any]: return .list(a.map { from(json: $0, key: key, text: text) })
        case let s as String: return .string(s)
        case let n as NSNumber:
            // Foundation may hand booleans back as numbers: the JSON text tells them apart.
            if text.contains("\"\(key)\":true") { return .bool(true) }
            if text.contains("\"\(key)\":false") { return .bool(false) }
            return .number(n.stringValue)
        default: return .string("\(json)")
        }
    }

    var kindName: String {
        switch self {
        case .object: "a mapping"
        case .list: "a list"
        case .string: "a string"
        case .number: "a number"
        case .bool: "true or false"
        }
    }

    func json() -> String {
        switch self {
        case .object(let fields):
            return "{" + fields.map { "\(Self.quote($0.0)):\($0.1.json())" }.joined(separator: ",") + "}"
        case .list(let items): return "[" + items.map { $0.json() }.joined(separator: ",") + "]"
        case .string(let s): return Self.quote(s)
        case .number(let n): return n
        case .bool(let b): return b ? "true" : "false"
        }
    }

    private static func quote(_ s: String) -> String {
        let data = try! JSONSerialization.data(withJSONObject: [s], options: [])
        let text = String(decoding: data, as: UTF8.self)
        return String(text.dropFirst().dropLast())
    }

    /// This value with `node` laid over it; `lines` records where each key was set.
    func overlaid(with node: ConfigNode, lines: inout [String: Int]) throws(ConfigError) -> SettingsValue {
        if let line = node.node.mark?.line { lines[node.path] = line }
        switch self {
        case .object(let fields):
            let given = try node.mapping(allowed: Set(fields.map(\.0)))
            var out: [(String, SettingsValue)] = []
            for (key, value) in fields {
                if let child = given[key] {
                    out.append((key, try value.overlaid(with: child, lines: &lines)))
                } else {
                    out.append((key, value))
                }
            }
            return .object(out)
        case .list:
            return .list(try node.list().map { item throws(ConfigError) in .string(try item.string()) })
        case .string:
            return .string(try node.string())
        case .number:
            let text = try node.string().replacingOccurrences(of: "_", with: "")
            guard Double(text) != nil, !text.lowercased().contains("n"), !text.hasPrefix("+") else {
                throw node.error("must be a number, got \"\(text)\"")
            }
            // JSON has no leading '.', no leading zeros: normalize through Double unless an integer.
            if let i = Int64(text) { return .number(String(i)) }
            if let u = UInt64(text) { return .number(String(u)) }
            // An integer too large for any field stays as written, to be reported as it was given.
            if text.drop(while: { $0 == "-" }).allSatisfy({ $0.isASCII && $0.isNumber }) { return .number(text) }
            return .number("\(Double(text)!)")
        case .bool:
            switch try node.string().lowercased() {
            case "true", "yes", "on": return .bool(true)
            case "false", "no", "off": return .bool(false)
            default: throw node.error("must be true or false")
            }
        }
    }

    /// Every leaf (not a mapping) with its dotted path and its value as JSON, in key order.
    func leaves(prefix: String = "") -> [(path: String, value: String)] {
        guard case .object(let fields) = self else { return [(prefix, json())] }
        return fields.flatMap { $0.1.leaves(prefix: prefix.isEmpty ? $0.0 : "\(prefix).\($0.0)") }
    }

    /// Every number in the tree with its dotted path.
    func numbers(prefix: String = "") -> [(path: String, text: String)] {
        switch self {
        case .object(let fields):
            fields.flatMap { $0.1.numbers(prefix: prefix.isEmpty ? $0.0 : "\(prefix).\($0.0)") }
        case .number(let text): [(prefix, text)]
        case .list, .string, .bool: []
        }
    }

    /// This tree with the leaf at `path` replaced.
    func replacing(_ path: ArraySlice<String>, with leaf: SettingsValue) -> SettingsValue {
        guard let head = path.first, case .object(var fields) = self, let i = fields.firstIndex(where: { $0.0 == head })
        else { return leaf }
        fields[i].1 = fields[i].1.replacing(path.dropFirst(), with: leaf)
        return .object(fields)
    }

    /// Replaces the value at a dotted path (for `--set`).
    func setting(_ path: [String], to node: ConfigNode, lines: inout [String: Int]) throws(ConfigError) -> SettingsValue
    {
        guard let head = path.first else { return try overlaid(with: node, lines: &lines) }
        guard case .object(var fields) = self, let i = fields.firstIndex(where: { $0.0 == head }) else {
            throw ConfigError(file: ConfigError.overrides, line: nil, key: node.path, message: "is not a known key")
        }
        fields[i].1 = try fields[i].1.setting(Array(path.dropFirst()), to: node, lines: &lines)
        return .object(fields)
    }
}
