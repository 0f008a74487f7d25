/// Shape arithmetic shared by every op: validation, broadcasting, strides.
///
/// Shape errors are programming errors (a model wired wrongly), so they stop with a message that
/// names the op and both shapes, e.g. `shape mismatch in matmul, lhs: [4, 64], rhs: [32, 8]`.
public enum Shape {
    static func validate(_ shape: [Int], op: String) {
        precondition(shape.allSatisfy { $0 >= 0 }, "\(op): negative dimension in shape \(shape)")
    }

    /// Replaces a single -1 in `shape` so that the element count equals `count`.
    static func resolve(_ shape: [Int], count: Int, op: String) -> [Int] {
        var out = shape
        let unknown = shape.indices.filter { shape[$0] == -1 }
        precondition(unknown.count <= 1, "\(op): more than one -1 in \(shape)")
        if let i = unknown.first {
            let known = shape.enumerated().filter { $0.offset != i }.map(\.element).reduce(1, *)
            precondition(known > 0 && count % known == 0, "\(op): cannot infer -1 in \(shape) for \(count) elements")
            out[i] = count / known
        }
        validate(out, op: op)
        precondition(out.reduce(1, *) == count, "\(op): shape \(shape) does not hold \(count) elements")
        return out
    }

    /// NumPy broadcasting: align trailing axes; each pair must be equal or contain a 1.
    public static func broadcast(_ a: [Int], _ b: [Int], op: String) -> [Int] {
        let rank = max(a.count, b.count)
        let pa = Array(repeating: 1, count: rank - a.count) + a
        let pb = Array(repeating: 1, count: rank - b.count) + b
        return (0..<rank).map { i in
            if pa[i] == pb[i] || pb[i] == 1 { return pa[i] }
            if pa[i] == 1 { return pb[i] }
            preconditionFailure("shape mismatch in \(op), lhs: \(a), rhs: \(b)")
        }
    }

    /// Row-major strides of `shape` seen from an output of rank `rank`; broadcast axes get stride 0.
    static func broadcastStrides(_ shape: [Int], toRank rank: Int) -> [Int] {
        let padded = Array(repeating: 1, count: rank - shape.count) + shape
        var strides = Array(repeating: 0, count: rank)
        var step = 1
        for i in stride(from: rank - 1, through: 0, by: -1) {
            strides[i] = padded[i] == 1 ? 0 : step
            step *= padded[i]
        }
        return strides
    }

    /// Normalizes a possibly negative axis against `rank`.
    static func axis(_ axis: Int, rank: Int, op: String) -> Int {
        let a = axis < 0 ? axis + rank : axis
        precondition(a >= 0 && a < rank, "\(op): axis \(axis) out of range for rank \(rank)")
        return a
    }
}
