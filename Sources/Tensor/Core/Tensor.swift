/// An n-dimensional Float32 array in row-major, contiguous layout.
///
/// A `Tensor` is a view: `reshaped(_:)` and `rows(_:)` share storage with the original and cost
/// nothing. Operations never modify their inputs; the few in-place methods (`add(_:)`, `fill`)
/// are named as such and are used by gradient accumulation and optimizers.
///
/// ```swift
/// let x = Tensor(shape: [2, 3], scalars: [1, 2, 3, 4, 5, 6])
/// let y = x.reshaped([3, 2])   // same storage
/// ```
public struct Tensor: Sendable {
    public let shape: [Int]
    public let storage: TensorStorage
    public let offset: Int

    /// Element count of `shape` (1 for a scalar of shape `[]`).
    public var count: Int { shape.reduce(1, *) }
    public var rank: Int { shape.count }

    /// A zero-filled tensor.
    public init(zeros shape: [Int]) {
        Shape.validate(shape, op: "zeros")
        let count = shape.reduce(1, *)
        self.shape = shape
        // Big buffers are zeroed by the pool (see `fill`); small ones by one memset.
        self.storage = TensorStorage(count: count, zeroed: count < Self.parallelFillCount)
        self.offset = 0
        if count >= Self.parallelFillCount { fill(0) }
    }

    /// A tensor whose elements are unspecified: for kernels that overwrite every one of them.
    init(uninitialized shape: [Int]) {
        Shape.validate(shape, op: "uninitialized")
        self.shape = shape
        self.storage = TensorStorage(count: shape.reduce(1, *), zeroed: false)
        self.offset = 0
    }

    public init(shape: [Int], repeating value: Float) {
        self.init(zeros: shape)
        if value != 0 { fill(value) }
    }

    public init(shape: [Int], scalars: [Float]) {
        Shape.validate(shape, op: "init")
        precondition(
            shape.reduce(1, *) == scalars.count,
            "Tensor(shape:scalars:): shape \(shape) needs \(shape.reduce(1, *)) scalars, got \(scalars.count)")
        self.init(zeros: shape)
        scalars.withUnsafeBufferPointer { src in
            pointer.update(from: src.baseAddress!, count: src.count)
        }
    }

    /// A rank-0 tensor.
    public init(scalar: Float) { self.init(shape: [], scalars: [scalar]) }

    /// A view into existing storage; `offset + count` must lie inside it.
    public init(storage: TensorStorage, offset: Int, shape: [Int]) {
        Shape.validate(shape, op: "view")
        precondition(
            offset >= 0 && offset + shape.reduce(1, *) <= storage.count,
            "Tensor view of shape \(shape) at offset \(offset) exceeds storage of \(storage.count) elements")
        self.storage = storage
        self.offset = offset
        self.shape = shape
    }

    /// First element of this view. Valid for the lifetime of `storage`.
    public var pointer: UnsafeMutablePointer<Float> { storage.base + offset }

    public var buffer: UnsafeMutableBufferPointer<Float> { UnsafeMutableBufferPointer(start: pointer, count: count) }

    /// The elements, in row-major order.
    public var scalars: [Float] { Array(buffer) }

    /// The single element of a one-element tensor.
    public var item: Float {
        precondition(count == 1, "item: tensor of shape \(shape) has \(count) elements, not 1")
        return pointer[0]
    }

    public subscript(flat index: Int) -> Float {
        get { pointer[index] }
        nonmutating set { pointer[index] = newValue }
    }

    /// The same elements under another shape; one dimension may be -1 and is inferred. No copy.
    public func reshaped(_ newShape: [Int]) -> Tensor {
        Tensor(storage: storage, offset: offset, shape: Shape.resolve(newShape, count: count, op: "reshape"))
    }

    /// Rows `range` of the first axis, sharing storage. No copy.
    public func rows(_ range: Range<Int>) -> Tensor {
        precondition(
            rank >= 1 && range.lowerBound >= 0 && range.upperBound <= shape[0],
            "rows: range \(range) outside first axis of shape \(shape)")
        let rowSize = shape.dropFirst().reduce(1, *)
        return Tensor(
            storage: storage, offset: offset + range.lowerBound * rowSize,
            shape: [range.count] + shape.dropFirst())
    }

    /// A deep copy with its own storage.
    public func copy() -> Tensor {
        let out = Tensor(uninitialized: shape)
        out.pointer.update(from: pointer, count: count)
        return out
    }

    /// Sets every element to `value`, in place; inside an engine job, big tensors in parallel
    /// (zeroing gradient buffers on the engine thread alone was a visible share of a training step).
    public func fill(_ value: Float) {
        let base = pointer
        Engine.parallelRanges(count, grain: Self.parallelFillCount / 2) { r in
            (base + r.lowerBound).update(repeating: value, count: r.count)
        }
    }

    /// From this many elements on, `fill` and `init(zeros:)` split the work over the pool.
    static let parallelFillCount = 1 << 17

    /// Copies `other`'s elements into this view, in place. Shapes must hold the same count.
    public func assign(_ other: Tensor) {
        precondition(other.count == count, "assign: \(other.shape) into \(shape)")
        pointer.update(from: other.pointer, count: count)
    }
}

extension Tensor: CustomStringConvertible {
    public var description: String {
        let shown = count <= 16 ? "\(scalars)" : "\(Array(buffer.prefix(16)))…"
        return "Tensor(shape: \(shape), \(shown))"
    }
}
