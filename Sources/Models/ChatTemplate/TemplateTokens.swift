extension TemplateExpressionParser {
    /// The tokens of a tag's body: names, string and number literals, operators and brackets.
    static func tokenize(_ source: String, line: Int) throws(TemplateError) -> [Token] {
        let chars = Array(source)
        var tokens: [Token] = []
        var i = 0
        let twoCharacter: Set<String> = ["==", "!=", "<=", ">=", "//", "**"]
        while i < chars.count {
            let c = chars[i]
            if c.isWhitespace {
                i += 1
            } else if c.isLetter || c == "_" {
                var j = i
                while j < chars.count && (chars[j].isLetter || chars[j].isNumber || chars[j] == "_") { j += 1 }
                tokens.append(.name(String(chars[i..<j])))
                i = j
            } else if c.isASCII && c.isNumber {
                var j = i
                while j < chars.count && chars[j].isASCII && (chars[j].isNumber || chars[j] == "_") { j += 1 }
                let isFloat = j + 1 < chars.count && chars[j] == "." && chars[j + 1].isNumber
                if isFloat {
                    j += 1
                    while j < chars.count && chars[j].isASCII && chars[j].isNumber { j += 1 }
                }
                let text = String(chars[i..<j]).replacingOccurrences(of: "_", with: "")
                tokens.append(isFloat ? .double(Double(text)!) : .int(Int(text) ?? 0))
                i = j
            } else if c == "'" || c == "\"" {
                var j = i + 1, value = ""
                while j < chars.count && chars[j] != c {
                    if chars[j] == "\\" && j + 1 < chars.count {
                        j += 1
                        switch chars[j] {
                        case "n": value.append("\n")
                        case "t": value.append("\t")
                        case "r": value.append("\r")
                        case "\\", "'", "\"": value.append(chars[j])
                        default: value += "\\" + String(chars[j])
                        }
                    } else {
                        value.append(chars[j])
                    }
                    j += 1
                }
                guard j < chars.count else {
                    throw TemplateError("chat template line \(line): a string is never closed")
                }
                tokens.append(.string(value))
                i = j + 1
            } else if i + 1 < chars.count, twoCharacter.contains(String(chars[i...(i + 1)])) {
                tokens.append(.symbol(String(chars[i...(i + 1)])))
                i += 2
            } else if "+-*/%~|.,:()[]{}<>=".contains(c) {
                tokens.append(.symbol(String(c)))
                i += 1
            } else {
                throw TemplateError("chat template line \(line): unexpected character \(c)")
            }
        }
        return tokens
    }
}
