/// Renders a template tree: Jinja's scoping (a loop body's `set` stays in the loop; a namespace
/// carries values out), its loop variables, and Python's semantics for the values.
struct TemplateEvaluator {
    enum Flow { case normal, breakLoop, continueLoop }

    private var scopes: [[String: TemplateValue]]
    private(set) var output = ""

    init(globals: [String: TemplateValue]) { scopes = [globals] }

    mutating func run(_ nodes: [TemplateNode]) throws(TemplateError) -> Flow {
        for node in nodes {
            switch node {
            case .text(let t): output += t
            case .output(let e): output += try evaluate(e).text
            case .conditional(let branches, let otherwise):
                var chosen = otherwise
                for (condition, body) in branches where try evaluate(condition).isTrue {
                    chosen = body
                    break
                }
                let flow = try run(chosen)
                if flow != .normal { return flow }
            case .forLoop(let targets, let iterable, let filter, let body, let otherwise):
                try loop(
                    targets: targets, over: try evaluate(iterable), filter: filter, body: body, otherwise: otherwise)
            case .assign(let name, let attribute, let value):
                let v = try evaluate(value)
                if let attribute {
                    guard case .namespace(let ns) = lookup(name) else {
                        throw TemplateError(
                            "chat template: {% set \(name).\(attribute) %} needs \(name) to be a namespace")
                    }
                    ns.attributes[attribute] = v
                } else {
                    scopes[scopes.count - 1][name] = v
                }
            case .breakLoop: return .breakLoop
            case .continueLoop: return .continueLoop
            }
        }
        return .normal
    }

    private mutating func loop(
        targets: [String], over value: TemplateValue, filter: TemplateExpression?, body: [TemplateNode],
        otherwise: [TemplateNode]
    ) throws(TemplateError) {
        var items = try Self.items(of: value)
        if let filter {
            var kept: [TemplateValue] = []
            for item in items {
                scopes.append(try Self.bind(targets, to: item))
                defer { scopes.removeLast() }
                if try evaluate(filter).isTrue { kept.append(item) }
            }
            items = kept
        }
        if items.isEmpty {
            _ = try run(otherwise)
            return
        }
        for (i, item) in items.enumerated() {
            var scope = try Self.bind(targets, to: item)
            let n = items.count
            scope["loop"] = .dict(
                TemplateDict([
                    ("index", .int(i + 1)), ("index0", .int(i)), ("first", .bool(i == 0)), ("last", .bool(i == n - 1)),
                    ("length", .int(n)), ("revindex", .int(n - i)), ("revindex0", .int(n - i - 1)),
                    ("previtem", i > 0 ? items[i - 1] : .undefined),
                    ("nextitem", i + 1 < n ? items[i + 1] : .undefined),
                ]))
            scopes.append(scope)
            let flow = try run(body)
            scopes.removeLast()
            if flow == .breakLoop { break }
        }
    }

    private static func bind(_ targets: [String], to item: TemplateValue) throws(TemplateError) -> [String:
        TemplateValue]
    {
        if targets.count == 1 { return [targets[0]: item] }
        guard case .list(let parts) = item, parts.count == targets.count else {
            throw TemplateError("chat template: cannot unpack \(item.repr) into \(targets.joined(separator: ", "))")
        }
        return Dictionary(uniqueKeysWithValues: zip(targets, parts))
    }

    static func items(of value: TemplateValue) throws(TemplateError) -> [TemplateValue] {
        switch value {
        case .list(let l): return l
        case .dict(let d): return d.keys.map { .string($0) }
        case .string(let s): return s.map { .string(String($0)) }
        case .undefined: return []
        default: throw TemplateError("chat template: cannot iterate over \(value.typeName) \(value.repr)")
        }
    }

    func lookup(_ name: String) -> TemplateValue {
        for scope in scopes.reversed() { if let v = scope[name] { return v } }
        return .undefined
    }

    // MARK: Expressions

    func evaluate(_ e: TemplateExpression) throws(TemplateError) -> TemplateValue {
        switch e {
        case .literal(let v): return v
        case .name(let n): return lookup(n)
        case .attribute(let base, let name): return try Self.attribute(try evaluate(base), name)
        case .index(let base, let index): return try Self.index(try evaluate(base), try evaluate(index))
        case .slice(let base, let start, let stop, let step):
            return try Self.slice(
                try evaluate(base), start: try start.map { e throws(TemplateError) in try evaluate(e) },
                stop: try stop.map { e throws(TemplateError) in try evaluate(e) },
                step: try step.map { e throws(TemplateError) in try evaluate(e) })
        case .call(let callee, let arguments, let keywords):
            return try call(callee, arguments: try values(arguments), keywords: try keywordValues(keywords))
        case .filter(let base, let name, let arguments, let keywords):
            return try filter(
                name, try evaluate(base), arguments: try values(arguments), keywords: try keywordValues(keywords))
        case .test(let base, let name, let negated, let arguments):
            let result = try test(name, try evaluate(base), arguments: try values(arguments))
            return .bool(result != negated)
        case .not(let x): return .bool(!(try evaluate(x).isTrue))
        case .negate(let x): return try Self.arithmetic("-", .int(0), try evaluate(x))
        case .and(let a, let b):
            let left = try evaluate(a)
            return left.isTrue ? try evaluate(b) : left
        case .or(let a, let b):
            let left = try evaluate(a)
            return left.isTrue ? left : try evaluate(b)
        case .binary(let op, let a, let b): return try Self.binary(op, try evaluate(a), try evaluate(b))
        case .conditional(let condition, let then, let otherwise):
            if try evaluate(condition).isTrue { return try evaluate(then) }
            return try otherwise.map { e throws(TemplateError) in try evaluate(e) } ?? .undefined
        case .list(let items): return .list(try values(items))
        case .dict(let pairs):
            var d = TemplateDict()
            for (k, v) in pairs { d[try evaluate(k).text] = try evaluate(v) }
            return .dict(d)
        }
    }

    func values(_ expressions: [TemplateExpression]) throws(TemplateError) -> [TemplateValue] {
        var out: [TemplateValue] = []
        for e in expressions { out.append(try evaluate(e)) }
        return out
    }

    func keywordValues(_ pairs: [(String, TemplateExpression)]) throws(TemplateError) -> [String: TemplateValue] {
        var out: [String: TemplateValue] = [:]
        for (k, e) in pairs { out[k] = try evaluate(e) }
        return out
    }
}
