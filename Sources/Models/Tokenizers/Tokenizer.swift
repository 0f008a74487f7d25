/// Text to token ids and back.
public protocol Tokenizer: Sendable {
    var vocabularySize: Int { get }
    /// The id that ends a document (and a generated response).
    var endOfText: Int32 { get }
    func encode(_ text: String) -> [Int32]
    /// The text of `ids`; bytes that do not form valid UTF-8 (a cut multi-byte character) become U+FFFD.
    func decode(_ ids: [Int32]) -> String
}

/// Bytes as tokens (ids 0–255), plus special tokens after them: for small tasks and tests.
public struct ByteTokenizer: Tokenizer {
    public static let specials = ["<|endoftext|>", "<|pad|>", "<|sep|>"]

    public var vocabularySize: Int { 256 + Self.specials.count }
    public var endOfText: Int32 { 256 }
    public var padding: Int32 { 257 }
    public var separator: Int32 { 258 }

    public init() {}

    /// Special-token strings in the text become their ids; everything else, its UTF-8 bytes.
    public func encode(_ text: String) -> [Int32] {
        SpecialTokens.split(text, Self.specials).flatMap { part -> [Int32] in
            switch part {
            case .special(let index): [Int32(256 + index)]
            case .text(let s): s.utf8.map { Int32($0) }
            }
        }
    }

    public func decode(_ ids: [Int32]) -> String {
        var bytes: [UInt8] = []
        var out = ""
        for id in ids {
            if (0..<256).contains(id) {
                bytes.append(UInt8(id))
            } else {
                out += String(decoding: bytes, as: UTF8.self)
                bytes.removeAll()
                if id >= 256 && Int(id) < vocabularySize { out += Self.specials[Int(id) - 256] }
            }
        }
        return out + String(decoding: bytes, as: UTF8.self)
    }
}

/// Splitting text around special-token strings, which are never broken into pieces.
enum SpecialTokens {
    enum Part: Equatable {
        case text(Substring)
        case special(Int)
    }

    static func split(_ text: String, _ specials: [String]) -> [Part] {
        var parts: [Part] = []
        var rest = text[...]
        while !rest.isEmpty {
            // The earliest occurrence of any special token (the longest on a tie).
            var best: (range: Range<Substring.Index>, index: Int)?
            for (i, s) in specials.enumerated() where !s.isEmpty {
                if let r = rest.range(of: s),
                    best == nil || r.lowerBound < best!.range.lowerBound
                        || (r.lowerBound == best!.range.lowerBound && r.upperBound > best!.range.upperBound)
                {
                    best = (r, i)
                }
            }
            guard let (range, index) = best else {
                parts.append(.text(rest))
                break
            }
            if range.lowerBound > rest.startIndex { parts.append(.text(rest[..<range.lowerBound])) }
            parts.append(.special(index))
            rest = rest[range.upperBound...]
        }
        return parts
    }
}
