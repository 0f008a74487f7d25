import Foundation

/// GPT-2's byte-level BPE, from a Hugging Face `vocab.json` and `merges.txt`.
///
/// Text is split with GPT-2's pre-tokenizer (contractions, letter runs, number runs, other runs,
/// each optionally led by one space; whitespace runs), each piece's UTF-8 bytes are mapped to
/// printable characters, and adjacent symbols are merged in merge-rank order. The result equals
/// transformers' GPT2Tokenizer and OpenAI's encoder.py (tested on fixtures they produced).
public final class BPETokenizer: Tokenizer, @unchecked Sendable {
    private let encoder: [String: Int32]
    private let decoder: [Int32: String]
    private let ranks: [SymbolPair: Int]
    private let byteToSymbol: [Character]
    private let symbolToByte: [Character: UInt8]
    /// Special tokens: strings in the vocabulary that are never split (e.g. `<|endoftext|>`).
    public let specialTokens: [String]
    private let cache = CacheBox()

    public var vocabularySize: Int { encoder.count }
    public let endOfText: Int32

    struct SymbolPair: Hashable {
        let left: String, right: String
    }

    public init(vocabulary: URL, merges: URL, specialTokens: [String] = ["<|endoftext|>"]) throws(ModelError) {
        let vocab: [String: Int]
        do { vocab = try JSONDecoder().decode([String: Int].self, from: Data(contentsOf: vocabulary)) } catch {
            throw ModelError(message: "\(vocabulary.path): not a vocab.json mapping tokens to ids: \(error)")
        }
        let text: String
        do { text = try String(contentsOf: merges, encoding: .utf8) } catch {
            throw ModelError(message: "\(merges.path): cannot be read: \(error.localizedDescription)")
        }
        var ranks: [SymbolPair: Int] = [:]
        for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            if line.hasPrefix("#version") || line.isEmpty { continue }
            let parts = line.split(separator: " ")
            guard parts.count == 2 else {
                throw ModelError(message: "\(merges.path):\(number + 1): a merge is two symbols separated by one space")
            }
            let pair = SymbolPair(left: String(parts[0]), right: String(parts[1]))
            if ranks[pair] == nil { ranks[pair] = ranks.count }
        }
        encoder = vocab.mapValues { Int32($0) }
        decoder = Dictionary(vocab.map { (Int32($0.value), $0.key) }, uniquingKeysWith: { a, _ in a })
        self.ranks = ranks
        let table = Self.byteSymbols()
        byteToSymbol = table
        symbolToByte = Dictionary(uniqueKeysWithValues: table.enumerated().map { ($1, UInt8($0)) })
        self.specialTokens = specialTokens.filter { vocab[$0] != nil }
        guard let eot = vocab["<|endoftext|>"] else {
            throw ModelError(message: "\(vocabulary.path): no <|endoftext|> token")
        }
        endOfText = Int32(eot)
    }

    /// GPT-2's byte → printable-character table: printable Latin-1 bytes map to themselves, the
    /// rest to code points from 256 up, in byte order.
    static func byteSymbols() -> [Character] {
        let printable = Set(Array(33...126) + Array(161...172) + Array(174...255))
        var next = 256
        return (0..<256).map { b in
            if printable.contains(b) { return Character(Unicode.Scalar(UInt8(b))) }
            defer { next += 1 }
            return Character(Unicode.Scalar(UInt32(next))!)
        }
    }

    // MARK: Encoding

    public func encode(_ text: String) -> [Int32] {
        var ids: [Int32] = []
        for part in SpecialTokens.split(text, specialTokens) {
            switch part {
            case .special(let i): ids.append(encoder[specialTokens[i]]!)
            case .text(let s):
                for piece in GPT2PreTokenizer.split(s) { ids += encodePiece(piece) }
            }
        }
        return ids
    }

    private func encodePiece(_ piece: Substring) -> [Int32] {
        let mapped = String(piece.utf8.map { byteToSymbol[Int($0)] })
        if let hit = cache.get(mapped) { return hit }
        let ids = merge(mapped).map { symbol in
            // Every single byte symbol is in a byte-level vocabulary; a merged symbol is by construction.
            encoder[symbol] ?? encoder[String(symbol.first!)] ?? 0
        }
        cache.set(mapped, ids)
        return ids
    }

    /// Applies merges to one piece, lowest rank first, until none applies.
    private func merge(_ word: String) -> [String] {
        var symbols = word.map { String($0) }
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

    // MARK: Decoding

    public func decode(_ ids: [Int32]) -> String {
        var bytes: [UInt8] = []
        for id in ids {
            guard let token = decoder[id] else { continue }
            if specialTokens.contains(token) {
                bytes += Array(token.utf8)
                continue
            }
            for ch in token { if let b = symbolToByte[ch] { bytes.append(b) } }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// Word → ids memo, shared by concurrent callers.
private final class CacheBox: @unchecked Sendable {
    private var table: [String: [Int32]] = [:]
    private let lock = NSLock()
    func get(_ key: String) -> [Int32]? { lock.withLock { table[key] } }
    func set(_ key: String, _ value: [Int32]) { lock.withLock { if table.count < 100_000 { table[key] = value } } }
}
