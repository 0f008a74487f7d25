import CKernels
import Testing

@testable import Tensor

/// The decode step's attention over a bfloat16 cache (`BFloat16KeyValues`) against the definition
/// written here: per head, the score chains of `BFloat16Tests.reference` (query and keys rounded),
/// the Float32 softmax of the visible positions, then the chains of the rounded probabilities
/// against the rounded values from the first visible pair on. Every kernel gives those bits.
@Suite struct BFloat16AttentionTests {
    struct Shape: Sendable, CustomTestStringConvertible {
        let heads: Int, kvHeads: Int, headDim: Int, capacity: Int, window: Int?
        var testDescription: String {
            "\(heads)/\(kvHeads) heads × \(headDim), \(capacity) positions, window \(window ?? 0)"
        }
    }
    static let shapes = [
        Shape(heads: 4, kvHeads: 2, headDim: 20, capacity: 37, window: nil),
        Shape(heads: 3, kvHeads: 3, headDim: 8, capacity: 16, window: 5),
        Shape(heads: 6, kvHeads: 2, headDim: 64, capacity: 70, window: 9),
        Shape(heads: 2, kvHeads: 1, headDim: 7, capacity: 20, window: nil),
    ]

    static func reference(
        query q: [Float], keys: [[Float]], values: [[Float]], length: Int, shape: Shape
    ) -> [Float] {
        let d = shape.headDim, group = shape.heads / shape.kvHeads
        let first = shape.window.map { max(0, length - $0) } ?? 0
        let pair0 = first / 2
        var out = [Float](repeating: 0, count: shape.heads * d)
        for h in 0..<shape.heads {
            let g = h / group
            let kRows = (0..<length).flatMap { keys[$0][(g * d)..<((g + 1) * d)] }
            let scores = BFloat16Tests.reference(
                Array(q[(h * d)..<((h + 1) * d)]), kRows, m: 1, n: length, k: d, transposeA: false, transposeB: true,
                alpha: 1 / Float(d).squareRoot())
            let p = Kernels.softmaxRowReference(Array(scores[first...])).y
            var probs = [Float](repeating: 0, count: length - 2 * pair0)
            for j in first..<length { probs[j - 2 * pair0] = p[j - first] }
            let vRows = ((2 * pair0)..<length).flatMap { values[$0][(g * d)..<((g + 1) * d)] }
            let o = BFloat16Tests.reference(
                probs, vRows, m: 1, n: d, k: probs.count, transposeA: false, transposeB: false)
            out.replaceSubrange((h * d)..<((h + 1) * d), with: o)
        }
        return out
    }

    @Test(arguments: shapes)
    func decodeAttention_isTheReferenceChain_onEveryKernel(shape: Shape) {
        let width = shape.kvHeads * shape.headDim
        let cache = BFloat16KeyValues(capacity: shape.capacity, kvHeads: shape.kvHeads, headDim: shape.headDim)
        let keys = (0..<shape.capacity).map { Inputs.uniform([width], -2, 2, seed: UInt64(100 + $0)).scalars }
        let values = (0..<shape.capacity).map { Inputs.uniform([width], -2, 2, seed: UInt64(500 + $0)).scalars }
        let query = Inputs.uniform([shape.heads * shape.headDim], -2, 2, seed: 7).scalars
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: cache.scratchCount)
        defer { scratch.deallocate() }
        let kernels = [rlaif_bf16_isa_scalar, rlaif_bf16_isa_avx2, rlaif_bf16_isa_avx512bf16]
        for position in 0..<shape.capacity {
            cache.store(position: position, key: keys[position], value: values[position])
            let length = position + 1
            let expected = Self.reference(query: query, keys: keys, values: values, length: length, shape: shape)
            for kernel in kernels where kernel.rawValue <= rlaif_bf16_best_isa().rawValue {
                var out = [Float](repeating: .nan, count: query.count)
                cache.attend(
                    query: query, length: length, heads: shape.heads, window: shape.window, out: &out,
                    scratch: scratch, kernel: kernel)
                #expect(out == expected, "\(kernel) at length \(length)")
            }
        }
    }

    /// Rounded once on the way in, a bf16 step stays close to the Float32 one (6.9e-4 apart on
    /// these inputs).
    @Test func decodeAttention_staysCloseToFloat32() {
        let shape = Shape(heads: 4, kvHeads: 4, headDim: 16, capacity: 24, window: nil)
        let width = shape.heads * shape.headDim
        let keys = Inputs.uniform([shape.capacity, width], seed: 3),
            values = Inputs.uniform([shape.capacity, width], seed: 4)
        let query = Inputs.uniform([width], seed: 5)
        let cache = BFloat16KeyValues(capacity: shape.capacity, kvHeads: shape.kvHeads, headDim: shape.headDim)
        for p in 0..<shape.capacity {
            cache.store(position: p, key: keys.pointer + p * width, value: values.pointer + p * width)
        }
        var bf16 = [Float](repeating: 0, count: width), exact = [Float](repeating: 0, count: width)
        var scratch = [Float](repeating: 0, count: max(cache.scratchCount, shape.capacity))
        cache.attend(query: query.pointer, length: shape.capacity, heads: shape.heads, out: &bf16, scratch: &scratch)
        Kernels.cachedAttention(
            query: query.pointer, keys: keys.pointer, values: values.pointer, length: shape.capacity,
            heads: shape.heads, kvHeads: shape.kvHeads, headDim: shape.headDim, out: &exact, scratch: &scratch)
        let worst = zip(bf16, exact).map { abs($0 - $1) }.max() ?? 0
        #expect(worst < 2e-3 && worst > 0, "largest difference \(worst)")
    }
}
