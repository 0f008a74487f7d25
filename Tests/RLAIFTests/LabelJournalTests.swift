import Crypto
import Foundation
import Testing

@testable import RLAIF

/// The label journal's file: what is written survives a reopen, a torn last line does not
/// poison it, and a question is known by its phase and its content.
@Suite struct LabelJournalTests {
    static let pair = LabelingPair(id: 7, prompt: "p", first: "a", second: "b")
    static let label = PreferenceLabel(
        pairID: 7, forward: 0.75, backward: 0.25, probabilityA: 0.5, status: .ambiguous, rationales: ["x"], retries: 1)

    @Test func answers_surviveAReopen_andATornLineIsDropped() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("rlaif-journal-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let key = LabelJournal.key(Self.pair, phase: "labeling")
        let journal = try LabelJournal(directory: dir)
        journal.record([(key, Self.label)])
        journal.close()
        // A crash in the middle of the next line.
        let file = dir.appendingPathComponent(LabelJournal.fileName)
        let handle = try FileHandle(forWritingTo: file)
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(#"{"answer":"{\"pairID"#.utf8))
        try handle.close()
        // Read from outside, as `rlaif status` does: the torn line is not counted, nor cut.
        let sizeBefore = try FileManager.default.attributesOfItem(atPath: file.path)[.size] as? Int
        #expect(LabelJournal.recordedCount(in: dir) == 1)
        #expect(try FileManager.default.attributesOfItem(atPath: file.path)[.size] as? Int == sizeBefore)
        let reopened = try LabelJournal(directory: dir)
        #expect(reopened.count == 1)
        #expect(reopened.answer(key, as: PreferenceLabel.self) == Self.label)
        reopened.record([(LabelJournal.key(Self.pair, phase: "eval-label"), Self.label)])
        reopened.close()
        #expect(try LabelJournal(directory: dir).count == 2, "the torn line was cut before the next write")
        #expect(LabelJournal.recordedCount(in: dir) == 2)
    }

    /// Keys and checkpoint digests are lowercase hex as `String(format: "%02x")` wrote them, so
    /// journals and checkpoints of earlier runs still match.
    @Test func digestHex_isTwoLowercaseDigitsAByte() {
        #expect(
            SHA256.hash(data: Data("abc".utf8)).hex
                == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")  // FIPS 180-2's example
        let everyByte = SHA256.hash(data: Data((0...255).map(UInt8.init)))
        #expect(everyByte.hex == everyByte.map { String(format: "%02x", $0) }.joined())
        #expect(Insecure.SHA1.hash(data: Data()).hex == "da39a3ee5e6b4b0d3255bfef95601890afd80709")
    }

    @Test func keys_dependOnPhaseAndEveryField() {
        var other = Self.pair
        other.second = "c"
        let keys = Set([
            LabelJournal.key(Self.pair, phase: "labeling"), LabelJournal.key(Self.pair, phase: "eval-label"),
            LabelJournal.key(other, phase: "labeling"),
        ])
        #expect(keys.count == 3)
        #expect(LabelJournal.key(Self.pair, phase: "labeling") == LabelJournal.key(Self.pair, phase: "labeling"))
    }
}
