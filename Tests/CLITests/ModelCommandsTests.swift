import Foundation
import Models
import Tensor
import Testing

/// `rlaif sample` and `rlaif score` as a user runs them: the real binary, a real model directory.
@Suite(.timeLimit(.minutes(1))) struct ModelCommandsTests {
    /// The `rlaif` executable built beside the test bundle.
    static let rlaif = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        .appendingPathComponent("rlaif")

    static func run(_ arguments: [String]) throws -> (status: Int32, out: String, err: String) {
        try #require(
            FileManager.default.fileExists(atPath: rlaif.path),
            "\(rlaif.path) is missing: build it first (`swift build --build-tests` builds it with the tests)")
        let p = Process()
        p.executableURL = rlaif
        p.arguments = arguments
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile(), e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
    }

    /// A tiny byte-vocabulary model written to a temporary directory.
    static func modelDirectory() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("rlaif-cli-\(UUID())")
        try GPT2(config: .tiny, seed: 5).save(to: dir)
        return dir
    }

    @Test
    func sample_isReproducibleForASeed_andStartsWithThePrompt() throws {
        let dir = try Self.modelDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let args = ["sample", "--model", dir.path, "--prompt", "Hello", "--max-new-tokens", "8", "--seed", "3"]
        let a = try Self.run(args), b = try Self.run(args)
        #expect(a.status == 0, "\(a.err)")
        #expect(a.out == b.out && a.out.hasPrefix("Hello"))
    }

    @Test
    func score_printsOneLinePerPair_matchingTheLibrary() throws {
        let dir = try Self.modelDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let input = dir.appendingPathComponent("pairs.jsonl")
        try #"""
        {"prompt": "The sky is", "completion": " blue."}

        {"prompt": "1 + 1 =", "completion": " 2"}
        """#.write(to: input, atomically: true, encoding: .utf8)
        let r = try Self.run(["score", "--model", dir.path, "--input", input.path])
        #expect(r.status == 0, "\(r.err)")
        let lines = r.out.split(separator: "\n")
        #expect(lines.count == 2)
        let first = try JSONSerialization.jsonObject(with: Data(lines[0].utf8)) as! [String: Any]
        #expect(first["tokens"] as? Int == 6)  // " blue." in bytes
        let total = first["total_logprob"] as! Double
        let model = try ModelDirectory(dir.path)
        let expected = Autograd.inferenceMode {
            model.model.continuationLogProbs(
                prompts: [model.tokenizer.encode("The sky is")], continuations: [model.tokenizer.encode(" blue.")]
            ).sum().value.item
        }
        #expect(abs(total - Double(expected)) < 1e-4)
    }

    @Test
    func score_namesAMalformedLine() throws {
        let dir = try Self.modelDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let input = dir.appendingPathComponent("bad.jsonl")
        try "{\"prompt\": \"a\", \"completion\": \"b\"}\n{\"prompt\": 3}\n".write(
            to: input, atomically: true, encoding: .utf8)
        let r = try Self.run(["score", "--model", dir.path, "--input", input.path])
        #expect(r.status != 0)
        #expect(r.err.contains("bad.jsonl:2"))
        // A problem with the input is not a mistake in the arguments: no usage lines.
        #expect(!r.err.contains("Usage:"), "\(r.err)")
    }

    /// A prompt longer than the context (64 tokens here) is refused with what to do, or cut
    /// from the left when asked; it used to crash generation (exit 132).
    @Test
    func sample_promptLongerThanTheContext_isRefusedOrCutFromTheLeft() throws {
        let dir = try Self.modelDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let prompt = String(repeating: "a", count: 4_990) + "0123456789"
        let args = ["sample", "--model", dir.path, "--prompt", prompt, "--max-new-tokens", "4", "--seed", "1"]
        let refused = try Self.run(args)
        #expect(refused.status == 1, "\(refused.err)")
        #expect(refused.err.contains("the prompt is 5000 tokens and the model's context 64"), "\(refused.err)")
        #expect(refused.err.contains("--truncate-left") && !refused.err.contains("Usage:"))
        let cut = try Self.run(args + ["--truncate-left"])
        #expect(cut.status == 0, "\(cut.err)")
        // The last 63 tokens are kept, then at most 4 new ones.
        #expect(cut.out.hasPrefix(String(repeating: "a", count: 53) + "0123456789"), "\(cut.out)")
        #expect(!cut.out.hasPrefix(String(repeating: "a", count: 54)))
    }

    /// A Llama-family directory with a `tokenizer.json` (the Llama 3 pattern family's fixture):
    /// `sample` and `score` take it as they take GPT-2, and `score` equals the library.
    @Test
    func llamaDirectory_withTokenizerJSON_samplesAndScores() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("rlaif-cli-llama-\(UUID())")
        defer { try? FileManager.default.removeItem(at: dir) }
        let tokenizers = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../ModelsTests/Fixtures/tokenizers/llama3")
        let config = LlamaConfig(
            family: .llama, vocabularySize: 600, width: 32, intermediateSize: 48, layers: 2, heads: 4, kvHeads: 2,
            contextLength: 128, tiedEmbeddings: true)
        try Llama(config: config, seed: 3).save(to: dir)
        for file in ["tokenizer.json", "tokenizer_config.json"] {
            try FileManager.default.copyItem(
                at: tokenizers.appendingPathComponent(file), to: dir.appendingPathComponent(file))
        }
        let args = ["sample", "--model", dir.path, "--prompt", "Hello world", "--max-new-tokens", "6", "--seed", "2"]
        let a = try Self.run(args), b = try Self.run(args)
        #expect(a.status == 0, "\(a.err)")
        #expect(a.out == b.out && a.out.hasPrefix("Hello world"))
        let input = dir.appendingPathComponent("pairs.jsonl")
        try #"{"prompt": "It's 12345", "completion": " café 🙂"}"#.write(to: input, atomically: true, encoding: .utf8)
        let r = try Self.run(["score", "--model", dir.path, "--input", input.path])
        #expect(r.status == 0, "\(r.err)")
        let line = try JSONSerialization.jsonObject(with: Data(r.out.utf8)) as! [String: Any]
        let model = try ModelDirectory(dir.path)
        #expect(model.model is Llama)
        let completion = model.tokenizer.encode(" café 🙂")
        #expect(line["tokens"] as? Int == completion.count)
        let expected = Autograd.inferenceMode {
            model.model.continuationLogProbs(
                prompts: [model.tokenizer.encode("It's 12345")], continuations: [completion]
            )
            .sum().value.item
        }
        #expect(abs(line["total_logprob"] as! Double - Double(expected)) < 1e-4)
    }
}
