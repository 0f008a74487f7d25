import ArgumentParser
import Foundation
import Tensor

/// `rlaif-bench optimizer`: what a rank does with the all-reduced gradient, two ways, interleaved.
/// Before: copy the sum into the set's gradients, clip them in a pass of their own, AdamW, and the
/// eight-lane Swift fingerprint. Now: AdamW reads the sum where it lies with the clip factor in
/// its own pass, and the 32-lane C fingerprint.
struct OptimizerBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "optimizer", abstract: "A step's update after the all-reduce: before vs now.")

    @Option(help: "Parameters (the default model has 632,449).") var parameters = 632_449
    @Option(help: "Timed updates per path (best and median are kept).") var reps = 41

    func run() async throws {
        let (n, reps) = (parameters, reps)
        let (beforeTimes, nowTimes, same) = await Engine.shared.run { () -> ([Double], [Double], Bool) in
            func set() -> ParameterSet {  // the same weights each time
                var rng = RandomStream(seed: 5, purpose: .scratch)
                let bias = min(4096, n / 8)
                return ParameterSet([
                    ("w", Variable(.randomUniform([n - bias], low: -0.1, high: 0.1, rng: &rng), requiresGrad: true)),
                    ("b", Variable(.randomUniform([bias], low: -0.1, high: 0.1, rng: &rng), requiresGrad: true)),
                ])
            }
            let before = set(), now = set()
            var rng = RandomStream(seed: 6, purpose: .scratch)
            // Large enough that every step is clipped, as in the default run's SFT phase.
            let reduced = Tensor.randomUniform([n], low: -0.05, high: 0.05, rng: &rng)
            var beforeOptimizer = AdamW(), nowOptimizer = AdamW()
            beforeOptimizer.reserveState(for: before)
            nowOptimizer.reserveState(for: now)
            var beforeTimes: [Double] = [], nowTimes: [Double] = [], same = true
            for round in 0...reps {
                let t0 = ContinuousClock.now
                before.gradients.pointer.update(from: reduced.pointer, count: n)
                before.clipGradientNorm(1)
                beforeOptimizer.update(before, learningRate: 1e-3)
                let h0 = Self.eightLaneFingerprint(before.values)
                let t1 = ContinuousClock.now
                let norm = ParameterSet.norm(of: reduced.pointer, count: n)
                let scale = ParameterSet.clipScale(norm: norm, maxNorm: 1)
                nowOptimizer.update(now, gradients: reduced.pointer, scale: scale, learningRate: 1e-3)
                let h1 = now.values.fingerprint
                let t2 = ContinuousClock.now
                // Each hash compared, so neither pass is left out as unused.
                same = same && (h0 == Self.eightLaneFingerprint(now.values)) && (h1 == before.values.fingerprint)
                if round > 0 {  // the first is a warm-up
                    beforeTimes.append((t1 - t0).seconds)
                    nowTimes.append((t2 - t1).seconds)
                }
            }
            return (beforeTimes, nowTimes, same && before.values.scalars == now.values.scalars)
        }
        guard same else { throw ValidationError("the two paths gave different weights") }
        func line(_ name: String, _ times: [Double]) -> String {
            let best = times.min()!, median = times.sorted()[times.count / 2]
            let label = name.padding(toLength: 7, withPad: " ", startingAt: 0)
            return label + String(format: "best %7.3f ms  median %7.3f ms", best * 1000, median * 1000)
        }
        emit("\(n) parameters, clipped every step, \(Engine.shared.threads) thread(s):")
        emit(line("before", beforeTimes))
        emit(line("now", nowTimes))
        let ratio = beforeTimes.sorted()[beforeTimes.count / 2] / nowTimes.sorted()[nowTimes.count / 2]
        emit(String(format: "before/now: median %.2fx", ratio))
    }

    /// The fingerprint the 32-lane one replaced: eight xor-multiply lanes in Swift's SIMD8<UInt64>.
    static func eightLaneFingerprint(_ t: Tensor) -> UInt64 {
        let prime: UInt64 = 0x0000_0100_0000_01B3
        var lanes = SIMD8<UInt64>(repeating: 0xCBF2_9CE4_8422_2325)
        for l in 0..<8 { lanes[l] &+= UInt64(l) }
        let bytes = UnsafeRawBufferPointer(start: t.pointer, count: t.count * MemoryLayout<Float>.stride)
        let blocks = bytes.count / 64
        for b in 0..<blocks {
            lanes = (lanes ^ bytes.loadUnaligned(fromByteOffset: b * 64, as: SIMD8<UInt64>.self)) &* prime
        }
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325 ^ UInt64(bytes.count)
        for l in 0..<8 { hash = (hash ^ lanes[l]) &* prime }
        for byte in bytes[(blocks * 64)...] { hash = (hash ^ UInt64(byte)) &* prime }
        hash = (hash ^ (hash >> 30)) &* 0xBF58_476D_1CE4_E5B9
        hash = (hash ^ (hash >> 27)) &* 0x94D0_49BB_1331_11EB
        return hash ^ (hash >> 31)
    }
}
