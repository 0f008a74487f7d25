/// Byte-pair merges over a vocabulary: the model part of a byte-level BPE tokenizer, shared by
/// GPT-2's `vocab.json` + `merges.txt` and by `tokenizer.json`.
struct BPEModel: Sendable {
    let encoder: [String: Int32]
    let decoder: [Int32: String]
    let ranks: [SymbolPair: Int]
    /// Llama 3's `ignore_merges`: a piece that is itself in the vocabulary is one token.
    let ignoreMerges: Bool

    struct SymbolPair: Hashable, Sendable {
        let left: String, right: String
    }

    init(vocabulary: [String: Int32], merges: [(String, String)], ignoreMerges: Bool = false) {
        encoder = vocabulary
        decoder = Dictionary(vocabulary.map { ($0.value, $0.key) }, uniquingKeysWith: { a, _ in a })
        var ranks: [SymbolPair: Int] = [:]
        for (left, right) in merges {
            let pair = SymbolPair(left: left, right: right)
            if ranks[pair] == nil { ranks[pair] = ranks.count }
        }
        self.ranks = ranks
        self.ignoreMerges = ignoreMerges
    }

    /// The ids of one byte-mapped piece.
    func ids(_ mapped: String) -> [Int32] {
        if ignoreMerges, let id = encoder[mapped] { return [id] }
        return merge(mapped).map { symbol in
            // Every single byte symbol is in a byte-level vocabulary; a merged symbol is by construction.
            encoder[symbol] ?? encoder[String(symbol.first!)] ?? 0
        }
    }

    /// Applies merges to one piece, lowest rank first, until none applies.
    func merge(_ word: String) -> [String] {
        var symbols = word.unicodeScalars.map { String($0) }
        while symbols.count > 1 {
            var best: (rank: Int, index: Int)?
            for i in 0..<(symbols.count - 1) {
                if let r = ranks[SymbolPair(left: symbols[i], right: symbols[i + 1])], best == nil || r < best!.rank {
                    best = (r, i)
                }
            }
            guard let (_, at) = best else { break }
            let pair = (symbols[at], symbols[at + 1])
            // Merge every occurrence of the pair, left to right, as the reference does.
            var merged: [String] = []
            var i = 0
            while i < symbols.count {
                if i < symbols.count - 1 && symbols[i] == pair.0 && symbols[i + 1] == pair.1 {
                    merged.append(pair.0 + pair.1)
                    i += 2
                } else {
                    merged.append(symbols[i])
                    i += 1
                }
            }
            symbols = merged
        }
        return symbols
    }

    /// GPT-2's byte → printable-character table: printable Latin-1 bytes map to themselves, the
    /// rest to code points from 256 up, in byte order.
    static let byteSymbols: [Character] = {
        let printable = Set(Array(33...126) + Array(161...172) + Array(174...255))
        var next = 256
        return (0..<256).map { b in
            if printable.contains(b) { return Character(Unicode.Scalar(UInt8(b))) }
            defer { next += 1 }
            return Character(Unicode.Scalar(UInt32(next))!)
        }
    }()

    static let symbolBytes: [Character: UInt8] = Dictionary(
        uniqueKeysWithValues: byteSymbols.enumerated().map { ($1, UInt8($0)) })

    /// A piece's UTF-8 bytes as symbols.
    static func mapBytes(_ piece: Substring) -> String { String(piece.utf8.map { byteSymbols[Int($0)] }) }

    /// The bytes a token's symbols stand for.
    static func unmapBytes(_ token: String, into bytes: inout [UInt8]) {
        for ch in token { if let b = symbolBytes[ch] { bytes.append(b) } }
    }
}
