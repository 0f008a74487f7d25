import Foundation

/// GPT-2's byte-level BPE, from a Hugging Face `vocab.json` and `merges.txt`.
///
/// Text is split with GPT-2's pre-tokenizer (contractions, letter runs, number runs, other runs,
/// each optionally led by one space; whitespace runs), each piece's UTF-8 bytes are mapped to
/// printable characters, and adjacent symbols are merged in merge-rank order. The result equals
/// transformers' GPT2Tokenizer and OpenAI's encoder.py (tested on fixtures they produced).
public final class BPETokenizer: Tokenizer, @unchecked Sendable {
    private let model: BPEModel
    /// Special tokens: strings in the vocabulary that are never split (e.g. `<|endoftext|>`).
    public let specialTokens: [String]
    private let cache = PieceCache()

    public var vocabularySize: Int { model.encoder.count }
    public let endOfText: Int32

    public init(vocabulary: URL, merges: URL, specialTokens: [String] = ["<|endoftext|>"]) throws(ModelError) {
        let vocab: [String: Int]
        do { vocab = try JSONDecoder().decode([String: Int].self, from: Data(contentsOf: vocabulary)) } catch {
            throw ModelError(message: "\(vocabulary.path): not a vocab.json mapping tokens to ids: \(error)")
        }
        let text: String
        do { text = try String(contentsOf: merges, encoding: .utf8) } catch {
            throw ModelError(message: "\(merges.path): cannot be read: \(error.localizedDescription)")
        }
        var pairs: [(String, String)] = []
        for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            if line.hasPrefix("#version") || line.isEmpty { continue }
            let parts = line.split(separator: " ")
            guard parts.count == 2 else {
                throw ModelError(message: "\(merges.path):\(number + 1): a merge is two symbols separated by one space")
            }
            pairs.append((String(parts[0]), String(parts[1])))
        }
        model = BPEModel(vocabulary: vocab.mapValues { Int32($0) }, merges: pairs)
        self.specialTokens = specialTokens.filter { vocab[$0] != nil }
        guard let eot = vocab["<|endoftext|>"] else {
            throw ModelError(message: "\(vocabulary.path): no <|endoftext|> token")
        }
        endOfText = Int32(eot)
    }

    // MARK: Encoding

    public func encode(_ text: String) -> [Int32] {
        var ids: [Int32] = []
        for part in SpecialTokens.split(text, specialTokens) {
            switch part {
            case .special(let i): ids.append(model.encoder[specialTokens[i]]!)
            case .text(let s):
                for piece in GPT2PreTokenizer.split(s) { ids += cache.ids(BPEModel.mapBytes(piece), model) }
            }
        }
        return ids
    }

    // MARK: Decoding

    public func decode(_ ids: [Int32]) -> String {
        var bytes: [UInt8] = []
        for id in ids {
            guard let token = model.decoder[id] else { continue }
            if specialTokens.contains(token) {
                bytes += Array(token.utf8)
                continue
            }
            BPEModel.unmapBytes(token, into: &bytes)
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// Byte-mapped piece → ids memo, shared by concurrent callers.
final class PieceCache: @unchecked Sendable {
    private var table: [String: [Int32]] = [:]
    private let lock = NSLock()

    func ids(_ mapped: String, _ model: BPEModel) -> [Int32] {
        if let hit = lock.withLock({ table[mapped] }) { return hit }
        let ids = model.ids(mapped)
        lock.withLock { if table.count < 100_000 { table[mapped] = ids } }
        return ids
    }
}
