import Dispatch
import Foundation
import Synchronization

/// A fixed set of OS threads that split one kernel's loop between them (fork-join).
///
/// Only the engine thread submits work, one loop at a time, so a pool of width `n` never runs
/// more than `n` threads at once. Its threads are not Swift's cooperative threads: a kernel that
/// runs for seconds never starves a heartbeat task.
final class ComputePool: @unchecked Sendable {
    /// Threads that take part in a loop, the submitting thread included.
    let width: Int
    private let wake: [DispatchSemaphore]
    private let finished = DispatchSemaphore(value: 0)
    private let nextChunk = Atomic<Int>(0)
    // Written by the submitter before the semaphores signal, read by helpers after: the
    // semaphores order these accesses.
    private var body: ((Int) -> Void)?
    private var chunkCount = 0
    private var busy = false

    init(width: Int) {
        self.width = max(1, width)
        self.wake = (0..<max(0, width - 1)).map { _ in DispatchSemaphore(value: 0) }
        for helper in wake.indices {
            let thread = Thread { [unowned self] in self.helperLoop(helper) }
            thread.name = "rlaif-compute-\(helper + 1)"
            thread.stackSize = 1 << 22
            thread.start()
        }
    }

    /// Calls `body(i)` for every `i` in `0..<chunks`, spread over the pool; returns when all finished.
    /// Nested calls (a body that itself parallelizes) run inline.
    func parallelFor(_ chunks: Int, _ body: (Int) -> Void) {
        if chunks <= 1 || width == 1 || busy {
            for i in 0..<chunks { body(i) }
            return
        }
        withoutActuallyEscaping(body) { escaping in
            busy = true
            self.body = escaping
            chunkCount = chunks
            nextChunk.store(0, ordering: .relaxed)
            let helpers = min(wake.count, chunks - 1)
            for h in 0..<helpers { wake[h].signal() }
            drain()
            for _ in 0..<helpers { finished.wait() }
            self.body = nil
            busy = false
        }
    }

    private func drain() {
        guard let body else { return }
        while true {
            let i = nextChunk.wrappingAdd(1, ordering: .relaxed).oldValue
            if i >= chunkCount { return }
            body(i)
        }
    }

    private func helperLoop(_ index: Int) {
        while true {
            wake[index].wait()
            drain()
            finished.signal()
        }
    }
}
