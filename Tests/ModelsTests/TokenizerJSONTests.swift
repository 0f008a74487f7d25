import Foundation
import Testing

@testable import Models

/// `tokenizer.json` against Hugging Face `tokenizers`: fixtures made by
/// tools/make_tokenizer_reference.py, 240 strings per pattern family (mixed scripts, digits,
/// whitespace runs, newlines, emoji, contractions, special tokens inside text).
@Suite struct TokenizerJSONTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("Fixtures/tokenizers")

    struct Case: Decodable {
        let text: String, ids: [Int32], decoded: String
    }

    static func cases(_ family: String) throws -> [Case] {
        struct File: Decodable { let cases: [Case] }
        let data = try Data(contentsOf: fixtures.appendingPathComponent("\(family)/reference.json"))
        return try JSONDecoder().decode(File.self, from: data).cases
    }

    @Test(arguments: ["gpt2", "llama3", "qwen2", "smollm"])
    func ids_equalTokenizers_andDecodingRoundTrips(family: String) throws {
        let tokenizer = try HuggingFaceTokenizer(directory: Self.fixtures.appendingPathComponent(family))
        let cases = try Self.cases(family)
        #expect(cases.count >= 200)
        var wrong = 0
        for c in cases {
            let ids = tokenizer.encode(c.text)
            if ids != c.ids {
                wrong += 1
                if wrong <= 3 { Issue.record("\(family): \(c.text.debugDescription) gave \(ids), expected \(c.ids)") }
            }
            #expect(tokenizer.decode(c.ids) == c.decoded, "\(family): decoding \(c.text.debugDescription)")
        }
        #expect(wrong == 0, "\(family): \(wrong) of \(cases.count) strings tokenized differently")
        // Without a normalizer, decoding gives back the text itself.
        if family != "qwen2" { #expect(cases.allSatisfy { $0.decoded == $0.text }) }
    }

    @Test func specialTokens_andChatTemplateSettings_comeFromTokenizerConfig() throws {
        let llama = try HuggingFaceTokenizer(directory: Self.fixtures.appendingPathComponent("llama3"))
        #expect(llama.endOfText == llama.id(of: "<|eot_id|>"))
        #expect(llama.settings.beginOfSequence == llama.id(of: "<|begin_of_text|>"))
        #expect(llama.encode("a<|eot_id|>b").contains(llama.endOfText))
        let qwen = try HuggingFaceTokenizer(directory: Self.fixtures.appendingPathComponent("qwen2"))
        #expect(qwen.settings.padding == qwen.id(of: "<|endoftext|>"))
        #expect(qwen.settings.beginOfSequence == nil)
    }

    /// Components that would tokenize differently are refused by name, never approximated.
    @Test(arguments: [
        (#"{"type":"Metaspace","replacement":"▁"}"#, "pre-tokenizer Metaspace"),
        (#"{"type":"Split","pattern":{"Regex":" "},"behavior":"Removed","invert":false}"#, "Split behavior Removed"),
    ])
    func unsupportedPreTokenizer_isRefusedByName(preTokenizer: String, named: String) throws {
        let json = """
            {"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "pre_tokenizer": \(preTokenizer),
             "added_tokens": [{"id": 0, "content": "a", "special": true}]}
            """
        let object = try JSONSerialization.jsonObject(with: Data(json.utf8)) as! [String: Any]
        #expect {
            _ = try HuggingFaceTokenizer(json: object, file: "t.json", directory: nil, modelConfig: ["eos_token_id": 0])
        } throws: { ($0 as? ModelError)?.message.contains(named) == true }
    }

    @Test func sentencePieceStyleModel_isRefusedByName() throws {
        let json = #"{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": [], "byte_fallback": true}}"#
        let object = try JSONSerialization.jsonObject(with: Data(json.utf8)) as! [String: Any]
        #expect {
            _ = try HuggingFaceTokenizer(json: object, file: "t.json", directory: nil, modelConfig: ["eos_token_id": 0])
        } throws: { ($0 as? ModelError)?.message.contains("byte_fallback") == true }
    }
}
