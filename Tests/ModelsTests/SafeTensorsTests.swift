import Foundation
import Tensor
import Testing

@testable import Models

@Suite struct SafeTensorsTests {
    /// A file built by hand: header length, JSON header, data.
    static func file(header: String, data: [UInt8]) -> Data {
        var bytes = Data()
        let h = Array(header.utf8)
        withUnsafeBytes(of: UInt64(h.count).littleEndian) { bytes.append(contentsOf: $0) }
        bytes.append(contentsOf: h)
        bytes.append(contentsOf: data)
        return bytes
    }

    static func floats(_ values: [Float]) -> [UInt8] {
        values.flatMap { withUnsafeBytes(of: $0.bitPattern.littleEndian, Array.init) }
    }

    // MARK: Reading what the format says

    @Test func handBuiltFile_readsExactly() throws {
        let bytes = Self.file(
            header:
                #"{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},"ids":{"dtype":"I32","shape":[3],"data_offsets":[16,28]}}"#,
            data: Self.floats([1, -2, 3.5, 0.25]) + [7, 0, 0, 0, 255, 255, 255, 255, 2, 1, 0, 0])
        let f = try SafeTensors.parse(bytes)
        #expect(try f.float32("a").scalars == [1, -2, 3.5, 0.25])
        #expect(try f.float32("a").shape == [2, 2])
        #expect(try f.int32("ids").ids == [7, -1, 258])
        #expect(f.metadata == ["format": "pt"])
    }

    @Test func writeThenRead_roundTripsBitExactly() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("rlaif-\(UUID()).safetensors")
        defer { try? FileManager.default.removeItem(at: url) }
        var rng = RandomStream(seed: 3, purpose: .scratch)
        let a = Tensor.randomNormal([3, 5], rng: &rng), b = Tensor(shape: [], scalars: [.pi])
        try SafeTensors.write([("b", b), ("a", a)], to: url)
        let f = try SafeTensors.read(url)
        #expect(try f.float32("a").checksum == a.checksum)
        #expect(try f.float32("b").item == .pi)
    }

    // MARK: Malformed files are refused, naming the tensor

    func refusal(_ bytes: Data) -> SafeTensorsError? {
        do {
            _ = try SafeTensors.parse(bytes, file: "bad.safetensors")
            return nil
        } catch { return error }
    }

    @Test func truncatedOrOversizedHeader_isRefused() {
        #expect(refusal(Data([1, 2, 3])) != nil)
        var huge = Data()
        withUnsafeBytes(of: UInt64(1 << 40).littleEndian) { huge.append(contentsOf: $0) }
        #expect(refusal(huge + Data("{}".utf8))?.message.contains("exceeds") == true)
        #expect(refusal(Self.file(header: "{not json", data: []))?.message.contains("JSON") == true)
    }

    @Test func offsetsOutsideTheData_areRefusedNamingTheTensor() {
        let e = refusal(
            Self.file(header: #"{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#, data: Self.floats([1, 2])))
        #expect(e?.tensor == "w")
        #expect(e?.description.contains("bad.safetensors: tensor w") == true)
    }

    @Test func sizeThatDisagreesWithTheShape_orAnUnknownDtype_isRefused() {
        #expect(
            refusal(
                Self.file(
                    header: #"{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#, data: Self.floats([1, 2])))?
                .tensor == "w")
        #expect(
            refusal(
                Self.file(header: #"{"w":{"dtype":"Q4","shape":[1],"data_offsets":[0,4]}}"#, data: Self.floats([1])))?
                .message.contains("unsupported dtype") == true)
    }

    @Test func checkpointWithAWrongShape_namesTheTensor() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("rlaif-bad-\(UUID())")
        defer { try? FileManager.default.removeItem(at: dir) }
        let model = try GPT2(config: .tiny, seed: 1)
        try model.save(to: dir)
        // Rewrite the checkpoint with one tensor of the wrong shape.
        var tensors = model.namedParameters.map { ($0.0, $0.1.value) }
        tensors[5] = (tensors[5].0, Tensor(zeros: [7]))
        try SafeTensors.write(tensors, to: dir.appendingPathComponent("model.safetensors"))
        do {
            _ = try GPT2.load(from: dir)
            Issue.record("a checkpoint with a wrong shape loaded")
        } catch {
            #expect(error.message.contains(tensors[5].0) && error.message.contains("expected"))
        }
    }
}
