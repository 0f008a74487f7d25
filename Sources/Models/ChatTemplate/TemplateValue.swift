import Foundation

/// A value inside a chat template: what Jinja's Python objects are to the templates that
/// transformers renders (None, booleans, numbers, strings, lists, dicts in insertion order,
/// namespaces, and Undefined for a missing name or key).
public indirect enum TemplateValue: Sendable {
    case undefined
    case none
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case list([TemplateValue])
    case dict(TemplateDict)
    case namespace(TemplateNamespace)

    /// Jinja's truth: none, undefined, false, 0, and empty strings, lists and dicts are false.
    var isTrue: Bool {
        switch self {
        case .undefined, .none: false
        case .bool(let b): b
        case .int(let i): i != 0
        case .double(let d): d != 0
        case .string(let s): !s.isEmpty
        case .list(let l): !l.isEmpty
        case .dict(let d): !d.keys.isEmpty
        case .namespace: true
        }
    }

    /// The text `{{ value }}` prints, as Python's str() of the value (undefined prints nothing).
    var text: String {
        switch self {
        case .undefined: ""
        case .string(let s): s
        default: repr
        }
    }

    /// Python's repr(): how a value prints inside a list or dict.
    var repr: String {
        switch self {
        case .undefined: ""
        case .none: "None"
        case .bool(let b): b ? "True" : "False"
        case .int(let i): String(i)
        case .double(let d): d == d.rounded() && abs(d) < 1e16 ? String(format: "%.1f", d) : String(d)
        case .string(let s):
            "'" + s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "'", with: "\\'") + "'"
        case .list(let l): "[" + l.map(\.repr).joined(separator: ", ") + "]"
        case .dict(let d): "{" + d.keys.map { "'\($0)': \(d[$0].repr)" }.joined(separator: ", ") + "}"
        case .namespace: "<Namespace>"
        }
    }

    var typeName: String {
        switch self {
        case .undefined: "undefined"
        case .none: "none"
        case .bool: "boolean"
        case .int, .double: "number"
        case .string: "string"
        case .list: "list"
        case .dict: "dict"
        case .namespace: "namespace"
        }
    }

    /// Python's ==: numbers by value across int and float, containers element by element.
    static func equal(_ a: TemplateValue, _ b: TemplateValue) -> Bool {
        switch (a, b) {
        case (.undefined, .undefined), (.none, .none): true
        case (.bool(let x), .bool(let y)): x == y
        case (.int(let x), .int(let y)): x == y
        case (.int(let x), .double(let y)), (.double(let y), .int(let x)): Double(x) == y
        case (.double(let x), .double(let y)): x == y
        case (.string(let x), .string(let y)): x == y
        case (.list(let x), .list(let y)): x.count == y.count && zip(x, y).allSatisfy { equal($0, $1) }
        case (.dict(let x), .dict(let y)):
            x.keys == y.keys && x.keys.allSatisfy { equal(x[$0], y[$0]) }
        case (.namespace(let x), .namespace(let y)): x === y
        default: false
        }
    }

    /// A value from JSON-like Swift data ([String: Any], [Any], String, numbers, Bool, NSNull).
    public init(json: Any?) {
        switch json {
        case nil, is NSNull: self = .none
        case let b as Bool: self = .bool(b)
        case let i as Int: self = .int(i)
        case let d as Double: self = .double(d)
        case let s as String: self = .string(s)
        case let l as [Any]: self = .list(l.map { TemplateValue(json: $0) })
        case let d as [String: Any]:
            self = .dict(TemplateDict(d.keys.sorted().map { ($0, TemplateValue(json: d[$0])) }))
        default: self = .string("\(json!)")
        }
    }

    /// JSON text, as the `tojson` filter writes it (Python's json.dumps with its default separators).
    func json(indent: Int?, level: Int = 0) -> String {
        let pad = indent.map { "\n" + String(repeating: " ", count: $0 * (level + 1)) } ?? ""
        let close = indent.map { "\n" + String(repeating: " ", count: $0 * level) } ?? ""
        let comma = indent == nil ? ", " : ","
        switch self {
        case .undefined, .none: return "null"
        case .bool(let b): return b ? "true" : "false"
        case .int, .double: return repr
        case .string(let s): return Self.quoted(s)
        case .list(let l):
            guard !l.isEmpty else { return "[]" }
            return "[" + l.map { pad + $0.json(indent: indent, level: level + 1) }.joined(separator: comma) + close
                + "]"
        case .dict(let d):
            guard !d.keys.isEmpty else { return "{}" }
            let items = d.keys.map { pad + Self.quoted($0) + ": " + d[$0].json(indent: indent, level: level + 1) }
            return "{" + items.joined(separator: comma) + close + "}"
        case .namespace: return "null"
        }
    }

    private static func quoted(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20: out += String(format: "\\u%04x", scalar.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}

/// A dict that keeps its keys in insertion order, as Python's does.
public struct TemplateDict: Sendable {
    public private(set) var keys: [String] = []
    private var values: [String: TemplateValue] = [:]

    public init(_ pairs: [(String, TemplateValue)] = []) { for (k, v) in pairs { self[k] = v } }

    public subscript(key: String) -> TemplateValue {
        get { values[key] ?? .undefined }
        set {
            if values[key] == nil { keys.append(key) }
            values[key] = newValue
        }
    }

    func contains(_ key: String) -> Bool { values[key] != nil }
}

/// Jinja's `namespace(...)`: the one mutable object templates use to carry values out of loops.
public final class TemplateNamespace: @unchecked Sendable {
    var attributes: TemplateDict
    init(_ attributes: TemplateDict) { self.attributes = attributes }
}
