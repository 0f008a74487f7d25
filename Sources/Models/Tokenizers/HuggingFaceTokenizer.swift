import Foundation

/// A byte-level BPE tokenizer from Hugging Face's `tokenizer.json` (the `tokenizers` format), as
/// GPT-2, Llama 3, Qwen2 and SmolLM ship them, with `tokenizer_config.json` for the special tokens
/// and the chat template.
///
/// Added tokens are matched first and never split; the text between them is normalized, cut by
/// the pre-tokenizer, byte-mapped and merged. `encode` adds no BOS/EOS (the post-processor's
/// job; chat templates write their own). A component this reader does not implement is refused
/// by name: a tokenizer that would silently tokenize differently is never built.
public final class HuggingFaceTokenizer: Tokenizer, @unchecked Sendable {
    let model: BPEModel
    let normalizer: Normalizer?
    let preTokenizer: PreTokenizer
    /// Added tokens' contents, matched in the raw text before anything else.
    let addedTokens: [String]
    let addedIDs: [String: Int32]
    /// Each added token's content by id, for decoding.
    let addedContents: [Int32: String]
    private let cache = PieceCache()
    public let settings: TokenizerSettings

    public let vocabularySize: Int
    public var endOfText: Int32 { settings.endOfSequence }

    /// Reads `tokenizer.json` and, when present, `tokenizer_config.json` (and `chat_template.jinja`)
    /// from `directory`; `modelConfig` (config.json's keys) supplies ids the tokenizer files lack.
    public convenience init(directory: URL, modelConfig: [String: Any] = [:]) throws(ModelError) {
        let file = directory.appendingPathComponent("tokenizer.json")
        guard let data = try? Data(contentsOf: file),
            let json = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any]
        else { throw ModelError(message: "\(file.path): cannot be read as a JSON object") }
        try self.init(json: json, file: file.path, directory: directory, modelConfig: modelConfig)
    }

    init(json: [String: Any], file: String, directory: URL?, modelConfig: [String: Any]) throws(ModelError) {
        let parts = try TokenizerJSON(json: json, file: file)
        model = parts.model
        normalizer = parts.normalizer
        preTokenizer = parts.preTokenizer
        addedIDs = parts.added
        addedContents = Dictionary(parts.added.map { ($1, $0) }, uniquingKeysWith: { a, _ in a })
        vocabularySize = max(parts.model.encoder.count, (parts.added.values.max().map { Int($0) + 1 }) ?? 0)
        // Longest first, so a token that contains another wins where both match at one place.
        addedTokens = parts.added.keys.sorted { ($0.count, $0) > ($1.count, $1) }
        settings = try TokenizerSettings(
            directory: directory, vocabulary: { parts.added[$0] ?? parts.model.encoder[$0] },
            modelConfig: modelConfig)
    }

    public func id(of token: String) -> Int32? { addedIDs[token] ?? model.encoder[token] }

    public func encode(_ text: String) -> [Int32] {
        var ids: [Int32] = []
        for part in SpecialTokens.split(text, addedTokens) {
            switch part {
            case .special(let i): ids.append(addedIDs[addedTokens[i]]!)
            case .text(let s):
                let normalized = normalizer.map { Substring($0.apply(String(s))) } ?? s
                for piece in preTokenizer.split([normalized]) where !piece.isEmpty {
                    ids += cache.ids(BPEModel.mapBytes(piece), model)
                }
            }
        }
        return ids
    }

    public func decode(_ ids: [Int32]) -> String {
        var bytes: [UInt8] = []
        for id in ids {
            if let added = addedContents[id] {
                bytes += Array(added.utf8)
            } else if let token = model.decoder[id] {
                BPEModel.unmapBytes(token, into: &bytes)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// `tokenizer.json` taken apart, each component checked.
struct TokenizerJSON {
    let model: BPEModel
    let normalizer: Normalizer?
    let preTokenizer: PreTokenizer
    let added: [String: Int32]

    init(json: [String: Any], file: String) throws(ModelError) {
        func fail(_ what: String) -> ModelError { ModelError(message: "\(file): \(what)") }
        guard let m = json["model"] as? [String: Any], m["type"] as? String == "BPE" else {
            throw fail(
                "model.type \((json["model"] as? [String: Any])?["type"] ?? "nothing") is not supported (BPE is)")
        }
        for key in ["byte_fallback"] where (m[key] as? Bool) == true {
            throw fail("model.\(key) is not supported (byte-level BPE only)")
        }
        for key in ["continuing_subword_prefix", "end_of_word_suffix", "dropout"]
        where m[key] != nil && !(m[key] is NSNull) {
            throw fail("model.\(key) is not supported")
        }
        guard let vocab = m["vocab"] as? [String: Int] else { throw fail("model.vocab must map tokens to ids") }
        var merges: [(String, String)] = []
        for entry in m["merges"] as? [Any] ?? [] {
            if let s = entry as? String {
                let parts = s.split(separator: " ", omittingEmptySubsequences: false)
                guard parts.count == 2 else { throw fail("merge \"\(s)\" is not two symbols separated by a space") }
                merges.append((String(parts[0]), String(parts[1])))
            } else if let pair = entry as? [String], pair.count == 2 {
                merges.append((pair[0], pair[1]))
            } else {
                throw fail("a merge must be \"a b\" or [\"a\", \"b\"]")
            }
        }
        model = BPEModel(
            vocabulary: vocab.mapValues { Int32($0) }, merges: merges,
            ignoreMerges: m["ignore_merges"] as? Bool ?? false)
        normalizer = try Self.normalizer(json["normalizer"], fail)
        preTokenizer =
            try Self.preTokenizer(json["pre_tokenizer"], fail) ?? .byteLevel(addPrefixSpace: false, useRegex: true)
        if let decoder = json["decoder"] as? [String: Any], decoder["type"] as? String != "ByteLevel" {
            throw fail("decoder \(decoder["type"] ?? "?") is not supported (ByteLevel is)")
        }
        var added: [String: Int32] = [:]
        for case let token as [String: Any] in json["added_tokens"] as? [Any] ?? [] {
            guard let content = token["content"] as? String, let id = token["id"] as? Int else {
                throw fail("an added token needs content and id")
            }
            for flag in ["single_word", "lstrip", "rstrip"] where token[flag] as? Bool == true {
                throw fail("added token \(content) uses \(flag), which is not supported")
            }
            added[content] = Int32(id)
        }
        self.added = added
    }

    private static func normalizer(_ value: Any?, _ fail: (String) -> ModelError) throws(ModelError) -> Normalizer? {
        guard let n = value as? [String: Any] else { return nil }
        switch n["type"] as? String {
        case "NFC": return .nfc
        case "NFD": return .nfd
        case "NFKC": return .nfkc
        case "NFKD": return .nfkd
        case "Lowercase": return .lowercase
        case "Sequence":
            var steps: [Normalizer] = []
            for step in n["normalizers"] as? [Any] ?? [] { if let s = try normalizer(step, fail) { steps.append(s) } }
            return .sequence(steps)
        case let other: throw fail("normalizer \(other ?? "?") is not supported (NFC, NFD, NFKC, NFKD, Lowercase are)")
        }
    }

    private static func preTokenizer(_ value: Any?, _ fail: (String) -> ModelError) throws(ModelError)
        -> PreTokenizer?
    {
        guard let p = value as? [String: Any] else { return nil }
        switch p["type"] as? String {
        case "ByteLevel":
            return .byteLevel(
                addPrefixSpace: p["add_prefix_space"] as? Bool ?? false, useRegex: p["use_regex"] as? Bool ?? true)
        case "Digits": return .digits(individual: p["individual_digits"] as? Bool ?? false)
        case "Split":
            guard let pattern = (p["pattern"] as? [String: Any])?["Regex"] as? String else {
                throw fail("a Split pre-tokenizer needs a Regex pattern")
            }
            guard (p["behavior"] as? String) == "Isolated", (p["invert"] as? Bool ?? false) == false else {
                throw fail("Split behavior \(p["behavior"] ?? "?") (invert \(p["invert"] ?? false)) is not supported")
            }
            do { return .split(.init(pattern, regex: try Regex(pattern))) } catch {
                throw fail("Split pattern \(pattern) does not compile: \(error)")
            }
        case "Sequence":
            var stages: [PreTokenizer] = []
            for stage in p["pretokenizers"] as? [Any] ?? [] {
                if let s = try preTokenizer(stage, fail) { stages.append(s) }
            }
            return .sequence(stages)
        case let other:
            throw fail("pre-tokenizer \(other ?? "?") is not supported (ByteLevel, Split, Digits, Sequence are)")
        }
    }
}
