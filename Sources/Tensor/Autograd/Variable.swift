/// A node of the autograd graph: a value, the op that made it, and (after `backward()`) its gradient.
///
/// Leaves are parameters or inputs; `requiresGrad` marks the leaves whose gradients are wanted.
/// Ops on variables record their inputs unless the thread is in inference mode
/// (`Autograd.inferenceMode`), in which case they return leaves and keep no graph.
///
/// ```swift
/// let w = Variable(Tensor(shape: [2, 2], scalars: [1, 2, 3, 4]), requiresGrad: true)
/// let loss = (w * w).sum()          // Σ w², so ∂loss/∂w = 2w
/// loss.backward()
/// w.grad?.scalars                    // [2, 4, 6, 8]
/// ```
///
/// `@unchecked Sendable`: a graph is built and differentiated inside one engine job at a time.
public final class Variable: @unchecked Sendable {
    public internal(set) var value: Tensor
    /// Accumulated gradient; `backward()` adds into it. Parameters may point it into a flat buffer.
    public var grad: Tensor?
    public let requiresGrad: Bool
    /// The precision of the products this variable takes part in (bf16 wins; see `ProductPrecision.of`).
    public var productPrecision: ProductPrecision = .float32
    /// How this variable was computed; nil for leaves.
    let op: Op?

    public var shape: [Int] { value.shape }

    /// A leaf.
    public init(_ value: Tensor, requiresGrad: Bool = false) {
        self.value = value
        self.requiresGrad = requiresGrad
        self.op = nil
    }

    /// The result of `op`; it tracks gradients when any input does.
    init(_ value: Tensor, op: Op) {
        self.value = value
        let tracked = !ThreadFlags.inferenceMode && op.inputs.contains { $0.requiresGrad }
        self.requiresGrad = tracked
        self.op = tracked ? op : nil
    }

    /// Replaces a leaf's value (used to point parameters into flat storage). Shape must not change.
    public func rebind(_ newValue: Tensor) {
        precondition(op == nil, "rebind: only leaves can be rebound")
        precondition(newValue.shape == value.shape, "rebind: shape \(newValue.shape) differs from \(value.shape)")
        value = newValue
    }

    /// True while `grad` is a scratch buffer `backward()` allocated without zeroing it: the first
    /// op to reach it either overwrites it whole (`gradBufferForOverwrite`) or has it zeroed.
    var gradIsUnwritten = false

    /// The gradient buffer, created zero-filled on first use.
    func gradBuffer() -> Tensor {
        if let grad {
            if gradIsUnwritten {
                grad.fill(0)
                gradIsUnwritten = false
            }
            return grad
        }
        let g = Tensor(zeros: value.shape)
        grad = g
        return g
    }

    /// The gradient buffer and whether the caller must overwrite it rather than add into it: true
    /// when nothing has been written to it yet, and then the caller writes every element.
    /// (Zeroing scratch gradients that the next op overwrote anyway cost a training step time.)
    func gradBufferForOverwrite() -> (buffer: Tensor, overwrite: Bool) {
        if let grad, gradIsUnwritten {
            gradIsUnwritten = false
            return (grad, true)
        }
        return (gradBuffer(), false)
    }

    /// Adds `dOut` (of this variable's shape) into the gradient, or copies it there when nothing
    /// was written yet: the rule of an operand that reaches the output unchanged (a residual).
    func takeGradient(_ dOut: Tensor) {
        let (d, overwrite) = gradBufferForOverwrite()
        if overwrite { d.assign(dOut) } else { Kernels.addInPlace(d, dOut) }
    }

    /// Sets the gradient to zero in place (keeping a flat-buffer view if there is one).
    public func zeroGrad() { grad?.fill(0) }
}

/// Switches for graph recording.
public enum Autograd {
    /// Runs `body` with recording off on this thread: ops inside build no graph and keep no
    /// intermediate tensors alive. Use it for sampling and evaluation.
    public static func inferenceMode<T, E: Error>(_ body: () throws(E) -> T) throws(E) -> T {
        let previous = ThreadFlags.inferenceMode
        ThreadFlags.inferenceMode = true
        defer { ThreadFlags.inferenceMode = previous }
        return try body()
    }

    /// True when ops on this thread record a graph.
    public static var isRecording: Bool { !ThreadFlags.inferenceMode }
}
