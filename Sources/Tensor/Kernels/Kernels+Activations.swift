#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// GELU in GPT-2's tanh form: y = ½x(1 + tanh(√(2/π)(x + 0.044715x³))).
extension Kernels {
    static let geluScale = Float((2.0 / Double.pi).squareRoot())

    static func geluForward(_ x: Tensor) -> Tensor {
        map(x) { v in
            let u = geluScale * (v + 0.044715 * v * v * v)
            return 0.5 * v * (1 + tanhf(u))
        }
    }

    static func geluBackward(dOut: Tensor, x: Tensor, dx: Tensor) {
        accumulateMap(dx, x, dOut) { v, dy in
            let u = geluScale * (v + 0.044715 * v * v * v)
            let t = tanhf(u)
            let sech2 = 1 - t * t
            let du = geluScale * (1 + 3 * 0.044715 * v * v)
            return dy * (0.5 * (1 + t) + 0.5 * v * sech2 * du)
        }
    }
}
