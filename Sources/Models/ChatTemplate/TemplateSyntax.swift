/// A chat template that cannot be read or rendered, in a sentence that names the construct and
/// where it is.
public struct TemplateError: Error, CustomStringConvertible, Equatable, Sendable {
    public let message: String
    public var description: String { message }
    init(_ message: String) { self.message = message }
    /// The template's own `raise_exception(...)`: its message, as the template wrote it.
    static func raised(_ message: String) -> TemplateError { TemplateError("the chat template refused: \(message)") }
}

/// The template as a tree: text, outputs and the statements real chat templates use.
indirect enum TemplateNode {
    case text(String)
    case output(TemplateExpression)
    case forLoop(
        targets: [String], iterable: TemplateExpression, filter: TemplateExpression?, body: [TemplateNode],
        otherwise: [TemplateNode])
    case conditional(branches: [(TemplateExpression, [TemplateNode])], otherwise: [TemplateNode])
    case assign(name: String, attribute: String?, value: TemplateExpression)
    case breakLoop, continueLoop
}

indirect enum TemplateExpression {
    case literal(TemplateValue)
    case name(String)
    case attribute(TemplateExpression, String)
    case index(TemplateExpression, TemplateExpression)
    case slice(TemplateExpression, start: TemplateExpression?, stop: TemplateExpression?, step: TemplateExpression?)
    case call(TemplateExpression, arguments: [TemplateExpression], keywords: [(String, TemplateExpression)])
    case filter(
        TemplateExpression, name: String, arguments: [TemplateExpression], keywords: [(String, TemplateExpression)])
    case test(TemplateExpression, name: String, negated: Bool, arguments: [TemplateExpression])
    case not(TemplateExpression)
    case negate(TemplateExpression)
    case binary(String, TemplateExpression, TemplateExpression)
    case and(TemplateExpression, TemplateExpression)
    case or(TemplateExpression, TemplateExpression)
    case conditional(TemplateExpression, then: TemplateExpression, otherwise: TemplateExpression?)
    case list([TemplateExpression])
    case dict([(TemplateExpression, TemplateExpression)])
}

/// The template's source cut into text and tags, with Jinja's whitespace control applied as
/// transformers configures it (`trim_blocks` and `lstrip_blocks` on, `-` markers honoured).
enum TemplateLexer {
    enum Segment {
        case text(String)
        case output(String, line: Int)
        case statement(String, line: Int)
    }

    private struct Tag {
        enum Kind { case output, statement, comment }
        let kind: Kind, body: String, line: Int, stripBefore: Bool, stripAfter: Bool, keepBefore: Bool
    }

    static func segments(_ source: String) throws(TemplateError) -> [Segment] {
        var texts: [String] = []  // texts[i] precedes tags[i]; one more text at the end
        var tags: [Tag] = []
        let chars = Array(source)
        var i = 0, current = "", line = 1
        while i < chars.count {
            if chars[i] == "{", i + 1 < chars.count, "{%#".contains(chars[i + 1]) {
                let kind: Tag.Kind = chars[i + 1] == "{" ? .output : chars[i + 1] == "%" ? .statement : .comment
                let closer: [Character] = kind == .output ? ["}", "}"] : kind == .statement ? ["%", "}"] : ["#", "}"]
                var j = i + 2
                let stripBefore = j < chars.count && chars[j] == "-"
                let keepBefore = j < chars.count && chars[j] == "+"
                if stripBefore || keepBefore { j += 1 }
                var quote: Character?
                var end: Int?
                while j + 1 < chars.count {
                    if let q = quote {
                        if chars[j] == "\\" { j += 2; continue }
                        if chars[j] == q { quote = nil }
                    } else if kind != .comment && (chars[j] == "'" || chars[j] == "\"") {
                        quote = chars[j]
                    } else if chars[j] == closer[0] && chars[j + 1] == closer[1] {
                        end = j
                        break
                    }
                    j += 1
                }
                guard let end else { throw TemplateError("chat template line \(line): a tag is never closed") }
                let stripAfter = end > i + 2 && chars[end - 1] == "-"
                let bodyEnd = stripAfter ? end - 1 : end
                let bodyStart = i + 2 + (stripBefore || keepBefore ? 1 : 0)
                texts.append(current)
                tags.append(
                    Tag(
                        kind: kind, body: String(chars[bodyStart..<max(bodyStart, bodyEnd)]), line: line,
                        stripBefore: stripBefore, stripAfter: stripAfter, keepBefore: keepBefore))
                line += chars[i..<(end + 2)].filter { $0 == "\n" }.count
                current = ""
                i = end + 2
                continue
            }
            if chars[i] == "\n" { line += 1 }
            current.append(chars[i])
            i += 1
        }
        texts.append(current)
        return arrange(texts: texts, tags: tags)
    }

    /// Whitespace control, then the segments in order (comments dropped). Every decision reads
    /// the raw text (as Jinja's lexer does); the removals only take whitespace away.
    private static func arrange(texts raw: [String], tags: [Tag]) -> [Segment] {
        var texts = raw
        for k in texts.indices {
            var text = Substring(raw[k])
            if k < tags.count {
                let tag = tags[k]
                if tag.stripBefore {
                    while let last = text.last, last.isWhitespace { text.removeLast() }
                } else if tag.kind != .output && !tag.keepBefore {
                    // lstrip_blocks: blanks between a line's start and a block tag go.
                    let blanks = text.reversed().prefix { $0 == " " || $0 == "\t" }.count
                    let before = raw[k].dropLast(blanks)
                    if before.isEmpty ? k == 0 : before.last == "\n" { text.removeLast(blanks) }
                }
            }
            if k > 0 {
                let tag = tags[k - 1]
                if tag.stripAfter {
                    text = text.drop { $0.isWhitespace }
                } else if tag.kind != .output {
                    // trim_blocks: the first newline after a block tag goes.
                    if text.hasPrefix("\r\n") {
                        text.removeFirst(2)
                    } else if text.hasPrefix("\n") {
                        text.removeFirst()
                    }
                }
            }
            texts[k] = String(text)
        }
        var out: [Segment] = []
        for (k, tag) in tags.enumerated() {
            if !texts[k].isEmpty { out.append(.text(texts[k])) }
            switch tag.kind {
            case .output: out.append(.output(tag.body, line: tag.line))
            case .statement: out.append(.statement(tag.body, line: tag.line))
            case .comment: break
            }
        }
        if let last = texts.last, !last.isEmpty { out.append(.text(last)) }
        return out
    }
}
