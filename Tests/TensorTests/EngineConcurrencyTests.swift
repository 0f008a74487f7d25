import Foundation
import Testing

@testable import Tensor

/// An actor that owns some data and computes with the shared engine, as a worker's actors will.
actor Computer {
    let a: Tensor, b: Tensor

    init(seed: UInt64) {
        a = Inputs.uniform([96, 64], seed: seed)
        b = Inputs.uniform([64, 80], seed: seed + 100)
    }

    /// A small forward/backward mix of BLAS and pool kernels; returns a checksum of the gradient.
    func compute() async -> String {
        let (a, b) = (self.a, self.b)
        return await Engine.shared.run {
            let x = Variable(a, requiresGrad: true), w = Variable(b, requiresGrad: true)
            let h = x.matmul(w).gelu()
            let gamma = Variable(Tensor(shape: [80], repeating: 1)), beta = Variable(Tensor(zeros: [80]))
            let loss = h.layerNorm(gamma: gamma, beta: beta).logSoftmax().mean()
            loss.backward()
            return w.grad!.checksum + x.grad!.checksum
        }
    }
}

@Suite struct EngineConcurrencyTests {
    @Test func concurrentActors_getTheSameResultsAsSerialCalls() async {
        let actors = (0..<6).map { Computer(seed: UInt64($0)) }
        var serial: [String] = []
        for actor in actors { serial.append(await actor.compute()) }
        let concurrent = await withTaskGroup(of: (Int, String).self) { group in
            for (i, actor) in actors.enumerated() {
                for _ in 0..<3 { group.addTask { (i, await actor.compute()) } }
            }
            var out: [(Int, String)] = []
            for await r in group { out.append(r) }
            return out
        }
        #expect(concurrent.count == 18)
        for (i, checksum) in concurrent { #expect(checksum == serial[i]) }
    }

    @Test func heartbeat_keepsTicking_whileTheEngineRunsAMultiSecondMatmulLoop() async {
        let a = Inputs.uniform([1024, 1024]), b = Inputs.uniform([1024, 1024], seed: 9)
        let clock = ContinuousClock()
        let heartbeat = Task { () -> [ContinuousClock.Instant] in
            var ticks: [ContinuousClock.Instant] = []
            while !Task.isCancelled {
                ticks.append(clock.now)
                try? await Task.sleep(for: .milliseconds(10))
            }
            return ticks
        }
        let start = clock.now
        let products = await Engine.shared.run { () -> Int in
            var n = 0
            // At least two seconds of back-to-back 1024² products.
            while ContinuousClock.now - start < .seconds(2) {
                _ = a.matmul(b)
                n += 1
            }
            return n
        }
        let end = clock.now
        heartbeat.cancel()
        let ticks = await heartbeat.value.filter { $0 >= start && $0 <= end }
        let gaps = zip(ticks.dropFirst(), ticks).map { $0 - $1 }
        let worst = gaps.max() ?? .seconds(999)
        // A blocked executor would show one gap of the whole two seconds. The bounds leave room for a
        // shared machine's scheduling noise (CI may run beside other processes).
        #expect(products > 1)
        #expect(ticks.count > 20, "only \(ticks.count) ticks in \(end - start)")
        #expect(worst < .milliseconds(250), "longest heartbeat gap \(worst)")
    }

    @Test func threadedKernels_giveTheSameBitsAsSerialKernels() async {
        // Inside the engine the pool splits rows across threads; outside, one thread does all.
        let x = Inputs.uniform([512, 384], -3, 3)
        let gamma = Inputs.uniform([384], seed: 4), beta = Inputs.uniform([384], seed: 5)
        @Sendable func work() -> String {
            let v = Variable(x)
            let y = v.gelu().layerNorm(gamma: Variable(gamma), beta: Variable(beta)).softmax() + v
            return y.value.checksum + y.sum(axis: 0).value.checksum
        }
        let serial = Autograd.inferenceMode(work)
        let threaded = await Engine.shared.infer(work)
        #expect(serial == threaded)
    }

    struct Boom: Error, Equatable {}

    @Test func errorsThrownInAJob_reachTheCaller() async {
        await #expect(throws: Boom.self) {
            try await Engine.shared.run { () throws(Boom) -> Int in throw Boom() }
        }
        // The engine keeps serving after a failed job.
        #expect(await Engine.shared.run { 41 + 1 } == 42)
    }
}

/// The pool's hand-off: loops back to back (helpers polling) and loops after a pause long enough
/// for the helpers to sleep each run every chunk exactly once.
@Suite struct ComputePoolTests {
    @Test func everyChunkRunsOnce_backToBack_andAfterTheHelpersSlept() async {
        let counts = await Engine.shared.run { () -> [Int] in
            var failures = 0
            for round in 0..<2000 {
                if round % 500 == 499 { usleep(20_000) }  // far past the spin window: helpers sleep
                let chunks = 2 + round % 7
                let hits = UnsafeMutablePointer<Int>.allocate(capacity: chunks)
                hits.initialize(repeating: 0, count: chunks)
                Engine.parallelFor(chunks) { hits[$0] += 1 }
                if (0..<chunks).contains(where: { hits[$0] != 1 }) { failures += 1 }
                hits.deallocate()
            }
            return [failures]
        }
        #expect(counts == [0])
    }
}
