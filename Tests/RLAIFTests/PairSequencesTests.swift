import Models
import Testing

@testable import RLAIF

@Suite struct PairSequencesTests {
    /// A response sampled as bytes that are not UTF-8 reads back with U+FFFD per bad byte: its
    /// tokens grow threefold, and a run once failed its reward-model step on the overlong sequence.
    @Test func responsesThatOutgrowTheContextAsText_areCutToFit() {
        let tokenizer = ByteTokenizer()
        let sampled: [Int32] = Array(repeating: 0xFF, count: 10)  // ten invalid bytes
        let text = tokenizer.decode(sampled)
        #expect(tokenizer.encode(text).count == 30)
        let sequences = RunDriver.pairSequences(
            ["AbCdEf>"], [(text, "Ace")], tokenizer: tokenizer, contextLength: 32)
        let (prompt, a) = sequences[0][0], (_, b) = sequences[0][1]
        #expect(prompt.count == 7 && prompt.count + a.count == 32)
        #expect(b == tokenizer.encode("Ace"))  // what fits is left as it is
    }
}
