import CKernels
import Dispatch
import Foundation
import Synchronization

/// A fixed set of OS threads that split one kernel's loop between them (fork-join).
///
/// Only the engine thread submits work, one loop at a time, so a pool of width `n` never runs
/// more than `n` threads at once. Its threads are not Swift's cooperative threads: a kernel that
/// runs for seconds never starves a heartbeat task.
///
/// A decode step is a few dozen loops of tens of microseconds each, so waking a sleeping thread
/// per loop cost more than the loops gained (docs/PERFORMANCE.md). After a loop a
/// helper therefore polls for the next one for a short while (`spinWindow`) before it sleeps,
/// and the submitter polls for the helpers to finish.
final class ComputePool: @unchecked Sendable {
    /// Threads that take part in a loop, the submitting thread included.
    let width: Int
    private let helpers: [Helper]
    /// Counts submitted loops; a helper runs each one exactly once (the submitter waits for all
    /// of them before it submits the next).
    private let epoch = Atomic<Int>(0)
    private let unfinishedHelpers = Atomic<Int>(0)
    private let nextChunk = Atomic<Int>(0)
    // Written by the submitter before it advances `epoch` (releasing), read by helpers after they
    // see the new epoch (acquiring).
    private var body: ((Int) -> Void)?
    private var chunkCount = 0
    private var busy = false

    /// How long an idle helper polls before it sleeps.
    static let spinWindow = Duration.microseconds(200)

    private final class Helper: Sendable {
        static let polling = 0, sleeping = 1
        let state = Atomic<Int>(polling)
        let wake = DispatchSemaphore(value: 0)
    }

    init(width: Int) {
        self.width = max(1, width)
        self.helpers = (0..<max(0, width - 1)).map { _ in Helper() }
        for (index, helper) in helpers.enumerated() {
            let thread = Thread { [unowned self] in self.helperLoop(helper) }
            thread.name = "rlaif-compute-\(index + 1)"
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
            unfinishedHelpers.store(helpers.count, ordering: .relaxed)
            epoch.add(1, ordering: .sequentiallyConsistent)
            for helper in helpers
            where helper.state.compareExchange(
                expected: Helper.sleeping, desired: Helper.polling, ordering: .sequentiallyConsistent
            ).exchanged {
                helper.wake.signal()
            }
            drain()
            // The helpers are running their last chunks: poll, and yield the core now and then in
            // case one of them waits for it.
            var polls = 0
            while unfinishedHelpers.load(ordering: .acquiring) > 0 {
                rlaif_spin_pause()
                polls += 1
                if polls % 1024 == 0 { sched_yield() }
            }
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

    private func helperLoop(_ helper: Helper) {
        var seen = 0
        let clock = ContinuousClock()
        while true {
            var current = epoch.load(ordering: .acquiring)
            if current == seen {
                let deadline = clock.now + Self.spinWindow
                var polls = 0
                while current == seen {
                    rlaif_spin_pause()
                    polls += 1
                    if polls % 256 == 0 && clock.now > deadline { break }
                    current = epoch.load(ordering: .acquiring)
                }
            }
            if current == seen {
                // Announce the sleep, then look once more (the submitter advances the epoch, then
                // looks at the state: one of the two sees the other's write).
                helper.state.store(Helper.sleeping, ordering: .sequentiallyConsistent)
                current = epoch.load(ordering: .sequentiallyConsistent)
                if current == seen
                    || !helper.state.compareExchange(
                        expected: Helper.sleeping, desired: Helper.polling, ordering: .sequentiallyConsistent
                    ).exchanged
                {
                    // Asleep, or the submitter saw the sleep and signals: take that signal.
                    helper.wake.wait()
                    current = epoch.load(ordering: .acquiring)
                }
            }
            seen = current
            drain()
            unfinishedHelpers.subtract(1, ordering: .releasing)
        }
    }
}
