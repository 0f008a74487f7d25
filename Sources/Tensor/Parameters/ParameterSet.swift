import CKernels

/// A model's parameters in one contiguous Float32 buffer, and their gradients in another.
///
/// Building a `ParameterSet` copies every parameter into `values` and re-points each variable at
/// its slice, and points each gradient at its slice of `gradients`. From then on the whole model
/// can be all-reduced, broadcast, checksummed or stepped by an optimizer as one buffer.
///
/// ```swift
/// let params = ParameterSet(model.namedParameters)
/// loss.backward()                 // gradients land in params.gradients
/// optimizer.step(params)
/// ```
public final class ParameterSet: @unchecked Sendable {
    public struct Entry: Sendable {
        public let name: String
        public let shape: [Int]
        /// Element range inside `values` and `gradients`.
        public let range: Range<Int>
        /// Whether decoupled weight decay applies (by convention: matrices yes, biases and norms no).
        public let decays: Bool
    }

    public let entries: [Entry]
    public let variables: [Variable]
    /// Every parameter, concatenated in `entries` order.
    public let values: Tensor
    /// Every gradient, laid out like `values`.
    public let gradients: Tensor

    public var count: Int { values.count }

    /// `named` lists each parameter once, in a stable order (checkpoint and all-reduce layout).
    public init(_ named: [(String, Variable)]) {
        var seen = Set<String>()
        var entries: [Entry] = []
        var offset = 0
        for (name, v) in named {
            precondition(seen.insert(name).inserted, "ParameterSet: duplicate parameter name \(name)")
            precondition(v.op == nil && v.requiresGrad, "ParameterSet: \(name) is not a trainable leaf")
            entries.append(
                Entry(name: name, shape: v.shape, range: offset..<(offset + v.value.count), decays: v.shape.count >= 2))
            offset += v.value.count
        }
        let values = Tensor(zeros: [offset])
        let gradients = Tensor(zeros: [offset])
        for (entry, (_, v)) in zip(entries, named) {
            let view = Tensor(storage: values.storage, offset: entry.range.lowerBound, shape: entry.shape)
            view.assign(v.value)
            v.rebind(view)
            v.grad = Tensor(storage: gradients.storage, offset: entry.range.lowerBound, shape: entry.shape)
        }
        self.entries = entries
        self.variables = named.map(\.1)
        self.values = values
        self.gradients = gradients
        HeapTuning.returnFreedMemory()  // the model's own buffers, now copied into `values`
    }

    public func zeroGradients() { gradients.fill(0) }

    public subscript(name: String) -> Variable? {
        entries.firstIndex { $0.name == name }.map { variables[$0] }
    }

    /// √(Σ g²) over every gradient, summed in Double in a fixed order.
    public func gradientNorm() -> Float { Self.norm(of: gradients.pointer, count: count) }

    /// √(Σ g²) over `count` gradients where they lie (an all-reduced sum), in `gradientNorm`'s order.
    public static func norm(of gradients: UnsafePointer<Float>, count: Int) -> Float {
        Float(sumOfSquares(gradients, count: count).squareRoot())
    }

    /// The factor that brings a gradient of `norm` within `maxNorm`: 1 when it is already within
    /// (or not finite).
    public static func clipScale(norm: Float, maxNorm: Float) -> Float {
        norm > maxNorm && norm.isFinite ? maxNorm / (norm + 1e-6) : 1
    }

    /// Scales gradients so that their global norm is at most `maxNorm`; returns the norm before.
    @discardableResult
    public func clipGradientNorm(_ maxNorm: Float) -> Float {
        let norm = gradientNorm()
        let s = Self.clipScale(norm: norm, maxNorm: maxNorm)
        if s != 1 {
            let g = gradients.pointer
            Kernels.parallelRanges(count) { r in for i in r { g[i] *= s } }
        }
        return norm
    }

    /// Blocks of 4096 in sixteen Float lanes, the blocks' sums in Double (in C: baseline Swift ran
    /// the lanes four wide).
    static func sumOfSquares(_ values: UnsafePointer<Float>, count: Int) -> Double {
        rlaif_sum_of_squares(values, count)
    }
}
