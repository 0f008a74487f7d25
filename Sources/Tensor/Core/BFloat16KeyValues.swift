import CKernels

/// One sequence's keys and values of one layer, rounded to bfloat16 and laid out for the two
/// products of a decode step's attention (bf16_attention.h): half the bytes of a Float32 cache to
/// read per step, and products whose bits are the same on every instruction set.
public final class BFloat16KeyValues: @unchecked Sendable {
    public let capacity: Int, kvHeads: Int, headDim: Int
    private let keys: BFloat16Buffer, values: BFloat16Buffer

    public init(capacity: Int, kvHeads: Int, headDim: Int) {
        (self.capacity, self.kvHeads, self.headDim) = (capacity, kvHeads, headDim)
        keys = BFloat16Buffer(count: rlaif_bf16_cache_keys_count(capacity, kvHeads, headDim), zeroed: true)
        values = BFloat16Buffer(count: rlaif_bf16_cache_values_count(capacity, kvHeads, headDim), zeroed: true)
    }

    /// Stores the key and value rows (kvHeads·headDim floats each) of `position`.
    public func store(position: Int, key: UnsafePointer<Float>, value: UnsafePointer<Float>) {
        precondition((0..<capacity).contains(position), "BFloat16KeyValues: position \(position) outside \(capacity)")
        rlaif_bf16_cache_store(keys.pointer, values.pointer, capacity, kvHeads, headDim, position, key, value)
    }

    /// Floats of scratch one `attend` call needs.
    public var scratchCount: Int { rlaif_bf16_attention_scratch_count(capacity, headDim) }

    /// For each of `heads` query heads: softmax(q·Kᵀ/√D) · V over positions 0..<length (the last
    /// `window` of them with a window), both products with bfloat16 inputs. `query` and `out`
    /// hold heads·headDim floats; `scratch` holds `scratchCount`.
    public func attend(
        query: UnsafePointer<Float>, length: Int, heads: Int, window: Int? = nil, out: UnsafeMutablePointer<Float>,
        scratch: UnsafeMutablePointer<Float>, kernel: rlaif_bf16_isa = rlaif_bf16_isa_best
    ) {
        precondition((1...capacity).contains(length), "BFloat16KeyValues: length \(length) outside 1...\(capacity)")
        precondition(heads % kvHeads == 0, "BFloat16KeyValues: \(heads) heads for \(kvHeads) key/value heads")
        rlaif_bf16_cached_attention(
            kernel, query, keys.pointer, values.pointer, capacity, length, heads, kvHeads, headDim, window ?? 0, out,
            scratch)
    }
}
