/// GPT-2's pre-tokenizer, the regular expression
/// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
/// written out as a scanner over Unicode scalars (the alternatives are tried in this order).
enum GPT2PreTokenizer {
    enum Class { case letter, number, space, other }

    static func classify(_ s: Unicode.Scalar) -> Class {
        if s.properties.isWhitespace { return .space }
        switch s.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: return .letter
        case .decimalNumber, .letterNumber, .otherNumber: return .number
        default: return .other
        }
    }

    static let contractions: [[Unicode.Scalar]] = ["s", "t", "re", "ve", "m", "ll", "d"].map {
        Array($0.unicodeScalars)
    }

    static func split(_ text: Substring) -> [Substring] {
        let scalars = text.unicodeScalars
        let indices = Array(scalars.indices) + [scalars.endIndex]
        let chars = Array(scalars)
        let classes = chars.map(classify)
        var pieces: [Substring] = []
        var i = 0
        let n = chars.count
        func emit(_ from: Int, _ to: Int) { pieces.append(Substring(scalars[indices[from]..<indices[to]])) }
        while i < n {
            // 's 't 're 've 'm 'll 'd
            if chars[i] == "'",
                let c = contractions.first(where: { c in i + c.count < n && Array(chars[(i + 1)...(i + c.count)]) == c }
                )
            {
                emit(i, i + 1 + c.count)
                i += 1 + c.count
                continue
            }
            // ` ?` + a run of letters / numbers / others.
            let start = i
            let lead = chars[i] == " " && i + 1 < n && classes[i + 1] != .space ? 1 : 0
            let kind = classes[i + lead]
            if kind != .space {
                var j = i + lead
                while j < n && classes[j] == kind { j += 1 }
                emit(start, j)
                i = j
                continue
            }
            // Whitespace: the run, minus its last character when a non-space follows.
            var j = i
            while j < n && classes[j] == .space { j += 1 }
            if j < n && j - i > 1 { j -= 1 }
            emit(i, j)
            i = j
        }
        return pieces
    }
}
