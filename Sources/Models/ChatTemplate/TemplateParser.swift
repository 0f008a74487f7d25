/// Statements into a tree: for (with `else` and a filter), if/elif/else, set (names and
/// namespace attributes), break and continue. Any other statement is refused by name.
enum TemplateParser {
    static func parse(_ source: String) throws(TemplateError) -> [TemplateNode] {
        var segments = try TemplateLexer.segments(source)[...]
        let (nodes, end) = try block(&segments, until: [])
        if let end { throw TemplateError("chat template line \(end.line): \(end.keyword) without its opening tag") }
        return nodes
    }

    struct BlockEnd {
        let keyword: String, line: Int
        var parser: TemplateExpressionParser
    }

    /// Nodes up to a statement whose keyword is in `until` (returned), or the end of the input.
    private static func block(_ segments: inout ArraySlice<TemplateLexer.Segment>, until: Set<String>)
        throws(TemplateError) -> ([TemplateNode], BlockEnd?)
    {
        var nodes: [TemplateNode] = []
        while let segment = segments.popFirst() {
            switch segment {
            case .text(let t): nodes.append(.text(t))
            case .output(let body, let line):
                var p = try TemplateExpressionParser(body, line: line)
                let e = try p.expression()
                guard p.atEnd else { throw p.fail("unexpected \(p.describe(p.next)) in {{ }}") }
                nodes.append(.output(e))
            case .statement(let body, let line):
                var p = try TemplateExpressionParser(body, line: line)
                let keyword = try p.name()
                if until.contains(keyword) { return (nodes, BlockEnd(keyword: keyword, line: line, parser: p)) }
                nodes.append(try statement(keyword, &p, &segments, line: line))
            }
        }
        return (nodes, nil)
    }

    private static func statement(
        _ keyword: String, _ p: inout TemplateExpressionParser, _ segments: inout ArraySlice<TemplateLexer.Segment>,
        line: Int
    ) throws(TemplateError) -> TemplateNode {
        switch keyword {
        case "for":
            var targets = [try p.name()]
            while p.accept(",") { targets.append(try p.name()) }
            try p.expect("in")
            let iterable = try p.or()  // a trailing `if` filters the loop
            let filter = p.accept("if") ? try p.expression() : nil
            guard p.atEnd else { throw p.fail("{% for %} options such as \(p.describe(p.next)) are not supported") }
            var (body, end) = try block(&segments, until: ["else", "endfor"])
            var otherwise: [TemplateNode] = []
            if end?.keyword == "else" { (otherwise, end) = try block(&segments, until: ["endfor"]) }
            guard end?.keyword == "endfor" else { throw p.fail("{% for %} is never closed") }
            return .forLoop(targets: targets, iterable: iterable, filter: filter, body: body, otherwise: otherwise)
        case "if":
            var branches: [(TemplateExpression, [TemplateNode])] = []
            var condition = try p.expression()
            while true {
                let (body, end) = try block(&segments, until: ["elif", "else", "endif"])
                branches.append((condition, body))
                guard var end else { throw p.fail("{% if %} is never closed") }
                switch end.keyword {
                case "elif": condition = try end.parser.expression()
                case "else":
                    let (otherwise, close) = try block(&segments, until: ["endif"])
                    guard close != nil else { throw p.fail("{% if %} is never closed") }
                    return .conditional(branches: branches, otherwise: otherwise)
                default: return .conditional(branches: branches, otherwise: [])
                }
            }
        case "set":
            let name = try p.name()
            let attribute = p.accept(".") ? try p.name() : nil
            guard p.accept("=") else {
                throw p.fail("{% set %} blocks are not supported; write {% set name = value %}")
            }
            let value = try p.expression()
            guard p.atEnd else { throw p.fail("unexpected \(p.describe(p.next)) in {% set %}") }
            return .assign(name: name, attribute: attribute, value: value)
        case "break": return .breakLoop
        case "continue": return .continueLoop
        default:
            throw TemplateError("chat template line \(line): {% \(keyword) %} is not supported")
        }
    }
}
