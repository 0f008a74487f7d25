/// An n-dimensional array of Int32 token ids (or class targets), row-major.
///
/// Token ids never take part in differentiation, so this is a plain value type.
/// A target of `TokenTensor.ignored` (-1) is skipped by losses.
public struct TokenTensor: Sendable, Equatable {
    public static let ignored: Int32 = -1

    public let shape: [Int]
    public var ids: [Int32]

    public var count: Int { ids.count }

    public init(shape: [Int], ids: [Int32]) {
        Shape.validate(shape, op: "TokenTensor")
        precondition(
            shape.reduce(1, *) == ids.count,
            "TokenTensor: shape \(shape) needs \(shape.reduce(1, *)) ids, got \(ids.count)")
        self.shape = shape
        self.ids = ids
    }

    public func reshaped(_ newShape: [Int]) -> TokenTensor {
        TokenTensor(shape: Shape.resolve(newShape, count: count, op: "TokenTensor.reshape"), ids: ids)
    }
}
