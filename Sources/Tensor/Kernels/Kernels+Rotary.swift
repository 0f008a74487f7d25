import Foundation

/// Rotary position embedding's angles: for position p and pair i of a head of D floats, the
/// rotation by p·θᵢ (θᵢ = `inverseFrequencies[i]`), tabled as cos and sin for positions
/// 0..<`positions`. Angles are Float products as transformers computes them.
public struct RotaryTable: Sendable {
    public let headDim: Int
    public let positions: Int
    public let inverseFrequencies: [Float]
    let cos: [Float], sin: [Float]  // (positions, D/2)

    public init(headDim: Int, inverseFrequencies: [Float], positions: Int) {
        precondition(
            headDim % 2 == 0 && inverseFrequencies.count == headDim / 2,
            "RotaryTable: \(inverseFrequencies.count) frequencies for head width \(headDim)")
        self.headDim = headDim
        self.positions = positions
        self.inverseFrequencies = inverseFrequencies
        var cos = [Float](), sin = [Float]()
        cos.reserveCapacity(positions * headDim / 2)
        sin.reserveCapacity(positions * headDim / 2)
        for p in 0..<positions {
            for f in inverseFrequencies {
                let angle = Double(Float(p) * f)
                cos.append(Float(Foundation.cos(angle)))
                sin.append(Float(Foundation.sin(angle)))
            }
        }
        self.cos = cos
        self.sin = sin
    }

    /// θᵢ = base^(−2i/D), as transformers' default rope.
    public static func standardFrequencies(headDim: Int, base: Float) -> [Float] {
        (0..<(headDim / 2)).map { i in 1 / Float(pow(Double(base), Double(Float(2 * i) / Float(headDim)))) }
    }
}

/// Rotates each head's halves: out[j] = x[j]·cos − x[j+D/2]·sin, out[j+D/2] = x[j+D/2]·cos + x[j]·sin
/// (transformers' `rotate_half` form). The inverse rotation (sin negated) is the gradient.
extension Kernels {
    /// x: (…, heads·D); row r (of x's rows) is at position `positions.ids[r % positions.count]`.
    static func rotary(_ x: Tensor, heads: Int, table: RotaryTable, positions: TokenTensor, inverse: Bool)
        -> Tensor
    {
        let d = table.headDim, half = table.headDim / 2
        let width = heads * d
        precondition(x.shape.last == width, "rotary: x \(x.shape) is not \(heads) heads of \(d)")
        let rows = x.count / width
        precondition(
            positions.count > 0 && rows % positions.count == 0,
            "rotary: \(positions.count) positions for \(rows) rows")
        precondition(
            positions.ids.allSatisfy { $0 >= 0 && Int($0) < table.positions },
            "rotary: a position is outside the table's \(table.positions)")
        let out = Tensor(uninitialized: x.shape)
        let (src, dst) = (x.pointer, out.pointer)
        let sign: Float = inverse ? -1 : 1
        table.cos.withUnsafeBufferPointer { cosines in
            table.sin.withUnsafeBufferPointer { sines in
                let (cs, ss) = (cosines.baseAddress!, sines.baseAddress!)
                parallelRanges(rows, grain: max(1, parallelGrain / width)) { r in
                    for row in r {
                        let p = Int(positions.ids[row % positions.count])
                        let (c, s) = (cs + p * half, ss + p * half)
                        for h in 0..<heads {
                            let a = src + row * width + h * d, o = dst + row * width + h * d
                            for j in 0..<half {
                                let sj = sign * s[j]
                                o[j] = a[j] * c[j] - a[j + half] * sj
                                o[j + half] = a[j + half] * c[j] + a[j] * sj
                            }
                        }
                    }
                }
            }
        }
        return out
    }
}
