import CKernels

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// GELU in GPT-2's tanh form: y = ½x(1 + tanh(√(2/π)(x + 0.044715x³))).
extension Kernels {
    static let geluScale = Float((2.0 / Double.pi).squareRoot())

    /// The loops run in C (`CKernels`), compiled for AVX-512 and AVX2 as well as the baseline
    /// (docs/PERFORMANCE.md).
    static func geluForward(_ x: Tensor) -> Tensor {
        let out = Tensor(uninitialized: x.shape)
        let src = x.pointer, dst = out.pointer
        parallelRanges(x.count, grain: parallelGrain / 4) { r in
            rlaif_gelu_forward(src + r.lowerBound, dst + r.lowerBound, r.count)
        }
        return out
    }

    /// Adds dOut · GELU'(x) into dx, or writes it there when `overwrite`.
    static func geluBackward(dOut: Tensor, x: Tensor, dx: Tensor, overwrite: Bool = false) {
        let src = x.pointer, dy = dOut.pointer, d = dx.pointer
        parallelRanges(x.count, grain: parallelGrain / 4) { r in
            rlaif_gelu_backward(dy + r.lowerBound, src + r.lowerBound, d + r.lowerBound, r.count, overwrite ? 0 : 1)
        }
    }

    /// The Swift statement of GELU and its derivative that the C loops follow operation for
    /// operation (tests hold them to the same bits).
    static func geluReference(_ v: Float) -> Float {
        0.5 * v * (1 + fastTanh(geluScale * (v + 0.044715 * v * v * v)))
    }

    static func geluGradientReference(_ dy: Float, _ v: Float) -> Float {
        let t = fastTanh(geluScale * (v + 0.044715 * v * v * v))
        let du = geluScale * (1 + 3 * 0.044715 * v * v)
        return dy * (0.5 * (1 + t) + 0.5 * v * (1 - t * t) * du)
    }
}

/// SwiGLU's gate: y = silu(gate) ⊙ up, silu(x) = x / (1 + e⁻ˣ) (Llama's MLP, as transformers' `act_fn`).
extension Kernels {
    static func swiGLUForward(gate: Tensor, up: Tensor) -> Tensor {
        precondition(gate.shape == up.shape, "swiGLU: gate \(gate.shape) and up \(up.shape) differ")
        let out = Tensor(uninitialized: gate.shape)
        let (g, u, y) = (gate.pointer, up.pointer, out.pointer)
        parallelRanges(gate.count, grain: parallelGrain / 4) { r in
            for i in r { y[i] = g[i] / (1 + expf(-g[i])) * u[i] }
        }
        return out
    }

    /// Adds dy·up·silu'(gate) into dgate and dy·silu(gate) into dup (each optional), with
    /// silu'(x) = σ(x)·(1 + x·(1 − σ(x))).
    static func swiGLUBackward(dOut: Tensor, gate: Tensor, up: Tensor, dgate: Tensor?, dup: Tensor?) {
        let (dy, g, u) = (dOut.pointer, gate.pointer, up.pointer)
        let (dg, du) = (dgate?.pointer, dup?.pointer)
        parallelRanges(gate.count, grain: parallelGrain / 4) { r in
            for i in r {
                let sigma = 1 / (1 + expf(-g[i]))
                if let dg { dg[i] += dy[i] * u[i] * sigma * (1 + g[i] * (1 - sigma)) }
                if let du { du[i] += dy[i] * (g[i] * sigma) }
            }
        }
    }
}
