import Foundation

/// The parts of a `tokenizer.json` pipeline before the BPE model: how text is normalized and cut
/// into pieces. Each case is one component type of the `tokenizers` library; any other type is
/// refused by name when the file is read.
indirect enum PreTokenizer: Sendable {
    /// ByteLevel: an optional prefix space per piece, then GPT-2's regex when `useRegex`.
    case byteLevel(addPrefixSpace: Bool, useRegex: Bool)
    /// Split on a regex with the matches kept as pieces of their own (behavior `Isolated`).
    case split(PatternBox)
    /// Digits: each digit its own piece, or each run of digits.
    case digits(individual: Bool)
    case sequence([PreTokenizer])

    /// A compiled pattern, matched on Unicode scalars as the `tokenizers` library matches.
    final class PatternBox: @unchecked Sendable {
        let source: String
        let regex: Regex<AnyRegexOutput>
        init(_ source: String, regex: Regex<AnyRegexOutput>) {
            self.source = source
            self.regex = regex.matchingSemantics(.unicodeScalar)
        }
    }

    /// Cuts each piece further; stages apply in order.
    func split(_ pieces: [Substring]) -> [Substring] {
        switch self {
        case .sequence(let stages): return stages.reduce(pieces) { $1.split($0) }
        case .byteLevel(let prefix, let useRegex):
            return pieces.flatMap { piece -> [Substring] in
                let spaced = prefix && !piece.hasPrefix(" ") ? Substring(" " + piece) : piece
                return useRegex ? GPT2PreTokenizer.split(spaced) : [spaced]
            }
        case .split(let pattern):
            return pieces.flatMap { piece -> [Substring] in
                var out: [Substring] = []
                var cursor = piece.startIndex
                for match in piece.matches(of: pattern.regex) where !match.range.isEmpty {
                    if match.range.lowerBound > cursor { out.append(piece[cursor..<match.range.lowerBound]) }
                    out.append(piece[match.range])
                    cursor = match.range.upperBound
                }
                if cursor < piece.endIndex { out.append(piece[cursor...]) }
                return out
            }
        case .digits(let individual):
            return pieces.flatMap { piece -> [Substring] in
                var out: [Substring] = []
                let scalars = piece.unicodeScalars
                var start = scalars.startIndex, index = scalars.startIndex
                var previousDigit: Bool?
                while index < scalars.endIndex {
                    let digit = GPT2PreTokenizer.classify(scalars[index]) == .number
                    if let previousDigit, previousDigit != digit || (digit && individual) {
                        out.append(Substring(scalars[start..<index]))
                        start = index
                    }
                    previousDigit = digit
                    index = scalars.index(after: index)
                }
                if start < scalars.endIndex { out.append(Substring(scalars[start...])) }
                return out
            }
        }
    }
}

/// Unicode normalizations and case folding applied to text between added tokens.
indirect enum Normalizer: Sendable {
    case nfc, nfd, nfkc, nfkd, lowercase
    case sequence([Normalizer])

    func apply(_ text: String) -> String {
        switch self {
        case .nfc: text.precomposedStringWithCanonicalMapping
        case .nfd: text.decomposedStringWithCanonicalMapping
        case .nfkc: text.precomposedStringWithCompatibilityMapping
        case .nfkd: text.decomposedStringWithCompatibilityMapping
        case .lowercase: text.lowercased()
        case .sequence(let steps): steps.reduce(text) { $1.apply($0) }
        }
    }
}
