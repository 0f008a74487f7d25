/// The functions, methods, filters and tests real chat templates call. Anything else is refused
/// by name, so a template never renders differently from transformers without saying so.
extension TemplateEvaluator {
    func call(_ callee: TemplateExpression, arguments: [TemplateValue], keywords: [String: TemplateValue])
        throws(TemplateError) -> TemplateValue
    {
        if case .attribute(let base, let method) = callee {
            return try Self.method(method, of: try evaluate(base), arguments: arguments)
        }
        guard case .name(let name) = callee else {
            throw TemplateError("chat template: only named functions can be called")
        }
        switch name {
        case "raise_exception": throw TemplateError.raised(arguments.first?.text ?? "")
        case "namespace":
            var attributes = TemplateDict()
            if case .dict(let d)? = arguments.first { for k in d.keys { attributes[k] = d[k] } }
            for k in keywords.keys.sorted() { attributes[k] = keywords[k]! }
            return .namespace(TemplateNamespace(attributes))
        case "range":
            let bounds = arguments.compactMap { v -> Int? in if case .int(let i) = v { i } else { nil } }
            guard bounds.count == arguments.count, (1...3).contains(bounds.count) else {
                throw TemplateError("chat template: range() takes one to three integers")
            }
            let (start, stop, step) =
                bounds.count == 1 ? (0, bounds[0], 1) : (bounds[0], bounds[1], bounds.count == 3 ? bounds[2] : 1)
            guard step != 0 else { throw TemplateError("chat template: range() step cannot be zero") }
            return .list(stride(from: start, to: stop, by: step).map { .int($0) })
        default:
            if case .undefined = lookup(name) {
                throw TemplateError("chat template: function \(name)() is not supported")
            }
            throw TemplateError("chat template: \(name) cannot be called")
        }
    }

    static func method(_ name: String, of base: TemplateValue, arguments: [TemplateValue]) throws(TemplateError)
        -> TemplateValue
    {
        switch (base, name) {
        case (.string(let s), "strip"), (.string(let s), "lstrip"), (.string(let s), "rstrip"):
            let set = arguments.first.map { Set($0.text) }
            let strip: (Character) -> Bool = { set?.contains($0) ?? $0.isWhitespace }
            var out = Substring(s)
            if name != "rstrip" { out = out.drop(while: strip) }
            if name != "lstrip" { while let last = out.last, strip(last) { out.removeLast() } }
            return .string(String(out))
        case (.string(let s), "startswith"), (.string(let s), "endswith"):
            let options: [TemplateValue] =
                if case .list(let l)? = arguments.first { l } else { Array(arguments.prefix(1)) }
            return .bool(options.contains { name == "startswith" ? s.hasPrefix($0.text) : s.hasSuffix($0.text) })
        case (.string(let s), "upper"): return .string(s.uppercased())
        case (.string(let s), "lower"): return .string(s.lowercased())
        case (.string(let s), "title"): return .string(title(s))
        case (.string(let s), "capitalize"): return .string(capitalize(s))
        case (.string(let s), "replace"):
            guard arguments.count == 2 else { throw TemplateError("chat template: replace() takes two strings") }
            return .string(s.replacingOccurrences(of: arguments[0].text, with: arguments[1].text))
        case (.string(let s), "split"):
            if let separator = arguments.first, case .string(let sep) = separator {
                return .list(s.components(separatedBy: sep).map { .string($0) })
            }
            return .list(s.split(whereSeparator: \.isWhitespace).map { .string(String($0)) })
        case (.string(let s), "join"):
            return .string(try items(of: arguments.first ?? .list([])).map(\.text).joined(separator: s))
        case (.dict(let d), "items"): return .list(d.keys.map { .list([.string($0), d[$0]]) })
        case (.dict(let d), "keys"): return .list(d.keys.map { .string($0) })
        case (.dict(let d), "values"): return .list(d.keys.map { d[$0] })
        case (.dict(let d), "get"):
            guard let key = arguments.first else { throw TemplateError("chat template: get() needs a key") }
            let v = d[key.text]
            if case .undefined = v { return arguments.count > 1 ? arguments[1] : .none }
            return v
        default: throw TemplateError("chat template: method \(name)() of \(base.typeName) is not supported")
        }
    }

    static func title(_ s: String) -> String {
        var out = "", previousLetter = false
        for c in s {
            out += previousLetter ? c.lowercased() : c.uppercased()
            previousLetter = c.isLetter
        }
        return out
    }

    static func capitalize(_ s: String) -> String {
        guard let first = s.first else { return s }
        return first.uppercased() + s.dropFirst().lowercased()
    }

    func filter(_ name: String, _ value: TemplateValue, arguments: [TemplateValue], keywords: [String: TemplateValue])
        throws(TemplateError) -> TemplateValue
    {
        switch name {
        case "trim": return try Self.method("strip", of: .string(value.text), arguments: arguments)
        case "upper", "lower", "title", "capitalize":
            return try Self.method(name, of: .string(value.text), arguments: [])
        case "length", "count":
            switch value {
            case .string(let s): return .int(s.count)
            case .list(let l): return .int(l.count)
            case .dict(let d): return .int(d.keys.count)
            default: throw TemplateError("chat template: |length of \(value.typeName)")
            }
        case "first", "last":
            let items = try Self.items(of: value)
            return (name == "first" ? items.first : items.last) ?? .undefined
        case "join":
            let separator = arguments.first?.text ?? keywords["d"]?.text ?? ""
            return .string(try Self.items(of: value).map(\.text).joined(separator: separator))
        case "default", "d":
            let boolean = (arguments.count > 1 ? arguments[1] : keywords["boolean"] ?? .bool(false)).isTrue
            if case .undefined = value { return arguments.first ?? .string("") }
            return boolean && !value.isTrue ? arguments.first ?? .string("") : value
        case "tojson":
            let indent: Int? = if case .int(let i)? = arguments.first ?? keywords["indent"] { i } else { nil }
            return .string(value.json(indent: indent))
        case "string": return .string(value.text)
        case "int": return .int(Self.number(value).map { Int($0) } ?? Int(value.text) ?? 0)
        case "float": return .double(Self.number(value) ?? Double(value.text) ?? 0)
        case "list": return .list(try Self.items(of: value))
        case "reverse":
            if case .string(let s) = value { return .string(String(s.reversed())) }
            return .list(try Self.items(of: value).reversed())
        case "replace":
            guard arguments.count == 2 else { throw TemplateError("chat template: |replace takes two strings") }
            return .string(value.text.replacingOccurrences(of: arguments[0].text, with: arguments[1].text))
        case "items": return try Self.method("items", of: value, arguments: [])
        case "selectattr", "rejectattr", "map":
            return try attributeFilter(name, value, arguments: arguments, keywords: keywords)
        case "safe": return value
        default: throw TemplateError("chat template: filter |\(name) is not supported")
        }
    }

    /// selectattr/rejectattr (by an attribute's truth or a test on it) and map(attribute=).
    private func attributeFilter(
        _ name: String, _ value: TemplateValue, arguments: [TemplateValue], keywords: [String: TemplateValue]
    ) throws(TemplateError) -> TemplateValue {
        var out: [TemplateValue] = []
        if name == "map" {
            guard let attribute = keywords["attribute"]?.text else {
                throw TemplateError("chat template: |map is supported with attribute= only")
            }
            for item in try Self.items(of: value) { out.append(try Self.attribute(item, attribute)) }
            return .list(out)
        }
        guard let attribute = arguments.first?.text else {
            throw TemplateError("chat template: |\(name) needs an attribute")
        }
        for item in try Self.items(of: value) {
            let field = try Self.attribute(item, attribute)
            let passes =
                arguments.count > 1
                ? try test(arguments[1].text, field, arguments: Array(arguments.dropFirst(2))) : field.isTrue
            if passes == (name == "selectattr") { out.append(item) }
        }
        return .list(out)
    }

    func test(_ name: String, _ value: TemplateValue, arguments: [TemplateValue]) throws(TemplateError) -> Bool {
        switch name {
        case "defined": if case .undefined = value { return false } else { return true }
        case "undefined": if case .undefined = value { return true } else { return false }
        case "none": if case .none = value { return true } else { return false }
        case "string": if case .string = value { return true } else { return false }
        case "number":
            if case .int = value { return true } else if case .double = value { return true } else { return false }
        case "integer": if case .int = value { return true } else { return false }
        case "float": if case .double = value { return true } else { return false }
        case "boolean": if case .bool = value { return true } else { return false }
        case "mapping": if case .dict = value { return true } else { return false }
        case "sequence", "iterable":
            switch value {
            case .list, .string, .dict: return true
            default: return false
            }
        case "true": if case .bool(true) = value { return true } else { return false }
        case "false": if case .bool(false) = value { return true } else { return false }
        case "odd", "even":
            guard case .int(let i) = value else { throw TemplateError("chat template: '\(name)' needs an integer") }
            return (i % 2 != 0) == (name == "odd")
        case "divisibleby":
            guard case .int(let i) = value, case .int(let n)? = arguments.first, n != 0 else {
                throw TemplateError("chat template: 'divisibleby' needs integers")
            }
            return i % n == 0
        case "equalto", "eq", "==", "sameas": return TemplateValue.equal(value, arguments.first ?? .undefined)
        case "ne", "!=": return !TemplateValue.equal(value, arguments.first ?? .undefined)
        case "in": return try Self.binary("in", value, arguments.first ?? .undefined).isTrue
        default: throw TemplateError("chat template: test 'is \(name)' is not supported")
        }
    }
}
