import ArgumentParser
import Foundation
import Models
import Protocol
import Tensor
import Worker

/// `rlaif-bench allreduce`: ring all-reduce of Float32 gradients (as exact fixed-point sums) across
/// local ranks over tcp loopback (or ipc://, which same-host workers can use: `workers.ring_bind`), reported as bus bandwidth 2(n−1)/n · bytes / time, where bytes is
/// the Float32 gradient size (as MPI_Allreduce on floats counts it).
///
/// Each rank is a process of its own, as a worker is (its own ZeroMQ I/O thread, its own task
/// pool) and as an MPI rank is. The parent starts them, tells each its successor's address, and
/// starts every repetition at once; a repetition's time is its slowest rank's, from its
/// fixed-point sum (into which a worker accumulates its micro-batch gradients as they are
/// computed) to the reduced floats. Rounding a Float32 gradient into a fresh sum is timed on its
/// own and printed beside it. "cpu ms" is the median over repetitions of the CPU time that all
/// ranks' processes spent in the reduction (user and kernel): where ranks outnumber cores it, not
/// the wire, sets the time.
///
/// Gradients: by default the small GPT-2 preset's language-model gradient on random tokens (a
/// different batch per rank), repeated to the size asked for; `--normal-std` draws N(0, std²)
/// instead. How many elements needed more than 32 bits is printed (`PackedUnits`).
struct AllReduceBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "allreduce", abstract: "Ring all-reduce bus bandwidth.")

    @Option(help: "Ring sizes.") var ranks: [Int] = [2, 4]
    @Option(help: "Gradient sizes in MB (Float32).") var megabytes: [Int] = [1, 4, 16, 64]
    @Option(help: "Timed repetitions (best and median are shown).") var repeats = 9
    @Option(help: "Elements per slice.") var sliceElements = RingAllReduce.defaultSliceElements
    @Option(help: "Fixed-point resolution 2^-bits.") var fractionBits = ExactSum.defaultFractionBits
    @Option(help: "Draw gradients from N(0, std²) instead of the GPT-2 gradient.") var normalStd: Double?
    @Option(help: "tcp (loopback) or ipc (Unix domain sockets).") var transport: RingTransport = .tcp
    @Option(
        help:
            "on: slices through each rank's shared segment, read when its doorbell shows them; located: read when their location comes through the socket; off: in frames."
    )
    var sharedMemory: [SharedMemoryMode] = [.on]

    func run() throws {
        let source = normalStd.map { "N(0, \($0)²)" } ?? "small GPT-2 LM gradients"
        emit(
            "gradients: \(source); slices of \(sliceElements) elements; units of 2^-\(fractionBits); one process per rank; \(transport)"
        )
        emit("shm ranks   MB    best ms   bus GB/s  median ms   bus GB/s   cpu ms   quantize ms   >32-bit elements")
        let me = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        // With several modes, each size runs them one after the other: side by side, same load.
        for n in ranks {
            for mb in megabytes {
                for mode in sharedMemory {
                    try measure(me, ranks: n, megabytes: mb, mode: mode)
                }
            }
        }
    }

    private func measure(_ me: URL, ranks n: Int, megabytes mb: Int, mode: SharedMemoryMode) throws {
        do {
            do {
                var arguments = [
                    "allreduce-rank", "--size", "\(n)", "--megabytes", "\(mb)", "--slice-elements", "\(sliceElements)",
                    "--fraction-bits", "\(fractionBits)", "--transport", transport.rawValue,
                    "--shared-memory", mode.rawValue,
                ]
                if let normalStd { arguments += ["--normal-std", "\(normalStd)"] }
                let processes = try (0..<n).map { r in try RankProcess(me, arguments + ["--rank", "\(r)"]) }
                defer { for p in processes { p.stop() } }
                // "ready ADDRESS QUANTIZE_SECONDS WIDE_ELEMENTS" from each.
                let ready = try processes.map { try $0.expect("ready", fields: 3) }
                for (r, p) in processes.enumerated() { try p.send("successor \(ready[(r + 1) % n][0])") }
                for p in processes { _ = try p.expect("armed", fields: 0) }
                var times: [Double] = []
                var cpu: [Double] = []
                var reference: String?
                for step in 0..<(repeats + 1) {
                    // Every rank starts at the same instant (a barrier without its exit skew: the
                    // parent's messages reach the ranks milliseconds apart).
                    let start = monotonicNanoseconds() + 20_000_000
                    for p in processes { try p.send("go \(step) \(start)") }
                    // "done SECONDS CPU_SECONDS" from each. Only then does any rank check its
                    // result and make its next sum: work after a rank's reduction would take CPU
                    // from the ranks still reducing (MPI's ranks do nothing in between either).
                    let done = try processes.map { try $0.expect("done", fields: 2) }
                    for p in processes { try p.send("check") }
                    let checksums = Set(try processes.map { try $0.expect("checksum", fields: 1)[0] })
                    for p in processes { _ = try p.expect("armed", fields: 0) }
                    // Every rank, every repetition: the same bits.
                    guard checksums.count == 1, reference == nil || reference == checksums.first else {
                        throw ValidationError("ranks disagree on the reduced gradient")
                    }
                    reference = checksums.first
                    if step > 0 {  // step 0 warms up
                        times.append(done.map { Double($0[0])! }.max()!)
                        cpu.append(done.map { Double($0[1])! }.reduce(0, +))
                    }
                }
                times.sort()
                cpu.sort()
                let (best, median) = (times[0], times[times.count / 2])
                let bytes = 2 * Double(n - 1) / Double(n) * Double(mb << 20)
                let quantize = ready.map { Double($0[1])! }.min()!
                emit(
                    String(
                        format: "%3@ %5d %4d %10.1f %10.2f %10.1f %10.2f %8.1f %13.1f %17.5f%%", mode.rawValue, n, mb,
                        best * 1000,
                        bytes / best / 1e9, median * 1000, bytes / median / 1e9, cpu[cpu.count / 2] * 1000,
                        quantize * 1000,
                        100 * Double(ready[0][2])! / Double(mb << 18)))
            }
        }
    }
}

/// One rank of `allreduce`, driven by the parent over stdin/stdout.
struct AllReduceRank: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "allreduce-rank", abstract: "One rank of the all-reduce benchmark.", shouldDisplay: false)

    @Option var rank: Int
    @Option var size: Int
    @Option var megabytes: Int
    @Option var sliceElements: Int
    @Option var fractionBits: Int
    @Option var normalStd: Double?
    @Option var transport: RingTransport
    @Option var sharedMemory: SharedMemoryMode

    func run() async throws {
        let count = megabytes << 18  // floats
        let input = Self.repeated(try await gradient(), to: count)
        // Rounding into a sum, best of a few (the first pays for fresh pages).
        var quantize = Double.infinity
        var sum = ExactSum(count: 0)
        for _ in 0..<3 {
            let start = ContinuousClock.now
            sum = ExactSum(count: count, fractionBits: fractionBits)
            try sum.add(input)
            quantize = min(quantize, (ContinuousClock.now - start).seconds)
        }
        let wide = sum.units.reduce(0) { $0 + (Int64(Int32(truncatingIfNeeded: $1)) == $1 ? 0 : 1) }
        // As in a worker (`RingLink`): the reduction runs on the port's thread.
        let port = try RingPort(
            bind: transport == .ipc ? "ipc://*" : "tcp://127.0.0.1:*",
            sharedSegmentBytes: sharedMemory == .off ? 0 : RingPort.defaultSharedSegmentBytes,
            followsDoorbell: sharedMemory == .on)
        defer { port.close() }
        emit(String(format: "ready %@ %.9f %d", port.address, quantize, wide))
        guard let line = readLine(), line.hasPrefix("successor ") else { throw ExitCode.failure }
        let next = String(line.dropFirst("successor ".count))
        while true {
            // The rank owns its sum, made as a worker makes it (rounding its gradient into a fresh
            // sum) before the parent starts the step, so no rank's time includes another's
            // preparation.
            var owned = ExactSum(count: count, fractionBits: fractionBits)
            try owned.add(input)
            emit("armed")
            guard let line = readLine(), line.hasPrefix("go ") else { break }
            let fields = line.split(separator: " ")
            guard fields.count == 3, let step = UInt64(fields[1]), let startAt = UInt64(fields[2]) else { break }
            let ring = RingAllReduce(rank: rank, size: size, step: step, epoch: 1, sliceElements: sliceElements)
            // Timed on the ring's thread, from the start instant to the reduced floats, as MPI's
            // side times MPI_Allreduce in its caller (handing the result back to this task is
            // a thread switch a worker pays after, not in, the reduction).
            let (result, seconds, cpuSeconds) = try await port.run { [owned] session in
                waitUntil(startAt)
                let cpuAtStart = processCPUSeconds()  // after the spin to the start
                let result = try ring.run(owned, next: try session.successor(next, security: .open), session: session)
                return (result, Double(monotonicNanoseconds() - startAt) / 1e9, processCPUSeconds() - cpuAtStart)
            }
            emit(String(format: "done %.9f %.9f", seconds, cpuSeconds))
            guard readLine() == "check" else { break }
            emit("checksum \(result.checksum)")
        }
    }

    /// This rank's gradient.
    private func gradient() async throws -> Tensor {
        if let std = normalStd {
            var rng = RandomStream(seed: 1, purpose: .scratch, step: 0, index: UInt64(rank))
            return Tensor.randomNormal([1 << 20], std: Float(std), rng: &rng)
        }
        let model = try GPT2(config: .small, seed: 1)
        return await Engine.shared.run { [rank] in
            let params = ParameterSet(model.namedParameters)
            var rng = RandomStream(seed: 2, purpose: .scratch, step: 0, index: UInt64(rank))
            let ids = (0..<(8 * 128)).map { _ in Int32(rng.next(below: GPT2Config.small.vocabularySize)) }
            params.zeroGradients()
            model.languageModelLoss(TokenTensor(shape: [8, 128], ids: ids)).backward()
            return params.gradients.copy()
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

enum RingTransport: String, ExpressibleByArgument {
    case tcp, ipc
}

/// on: slices through shared memory, each read as soon as the predecessor's doorbell shows it;
/// located: through shared memory, each read once its location comes through libzmq; off: in frames.
enum SharedMemoryMode: String, ExpressibleByArgument {
    case on, located, off
}

/// CLOCK_MONOTONIC, which every process on the machine shares.
private func monotonicNanoseconds() -> UInt64 {
    var t = timespec()
    clock_gettime(CLOCK_MONOTONIC, &t)
    return UInt64(t.tv_sec) * 1_000_000_000 + UInt64(t.tv_nsec)
}

/// CPU time of every thread of this process (the ring's and libzmq's I/O thread included), kernel
/// time included.
private func processCPUSeconds() -> Double {
    var t = timespec()
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t)
    return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
}

/// Sleeps until a millisecond before `instant`, then spins to it.
private func waitUntil(_ instant: UInt64) {
    let now = monotonicNanoseconds()
    if instant > now + 1_000_000 { usleep(UInt32((instant - now - 1_000_000) / 1000)) }
    while monotonicNanoseconds() < instant {}
}

/// A child process spoken to in lines: commands on its stdin, replies on its stdout.
private final class RankProcess {
    private let process = Process()
    private let input = Pipe()
    private let output = Pipe()
    private var buffered = Data()

    init(_ executable: URL, _ arguments: [String]) throws {
        process.executableURL = executable
        process.arguments = arguments
        process.standardInput = input
        process.standardOutput = output
        try process.run()
    }

    func send(_ line: String) throws {
        try input.fileHandleForWriting.write(contentsOf: Data((line + "\n").utf8))
    }

    /// The next line, which must be `word` followed by `fields` fields; returns the fields.
    func expect(_ word: String, fields: Int) throws -> [String] {
        while true {
            if let newline = buffered.firstIndex(of: UInt8(ascii: "\n")) {
                let line = String(decoding: buffered[..<newline], as: UTF8.self)
                buffered.removeSubrange(...newline)
                let parts = line.split(separator: " ").map(String.init)
                guard parts.first == word, parts.count == fields + 1 else {
                    throw ValidationError("a rank said \"\(line)\", not \(word)")
                }
                return Array(parts.dropFirst())
            }
            let more = output.fileHandleForReading.availableData
            guard !more.isEmpty else { throw ValidationError("a rank exited (status \(exitStatus()))") }
            buffered.append(more)
        }
    }

    private func exitStatus() -> Int32 {
        process.waitUntilExit()
        return process.terminationStatus
    }

    /// Closes its stdin (it then exits) and waits for it.
    func stop() {
        try? input.fileHandleForWriting.close()
        process.waitUntilExit()
    }
}
