#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// GELU in GPT-2's tanh form: y = ½x(1 + tanh(√(2/π)(x + 0.044715x³))).
extension Kernels {
    static let geluScale = Float((2.0 / Double.pi).squareRoot())

    static func geluForward(_ x: Tensor) -> Tensor {
        let out = Tensor(uninitialized: x.shape)
        let src = x.pointer, dst = out.pointer
        parallelRanges(x.count, grain: parallelGrain / 4) { r in
            for i in r {
                let v = src[i]
                dst[i] = 0.5 * v * (1 + fastTanh(geluScale * (v + 0.044715 * v * v * v)))
            }
        }
        return out
    }

    static func geluBackward(dOut: Tensor, x: Tensor, dx: Tensor) {
        let src = x.pointer, dy = dOut.pointer, d = dx.pointer
        parallelRanges(x.count, grain: parallelGrain / 4) { r in
            for i in r {
                let v = src[i]
                let t = fastTanh(geluScale * (v + 0.044715 * v * v * v))
                let du = geluScale * (1 + 3 * 0.044715 * v * v)
                d[i] += dy[i] * (0.5 * (1 + t) + 0.5 * v * (1 - t * t) * du)
            }
        }
    }
}
