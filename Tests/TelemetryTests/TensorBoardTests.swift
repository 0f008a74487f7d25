import Coordinator
import Foundation
import RLAIF
import Testing

@testable import Telemetry

/// TensorBoard's record format and what the run's events become in it.
@Suite struct TensorBoardTests {
    @Test func crc32c_matchesTheStandardCheckValue() {
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
        #expect(CRC32C.checksum([UInt8](repeating: 0, count: 32)) == 0x8A91_36AA)
    }

    /// Reads TFRecords back, checking both checksums of each.
    static func records(_ url: URL) throws -> [Tensorflow_Event] {
        let data = [UInt8](try Data(contentsOf: url))
        var events: [Tensorflow_Event] = [], at = 0
        func word<T: FixedWidthInteger>(_ type: T.Type, _ offset: Int) -> T {
            data[offset..<(offset + MemoryLayout<T>.size)].reversed().reduce(T(0)) { $0 << 8 | T($1) }
        }
        while at < data.count {
            let length = Int(word(UInt64.self, at))
            #expect(word(UInt32.self, at + 8) == CRC32C.masked(data[at..<(at + 8)]))
            let body = Array(data[(at + 12)..<(at + 12 + length)])
            #expect(word(UInt32.self, at + 12 + length) == CRC32C.masked(body))
            events.append(try Tensorflow_Event(serializedBytes: body))
            at += 16 + length
        }
        return events
    }

    @Test func eventFile_holdsTheVersion_thenTheSettings_andOneScalarPerValue() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("rlaif-tb-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let log = try TensorBoardLog(runDirectory: dir, settings: #"{"run":{"seed":1}}"#)
        log.observe(
            RunEventLine(
                .metrics(.init(phase: "sft", version: 3, gradientNorm: 0.5, fingerprint: "f", values: ["loss": 2.25])),
                time: 1))
        log.close()
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.appendingPathComponent("tensorboard").path)
        #expect(files.count == 1 && files[0].hasPrefix("events.out.tfevents."))
        let events = try Self.records(dir.appendingPathComponent("tensorboard/\(files[0])"))
        #expect(events.first?.fileVersion == "brain.Event:2")
        let values = events.dropFirst().flatMap { e in e.summary.value.map { (e.step, $0) } }
        #expect(values.map(\.1.tag) == ["run/settings", "sft/gradient_norm", "sft/loss"])
        #expect(values[0].1.metadata.pluginData.pluginName == "text")
        #expect(String(decoding: values[0].1.tensor.stringVal[0], as: UTF8.self).contains(#""seed":1"#))
        #expect(values[2].0 == 3 && values[2].1.simpleValue == 2.25)
        // A resumed run replaces the file with one made from the lines it keeps.
        let again = try TensorBoardLog(runDirectory: dir, settings: "{}")
        again.close()
        #expect(
            try FileManager.default.contentsOfDirectory(atPath: dir.appendingPathComponent("tensorboard").path).count
                == 1)
    }

    @Test func projection_putsEvaluationsOnTheIterationAxis_withExamplesAsATable() {
        var p = TensorBoardProjection()
        _ = p.points(for: .step(version: 40, participants: ["w1"], epoch: 1, fingerprint: "f"))
        let points = p.points(
            for: .evaluation(
                .init(
                    iteration: 10, prompts: 4, winRate: .init(labeler: 0.75, groundTruth: nil), kl: 1,
                    responseLength: .init(sft: 3, policy: 2), groundTruthQuality: .init(sft: nil, policy: nil),
                    examples: [.init(prompt: "a|b", policy: "x\ny", sft: "z", preference: 0.25)])))
        #expect(points.allSatisfy { $0.step == 10 })
        #expect(points.contains { $0.tag == "eval/win_rate_labeler" && $0.value == .scalar(0.75) })
        #expect(!points.contains { $0.tag == "eval/win_rate_ground_truth" }, "unknown values are left out")
        let table = points.first { $0.tag == "eval/examples" }?.value
        #expect(
            table
                == .text(
                    "| prompt | policy | SFT | P(policy better) |\n| --- | --- | --- | --- |\n| a\\|b | x y | z | 0.250 |"
                ))
        // Labeler figures sit at the newest committed step.
        let audit = p.points(
            for: .labelerAudit(
                phase: "rl-eval-label", pairsPerSecond: 100, audit: .init(orderAgreement: 0.5, firstPosition: nil),
                alignment: .init(debiased: nil, singleOrder: nil)))
        #expect(audit.map(\.tag) == ["labeler/pairs_per_second", "labeler/order_agreement"])
        #expect(audit.allSatisfy { $0.step == 40 })
    }
}
