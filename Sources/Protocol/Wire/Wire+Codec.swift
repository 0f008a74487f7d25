import Tensor

/// A message ready for the socket: the control frame and the tensors that follow it, one frame each.
public struct EncodedMessage: Sendable {
    public var control: [UInt8]
    public var tensors: [WireTensor]
}

extension Wire {
    // MARK: Encoding

    public static func encode(_ message: Message, version: ProtocolVersion = .current) -> EncodedMessage {
        // Measure, then write into an array of exactly that size: one allocation, no growth.
        var counter = ByteCounter()
        writeControl(message, version: version, into: &counter)
        let control = [UInt8](unsafeUninitializedCapacity: counter.count) { buffer, initialized in
            var writer = ByteWriter(base: UnsafeMutableRawPointer(buffer.baseAddress!))
            writeControl(message, version: version, into: &writer)
            initialized = writer.offset
        }
        // Shared slices describe their tensors in the control frame; the bytes are in the segment.
        if case .gradientChunk(let m) = message, m.shared != nil {
            return EncodedMessage(control: control, tensors: [])
        }
        return EncodedMessage(control: control, tensors: message.tensors)
    }

    // size: field list
    private static func writeControl<Sink: ByteSink>(_ message: Message, version: ProtocolVersion, into w: inout Sink) {
        w.u32(magicWord)
        w.u16(version.major)
        w.u16(version.minor)
        w.u8(message.kind.rawValue)
        switch message {
        case .hello(let m):
            w.string(m.workerName)
            w.string(m.host)
            w.u32(m.pid)
            w.u16(m.threads)
            w.u64(m.incarnation)
            w.string(m.ringEndpoint)
            w.u8(m.role.code)
        case .welcome(let m):
            w.u32(m.workerID)
            w.u32(m.heartbeatIntervalMilliseconds)
            w.u32(m.heartbeatTimeoutMilliseconds)
            w.string(m.runName)
            w.string(m.setup)
            w.stringArray(m.ringKeys)
        case .reject(let m):
            w.string(m.reason)
        case .heartbeat(let m):
            w.u32(m.workerID)
            w.u64(m.sequence)
        case .assign(let m):
            w.u64(m.jobID)
            w.u8(m.kind.rawValue)
            w.u64(m.step)
            w.u32(m.attempt)
            w.u32(m.leaseMilliseconds)
            w.u64(m.weightsVersion)
            w.bytes(m.body)
        case .result(let m):
            w.u64(m.jobID)
            w.u32(m.attempt)
            w.u32(m.workerID)
            w.u8(m.status.rawValue)
            w.string(m.message)
            w.bytes(m.body)
        case .weightsRequest(let m):
            w.u32(m.workerID)
            w.u8(m.model.rawValue)
            w.u64(m.version)
        case .weights(let m):
            w.u8(m.model.rawValue)
            w.u64(m.version)
        case .gradientChunk(let m):
            w.u64(m.step)
            w.u32(m.ringEpoch)
            w.u8(m.phase.rawValue)
            w.u32(m.chunkIndex)
            w.u32(m.sliceIndex)
            w.u16(m.fromRank)
            w.u8(m.shared == nil ? 0 : 1)
            if let shared = m.shared {
                w.u32(shared.pid)
                w.u32(shared.descriptor)
                for t in shared.token { w.u64(t) }
                w.u64(shared.offset)
                w.u64(shared.sequence)
            }
        case .shutdown(let m):
            w.string(m.reason)
        case .labelBudgetRequest(let m):
            w.u32(m.workerID)
            w.u64(m.ticket)
            w.u32(m.tokens)
        case .labelBudgetGrant(let m):
            w.u64(m.ticket)
            w.u8(m.status.rawValue)
            w.u64(m.grantID)
            w.u32(m.queuedMilliseconds)
            w.string(m.message)
        case .labelBudgetSettle(let m):
            w.u32(m.workerID)
            w.u64(m.grantID)
            w.u32(m.tokens)
        case .labelAnswers(let m):
            w.u32(m.workerID)
            w.stringArray(m.keys)
            for body in m.bodies { w.bytes(body) }
        }
        // Tensor descriptors close every control frame (a count of 0 for most kinds).
        let tensors = message.tensors
        w.u8(UInt8(tensors.count))
        for t in tensors {
            w.u8(t.dtype.rawValue)
            w.u8(UInt8(t.shape.count))
            for d in t.shape { w.u64(UInt64(d)) }
        }
        // Fields added by later minor versions will follow the descriptors, where older readers stop.
    }

    /// `magic` read as a little-endian u32 ("RLAF").
    static let magicWord: UInt32 = 0x4641_4C52

    // MARK: Decoding

    /// Decodes one message from its frames (control frame first). Pure: no I/O, no partial results.
    public static func decode(_ frames: [ZMQFrame], limits: WireLimits = .default) throws(WireError) -> Message {
        guard let control = frames.first else {
            throw WireError(code: .truncated, frame: 0, field: "control", detail: "message has no frames")
        }
        let header = try control.withBytes { (raw) throws(WireError) in try decodeControl(raw, limits: limits) }
        return try complete(header, tensorFrames: Array(frames.dropFirst()))
    }

    /// A decoded control frame, waiting for its tensor frames.
    struct ControlFrame {
        var message: Message
        var descriptors: [TensorDescriptor]
    }

    /// Decodes a control frame on its own (the socket loop does so straight from libzmq's buffer).
    static func decodeControl(_ raw: UnsafeRawBufferPointer, limits: WireLimits) throws(WireError) -> ControlFrame {
        var r = ByteReader(raw, limits: limits)
        let (message, descriptors) = try decodeControl(&r)
        return ControlFrame(message: message, descriptors: descriptors)
    }

    /// Checks the tensor frames against the control frame's descriptors and completes the message.
    static func complete(_ control: ControlFrame, tensorFrames: [ZMQFrame]) throws(WireError) -> Message {
        let descriptors = control.descriptors
        guard tensorFrames.count == descriptors.count else {
            throw WireError(
                code: .frameCountMismatch, frame: tensorFrames.count, field: "tensors",
                detail: "control frame describes \(descriptors.count) tensors, message has \(tensorFrames.count)")
        }
        // Gradient chunks keep their integer words in the received frames: the ring adds from there.
        let inPlace = control.message.kind == .gradientChunk
        var tensors: [WireTensor] = []
        for (i, d) in descriptors.enumerated() {
            tensors.append(try tensor(d, frame: tensorFrames[i], index: i, wordsInPlace: inPlace))
        }
        return try attach(tensors, to: control.message)
    }

    struct TensorDescriptor {
        var dtype: WireTensor.DType
        var shape: [Int]
        var byteCount: Int
    }

    // size: field list
    private static func decodeControl(_ r: inout ByteReader) throws(WireError) -> (Message, [TensorDescriptor]) {
        let m = try r.take(4, "magic")
        guard Array(m) == magic else { throw r.fail(.badMagic, "magic", "not an rlaif message") }
        let version = ProtocolVersion(major: try r.u16("version.major"), minor: try r.u16("version.minor"))
        guard version.isCompatible(with: .current) else {
            throw r.fail(
                .unsupportedVersion, "version", "peer speaks \(version), this build speaks \(ProtocolVersion.current)")
        }
        let rawKind = try r.u8("kind")
        guard let kind = Kind(rawValue: rawKind) else { throw r.fail(.unknownKind, "kind", "unknown kind \(rawKind)") }
        let message: Message
        switch kind {
        case .hello:
            message = .hello(
                Hello(
                    workerName: try r.string("hello.workerName"), host: try r.string("hello.host"),
                    pid: try r.u32("hello.pid"), threads: try r.u16("hello.threads"),
                    incarnation: try r.u64("hello.incarnation"), ringEndpoint: try r.string("hello.ringEndpoint"),
                    role: try r.role("hello.role")))
        case .welcome:
            message = .welcome(
                Welcome(
                    workerID: try r.u32("welcome.workerID"),
                    heartbeatIntervalMilliseconds: try r.u32("welcome.heartbeatInterval"),
                    heartbeatTimeoutMilliseconds: try r.u32("welcome.heartbeatTimeout"),
                    runName: try r.string("welcome.runName"), setup: try r.string("welcome.setup"),
                    ringKeys: try r.stringArray("welcome.ringKeys")))
        case .reject:
            message = .reject(Reject(reason: try r.string("reject.reason")))
        case .heartbeat:
            message = .heartbeat(
                Heartbeat(
                    workerID: try r.u32("heartbeat.workerID"), sequence: try r.u64("heartbeat.sequence")))
        case .assign:
            message = .assign(
                Assign(
                    jobID: try r.u64("assign.jobID"), kind: try r.enumeration(JobKind.self, "assign.kind"),
                    step: try r.u64("assign.step"), attempt: try r.u32("assign.attempt"),
                    leaseMilliseconds: try r.u32("assign.lease"), weightsVersion: try r.u64("assign.weightsVersion"),
                    body: try r.bytes("assign.body")))
        case .result:
            let jobID = try r.u64("result.jobID"), attempt = try r.u32("result.attempt")
            let workerID = try r.u32("result.workerID")
            let status = try r.enumeration(JobStatus.self, "result.status")
            let text = try r.string("result.message")
            message = .result(
                Result(
                    jobID: jobID, attempt: attempt, workerID: workerID, status: status, message: text,
                    body: try r.bytes("result.body")))
        case .weightsRequest:
            message = .weightsRequest(
                WeightsRequest(
                    workerID: try r.u32("weightsRequest.workerID"),
                    model: try r.enumeration(Model.self, "weightsRequest.model"),
                    version: try r.u64("weightsRequest.version")))
        case .weights:
            message = .weights(
                Weights(
                    model: try r.enumeration(Model.self, "weights.model"), version: try r.u64("weights.version"),
                    tensors: []))
        case .gradientChunk:
            message = .gradientChunk(
                GradientChunk(
                    step: try r.u64("gradientChunk.step"), ringEpoch: try r.u32("gradientChunk.ringEpoch"),
                    phase: try r.enumeration(RingPhase.self, "gradientChunk.phase"),
                    chunkIndex: try r.u32("gradientChunk.chunkIndex"),
                    sliceIndex: try r.u32("gradientChunk.sliceIndex"),
                    fromRank: try r.u16("gradientChunk.fromRank"),
                    payload: .values(Tensor(zeros: [0])), shared: try sharedSlice(&r)))
        case .shutdown:
            message = .shutdown(Shutdown(reason: try r.string("shutdown.reason")))
        case .labelBudgetRequest:
            message = .labelBudgetRequest(
                LabelBudgetRequest(
                    workerID: try r.u32("labelBudgetRequest.workerID"), ticket: try r.u64("labelBudgetRequest.ticket"),
                    tokens: try r.u32("labelBudgetRequest.tokens")))
        case .labelBudgetGrant:
            message = .labelBudgetGrant(
                LabelBudgetGrant(
                    ticket: try r.u64("labelBudgetGrant.ticket"),
                    status: try r.enumeration(LabelBudgetStatus.self, "labelBudgetGrant.status"),
                    grantID: try r.u64("labelBudgetGrant.grantID"),
                    queuedMilliseconds: try r.u32("labelBudgetGrant.queuedMilliseconds"),
                    message: try r.string("labelBudgetGrant.message")))
        case .labelBudgetSettle:
            message = .labelBudgetSettle(
                LabelBudgetSettle(
                    workerID: try r.u32("labelBudgetSettle.workerID"), grantID: try r.u64("labelBudgetSettle.grantID"),
                    tokens: try r.u32("labelBudgetSettle.tokens")))
        case .labelAnswers:
            let workerID = try r.u32("labelAnswers.workerID")
            let keys = try r.stringArray("labelAnswers.keys")
            var bodies: [[UInt8]] = []
            for _ in keys { bodies.append(try r.bytes("labelAnswers.body")) }
            message = .labelAnswers(LabelAnswers(workerID: workerID, keys: keys, bodies: bodies))
        }
        let count = Int(try r.u8("tensors.count"))
        guard count <= r.limits.maxTensors else {
            throw r.fail(.tooLarge, "tensors.count", "\(count) tensors exceed \(r.limits.maxTensors)")
        }
        var descriptors: [TensorDescriptor] = []
        for i in 0..<count {
            let dtype = try r.enumeration(WireTensor.DType.self, "tensor[\(i)].dtype")
            let rank = Int(try r.u8("tensor[\(i)].rank"))
            guard rank <= r.limits.maxRank else {
                throw r.fail(.tooLarge, "tensor[\(i)].rank", "rank \(rank) exceeds \(r.limits.maxRank)")
            }
            var shape: [Int] = []
            var elements = 1
            for _ in 0..<rank {
                let d = try r.u64("tensor[\(i)].shape")
                let limit = UInt64(r.limits.maxTensorBytes / dtype.size)
                let (product, overflow) = UInt64(elements).multipliedReportingOverflow(by: d)
                guard d <= limit, !overflow, product <= limit else {
                    throw r.fail(.tooLarge, "tensor[\(i)].shape", "more than \(r.limits.maxTensorBytes) bytes")
                }
                elements = Int(product)
                shape.append(Int(d))
            }
            descriptors.append(TensorDescriptor(dtype: dtype, shape: shape, byteCount: elements * dtype.size))
        }
        // A newer minor may append fields this build does not know: they are skipped, as the
        // versioning rules promise. From our own or an older minor, every byte must be accounted for.
        if version.minor <= ProtocolVersion.current.minor { try r.expectEnd() }
        return (message, descriptors)
    }

    private static func tensor(
        _ d: TensorDescriptor, frame: ZMQFrame, index: Int, wordsInPlace: Bool
    ) throws(WireError) -> WireTensor {
        guard frame.count == d.byteCount else {
            throw WireError(
                code: .tensorSizeMismatch, frame: index + 1, field: "tensor[\(index)]",
                detail: "shape \(d.shape) needs \(d.byteCount) bytes, frame has \(frame.count)")
        }
        // int64 tensors, and integer words read in place, are flat runs.
        let asWords = wordsInPlace && d.dtype != .float32
        guard (d.dtype != .int64 && !asWords) || d.shape.count == 1 else {
            throw WireError(
                code: .badValue, frame: index + 1, field: "tensor[\(index)].shape",
                detail: "\(d.dtype) tensors are flat here (rank 1), got shape \(d.shape)")
        }
        if asWords { return .words(WireWords(frame: frame, dtype: d.dtype)) }
        return frame.withBytes { raw in
            let count = d.byteCount / d.dtype.size
            switch d.dtype {
            case .float32:
                if let base = raw.baseAddress, Int(bitPattern: base) % 4 == 0, count > 0 {
                    // Zero-copy: the tensor keeps the received frame alive.
                    let storage = TensorStorage(
                        adopting: UnsafeMutablePointer(mutating: base.assumingMemoryBound(to: Float.self)),
                        count: count, owner: frame)
                    return .float32(Tensor(storage: storage, offset: 0, shape: d.shape))
                }
                let t = Tensor(zeros: d.shape)
                if count > 0 {
                    UnsafeMutableRawPointer(t.pointer).copyMemory(from: raw.baseAddress!, byteCount: d.byteCount)
                }
                return .float32(t)
            case .int32:
                var ids = [Int32](repeating: 0, count: count)
                if count > 0 { ids.withUnsafeMutableBytes { $0.copyMemory(from: raw) } }
                return .int32(TokenTensor(shape: d.shape, ids: ids.map { Int32(littleEndian: $0) }))
            case .int64:
                let values = [Int64](unsafeUninitializedCapacity: count) { buffer, initialized in
                    if count > 0 { UnsafeMutableRawBufferPointer(buffer).copyMemory(from: raw) }
                    #if _endian(big)
                        for i in 0..<count { buffer[i] = Int64(littleEndian: buffer[i]) }
                    #endif
                    initialized = count
                }
                return .int64(values)
            }
        }
    }

    /// Puts decoded tensors into the message, checking the count each kind expects.
    private static func attach(_ tensors: [WireTensor], to message: Message) throws(WireError) -> Message {
        func none(_ field: String) throws(WireError) {
            guard tensors.isEmpty else {
                throw WireError(
                    code: .frameCountMismatch, frame: 1, field: field,
                    detail: "carries no tensors, got \(tensors.count)")
            }
        }
        switch message {
        case .weights(var m):
            guard !tensors.isEmpty else {
                throw WireError(code: .frameCountMismatch, frame: 0, field: "weights", detail: "carries no tensor")
            }
            m.tensors = tensors
            return .weights(m)
        case .gradientChunk(var m):
            m.payload = try chunkPayload(tensors, phase: m.phase)
            return .gradientChunk(m)
        case .hello, .welcome, .reject, .heartbeat, .assign, .result, .weightsRequest, .shutdown,
            .labelBudgetRequest, .labelBudgetGrant, .labelBudgetSettle, .labelAnswers:
            try none("\(message.kind)")
            return message
        }
    }
}
