import ArgumentParser
import Foundation
import Protocol
import Tensor
import Worker

/// `rlaif-bench allreduce`: ring all-reduce of Float32 gradients (as exact fixed-point sums) across
/// local ranks over tcp loopback, reported as bus bandwidth 2(n−1)/n · bytes / time, where bytes is
/// the Float32 gradient size (as MPI_Allreduce on floats counts it). Ranks are tasks of this process;
/// quantizing to and from the fixed-point sum is included in the time.
struct AllReduceBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "allreduce", abstract: "Ring all-reduce bus bandwidth.")

    @Option(help: "Ring sizes.") var ranks: [Int] = [2, 4]
    @Option(help: "Gradient sizes in MB (Float32).") var megabytes: [Int] = [1, 4, 16, 64]
    @Option(help: "Timed repetitions (best is kept).") var repeats = 3

    func run() async throws {
        emit("ranks   MB    best ms   bus GB/s")
        for n in ranks {
            for mb in megabytes {
                let count = mb << 18  // floats
                let listeners = try (0..<n).map { _ in try Endpoint.listen(on: "tcp://127.0.0.1:*") }
                let mailboxes = (0..<n).map { _ in ChunkMailbox() }
                let pumps = zip(mailboxes, listeners).map { $0.pump(from: $1) }
                let senders = try (0..<n).map { r in try Endpoint.connect(to: listeners[(r + 1) % n].address) }
                let gradients = (0..<n).map { r -> Tensor in
                    var rng = RandomStream(seed: 1, purpose: .scratch, step: 0, index: UInt64(r))
                    return Tensor.randomNormal([count], std: 1e-2, rng: &rng)
                }
                var best = Double.infinity
                for step in 0..<(repeats + 1) {
                    let start = ContinuousClock.now
                    try await withThrowingTaskGroup(of: Void.self) { group in
                        for r in 0..<n {
                            group.addTask {
                                var sum = ExactSum(count: count)
                                try sum.add(gradients[r])
                                let ring = RingAllReduce(rank: r, size: n, step: UInt64(step), epoch: 1)
                                _ = try await ring.run(consume sum, next: senders[r], mailbox: mailboxes[r]).value()
                            }
                        }
                        try await group.waitForAll()
                    }
                    if step > 0 { best = min(best, (ContinuousClock.now - start).seconds) }  // step 0 warms up
                }
                for e in senders + listeners { e.close() }
                for p in pumps { p.cancel() }
                let bus = 2 * Double(n - 1) / Double(n) * Double(count * 4) / best / 1e9
                emit(String(format: "%5d %4d %10.1f %10.2f", n, mb, best * 1000, bus))
            }
        }
    }
}
