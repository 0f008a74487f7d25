import Tensor

/// Decoding a gradient chunk's own parts: where a shared slice lies, and what its tensors must be.
extension Wire {
    static func sharedSlice(_ r: inout ByteReader) throws(WireError) -> SharedSlice? {
        switch try r.u8("gradientChunk.shared") {
        case 0: return nil
        case 1:
            return SharedSlice(
                pid: try r.u32("gradientChunk.shared.pid"), descriptor: try r.u32("gradientChunk.shared.descriptor"),
                token: [try r.u64("gradientChunk.shared.token"), try r.u64("gradientChunk.shared.token")],
                offset: try r.u64("gradientChunk.shared.offset"), sequence: try r.u64("gradientChunk.shared.sequence"))
        case let flag: throw r.fail(.badValue, "gradientChunk.shared", "flag \(flag) is neither 0 nor 1")
        }
    }

    /// A gradient chunk's tensors as its payload: partial sums (int64 units, or int32 low words
    /// with int64 patches) while reducing, float32 values while gathering.
    static func chunkPayload(_ tensors: [WireTensor], phase: RingPhase) throws(WireError) -> ChunkPayload {
        switch (phase, tensors.count, tensors.first) {
        case (.allGather, 1, .float32(let t)?), (.broadcast, 1, .float32(let t)?):
            return .values(t)
        case (.reduceScatter, 1, .words(let units)?) where units.dtype == .int64:
            return .units(units)
        case (.reduceScatter, 2, .words(let low)?) where low.dtype == .int32:
            guard case .words(let patches) = tensors[1], patches.dtype == .int64 else { break }
            let valid = patches.withInt64s { PackedUnits.patchesAreValid($0, count: low.count) }
            guard valid else {
                throw WireError(
                    code: .badValue, frame: 2, field: "gradientChunk.patches",
                    detail: "patches must be (index, units) pairs with indices increasing below \(low.count)")
            }
            return .packedUnits(low: low, patches: patches)
        default:
            break
        }
        throw WireError(
            code: .frameCountMismatch, frame: 0, field: "gradientChunk.payload",
            detail: phase != .reduceScatter
                ? "an all-gather or broadcast chunk carries one float32 tensor"
                : "a reduce-scatter chunk carries one int64 tensor, or an int32 and an int64 tensor")
    }

}
