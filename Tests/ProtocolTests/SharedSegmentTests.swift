import Foundation
import Tensor
import Testing

@testable import Protocol

#if canImport(Glibc)
    import Glibc
#endif

/// The ring's same-host path: records written to a real memfd segment and read back through
/// `/proc/PID/fd`, as a successor in another process reads them.
@Suite struct SharedSegmentTests {
    static func floats(_ values: [Float]) -> WireTensor { .float32(Tensor(shape: [values.count], scalars: values)) }

    static func bytes(_ frame: ZMQFrame) -> [Float] {
        frame.withBytes { Array($0.bindMemory(to: Float.self)) }
    }

    @Test func aRecord_readsBackAsWritten_tensorByTensor() throws {
        let segment = try #require(OutboundSegment(bytes: 1 << 20))
        let units = WireWords((0..<37).map { Int64($0) * -3 })
        let slice = try #require(segment.write([Self.floats([1, 2, 3]), .words(units)], reduction: (1, 1)))
        #expect(slice.offset % 64 == 0 && slice.sequence != 0)
        let frames = try InboundSegments().read(slice, byteCounts: [12, 37 * 8])
        #expect(Self.bytes(frames[0]) == [1, 2, 3])
        #expect(WireWords(frame: frames[1], dtype: .int64) == units)
    }

    /// Records from 64 KiB are written with streaming stores: every byte, the tail past the last
    /// whole line included, reads back, whatever the source's alignment.
    @Test func aLargeRecord_readsBackByteForByte() throws {
        let segment = try #require(OutboundSegment(bytes: 4 << 20))
        let values = (0..<17_501).map { Float($0) * 0.5 - 3 }  // 70,004 bytes
        let whole = Tensor(shape: [values.count + 1], scalars: [7] + values)
        // A view one float in: its bytes start 4 bytes past a line.
        let shifted = WireTensor.float32(Tensor(storage: whole.storage, offset: 1, shape: [values.count]))
        let units = WireWords((0..<9_001).map { Int64($0) &* 0x1_0000_0001 })
        let slice = try #require(segment.write([shifted, .words(units)], reduction: (1, 1)))
        let frames = try InboundSegments().read(slice, byteCounts: [values.count * 4, 9_001 * 8])
        #expect(Self.bytes(frames[0]) == values)
        #expect(WireWords(frame: frames[1], dtype: .int64) == units)
    }

    @Test func aRecordOverwrittenByALaterReduction_isRefused_notReadTorn() throws {
        let segment = try #require(OutboundSegment(bytes: 1 << 20))
        let reader = InboundSegments()
        let first = try #require(segment.write([Self.floats([1])], reduction: (1, 1)))
        // The next reduction writes the other half: the first record is still whole.
        let second = try #require(segment.write([Self.floats([2])], reduction: (2, 1)))
        #expect(Self.bytes(try reader.read(first, byteCounts: [4])[0]) == [1])
        // The one after reuses the first half, clearing its records before anything is written.
        _ = try #require(segment.write([Self.floats([3])], reduction: (3, 1)))
        let error = #expect(throws: WireError.self) { try reader.read(first, byteCounts: [4]) }
        #expect(error?.field == "gradientChunk.shared" && error?.detail.contains("overwritten") == true)
        // Read in place: a record reused while its frames are still in use is seen as torn.
        let frames = try reader.read(second, byteCounts: [4])
        #expect(Self.bytes(frames[0]) == [2] && reader.isIntact(second))
        _ = try #require(segment.write([Self.floats([4])], reduction: (4, 1)))
        #expect(!reader.isIntact(second))
    }

    @Test func aReductionLargerThanItsHalf_leavesTheRestToFrames() throws {
        // 64 header bytes, then two halves of 1 KiB minus alignment.
        let segment = try #require(OutboundSegment(bytes: 64 + 2048))
        let slice = Self.floats([Float](repeating: 1, count: 128))  // a 576-byte record
        #expect(segment.write([slice], reduction: (1, 1)) != nil)
        #expect(segment.write([slice], reduction: (1, 1)) == nil)
        #expect(segment.write([slice], reduction: (2, 1)) != nil)
    }

    @Test func locationsThatDoNotNameARecordOfASegment_areRefusedByName() throws {
        let segment = try #require(OutboundSegment(bytes: 1 << 16))
        let good = try #require(segment.write([Self.floats([1, 2])], reduction: (1, 1)))
        let reader = InboundSegments()
        func refusal(_ slice: SharedSlice, bytes: [Int] = [8]) -> String? {
            do {
                _ = try reader.read(slice, byteCounts: bytes)
                return nil
            } catch {
                #expect(error.code == .badValue && error.field == "gradientChunk.shared")
                return error.detail
            }
        }
        var wrongToken = good
        wrongToken.token[1] ^= 1
        #expect(refusal(wrongToken)?.contains("token") == true)
        var outside = good
        outside.offset = 1 << 16
        #expect(refusal(outside)?.contains("outside") == true)
        var unaligned = good
        unaligned.offset += 8
        #expect(refusal(unaligned)?.contains("outside") == true)
        #expect(refusal(good, bytes: [1 << 17])?.contains("outside") == true)
        var stale = good
        stale.sequence += 1
        #expect(refusal(stale)?.contains("overwritten") == true)
        var noFile = good
        noFile.descriptor = 999_999
        #expect(refusal(noFile)?.contains("cannot open") == true)
        // A file of ours that is not a sealed segment (it could shrink under the mapping).
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("rlaif-unsealed-\(getpid())").path
        #expect(FileManager.default.createFile(atPath: path, contents: Data(count: 4096)))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let fd = open(path, O_RDONLY)
        defer { close(fd) }
        var unsealed = good
        unsealed.descriptor = UInt32(fd)
        #expect(refusal(unsealed)?.contains("sealed") == true)
        // The good one still reads.
        #expect(Self.bytes(try reader.read(good, byteCounts: [8])[0]) == [1, 2])
    }

    @Test func theSharedField_travelsInTheControlFrame_andPureDecodingRefusesItsMissingFrames() throws {
        let location = SharedSlice(pid: 7, descriptor: 9, token: [1, 2], offset: 128, sequence: 5)
        let message = Wire.Message.gradientChunk(
            .init(
                step: 4, ringEpoch: 2, phase: .allGather, chunkIndex: 1, sliceIndex: 3, fromRank: 1,
                payload: .values(Tensor(shape: [6], repeating: 1)), shared: location))
        let encoded = Wire.encode(message)
        #expect(encoded.tensors.isEmpty)
        let control = try encoded.control.withUnsafeBytes { try Wire.decodeControl($0, limits: .default) }
        guard case .gradientChunk(let c) = control.message else {
            Issue.record("not a gradient chunk")
            return
        }
        #expect(c.shared == location && control.descriptors.map(\.byteCount) == [24])
        // Outside a ring port nobody resolves the location: the message lacks its tensor.
        #expect(throws: WireError.self) { try Wire.decode([ZMQFrame(encoded.control)]) }
        // A flag other than 0 or 1 is refused by name.
        var bad = Wire.encode(
            .gradientChunk(
                .init(
                    step: 4, ringEpoch: 2, phase: .allGather, chunkIndex: 1, fromRank: 1,
                    payload: .values(Tensor(shape: [1], repeating: 1))))
        ).control
        let flagAt = 4 + 2 + 2 + 1 + 8 + 4 + 1 + 4 + 4 + 2
        bad[flagAt] = 2
        let error = #expect(throws: WireError.self) { try Wire.decode([ZMQFrame(bad), ZMQFrame([0, 0, 128, 63])]) }
        #expect(error?.field == "gradientChunk.shared")
    }

    static func chunk(step: UInt64, slice: UInt32, _ values: [Float]) -> Wire.GradientChunk {
        .init(
            step: step, ringEpoch: 2, phase: .allGather, chunkIndex: 1, sliceIndex: slice, fromRank: 1,
            payload: .values(Tensor(shape: [values.count], scalars: values)))
    }

    /// Where the location message `encoded` says its slice lies.
    static func location(_ encoded: EncodedMessage) throws -> SharedSlice {
        let message = try encoded.control.withUnsafeBytes { try Wire.decodeControl($0, limits: .default).message }
        guard case .gradientChunk(let c) = message else {
            Issue.record("a location message that is not a gradient chunk")
            throw CancellationError()
        }
        return try #require(c.shared)
    }

    @Test func theDoorbell_leadsAReaderThroughEachReductionsRecords_inTheOrderWritten() throws {
        let segment = try #require(OutboundSegment(bytes: 1 << 20))
        let reader = InboundSegments()
        let location = try Self.location(try #require(segment.write(Self.chunk(step: 5, slice: 0, [1, 2, 3]))))
        _ = try #require(segment.write(Self.chunk(step: 5, slice: 1, [4])))
        let watch = try #require(reader.watch(location, epoch: 2))
        let bell = try #require(watch.doorbell())
        #expect(bell.reduction == (5, 2) && bell.start == Int(location.offset) && bell.end > bell.start)
        // Walked from the start: both records, as the location messages would have brought them.
        var cursor = bell.start
        var read: [(UInt32, [Float])] = []
        while cursor < bell.end {
            let (chunk, next) = try reader.record(of: watch, at: cursor, limits: .default)
            guard case .values(let t) = chunk.payload else { break }
            read.append((chunk.sliceIndex, t.scalars))
            #expect(chunk.shared?.offset == UInt64(cursor) && reader.isIntact(chunk.shared!))
            cursor = next
        }
        #expect(read.map(\.0) == [0, 1] && read.map(\.1) == [[1, 2, 3], [4]])
        // The next reduction rings from the other half, from its start.
        _ = try #require(segment.write(Self.chunk(step: 6, slice: 0, [7])))
        let next = try #require(watch.doorbell())
        #expect(next.reduction == (6, 2) && next.start != bell.start && next.end > next.start)
        #expect(try reader.record(of: watch, at: next.start, limits: .default).chunk.step == 6)
    }

    @Test func aDoorbellReadWhereNoRecordStarts_isRefused_notDecoded() throws {
        let segment = try #require(OutboundSegment(bytes: 1 << 16))
        let reader = InboundSegments()
        let location = try Self.location(
            try #require(segment.write(Self.chunk(step: 1, slice: 0, [Float](repeating: 9, count: 64)))))
        let watch = try #require(reader.watch(location, epoch: 2))
        // Inside the record's tensor bytes (64-aligned, but no record header there), past the
        // end of the segment, and unaligned: each refused by name.
        for offset in [Int(location.offset) + 64, 1 << 16, Int(location.offset) + 8] {
            let error = #expect(throws: WireError.self) {
                try reader.record(of: watch, at: offset, limits: .default)
            }
            #expect(error?.field == "gradientChunk.shared", "\(offset)")
        }
        #expect(try reader.record(of: watch, at: Int(location.offset), limits: .default).chunk.step == 1)
    }

    @Test func onlyLoopbackAndIPCAddresses_countAsThisHost() {
        for local in [
            "ipc:///tmp/x", "tcp://127.0.0.1:5555", "tcp://127.1.2.3:1", "tcp://localhost:9", "tcp://[::1]:4",
        ] {
            #expect(RingSession.isOnThisHost(local), "\(local)")
        }
        for remote in ["tcp://10.0.0.2:5555", "tcp://node-2:5555", "tcp://128.0.0.1:1", "inproc://x"] {
            #expect(!RingSession.isOnThisHost(remote), "\(remote)")
        }
    }
}
