import Foundation
import Models
import Testing

@testable import RLAIF

/// Preference pairs of the user's data (`task.preferences`) in the forms TRL and the hub use.
@Suite struct PreferenceDataTests {
    let files = TaskDataTests()

    func settings(_ preferences: String, contextLength: Int = 32) throws -> RunSettings {
        let prompts = try files.write((0..<5).map { #"{"prompt": "p\#($0)"}"# })
        let demos = try files.write([#"{"prompt": "q", "completion": "c"}"#])
        var s = files.settings(prompts: prompts, demonstrations: demos)
        s.task.preferences = preferences
        s.preferences.source = .data
        s.model.contextLength = contextLength
        return s
    }

    func failure(_ s: RunSettings, _ tokenizer: any Tokenizer = ByteTokenizer()) -> String {
        do {
            _ = try JSONLTask(settings: s, tokenizer: tokenizer)
            return "no error"
        } catch { return error.description }
    }

    @Test func textAndConversationalForms_readAsTheirPromptAndBothReplies() throws {
        let (chat, _) = try TaskDataTests.chatTokenizer()
        let file = try files.write([
            #"{"prompt": "Say hi", "chosen": "Hi!", "rejected": "No."}"#,
            #"{"prompt": [{"role": "user", "content": "Say hi"}], "chosen": [{"role": "assistant", "content": "Hi!"}], "#
                + #""rejected": [{"role": "assistant", "content": "No."}]}"#,
            #"{"chosen": [{"role": "user", "content": "Say hi"}, {"role": "assistant", "content": "Hi!"}], "#
                + #""rejected": [{"role": "user", "content": "Say hi"}, {"role": "assistant", "content": "No."}]}"#,
        ])
        let task = try JSONLTask(settings: settings(file, contextLength: 256), tokenizer: chat)
        let pairs = task.preferencePairs
        // The fixture's ChatML template adds its default system turn.
        #expect(pairs[0].prompt == "Say hi" && pairs[1].prompt == pairs[2].prompt)
        #expect(pairs[1].prompt.hasSuffix("<|im_start|>user\nSay hi<|im_end|>\n<|im_start|>assistant\n"))
        #expect(pairs.allSatisfy { $0.chosen == "Hi!" && $0.rejected == "No." })
        #expect(pairs.map(\.line) == [1, 2, 3])
        // Without the key, no pairs are read.
        var without = try settings(file)
        without.task.preferences = ""
        #expect(try JSONLTask(settings: without, tokenizer: chat).preferencePairs.isEmpty)
    }

    @Test func mistakes_nameTheFileLineAndWhatToDo() throws {
        let (chat, _) = try TaskDataTests.chatTokenizer()
        let user = #"{"role": "user", "content": "a"}"#, answer = #"{"role": "assistant", "content": "b"}"#
        let cases: [(String, String)] = [
            (#"{"prompt": "a", "chosen": "b"}"#, #"a preference line needs "chosen" and "rejected""#),
            (#"{"chosen": "b", "rejected": "c"}"#, #"text "chosen" and "rejected" need a "prompt""#),
            (
                #"{"chosen": [\#(user), \#(answer)], "rejected": [{"role": "user", "content": "x"}, \#(answer)]}"#,
                #"without a "prompt", "chosen" and "rejected" must be the same conversation up to a last, "#
                    + "assistant turn"
            ),
            (
                #"{"prompt": "a", "chosen": [\#(user)], "rejected": "c"}"#,
                "a reply's turns must all be the assistant's"
            ),
            (
                #"{"prompt": "a", "chosen": [{"role": "robot", "content": "b"}], "rejected": "c"}"#,
                #"unknown role "robot" (system, user, assistant or tool)"#
            ),
        ]
        for (line, message) in cases {
            let file = try files.write([#"{"prompt": "ok", "chosen": "y", "rejected": "n"}"#, line])
            let got = failure(try settings(file, contextLength: 256), chat)
            #expect(got == "task.preferences: \(file):2: \(message)", "\(got)")
        }
    }

    /// A pair longer than the context is an error by default; `truncate` cuts the replies at
    /// their end and the prompt from the left, in tokens; `skip` leaves it out.
    @Test func overlongPairs_areReported_cut_orSkipped() throws {
        let prompt = String(repeating: "p", count: 20) + "END"
        let file = try files.write([
            #"{"prompt": "\#(prompt)", "chosen": "\#(String(repeating: "c", count: 12))", "rejected": "r"}"#,
            #"{"prompt": "ok", "chosen": "\#(String(repeating: "y", count: 40))", "rejected": "n"}"#,
            #"{"prompt": "fine", "chosen": "y", "rejected": "n"}"#,
        ])
        var s = try settings(file)
        #expect(
            failure(s) == "task.preferences: \(file):1: the pair is 23 prompt and 12 reply tokens, more than "
                + "model.context_length 32; shorten it, or set task.overlong to truncate (cut it to fit) or skip")
        s.task.overlong = .truncate
        let cut = try JSONLTask(settings: s, tokenizer: ByteTokenizer())
        #expect(cut.preferencePairs[0].prompt == String(repeating: "p", count: 17) + "END")
        #expect(cut.preferencePairs[0].chosen.count == 12 && cut.preferencePairs[0].rejected == "r")
        #expect(
            cut.preferencePairs[1].chosen == String(repeating: "y", count: 31) && cut.preferencePairs[1].prompt == "k")
        #expect(
            cut.notices.last?.description
                == "task.preferences: 2 preference pairs of \(file) cut to fit the context (lines 1, 2)")
        s.task.overlong = .skip
        #expect(try JSONLTask(settings: s, tokenizer: ByteTokenizer()).preferencePairs.map(\.line) == [3])
    }

    @Test func settings_sayWhichKeyIsMissingOrContradicts() {
        var s = RunSettings()
        s.preferences.source = .data
        #expect(s.violation()?.key == "task.preferences")
        s.task.kind = .jsonl
        s.task.prompts = "p.jsonl"
        s.task.demonstrations = "d.jsonl"
        s.labeler.kind = .command
        s.labeler.command = "judge"
        s.task.preferences = "prefs.jsonl"
        #expect(s.violation() == nil)
        s.run.method = .direct
        #expect(s.violation()?.key == "preferences.source")
        s.run.method = .dpo
        s.preferences.source = .labeler
        #expect(s.violation()?.message.contains("task.preferences is not read") == true)
    }
}
