import Foundation

/// Attributes, subscripts, operators: Python's semantics for the values templates hold.
extension TemplateEvaluator {
    static func attribute(_ base: TemplateValue, _ name: String) throws(TemplateError) -> TemplateValue {
        switch base {
        case .dict(let d): return d[name]
        case .namespace(let ns): return ns.attributes[name]
        case .undefined: throw TemplateError("chat template: .\(name) of an undefined value")
        default: return .undefined
        }
    }

    static func index(_ base: TemplateValue, _ index: TemplateValue) throws(TemplateError) -> TemplateValue {
        switch (base, index) {
        case (.dict(let d), _): return d[index.text]
        case (.namespace(let ns), _): return ns.attributes[index.text]
        case (.list(let l), .int(let i)):
            let k = i < 0 ? l.count + i : i
            return l.indices.contains(k) ? l[k] : .undefined
        case (.string(let s), .int(let i)):
            let chars = Array(s)
            let k = i < 0 ? chars.count + i : i
            return chars.indices.contains(k) ? .string(String(chars[k])) : .undefined
        case (.undefined, _): throw TemplateError("chat template: [\(index.repr)] of an undefined value")
        default: return .undefined
        }
    }

    /// Python's slice of a list or string: negative bounds count from the end, a negative step walks back.
    static func slice(_ base: TemplateValue, start: TemplateValue?, stop: TemplateValue?, step: TemplateValue?)
        throws(TemplateError) -> TemplateValue
    {
        func int(_ v: TemplateValue?) throws(TemplateError) -> Int? {
            switch v {
            case nil, .none?: return nil
            case .int(let i)?: return i
            default: throw TemplateError("chat template: slice bounds must be integers")
            }
        }
        let items: [TemplateValue]
        switch base {
        case .list(let l): items = l
        case .string(let s): items = s.map { .string(String($0)) }
        default: throw TemplateError("chat template: cannot slice \(base.typeName)")
        }
        let n = items.count
        let k = try int(step) ?? 1
        guard k != 0 else { throw TemplateError("chat template: slice step cannot be zero") }
        func clamp(_ v: Int?, _ low: Int, _ high: Int, _ fallback: Int) -> Int {
            guard let v else { return fallback }
            return min(max(v < 0 ? v + n : v, low), high)
        }
        var picked: [TemplateValue] = []
        if k > 0 {
            var i = clamp(try int(start), 0, n, 0)
            let end = clamp(try int(stop), 0, n, n)
            while i < end { picked.append(items[i]); i += k }
        } else {
            var i = clamp(try int(start), -1, n - 1, n - 1)
            let end = clamp(try int(stop), -1, n - 1, -1)
            while i > end { picked.append(items[i]); i += k }
        }
        if case .string = base { return .string(picked.map(\.text).joined()) }
        return .list(picked)
    }

    static func binary(_ op: String, _ a: TemplateValue, _ b: TemplateValue) throws(TemplateError) -> TemplateValue {
        switch op {
        case "==": return .bool(TemplateValue.equal(a, b))
        case "!=": return .bool(!TemplateValue.equal(a, b))
        case "<", ">", "<=", ">=": return .bool(try compare(op, a, b))
        case "in":
            switch b {
            case .string(let s):
                guard case .string(let needle) = a else {
                    throw TemplateError("chat template: 'in <string>' needs a string")
                }
                return .bool(needle.isEmpty || s.contains(needle))
            case .list(let l): return .bool(l.contains { TemplateValue.equal($0, a) })
            case .dict(let d): return .bool(d.contains(a.text))
            case .undefined: return .bool(false)
            default: throw TemplateError("chat template: 'in' needs a string, list or dict, got \(b.typeName)")
            }
        case "~": return .string(a.text + b.text)
        default: return try arithmetic(op, a, b)
        }
    }

    private static func compare(_ op: String, _ a: TemplateValue, _ b: TemplateValue) throws(TemplateError) -> Bool {
        let order: ComparisonResult
        switch (a, b) {
        case (.string(let x), .string(let y)):
            order = x < y ? .orderedAscending : x == y ? .orderedSame : .orderedDescending
        default:
            guard let x = number(a), let y = number(b) else {
                throw TemplateError("chat template: cannot compare \(a.typeName) and \(b.typeName) with \(op)")
            }
            order = x < y ? .orderedAscending : x == y ? .orderedSame : .orderedDescending
        }
        switch op {
        case "<": return order == .orderedAscending
        case ">": return order == .orderedDescending
        case "<=": return order != .orderedDescending
        default: return order != .orderedAscending
        }
    }

    static func number(_ v: TemplateValue) -> Double? {
        switch v {
        case .int(let i): Double(i)
        case .double(let d): d
        case .bool(let b): b ? 1 : 0
        default: nil
        }
    }

    static func arithmetic(_ op: String, _ a: TemplateValue, _ b: TemplateValue) throws(TemplateError) -> TemplateValue
    {
        switch (op, a, b) {
        case ("+", .string(let x), .string(let y)): return .string(x + y)
        case ("+", .list(let x), .list(let y)): return .list(x + y)
        case ("*", .string(let s), .int(let n)), ("*", .int(let n), .string(let s)):
            return .string(String(repeating: s, count: max(0, n)))
        case (_, .int(let x), .int(let y)) where op != "/":
            switch op {
            case "+": return .int(x + y)
            case "-": return .int(x - y)
            case "*": return .int(x * y)
            default:
                guard y != 0 else { throw TemplateError("chat template: division by zero") }
                let q = Int((Double(x) / Double(y)).rounded(.down))
                return .int(op == "//" ? q : x - q * y)
            }
        default:
            guard let x = number(a), let y = number(b) else {
                throw TemplateError("chat template: cannot apply \(op) to \(a.typeName) and \(b.typeName)")
            }
            switch op {
            case "+": return .double(x + y)
            case "-": return .double(x - y)
            case "*": return .double(x * y)
            case "/":
                guard y != 0 else { throw TemplateError("chat template: division by zero") }
                return .double(x / y)
            case "//": return .double((x / y).rounded(.down))
            default: return .double(x - (x / y).rounded(.down) * y)
            }
        }
    }
}
