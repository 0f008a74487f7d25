import Foundation
import Protocol
import Tensor
import TestSupport
import Testing

@testable import RLAIF

/// Checkpoints on disk: atomic, verified by SHA-256, pruned; corrupt ones are skipped by name.
@Suite(.serialized) struct CheckpointStoreTests {
    static func directory() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("rlaif-ckpt-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    static func checkpoint(version: UInt64, floats: Int = 64) -> Checkpoint {
        func tensor(_ seed: UInt64) -> Tensor {
            var rng = RandomStream(seed: seed, purpose: .scratch, step: version)
            return Tensor.randomNormal([floats], std: 1, rng: &rng)
        }
        let weights: [Wire.Weights] = [
            .init(model: .reference, version: version, tensors: [.float32(tensor(1)), .int64([0])]),
            .init(
                model: .policy, version: version,
                tensors: [.float32(tensor(2)), .int64([Int64(version)]), .float32(tensor(3)), .float32(tensor(4))]),
        ]
        let cursor = RunCursor(
            phase: "rl", done: Int(version), version: version, metricsBytes: 1234, weightsChecksum: "c\(version)")
        return Checkpoint(cursor: cursor, settings: #"{"run":{"seed":5}}"#, weights: weights)
    }

    @Test func aWrittenCheckpoint_readsBackExactly_andOnlyTheNewestAreKept() throws {
        let dir = try Self.directory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let store = CheckpointStore(runDirectory: dir, keep: 2)
        for v in 1...4 { try store.write(Self.checkpoint(version: UInt64(v))) }
        #expect(store.directories().map(\.lastPathComponent) == ["ckpt-000003", "ckpt-000004"])
        var reports: [String] = []
        let newest = try #require(store.newest { reports.append($0) })
        let expected = Self.checkpoint(version: 4)
        #expect(reports.isEmpty)
        #expect(newest.cursor == expected.cursor && newest.settings == expected.settings)
        #expect(newest.weights == expected.weights)  // bit for bit, the policy last
    }

    @Test(arguments: ["flip", "truncate", "missing manifest", "partial", "newer format"])
    func aDamagedNewestCheckpoint_isReportedByFile_andTheOneBeforeIsUsed(_ damage: String) throws {
        let dir = try Self.directory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let store = CheckpointStore(runDirectory: dir, keep: 3)
        try store.write(Self.checkpoint(version: 1))
        let newest = try store.write(Self.checkpoint(version: 2))
        let weights = newest.appendingPathComponent("weights.safetensors")
        var expectedReport = "checkpoint ckpt-000002 skipped: weights.safetensors does not match its SHA-256"
        switch damage {
        case "flip":
            var bytes = try Data(contentsOf: weights)
            bytes[bytes.count - 3] ^= 0x10
            try bytes.write(to: weights)
        case "truncate":
            let bytes = try Data(contentsOf: weights)
            try bytes.prefix(bytes.count / 2).write(to: weights)
        case "missing manifest":
            try FileManager.default.removeItem(at: newest.appendingPathComponent("manifest.json"))
            expectedReport = "checkpoint ckpt-000002 skipped: manifest.json is missing"
        case "newer format":  // as a later rlaif might write it
            let manifest = newest.appendingPathComponent("manifest.json")
            let text = try String(contentsOf: manifest, encoding: .utf8)
            try text.replacingOccurrences(of: #""format":1"#, with: #""format":2"#).write(
                to: manifest, atomically: true, encoding: .utf8)
            expectedReport =
                "checkpoint ckpt-000002 skipped: manifest.json has checkpoint format 2, and this rlaif reads format 1: "
                + "resume it with the rlaif version that wrote it"
        default:  // a crash mid-write leaves only a hidden partial directory, which is never read
            try FileManager.default.moveItem(at: newest, to: store.root.appendingPathComponent(".ckpt-000002.partial"))
            expectedReport = ""
        }
        var reports: [String] = []
        let used = try #require(store.newest { reports.append($0) })
        #expect(used.cursor.version == 1)
        if expectedReport.isEmpty {
            #expect(reports.isEmpty)
        } else {
            #expect(reports.count == 1 && reports[0].hasPrefix(expectedReport), "\(reports)")
        }
    }

    /// A full disk, then a read-only one: a clear error, and the previous checkpoint still verifies.
    @Test func aFullOrReadOnlyDisk_givesAClearError_andKeepsThePreviousCheckpoint() throws {
        let mountPoint = try Self.directory()
        defer { try? FileManager.default.removeItem(at: mountPoint) }
        guard Self.shell("mount", "-t", "tmpfs", "-o", "size=160k", "tmpfs", mountPoint.path) else {
            print("skipped: a small tmpfs cannot be mounted here (needs root)")
            return
        }
        defer { _ = Self.shell("umount", mountPoint.path) }
        let store = CheckpointStore(runDirectory: mountPoint, keep: 3)
        try store.write(Self.checkpoint(version: 1, floats: 8192))  // about 100 KB of 160
        #expect {
            try store.write(Self.checkpoint(version: 2, floats: 8192))
        } throws: { error in
            let message = (error as? CheckpointError)?.message ?? ""
            return message.hasPrefix("cannot write checkpoint ckpt-000002 in \(store.root.path)")
                && message.hasSuffix("the previous checkpoints are untouched")
        }
        #expect(store.directories().map(\.lastPathComponent) == ["ckpt-000001"])
        #expect(
            (try? FileManager.default.contentsOfDirectory(atPath: store.root.path))?.contains {
                $0.hasSuffix(".partial")
            }
                == false)
        #expect(Self.shell("mount", "-o", "remount,ro", mountPoint.path))
        #expect(throws: CheckpointError.self) { try store.write(Self.checkpoint(version: 3, floats: 16)) }
        var reports: [String] = []
        #expect(store.newest { reports.append($0) }?.cursor.version == 1 && reports.isEmpty)
    }

    static func shell(_ arguments: String...) -> Bool { runCommand(arguments) == nil }
}
