import ArgumentParser
import Foundation
import Models
import Protocol
import Tensor
import Worker

/// `rlaif-bench allreduce`: ring all-reduce of Float32 gradients (as exact fixed-point sums) across
/// local ranks over tcp loopback, reported as bus bandwidth 2(n−1)/n · bytes / time, where bytes is
/// the Float32 gradient size (as MPI_Allreduce on floats counts it). Ranks are tasks of this process.
///
/// The ring's time runs from each rank's fixed-point sum (into which a worker accumulates its
/// micro-batch gradients as they are computed) to the reduced floats on every rank. Rounding a
/// Float32 gradient into a fresh sum is timed on its own and printed beside it.
///
/// Gradients: by default the small GPT-2 preset's language-model gradient on random tokens (a
/// different batch per rank), repeated to the size asked for; `--normal-std` draws N(0, std²)
/// instead. How many elements needed more than 32 bits is printed (`PackedUnits`).
struct AllReduceBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "allreduce", abstract: "Ring all-reduce bus bandwidth.")

    @Option(help: "Ring sizes.") var ranks: [Int] = [2, 4]
    @Option(help: "Gradient sizes in MB (Float32).") var megabytes: [Int] = [1, 4, 16, 64]
    @Option(help: "Timed repetitions (best is kept).") var repeats = 3
    @Option(help: "Elements per slice.") var sliceElements = RingAllReduce.defaultSliceElements
    @Option(help: "Fixed-point resolution 2^-bits.") var fractionBits = ExactSum.defaultFractionBits
    @Option(help: "Draw gradients from N(0, std²) instead of the GPT-2 gradient.") var normalStd: Double?

    func run() async throws {
        let source = normalStd.map { "N(0, \($0)²)" } ?? "small GPT-2 LM gradients"
        emit("gradients: \(source); slices of \(sliceElements) elements; units of 2^-\(fractionBits)")
        emit("ranks   MB    best ms   bus GB/s   quantize ms   >32-bit elements")
        for n in ranks {
            let base = try await gradients(ranks: n)
            for mb in megabytes {
                let count = mb << 18  // floats
                let listeners = try (0..<n).map { _ in try Endpoint.listen(on: "tcp://127.0.0.1:*") }
                let mailboxes = (0..<n).map { _ in ChunkMailbox() }
                let pumps = zip(mailboxes, listeners).map { $0.pump(from: $1) }
                let senders = try (0..<n).map { r in try Endpoint.connect(to: listeners[(r + 1) % n].address) }
                let inputs = base.map { Self.repeated($0, to: count) }
                // Rounding into a sum, best of a few (the first pays for fresh pages).
                var quantize = Double.infinity
                var sums: [ExactSum] = []
                for g in inputs {
                    var sum = ExactSum(count: 0)
                    for _ in 0..<3 {
                        let start = ContinuousClock.now
                        sum = ExactSum(count: count, fractionBits: fractionBits)
                        try sum.add(g)
                        quantize = min(quantize, (ContinuousClock.now - start).seconds)
                    }
                    sums.append(sum)
                }
                let wide = sums[0].units.reduce(0) { $0 + (Int64(Int32(truncatingIfNeeded: $1)) == $1 ? 0 : 1) }
                var best = Double.infinity
                var reference: String?
                for step in 0..<(repeats + 1) {
                    // Each rank owns its sum, as a worker does: the ring adds into it without a copy.
                    let owned = try sums.map { s in
                        var copy = ExactSum(count: count, fractionBits: fractionBits)
                        try copy.add(units: s.units, at: 0)
                        return Handoff(copy)
                    }
                    let start = ContinuousClock.now
                    let results = try await withThrowingTaskGroup(of: Tensor.self) { group in
                        for r in 0..<n {
                            group.addTask { [sliceElements] in
                                let ring = RingAllReduce(
                                    rank: r, size: n, step: UInt64(step), epoch: 1, sliceElements: sliceElements)
                                return try await ring.run(owned[r].take(), next: senders[r], mailbox: mailboxes[r])
                            }
                        }
                        return try await group.reduce(into: [Tensor]()) { $0.append($1) }
                    }
                    if step > 0 { best = min(best, (ContinuousClock.now - start).seconds) }  // step 0 warms up
                    let checksums = Set(results.map(\.checksum))
                    // Every rank, every repetition: the same bits.
                    guard checksums.count == 1, reference == nil || reference == checksums.first else {
                        throw ValidationError("ranks disagree on the reduced gradient")
                    }
                    reference = checksums.first
                }
                for e in senders + listeners { e.close() }
                for p in pumps { p.cancel() }
                let bus = 2 * Double(n - 1) / Double(n) * Double(count * 4) / best / 1e9
                emit(
                    String(
                        format: "%5d %4d %10.1f %10.2f %13.1f %17.5f%%", n, mb, best * 1000, bus, quantize * 1000,
                        100 * Double(wide) / Double(count)))
            }
        }
    }

    /// One gradient per rank.
    private func gradients(ranks n: Int) async throws -> [Tensor] {
        if let std = normalStd {
            return (0..<n).map { r in
                var rng = RandomStream(seed: 1, purpose: .scratch, step: 0, index: UInt64(r))
                return Tensor.randomNormal([1 << 20], std: Float(std), rng: &rng)
            }
        }
        let model = try GPT2(config: .small, seed: 1)
        return await Engine.shared.run {
            let params = ParameterSet(model.namedParameters)
            return (0..<n).map { r in
                var rng = RandomStream(seed: 2, purpose: .scratch, step: 0, index: UInt64(r))
                let ids = (0..<(8 * 128)).map { _ in Int32(rng.next(below: GPT2Config.small.vocabularySize)) }
                params.zeroGradients()
                model.languageModelLoss(TokenTensor(shape: [8, 128], ids: ids)).backward()
                return params.gradients.copy()
            }
        }
    }

    /// `g` repeated (and cut) to `count` elements.
    private static func repeated(_ g: Tensor, to count: Int) -> Tensor {
        let out = Tensor(zeros: [count])
        var offset = 0
        while offset < count {
            let k = min(g.count, count - offset)
            (out.pointer + offset).update(from: g.pointer, count: k)
            offset += k
        }
        return out
    }
}

/// Hands a value to one task, which takes it over (no other reference stays behind).
private final class Handoff<Value>: @unchecked Sendable {
    private var value: Value?
    init(_ value: Value) { self.value = value }
    func take() -> Value { value.take()! }
}
