/// Jinja expressions, by recursive descent in Jinja's precedence: conditional, or, and, not,
/// comparisons, `~`, `+ -`, `* / // %`, unary minus, then primaries with their postfixes
/// (attributes, subscripts, calls) and filters and tests.
struct TemplateExpressionParser {
    enum Token: Equatable {
        case name(String), string(String), int(Int), double(Double), symbol(String)
    }

    private var tokens: [Token]
    private var position = 0
    let line: Int

    init(_ source: String, line: Int) throws(TemplateError) {
        self.line = line
        tokens = try Self.tokenize(source, line: line)
    }

    var atEnd: Bool { position >= tokens.count }
    var next: Token? { atEnd ? nil : tokens[position] }

    func fail(_ what: String) -> TemplateError { TemplateError("chat template line \(line): \(what)") }

    mutating func take() -> Token? {
        defer { position += 1 }
        return next
    }

    mutating func accept(_ symbol: String) -> Bool {
        guard next == .symbol(symbol) || next == .name(symbol) else { return false }
        position += 1
        return true
    }

    mutating func expect(_ symbol: String) throws(TemplateError) {
        guard accept(symbol) else { throw fail("expected \(symbol), found \(describe(next))") }
    }

    mutating func name() throws(TemplateError) -> String {
        guard case .name(let n) = take() else { throw fail("expected a name, found \(describe(tokens[position - 1]))") }
        return n
    }

    func describe(_ token: Token?) -> String {
        switch token {
        case nil: "the end of the tag"
        case .name(let n): n
        case .string(let s): "'\(s)'"
        case .int(let i): String(i)
        case .double(let d): String(d)
        case .symbol(let s): s
        }
    }

    // MARK: Grammar

    mutating func expression() throws(TemplateError) -> TemplateExpression {
        let value = try or()
        guard accept("if") else { return value }
        let condition = try or()
        let otherwise = accept("else") ? try expression() : nil
        return .conditional(condition, then: value, otherwise: otherwise)
    }

    mutating func or() throws(TemplateError) -> TemplateExpression {
        var left = try and()
        while accept("or") { left = .or(left, try and()) }
        return left
    }

    private mutating func and() throws(TemplateError) -> TemplateExpression {
        var left = try not()
        while accept("and") { left = .and(left, try not()) }
        return left
    }

    private mutating func not() throws(TemplateError) -> TemplateExpression {
        if next == .name("not") {
            position += 1
            return .not(try not())
        }
        return try comparison()
    }

    private mutating func comparison() throws(TemplateError) -> TemplateExpression {
        var left = try concatenation()
        while true {
            if let op = ["==", "!=", "<", ">", "<=", ">="].first(where: { next == .symbol($0) }) {
                position += 1
                left = .binary(op, left, try concatenation())
            } else if accept("in") {
                left = .binary("in", left, try concatenation())
            } else if next == .name("not") && position + 1 < tokens.count && tokens[position + 1] == .name("in") {
                position += 2
                left = .not(.binary("in", left, try concatenation()))
            } else {
                return left
            }
        }
    }

    private mutating func concatenation() throws(TemplateError) -> TemplateExpression {
        var left = try sum()
        while accept("~") { left = .binary("~", left, try sum()) }
        return left
    }

    private mutating func sum() throws(TemplateError) -> TemplateExpression {
        var left = try product()
        while let op = ["+", "-"].first(where: { next == .symbol($0) }) {
            position += 1
            left = .binary(op, left, try product())
        }
        return left
    }

    private mutating func product() throws(TemplateError) -> TemplateExpression {
        var left = try unary()
        while let op = ["*", "/", "//", "%"].first(where: { next == .symbol($0) }) {
            position += 1
            left = .binary(op, left, try unary())
        }
        return left
    }

    private mutating func unary() throws(TemplateError) -> TemplateExpression {
        if accept("-") { return try filtersAndTests(.negate(try unary())) }
        if accept("+") { return try unary() }
        return try filtersAndTests(try postfix(try primary()))
    }

    private mutating func primary() throws(TemplateError) -> TemplateExpression {
        switch take() {
        case .string(var s):
            while case .string(let more) = next {  // adjacent literals join, as in Python
                s += more
                position += 1
            }
            return .literal(.string(s))
        case .int(let i): return .literal(.int(i))
        case .double(let d): return .literal(.double(d))
        case .name(let n):
            switch n {
            case "true", "True": return .literal(.bool(true))
            case "false", "False": return .literal(.bool(false))
            case "none", "None": return .literal(.none)
            default: return .name(n)
            }
        case .symbol("("):
            let inner = try expression()
            if accept(",") {  // a tuple: treated as a list
                var items = [inner]
                while !accept(")") {
                    items.append(try expression())
                    if !accept(",") { try expect(")"); break }
                }
                return .list(items)
            }
            try expect(")")
            return inner
        case .symbol("["):
            var items: [TemplateExpression] = []
            while !accept("]") {
                items.append(try expression())
                if !accept(",") { try expect("]"); break }
            }
            return .list(items)
        case .symbol("{"):
            var pairs: [(TemplateExpression, TemplateExpression)] = []
            while !accept("}") {
                let key = try expression()
                try expect(":")
                pairs.append((key, try expression()))
                if !accept(",") { try expect("}"); break }
            }
            return .dict(pairs)
        case let other: throw fail("unexpected \(describe(other))")
        }
    }

    private mutating func postfix(_ base: TemplateExpression) throws(TemplateError) -> TemplateExpression {
        var node = base
        while true {
            if accept(".") {
                node = .attribute(node, try name())
            } else if accept("[") {
                node = try subscriptOrSlice(node)
            } else if next == .symbol("(") {
                position += 1
                let (arguments, keywords) = try callArguments()
                node = .call(node, arguments: arguments, keywords: keywords)
            } else {
                return node
            }
        }
    }

    private mutating func subscriptOrSlice(_ base: TemplateExpression) throws(TemplateError) -> TemplateExpression {
        var parts: [TemplateExpression?] = [nil]
        while !accept("]") {
            if accept(":") {
                parts.append(nil)
            } else {
                guard parts[parts.count - 1] == nil else { throw fail("expected ] or :") }
                parts[parts.count - 1] = try expression()
            }
        }
        if parts.count == 1 {
            guard let index = parts[0] else { throw fail("empty subscript") }
            return .index(base, index)
        }
        guard parts.count <= 3 else { throw fail("a slice has at most three parts") }
        return .slice(base, start: parts[0], stop: parts[1], step: parts.count > 2 ? parts[2] : nil)
    }

    /// Arguments after an opening parenthesis, through the closing one.
    mutating func callArguments() throws(TemplateError) -> ([TemplateExpression], [(String, TemplateExpression)]) {
        var arguments: [TemplateExpression] = [], keywords: [(String, TemplateExpression)] = []
        while !accept(")") {
            if case .name(let n) = next, position + 1 < tokens.count, tokens[position + 1] == .symbol("=") {
                position += 2
                keywords.append((n, try expression()))
            } else {
                arguments.append(try expression())
            }
            if !accept(",") { try expect(")"); break }
        }
        return (arguments, keywords)
    }

    private mutating func filtersAndTests(_ base: TemplateExpression) throws(TemplateError) -> TemplateExpression {
        var node = base
        while true {
            if accept("|") {
                let filter = try name()
                var (arguments, keywords): ([TemplateExpression], [(String, TemplateExpression)]) = ([], [])
                if accept("(") { (arguments, keywords) = try callArguments() }
                node = .filter(node, name: filter, arguments: arguments, keywords: keywords)
            } else if accept("is") {
                let negated = accept("not")
                let test = try name()
                var arguments: [TemplateExpression] = []
                if accept("(") {
                    arguments = try callArguments().0
                } else if case .name(let n) = next, !["and", "or", "if", "else", "in", "is", "not"].contains(n) {
                    arguments = [try primary()]  // `is divisibleby 3`, `is sameas x`
                } else if case .int = next {
                    arguments = [try primary()]
                }
                node = .test(node, name: test, negated: negated, arguments: arguments)
            } else {
                return node
            }
        }
    }
}
