import Foundation
import Models
import Testing

@testable import RLAIF

/// Users' data from JSON Lines files (task.kind jsonl), and the synthetic task behind the same interface.
@Suite struct TaskDataTests {
    let tokenizer = ByteTokenizer()

    func write(_ lines: [String]) throws -> String {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("rlaif-task-\(UUID().uuidString).jsonl")
        try (lines.joined(separator: "\n") + "\n").write(to: url, atomically: true, encoding: .utf8)
        return url.path
    }

    func settings(prompts: String, demonstrations: String, heldOut: String = "", evaluation: Int = 3) -> RunSettings {
        var s = RunSettings()
        s.task.kind = .jsonl
        s.task.prompts = prompts
        s.task.demonstrations = demonstrations
        s.task.heldOutPrompts = heldOut
        s.evaluation.prompts = evaluation
        return s
    }

    @Test func jsonl_holdsOutTheLastPrompts_andVisitsEveryTrainingPromptOncePerPass() throws {
        let prompts = try write((0..<10).map { #"{"prompt": "p\#($0)"}"# })
        let demos = try write([#"{"prompt": "q", "completion": "a\nb"}"#, "", #"{"prompt": "r", "completion": ""}"#])
        defer { for f in [prompts, demos] { try? FileManager.default.removeItem(atPath: f) } }
        let task = try JSONLTask(settings: settings(prompts: prompts, demonstrations: demos), tokenizer: tokenizer)
        #expect(task.heldOutPrompts(99) == ["p7", "p8", "p9"])
        #expect(task.heldOutPrompts(2) == ["p7", "p8"])
        let training = Set((0..<7).map { "p\($0)" })
        for pass in 0..<3 {
            let seen = task.trainingPrompts((pass * 7)..<(pass * 7 + 7))
            #expect(Set(seen) == training, "pass \(pass) saw \(seen)")
        }
        #expect(task.trainingPrompts(0..<7) != task.trainingPrompts(7..<14))  // passes are reshuffled
        // Asked one at a time or together, a prompt is the same.
        #expect((0..<21).map { task.trainingPrompts($0..<($0 + 1))[0] } == task.trainingPrompts(0..<21))
        #expect(task.demonstrations().map(\.completion) == ["a\nb", ""])
        // SFT teaches the end-of-text token that stops sampling; there is no ground truth.
        #expect(task.completionTokens("ab") == tokenizer.encode("ab") + [tokenizer.endOfText])
        #expect(task.stopTokens == [tokenizer.endOfText])
        #expect(task.groundTruthQuality(of: "x", prompt: "p0") == nil)
        #expect(task.groundTruthPreference("x", "y", prompt: "p0") == nil)
    }

    // MARK: Lines that do not fit the context (32 tokens, 10 of them for the response)

    /// A prompt line of megabytes used to reach the workers and be handed out again at every lease
    /// expiry; an empty one failed a rollout job. Both are reported at load, with file and line.
    @Test func jsonl_promptThatCannotFit_orEmpty_isReportedWithFileAndLine() throws {
        let long = String(repeating: "x", count: 2_000_000)
        let prompts = try write([
            #"{"prompt": "a"}"#, #"{"prompt": "\#(long)"}"#, #"{"prompt": ""}"#, #"{"prompt": "b"}"#,
        ])
        let demos = try write([#"{"prompt": "q", "completion": "c"}"#])
        defer { for f in [prompts, demos] { try? FileManager.default.removeItem(atPath: f) } }
        var s = settings(prompts: prompts, demonstrations: demos, evaluation: 1)
        #expect(
            throws: JSONLTask.LoadError(
                key: "task.prompts",
                message: "\(prompts):2: the prompt is 2000000 tokens; with model.max_new_tokens 10, "
                    + "model.context_length 32 leaves room for 22; shorten it, or set task.overlong to truncate "
                    + "(cut it to fit) or skip")
        ) { try JSONLTask(settings: s, tokenizer: tokenizer) }
        s.task.overlong = .truncate
        #expect(throws: JSONLTask.LoadError.self) { try JSONLTask(settings: s, tokenizer: tokenizer) }  // line 3
        s.task.overlong = .skip
        let task = try JSONLTask(settings: s, tokenizer: tokenizer)
        #expect(task.trainingPrompts(0..<1) == ["a"] && task.heldOutPrompts(1) == ["b"])
        #expect(task.notices.map(\.description) == ["task.prompts: 2 prompts of \(prompts) skipped (lines 2, 3)"])
    }

    /// `truncate` keeps a prompt's end and a completion's beginning, in whole characters.
    @Test func jsonl_truncate_keepsThePromptsEnd_andTheCompletionsBeginning() throws {
        let prompt = "é" + String(repeating: "a", count: 19) + "0123"  // 25 bytes: 3 over
        let completion = String(repeating: "c", count: 40)
        let prompts = try write([#"{"prompt": "\#(prompt)"}"#, #"{"prompt": "b"}"#])
        let demos = try write([
            #"{"prompt": "\#(prompt)", "completion": "ok"}"#, #"{"prompt": "q", "completion": "\#(completion)"}"#,
        ])
        defer { for f in [prompts, demos] { try? FileManager.default.removeItem(atPath: f) } }
        var s = settings(prompts: prompts, demonstrations: demos, evaluation: 1)
        s.task.overlong = .truncate
        let task = try JSONLTask(settings: s, tokenizer: tokenizer)
        // 22 bytes of room: "é" (2 bytes) cannot be split, so the first 3 bytes go.
        #expect(task.trainingPrompts(0..<1) == [String(repeating: "a", count: 18) + "0123"])
        let d = task.demonstrations()
        #expect(d[0].completion == "ok" && d[0].prompt == prompt)  // 25 + 3 fits 32
        // The completion keeps 30 bytes (+ end-of-text), leaving 1 token of prompt.
        #expect(d[1].completion == String(repeating: "c", count: 30) && d[1].prompt == "q")
        for demo in d {
            #expect(tokenizer.encode(demo.prompt).count + task.completionTokens(demo.completion).count <= 32)
        }
        #expect(task.notices.count == 2)
    }

    @Test func jsonl_aSeparateHeldOutFile_leavesEveryPromptForTraining() throws {
        let prompts = try write([#"{"prompt": "a"}"#, #"{"prompt": "b"}"#])
        let held = try write([#"{"prompt": "h"}"#])
        let demos = try write([#"{"prompt": "q", "completion": "c"}"#])
        defer { for f in [prompts, held, demos] { try? FileManager.default.removeItem(atPath: f) } }
        let task = try JSONLTask(
            settings: settings(prompts: prompts, demonstrations: demos, heldOut: held, evaluation: 5),
            tokenizer: tokenizer)
        #expect(Set(task.trainingPrompts(0..<2)) == ["a", "b"])
        #expect(task.heldOutPrompts(5) == ["h"])
    }

    @Test func jsonl_badFiles_nameTheKeyTheFileAndTheLine() throws {
        let good = try write([#"{"prompt": "a"}"#, #"{"prompt": "b"}"#, #"{"prompt": "c"}"#, #"{"prompt": "d"}"#])
        let missingField = try write([#"{"prompt": "q", "completion": "c"}"#, #"{"prompt": "q"}"#])
        let notJSON = try write([#"{"prompt": "a"}"#, "", #"{"prompt": "b""#])
        let wrongType = try write([#"{"prompt": 7}"#])
        defer { for f in [good, missingField, notJSON, wrongType] { try? FileManager.default.removeItem(atPath: f) } }
        func failure(_ s: RunSettings) -> String {
            do {
                _ = try JSONLTask(settings: s, tokenizer: tokenizer)
                return "no error"
            } catch { return error.description }
        }
        #expect(
            failure(settings(prompts: good, demonstrations: missingField))
                == "task.demonstrations: \(missingField):2: missing \"completion\"")
        #expect(
            failure(settings(prompts: notJSON, demonstrations: good))
                == "task.prompts: \(notJSON):3: is not a JSON object")
        #expect(
            failure(settings(prompts: wrongType, demonstrations: good))
                == "task.prompts: \(wrongType):1: \"prompt\" has the wrong type")
        #expect(
            failure(settings(prompts: good, demonstrations: "/nonexistent.jsonl")).hasPrefix(
                "task.demonstrations: /nonexistent.jsonl: cannot be read"))
        #expect(
            failure(settings(prompts: good, demonstrations: missingField, evaluation: 4)).contains(
                "has 4 usable prompts; holding out evaluation.prompts (4) leaves none to train on"))
    }

    @Test func synthetic_keepsItsGroundTruth_andStopsAtThePeriod() throws {
        var s = RunSettings()
        s.task.demonstrationCount = 5
        let task = try TaskDataFactory.make(s, tokenizer: tokenizer)
        let post = FactSummaryTask(seed: s.run.seed).post(.heldOut, 0)
        #expect(task.heldOutPrompts(1) == [post.prompt])
        #expect(task.demonstrations().count == 5)
        #expect(task.groundTruthQuality(of: post.idealSummary, prompt: post.prompt) == 3)
        #expect(task.groundTruthPreference(post.idealSummary, "", prompt: post.prompt) == 1)
        #expect(Set(task.stopTokens) == Set(tokenizer.encode(".") + [tokenizer.endOfText]))
    }

    /// The Qwen2 pattern fixture's tokenizer with the ChatML template of the chat-template fixture.
    static func chatTokenizer() throws -> (HuggingFaceTokenizer, [String: Any]) {
        let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../ModelsTests/Fixtures")
        let reference =
            try JSONSerialization.jsonObject(
                with: Data(contentsOf: fixtures.appendingPathComponent("chat-templates.json"))) as! [String: Any]
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("rlaif-chat-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        try FileManager.default.copyItem(
            at: fixtures.appendingPathComponent("tokenizers/qwen2/tokenizer.json"),
            to: dir.appendingPathComponent("tokenizer.json"))
        let config: [String: Any] = [
            "bos_token": reference["bos_token"]!, "eos_token": reference["eos_token"]!,
            "chat_template": (reference["templates"] as! [String: String])["chatml"]!,
        ]
        try JSONSerialization.data(withJSONObject: config).write(
            to: dir.appendingPathComponent("tokenizer_config.json"))
        return (try HuggingFaceTokenizer(directory: dir), reference)
    }

    /// Conversational lines go through the checkpoint's chat template with the generation prompt,
    /// as transformers' apply_chat_template renders them (the fixture's expected text).
    @Test func jsonl_conversations_renderThroughTheChatTemplate_asTransformersDoes() throws {
        let (chat, reference) = try Self.chatTokenizer()
        let cases = (reference["cases"] as! [[String: Any]]).filter {
            $0["template"] as? String == "chatml" && $0["add_generation_prompt"] as? Bool == true
        }
        let first = cases[1]  // a system turn and a question
        let turns = first["messages"] as! [[String: String]]
        let json = String(decoding: try JSONSerialization.data(withJSONObject: turns), as: UTF8.self)
        let prompts = try write(
            (0..<4).map { #"{"prompt": "p\#($0)"}"# } + [#"{"messages": \#(json)}"#, #"{"prompt": \#(json)}"#])
        let demos = try write([
            #"{"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]}"#,
            #"{"prompt": [{"role": "user", "content": "Yo"}], "completion": [{"role": "assistant", "content": "Hey"}]}"#,
        ])
        defer { for f in [prompts, demos] { try? FileManager.default.removeItem(atPath: f) } }
        var s = settings(prompts: prompts, demonstrations: demos, evaluation: 2)
        s.model.contextLength = 256
        let task = try JSONLTask(settings: s, tokenizer: chat)
        let expected = first["expected"] as! String
        #expect(task.heldOutPrompts(2) == [expected, expected])
        let rendered = task.demonstrations()
        #expect(rendered.map(\.completion) == ["Hello!", "Hey"])
        #expect(rendered[0].prompt.hasSuffix("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"))
        #expect(task.completionTokens("Hey").last == chat.id(of: "<|im_end|>"))
    }

    @Test func jsonl_conversationalMistakes_nameTheFileLineAndWhatToDo() throws {
        let (chat, _) = try Self.chatTokenizer()
        let good = try write((0..<5).map { #"{"prompt": "p\#($0)"}"# })
        let badRole = try write([#"{"messages": [{"role": "user", "content": "a"}, {"role": "bot", "content": "b"}]}"#])
        let noAnswer = try write([#"{"messages": [{"role": "user", "content": "a"}]}"#])
        let conversation = try write(
            [#"{"messages": [{"role": "user", "content": "a"}]}"#] + (0..<4).map { #"{"prompt": "p\#($0)"}"# })
        defer { for f in [good, badRole, noAnswer, conversation] { try? FileManager.default.removeItem(atPath: f) } }
        func failure(_ s: RunSettings, _ tokenizer: any Tokenizer) -> String {
            do {
                _ = try JSONLTask(settings: s, tokenizer: tokenizer)
                return "no error"
            } catch { return error.description }
        }
        #expect(
            failure(settings(prompts: good, demonstrations: badRole), chat)
                == "task.demonstrations: \(badRole):1: unknown role \"bot\" (system, user, assistant or tool)")
        #expect(
            failure(settings(prompts: good, demonstrations: noAnswer), chat).contains("must end with an assistant turn")
        )
        #expect(
            failure(settings(prompts: conversation, demonstrations: noAnswer), tokenizer).hasPrefix(
                "task.prompts: \(conversation):1: conversational data needs a chat template"))
    }
}
