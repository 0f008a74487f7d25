import Tensor
import Testing

@testable import Protocol

@Suite struct WireCodecTests {
    // MARK: Round trips

    @Test func everyMessageKind_roundTripsExactly() throws {
        let kinds = Set(WireFixtures.all.map(\.kind))
        #expect(kinds == Set(Wire.Kind.allCases), "a kind has no fixture")
        for message in WireFixtures.all {
            let decoded = try Wire.decode(WireFixtures.frames(message))
            #expect(decoded == message)
        }
    }

    @Test func controlFrame_isLittleEndianWithMagicVersionAndKind() {
        let e = Wire.encode(.heartbeat(.init(workerID: 0x0102_0304, sequence: 5)))
        #expect(Array(e.control[0..<4]) == Array("RLAF".utf8))
        #expect(Array(e.control[4..<8]) == [9, 0, 1, 0])  // version 9.1
        #expect(e.control[8] == Wire.Kind.heartbeat.rawValue)
        #expect(Array(e.control[9..<13]) == [4, 3, 2, 1])
        #expect(e.control.count == 9 + 4 + 8 + 1)
    }

    @Test func newerMinorVersion_isAccepted() throws {
        let msg = Wire.Message.shutdown(.init(reason: "x"))
        let newer = ProtocolVersion(major: ProtocolVersion.current.major, minor: ProtocolVersion.current.minor + 3)
        #expect(try Wire.decode(WireFixtures.frames(msg, version: newer)) == msg)
    }

    @Test func fieldsOfANewerMinor_areSkipped() throws {
        let welcome = Wire.Welcome(
            workerID: 1, heartbeatIntervalMilliseconds: 2, heartbeatTimeoutMilliseconds: 3, runName: "r",
            ringKeys: ["k1", "k2"])
        // A 3.(current+1) sender appends a field this build does not know: it is skipped.
        let newer = ProtocolVersion(major: ProtocolVersion.current.major, minor: ProtocolVersion.current.minor + 1)
        let control = Wire.encode(.welcome(welcome), version: newer).control + [9, 9, 9, 9]
        #expect(try Wire.decode([ZMQFrame(control)]) == .welcome(welcome))
        // The same unknown bytes from a sender of this minor are an error, not something to skip.
        let current = Wire.encode(.welcome(welcome)).control + [9, 9, 9, 9]
        #expect(code([ZMQFrame(current)])?.code == .trailingBytes)
    }

    // MARK: Refusals name the field

    func code(_ frames: [ZMQFrame], limits: WireLimits = .default) -> WireError? {
        do {
            _ = try Wire.decode(frames, limits: limits)
            return nil
        } catch { return error }
    }

    @Test func otherMajorVersion_isRefused() {
        let frames = WireFixtures.frames(.reject(.init(reason: "x")), version: ProtocolVersion(major: 8, minor: 0))
        #expect(code(frames)?.code == .unsupportedVersion)
    }

    @Test func badMagic_unknownKind_andUnknownEnumValues_areRefused() {
        var control = Wire.encode(.heartbeat(.init(workerID: 1, sequence: 1))).control
        control[0] = 0x58
        #expect(code([ZMQFrame(control)])?.code == .badMagic)
        control = Wire.encode(.heartbeat(.init(workerID: 1, sequence: 1))).control
        for retired: UInt8 in [10, 12, 200] {  // protocol 2's cancel and error, and a kind never used
            control[8] = retired
            #expect(code([ZMQFrame(control)])?.code == .unknownKind)
        }
        control = Wire.encode(.weightsRequest(.init(workerID: 1, model: .policy, version: 1))).control
        control[13] = 77  // model
        let e = code([ZMQFrame(control)])
        #expect(e?.code == .badValue && e?.field == "weightsRequest.model")
        // A hello's role is its last field before the tensor count.
        control = Wire.encode(.hello(.init(workerName: "w", host: "h", pid: 1, threads: 1, incarnation: 1))).control
        control[control.count - 2] = 9
        let role = code([ZMQFrame(control)])
        #expect(role?.code == .badValue && role?.field == "hello.role")
    }

    @Test func truncatedAndTrailingBytes_areRefused() {
        let control = Wire.encode(.shutdown(.init(reason: "because"))).control
        for cut in 0..<control.count {
            #expect(code([ZMQFrame(Array(control[0..<cut]))]) != nil, "accepted a control frame cut at \(cut)")
        }
        #expect(code([ZMQFrame(control + [0])])?.code == .trailingBytes)
    }

    @Test func tensorFrames_mustMatchTheirDescriptors() {
        var frames = WireFixtures.frames(.weights(.init(model: .policy, version: 1, tensors: [WireFixtures.floats])))
        #expect(code(Array(frames.dropLast()))?.code == .frameCountMismatch)
        #expect(code(frames + [ZMQFrame([1, 2, 3, 4])])?.code == .frameCountMismatch)
        frames[1] = ZMQFrame([UInt8](repeating: 0, count: 20))
        let e = code(frames)
        #expect(e?.code == .tensorSizeMismatch && e?.frame == 1)
    }

    @Test func absurdSizes_areRefusedBeforeAllocating() {
        // A descriptor claiming 2^60 elements, and a string claiming 4 GB.
        var w = ByteArray(Wire.magic)
        w.u16(ProtocolVersion.current.major); w.u16(0); w.u8(Wire.Kind.weights.rawValue)
        w.u8(1); w.u64(1)
        w.u8(1); w.u8(1); w.u8(2); w.u64(1 << 30); w.u64(1 << 30)
        #expect(code([ZMQFrame(w.bytes), ZMQFrame([])])?.code == .tooLarge)
        var s = ByteArray(Wire.magic)
        s.u16(ProtocolVersion.current.major); s.u16(0); s.u8(Wire.Kind.shutdown.rawValue); s.u32(.max)
        #expect(code([ZMQFrame(s.bytes)])?.code == .tooLarge)
        var a = ByteArray(Wire.magic)
        a.u16(ProtocolVersion.current.major); a.u16(0); a.u8(Wire.Kind.assign.rawValue)
        a.u64(1); a.u8(1); a.u64(1); a.u32(1); a.u32(1); a.u64(1); a.u32(1 << 31)
        #expect(code([ZMQFrame(a.bytes)])?.code == .tooLarge)
    }

    @Test func invalidUTF8_isRefused() {
        var control = Wire.encode(.shutdown(.init(reason: "ab"))).control
        control[13] = 0xFF
        #expect(code([ZMQFrame(control)])?.code == .badUTF8)
    }

    @Test func kindsWithoutTensors_refuseTensorFrames() {
        var control = Wire.encode(.shutdown(.init(reason: ""))).control
        control[control.count - 1] = 1
        control += [1, 1] + [UInt8](repeating: 0, count: 8)  // one float32 tensor of shape [0]
        #expect(code([ZMQFrame(control), ZMQFrame([])])?.code == .frameCountMismatch)
    }

    // MARK: Fuzz

    @Test func decoder_survives100kRandomAndMutatedFrames() {
        var rng = RandomStream(seed: 2024, purpose: .scratch)
        let seeds = WireFixtures.all.map { WireFixtures.frames($0).map(\.bytes) }
        var accepted = 0
        for round in 0..<100_000 {
            var frames: [[UInt8]]
            if round % 4 == 0 {
                // Pure noise, sometimes behind a valid header so the body parsers get exercised.
                let n = rng.next(below: 64)
                var bytes = (0..<n).map { _ in UInt8(truncatingIfNeeded: rng.nextUInt32()) }
                if rng.next(below: 2) == 0 {
                    let major = UInt8(ProtocolVersion.current.major)
                    bytes = Wire.magic + [major, 0, 0, 0, UInt8(1 + rng.next(below: 12))] + bytes
                }
                frames =
                    [bytes]
                    + (0..<rng.next(below: 3)).map { _ in
                        (0..<rng.next(below: 32)).map { _ in UInt8(truncatingIfNeeded: rng.nextUInt32()) }
                    }
            } else {
                frames = seeds[rng.next(below: seeds.count)]
                for _ in 0..<(1 + rng.next(below: 4)) {
                    let f = rng.next(below: frames.count)
                    var b = frames[f]
                    switch rng.next(below: 5) {
                    case 0 where !b.isEmpty: b[rng.next(below: b.count)] ^= UInt8(1 << rng.next(below: 8))
                    case 1 where !b.isEmpty: b.removeLast(1 + rng.next(below: b.count))
                    case 2: b.insert(UInt8(truncatingIfNeeded: rng.nextUInt32()), at: rng.next(below: b.count + 1))
                    case 3 where !b.isEmpty: b[rng.next(below: b.count)] = 0xFF
                    default: if frames.count > 1 { frames.remove(at: frames.count - 1) } else { frames.append([]) }
                    }
                    if f < frames.count { frames[f] = b }
                }
            }
            if (try? Wire.decode(frames.map(ZMQFrame.init))) != nil { accepted += 1 }
        }
        // Some mutations are harmless (a flipped bit in a float payload); most must be refused.
        #expect(accepted > 0 && accepted < 50_000, "accepted \(accepted) of 100000")
    }
}

/// Hand-built frames for refusal tests: the codec's own field writers, into a growable array.
struct ByteArray: ByteSink {
    var bytes: [UInt8]
    init(_ prefix: [UInt8]) { bytes = prefix }
    mutating func raw(_ b: UnsafeRawBufferPointer) { bytes.append(contentsOf: b) }
    mutating func integer<T: FixedWidthInteger>(_ v: T) {
        withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) }
    }
}

@Suite struct WireChunkPayloadTests {
    static func chunk(_ phase: Wire.RingPhase, _ payload: Wire.ChunkPayload) -> Wire.Message {
        .gradientChunk(.init(step: 1, ringEpoch: 1, phase: phase, chunkIndex: 0, fromRank: 0, payload: payload))
    }

    static func refusal(_ frames: [ZMQFrame]) -> WireError? {
        do {
            _ = try Wire.decode(frames)
            return nil
        } catch {
            return error
        }
    }

    @Test func integerWords_mustBeFlat() {
        // A gradient chunk whose int64 descriptor claims rank 2.
        var control = Wire.encode(Self.chunk(.reduceScatter, .units(WireWords([1, 2] as [Int64])))).control
        // Descriptor: count 1, dtype 3, rank 1, dim 2 → rewrite as rank 2 with dims [1, 2].
        control.removeLast(11)
        control += [1, 3, 2] + [1, 0, 0, 0, 0, 0, 0, 0] + [2, 0, 0, 0, 0, 0, 0, 0]
        let error = Self.refusal([ZMQFrame(control), ZMQFrame([UInt8](repeating: 0, count: 16))])
        #expect(error?.code == .badValue && error?.field == "tensor[0].shape")
    }

    @Test func receivedWords_areReadInPlace_andEqualWhatWasSent() throws {
        let sent = WireWords([5, -6, .max, .min] as [Int64])
        let frames = WireFixtures.frames(Self.chunk(.reduceScatter, .units(sent)))
        guard case .gradientChunk(let c) = try Wire.decode(frames), case .units(let received) = c.payload else {
            Issue.record("not a units payload")
            return
        }
        #expect(received == sent && received.withInt64s { Array($0) } == [5, -6, .max, .min])
        // No copy: the words are the tensor frame's own bytes.
        #expect(received.base == frames[1].withBytes { UnsafeRawPointer($0.baseAddress!) })
    }

    @Test func patches_outOfRangeOrOutOfOrder_areRefused() {
        let low = WireWords([1, 2, 3] as [Int32])
        for patches: [Int64] in [[3, 7], [-1, 7], [2, 7, 1, 8], [1, 7, 1, 8]] {
            let message = Self.chunk(.reduceScatter, .packedUnits(low: low, patches: WireWords(patches)))
            let error = Self.refusal(WireFixtures.frames(message))
            #expect(error?.code == .badValue && error?.field == "gradientChunk.patches", "patches \(patches)")
        }
        // An odd count cannot be pairs: refused as well.
        let odd = Self.chunk(.reduceScatter, .packedUnits(low: low, patches: WireWords([1] as [Int64])))
        #expect(Self.refusal(WireFixtures.frames(odd))?.code == .badValue)
    }

    @Test func payloads_mustSuitTheirPhase() {
        let floats = Self.chunk(.reduceScatter, .values(Tensor(zeros: [3])))
        let units = Self.chunk(.allGather, .units(WireWords([1] as [Int64])))
        let lowOnly = Self.chunk(
            .allGather, .packedUnits(low: WireWords([1] as [Int32]), patches: WireWords([] as [Int64])))
        for message in [floats, units, lowOnly] {
            #expect(Self.refusal(WireFixtures.frames(message))?.field == "gradientChunk.payload")
        }
    }
}
