import Foundation
import Testing

@testable import Models

@Suite struct TokenizerTests {
    static let bpeFixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent(
        "Fixtures/bpe-tiny")

    struct Case: Decodable {
        let text: String
        let ids: [Int32]
    }

    static func cases() throws -> [Case] {
        struct File: Decodable { let cases: [Case] }
        return try JSONDecoder().decode(
            File.self, from: Data(contentsOf: bpeFixtures.appendingPathComponent("reference.json"))
        ).cases
    }

    static func tokenizer() throws -> BPETokenizer {
        try BPETokenizer(
            vocabulary: bpeFixtures.appendingPathComponent("vocab.json"),
            merges: bpeFixtures.appendingPathComponent("merges.txt"))
    }

    // MARK: GPT-2 BPE

    @Test func bpe_givesTheReferenceIds_andRoundTripsText() throws {
        // Cases cover runs of spaces, newlines and tabs, contractions, numbers, accents, CJK, emoji,
        // special tokens mid-text, and the empty string; ids from transformers and encoder.py.
        let tokenizer = try Self.tokenizer()
        let cases = try Self.cases()
        #expect(cases.count == 14)
        for c in cases {
            #expect(tokenizer.encode(c.text) == c.ids, "\(c.text.debugDescription)")
            #expect(tokenizer.decode(c.ids) == c.text)
        }
        #expect(tokenizer.vocabularySize == 400)
    }

    @Test func preTokenizer_splitsLikeGPT2sPattern() {
        func split(_ s: String) -> [String] { GPT2PreTokenizer.split(s[...]).map(String.init) }
        #expect(split("Hello world") == ["Hello", " world"])
        #expect(split("a  b") == ["a", " ", " b"])
        #expect(split("it's they'll") == ["it", "'s", " they", "'ll"])
        #expect(split("x\n\ny") == ["x", "\n", "\n", "y"])
        #expect(split("end   ") == ["end", "   "])
        #expect(split("v2.0!") == ["v", "2", ".", "0", "!"])
        #expect(split(" 's") == [" '", "s"])
    }

    @Test func malformedMerges_nameTheLine() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("rlaif-bpe-\(UUID())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try #"{"a": 0, "<|endoftext|>": 1}"#.write(
            to: dir.appendingPathComponent("vocab.json"), atomically: true, encoding: .utf8)
        try "#version: 0.2\na b c\n".write(
            to: dir.appendingPathComponent("merges.txt"), atomically: true, encoding: .utf8)
        do {
            _ = try BPETokenizer(
                vocabulary: dir.appendingPathComponent("vocab.json"), merges: dir.appendingPathComponent("merges.txt"))
            Issue.record("a malformed merges.txt was accepted")
        } catch {
            #expect(error.message.contains("merges.txt:2"))
        }
    }

    // MARK: Bytes

    @Test func byteTokenizer_roundTripsAnyText_andKeepsSpecialsWhole() {
        let t = ByteTokenizer()
        let text = "naïve 🙂<|sep|>answer<|endoftext|>"
        let ids = t.encode(text)
        #expect(ids.contains(t.separator) && ids.last == t.endOfText)
        #expect(ids.allSatisfy { $0 >= 0 && Int($0) < t.vocabularySize })
        #expect(t.decode(ids) == text)
        #expect(t.encode("ab") == [97, 98])
    }
}
